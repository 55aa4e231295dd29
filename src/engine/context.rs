//! What a run learns as it goes (stored as JSON with the run, so a resumed run knows it too):
//! the controller as found, the original settings to roll back to, check results, the snapshot
//! and the verification results.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::cluster::K8sBackendInventory;
use crate::cluster::controller::ControllerInfo;
use crate::linstor::export::DataComparison;
use crate::linstor::rest::{ClusterSnapshot, ErrorReport, SnapshotComparison};

/// How serious a preflight finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CheckLevel {
    Ok,
    Warning,
    Error,
}

/// One preflight check and its result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Check {
    pub name: String,
    pub level: CheckLevel,
    pub message: String,
}

/// Everything a run has found out; every field is optional because steps fill them in turn.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct RunContext {
    pub controller: Option<ControllerInfo>,
    /// `dbConnectionURL` (or the ConfigMap's connection_url) before the run changed anything.
    pub original_connection_url: Option<String>,
    /// The controller's replica count before the run stopped it.
    pub original_replicas: Option<i32>,
    /// The original `linstor.toml` of an unowned controller's ConfigMap (restored on rollback).
    pub original_config_toml: Option<String>,
    pub checks: Vec<Check>,
    /// What the run will do, in words.
    pub plan: Vec<String>,
    pub migration_pod: Option<String>,
    pub target_config_map: Option<String>,
    pub k8s_backend_before: Option<K8sBackendInventory>,
    pub snapshot_before: Option<ClusterSnapshot>,
    pub backup_id: Option<String>,
    pub verification_backup_id: Option<String>,
    pub data_verification: Option<DataComparison>,
    pub cluster_verification: Option<SnapshotComparison>,
    pub error_reports: Vec<ErrorReport>,
    /// Start of the run in Unix ms (error reports since then are listed).
    pub started_at_ms: Option<i64>,
    /// The import ran (possibly partially): data in the `k8s` backend to report on rollback.
    pub import_started: bool,
    pub k8s_backend_after_rollback: Option<K8sBackendInventory>,
    /// Helm release drift (`cluster::helm::HelmDrift` as JSON).
    #[schema(value_type = Option<Object>)]
    pub helm: Option<serde_json::Value>,
    /// The command that persists the change in Helm.
    pub helm_command: Option<String>,
    pub approved_by: Option<String>,
    pub cancelled_by: Option<String>,
    /// Why the rollback happened.
    pub rollback_cause: Option<String>,
    pub etcd_scaled_down: Option<String>,
}

impl RunContext {
    pub fn from_value(v: &serde_json::Value) -> Self {
        serde_json::from_value(v.clone()).unwrap_or_default()
    }

    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("context serializes")
    }
}
