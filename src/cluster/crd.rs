//! The Piraeus Operator v1 custom resources (`piraeus.linbit.com/v1`): `LinstorController` with the
//! fields the service reads (everything else is kept in `extra`, so nothing is lost on a round
//! trip), and `LinstorSatelliteSet` and `LinstorCSIDriver` as plain maps for the upgrade plan.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `spec` of a `LinstorController` (REFERENCE.md §2).
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "piraeus.linbit.com",
    version = "v1",
    kind = "LinstorController",
    namespaced,
    status = "serde_json::Value",
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct LinstorControllerSpec {
    /// Helm `operator.controller.replicas`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Helm `operator.controller.dbConnectionURL`, e.g. `etcd://piraeus-op-etcd:2379` or `k8s`.
    #[serde(default, rename = "dbConnectionURL", skip_serializing_if = "Option::is_none")]
    pub db_connection_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_image: Option<String>,
    /// Secret with `tls.crt`, `tls.key`, `ca.crt` for the https REST API client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linstor_https_client_secret: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// `spec` of a `LinstorSatelliteSet` (`piraeus.linbit.com/v1`), every field as it is: only the
/// upgrade plan reads it, and it looks at all of them.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "piraeus.linbit.com",
    version = "v1",
    kind = "LinstorSatelliteSet",
    namespaced,
    status = "serde_json::Value",
    schema = "disabled"
)]
pub struct LinstorSatelliteSetSpec {
    #[serde(flatten)]
    pub fields: BTreeMap<String, serde_json::Value>,
}

/// `spec` of a `LinstorCSIDriver` (`piraeus.linbit.com/v1`), every field as it is.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "piraeus.linbit.com",
    version = "v1",
    kind = "LinstorCSIDriver",
    root = "LinstorCsiDriver",
    plural = "linstorcsidrivers",
    namespaced,
    status = "serde_json::Value",
    schema = "disabled"
)]
pub struct LinstorCsiDriverSpec {
    #[serde(flatten)]
    pub fields: BTreeMap<String, serde_json::Value>,
}
