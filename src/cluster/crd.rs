//! The Piraeus Operator v1 custom resources (`piraeus.linbit.com/v1`): `LinstorController` with the
//! fields the service reads (everything else is kept in `extra`, so nothing is lost on a round
//! trip), and `LinstorSatelliteSet` and `LinstorCSIDriver` as plain maps for the upgrade plan.
//!
//! The v1.10.8 chart renders every unset string as `""` (`linstorHttpsClientSecret: ""`,
//! `sslSecret: ""`, ...) and the operator treats `""` as "not set": so do the `LinstorController`
//! fields here, an empty string reads as `None`.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

/// `""` (and `null`) as `None`: how Piraeus Operator v1 reads its CR's optional strings.
fn empty_as_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|s| !s.is_empty()))
}

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
    #[serde(
        default,
        rename = "dbConnectionURL",
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub db_connection_url: Option<String>,
    #[serde(
        default,
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub service_account_name: Option<String>,
    #[serde(
        default,
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub controller_image: Option<String>,
    /// Secret with `tls.crt`, `tls.key`, `ca.crt` for the https REST API client.
    #[serde(
        default,
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The LinstorController exactly as the v1.10.8 chart renders it with default values
    /// (`helm template`, tests/fixtures/piraeus-v1.10.8/rendered/default.yaml).
    const RENDERED: &str = r#"{"apiVersion": "piraeus.linbit.com/v1", "kind": "LinstorController",
        "metadata": {"name": "piraeus-op-cs", "namespace": "piraeus-datastore", "labels": {"app.kubernetes.io/name": "piraeus-op-cs"}},
        "spec": {"priorityClassName": "", "dbConnectionURL": "etcd://piraeus-op-etcd:2379",
                 "luksSecret": "piraeus-op-passphrase", "sslSecret": "", "dbCertSecret": null, "dbUseClientCert": false,
                 "drbdRepoCred": "", "controllerImage": "quay.io/piraeusdatastore/piraeus-server:v1.25.1",
                 "imagePullPolicy": "IfNotPresent", "linstorHttpsControllerSecret": "", "linstorHttpsClientSecret": "",
                 "tolerations": [], "resources": {}, "replicas": 1}}"#;

    #[test]
    fn empty_strings_of_the_rendered_chart_are_not_set() {
        let cr: LinstorController = serde_json::from_str(RENDERED).unwrap();
        assert_eq!(cr.spec.linstor_https_client_secret, None);
        assert_eq!(cr.spec.service_account_name, None);
        assert_eq!(
            cr.spec.db_connection_url.as_deref(),
            Some("etcd://piraeus-op-etcd:2379")
        );
        assert_eq!(cr.spec.replicas, Some(1));
        let with_secret = RENDERED.replace(
            r#""linstorHttpsClientSecret": """#,
            r#""linstorHttpsClientSecret": "piraeus-op-client-secret""#,
        );
        let cr: LinstorController = serde_json::from_str(&with_secret).unwrap();
        assert_eq!(
            cr.spec.linstor_https_client_secret.as_deref(),
            Some("piraeus-op-client-secret")
        );
    }
}
