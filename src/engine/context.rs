//! What a run learns as it goes (stored as JSON with the run, so a resumed run knows it too):
//! the controller as found, check results, the plan, the snapshot and the verification results.
//! What a rollback needs is not here: it lives in columns of its own (`db::Originals`), so a
//! rollback never depends on this document parsing.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::cluster::K8sBackendInventory;
use crate::cluster::controller::ControllerInfo;
use crate::linstor::compare::DataComparison;
use crate::linstor::rest::ErrorReport;
use crate::linstor::snapshot::{ClusterSnapshot, SnapshotComparison};
use crate::model::{ImportMode, RunKind, StepName, VerifyMode};

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
    pub checks: Vec<Check>,
    /// What the run will do, in words (one line per step).
    pub plan: Vec<String>,
    /// What the run, or the migration a preflight checks for, will do: its steps, which of them
    /// stop the controller, and what it changes.
    pub planned: Option<RunPlan>,
    pub migration_pod: Option<String>,
    pub target_config_map: Option<String>,
    pub k8s_backend_before: Option<K8sBackendInventory>,
    /// Rows of export tables that the `k8s` backend held at preflight and that an earlier run of
    /// this service provably left there: this run deletes them, after the approval gate.
    pub backend_to_replace: Option<u64>,
    /// Step 3's snapshot, kept here only by runs of earlier versions: it grows with the
    /// cluster (every resource with its properties), and the context is read and written at
    /// every step and answered by every `GET` of the run. Now in [`SNAPSHOT_FILE`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_before: Option<ClusterSnapshot>,
    /// What step 3's snapshot holds, in words ("5 nodes, ..."); the snapshot itself is the file
    /// `snapshots/<run>.json` in the data directory.
    pub snapshot_before_summary: Option<String>,
    pub backup_id: Option<String>,
    pub verification_backup_id: Option<String>,
    pub data_verification: Option<DataComparison>,
    pub cluster_verification: Option<SnapshotComparison>,
    pub error_reports: Vec<ErrorReport>,
    /// Start of the run in Unix ms (error reports since then are listed).
    pub started_at_ms: Option<i64>,
    /// The import ran (possibly partially): data in the `k8s` backend to report on rollback.
    pub import_started: bool,
    /// The pre-copy export (relative to the data directory) whose rows step 4 wrote into the
    /// `k8s` backend: the delta import plans against it instead of reading the backend inside
    /// the downtime (the verification reads it after). Deleted by the import.
    pub precopy_file: Option<String>,
    pub k8s_backend_after_rollback: Option<K8sBackendInventory>,
    /// Helm release drift (`cluster::helm::HelmDrift` as JSON).
    #[schema(value_type = Option<Object>)]
    pub helm: Option<serde_json::Value>,
    /// The command that persists the change in Helm (shown only after a successful migration).
    pub helm_command: Option<String>,
    pub etcd_scaled_down: Option<String>,
    /// Where a rollback gave up, the controller's state then, and how to finish by hand.
    pub rollback_failure: Option<RollbackFailure>,
    /// The plan of an upgrade-plan run (the rest of the Piraeus v1 -> v2 upgrade).
    pub upgrade_plan: Option<crate::upgrade::UpgradePlan>,
    /// What the import did, phase by phase.
    pub import_report: Option<ImportReport>,
}

/// The plan step 1 makes: of the run itself, or of the migration a preflight run checks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RunPlan {
    /// The kind of run planned (`migrate` for a preflight).
    pub kind: RunKind,
    /// How the data is written into the `k8s` backend (a migration only).
    pub import: Option<ImportMode>,
    /// How the written data is verified (a migration only).
    pub verify: Option<VerifyMode>,
    /// Waits for an approval before the downtime begins.
    pub approval_gate: bool,
    pub steps: Vec<PlannedStep>,
    /// What the controller's downtime is made of, in order.
    pub downtime: Vec<String>,
    /// What the run changes in the cluster, and what it leaves as it is.
    pub changes: Vec<String>,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PlannedStep {
    /// 1-based, as in the README's step table.
    pub number: usize,
    pub step: StepName,
    pub title: String,
    pub what: String,
    /// The controller is down during this step.
    pub downtime: bool,
}

/// Rows written into the `k8s` backend by one phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeltaCounts {
    pub created: u64,
    pub changed: u64,
    pub removed: u64,
}

impl DeltaCounts {
    pub fn total(&self) -> u64 {
        self.created + self.changed + self.removed
    }
}

/// What the import did: which one ran, how many rows each phase wrote, and why the tool's import
/// ran after all when it did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct ImportReport {
    /// `tool` or `delta`: the import that runs (`auto` before step 4 decided).
    #[schema(value_type = String)]
    pub mode: crate::model::ImportMode,
    /// Why that import: the LINSTOR version and what its recordings prove.
    pub mode_reason: Option<String>,
    /// Objects this run deleted from a backend that held data (before the stop, or before an
    /// import over what an interrupted one left).
    pub emptied_objects: u64,
    /// The schema (CRDs, `LinstorVersion`) was created before the stop by a schema-only import.
    pub schema_before_stop: bool,
    /// Rows the pre-copy wrote before the stop.
    pub precopy: Option<DeltaCounts>,
    /// Rows the delta wrote during the downtime.
    pub delta: Option<DeltaCounts>,
    /// Why the tool's import ran after the delta, when it did.
    pub fallback: Option<String>,
}

/// A rollback that gave up after its retries: what failed, what the cluster looked like, and
/// the commands that finish the job by hand.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RollbackFailure {
    /// The rollback action that kept failing.
    pub action: String,
    pub error: String,
    /// What the service saw of the controller when it gave up.
    pub observed: Vec<String>,
    /// Shell commands (kubectl) that finish the rollback, in order.
    pub commands: Vec<String>,
}

impl RunContext {
    /// The stored context; an error when it does not parse (never an empty one in its place:
    /// writing that back would erase what the run found).
    pub fn parse(v: &serde_json::Value) -> Result<Self, String> {
        serde_json::from_value(v.clone()).map_err(|e| format!("the run's stored context does not parse: {e}"))
    }

    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("context serializes")
    }
}
