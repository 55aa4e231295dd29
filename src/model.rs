//! The vocabulary shared by the engine, the database and the HTTP layer: run kinds, run and step
//! states, the steps themselves, options and the actor who asked for something.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a run does. See DESIGN.md "Run kinds".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    /// Read-only checks and the plan.
    Preflight,
    /// Stop, export, copy out, start: a consistent backup on demand.
    Backup,
    /// The full migration to the `k8s` backend.
    Migrate,
    /// Read-only: the plan for the rest of the Piraeus Operator v1 -> v2 upgrade.
    #[serde(rename = "upgrade-plan")]
    UpgradePlan,
}

impl RunKind {
    /// The steps a run of this kind goes through, in order.
    pub fn steps(self) -> &'static [StepName] {
        use StepName::*;
        match self {
            RunKind::Preflight => &[Preflight],
            RunKind::Backup => &[
                Preflight,
                PreparePod,
                StopController,
                Export,
                CopyBackup,
                StartController,
                Cleanup,
            ],
            RunKind::Migrate => &[
                Preflight,
                PreparePod,
                Snapshot,
                PrepareTarget,
                StopController,
                Export,
                CopyBackup,
                Import,
                VerifyData,
                Switch,
                StartController,
                VerifyCluster,
                Cleanup,
            ],
            RunKind::UpgradePlan => &[UpgradePlan],
        }
    }

    /// True for the kinds that only read: they never stop a controller, so they have no
    /// downtime and nothing to roll back.
    pub fn is_read_only(self) -> bool {
        matches!(self, RunKind::Preflight | RunKind::UpgradePlan)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Preflight => "preflight",
            RunKind::Backup => "backup",
            RunKind::Migrate => "migrate",
            RunKind::UpgradePlan => "upgrade-plan",
        }
    }
}

/// The state of a run. `queued`, `running` and `waiting` are active; the rest are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Queued,
    Running,
    /// Stopped at the approval gate before downtime, until someone approves.
    Waiting,
    Succeeded,
    Failed,
    Cancelled,
    RolledBack,
    /// A rollback gave up after its retries: the controller needs the commands in the run's
    /// report (or a resume, which continues the rollback). Holds the controller like an active
    /// run: no new run may start on it.
    RollbackFailed,
}

impl RunState {
    pub const ACTIVE: [RunState; 3] = [RunState::Queued, RunState::Running, RunState::Waiting];
    pub const ALL: [RunState; 8] = [
        RunState::Queued,
        RunState::Running,
        RunState::Waiting,
        RunState::Succeeded,
        RunState::Failed,
        RunState::Cancelled,
        RunState::RolledBack,
        RunState::RollbackFailed,
    ];

    /// No task drives a run in a final state (it may still be resumed or rolled back).
    pub fn is_final(self) -> bool {
        !Self::ACTIVE.contains(&self)
    }

    /// True while the run keeps other runs off its controller: active, or a rollback that
    /// has not finished.
    pub fn holds_controller(self) -> bool {
        !self.is_final() || self == RunState::RollbackFailed
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Queued => "queued",
            RunState::Running => "running",
            RunState::Waiting => "waiting",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::Cancelled => "cancelled",
            RunState::RolledBack => "rolled_back",
            RunState::RollbackFailed => "rollback_failed",
        }
    }
}

/// Which way a run is going. Once a run has entered `rolling_back` it never goes forward again:
/// the rollback finishes, or ends `rollback_failed` and is continued by a resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Forward,
    RollingBack,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Forward => "forward",
            Phase::RollingBack => "rolling_back",
        }
    }
}

/// The state of one step of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Pending,
    Running,
    Succeeded,
    Failed,
    Skipped,
    RolledBack,
}

impl StepState {
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Running => "running",
            StepState::Succeeded => "succeeded",
            StepState::Failed => "failed",
            StepState::Skipped => "skipped",
            StepState::RolledBack => "rolled_back",
        }
    }
}

/// The steps of DESIGN.md "The migrate steps"; backups and preflights use a subset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepName {
    Preflight,
    /// The only step of an upgrade-plan run (read-only, like preflight).
    UpgradePlan,
    PreparePod,
    Snapshot,
    PrepareTarget,
    StopController,
    Export,
    CopyBackup,
    Import,
    VerifyData,
    Switch,
    StartController,
    VerifyCluster,
    Cleanup,
}

impl StepName {
    pub const ALL: [StepName; 14] = [
        StepName::Preflight,
        StepName::UpgradePlan,
        StepName::PreparePod,
        StepName::Snapshot,
        StepName::PrepareTarget,
        StepName::StopController,
        StepName::Export,
        StepName::CopyBackup,
        StepName::Import,
        StepName::VerifyData,
        StepName::Switch,
        StepName::StartController,
        StepName::VerifyCluster,
        StepName::Cleanup,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StepName::Preflight => "preflight",
            StepName::UpgradePlan => "upgrade_plan",
            StepName::PreparePod => "prepare_pod",
            StepName::Snapshot => "snapshot",
            StepName::PrepareTarget => "prepare_target",
            StepName::StopController => "stop_controller",
            StepName::Export => "export",
            StepName::CopyBackup => "copy_backup",
            StepName::Import => "import",
            StepName::VerifyData => "verify_data",
            StepName::Switch => "switch",
            StepName::StartController => "start_controller",
            StepName::VerifyCluster => "verify_cluster",
            StepName::Cleanup => "cleanup",
        }
    }

    /// The title shown to people.
    pub fn title(self) -> &'static str {
        match self {
            StepName::Preflight => "Preflight checks",
            StepName::UpgradePlan => "Plan the v2 upgrade",
            StepName::PreparePod => "Prepare migration pod",
            StepName::Snapshot => "Snapshot cluster state",
            StepName::PrepareTarget => "Prepare the k8s backend",
            StepName::StopController => "Stop controller",
            StepName::Export => "Export database",
            StepName::CopyBackup => "Copy backup",
            StepName::Import => "Import into k8s",
            StepName::VerifyData => "Verify data",
            StepName::Switch => "Switch to k8s",
            StepName::StartController => "Start controller",
            StepName::VerifyCluster => "Verify cluster",
            StepName::Cleanup => "Clean up",
        }
    }

    /// True for the steps during which the controller is down (5–11 of a migration): a failure
    /// there is rolled back automatically.
    pub fn in_downtime(self) -> bool {
        matches!(
            self,
            StepName::StopController
                | StepName::Export
                | StepName::CopyBackup
                | StepName::Import
                | StepName::VerifyData
                | StepName::Switch
                | StepName::StartController
        )
    }
}

impl fmt::Display for StepName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! impl_from_str {
    ($ty:ty, $all:expr) => {
        impl FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $all.into_iter()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| format!("unknown {}: {s:?}", stringify!($ty)))
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

impl_from_str!(
    RunKind,
    [
        RunKind::Preflight,
        RunKind::Backup,
        RunKind::Migrate,
        RunKind::UpgradePlan
    ]
);
impl_from_str!(RunState, RunState::ALL);
impl_from_str!(Phase, [Phase::Forward, Phase::RollingBack]);
impl_from_str!(
    StepState,
    [
        StepState::Pending,
        StepState::Running,
        StepState::Succeeded,
        StepState::Failed,
        StepState::Skipped,
        StepState::RolledBack
    ]
);

impl FromStr for StepName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StepName::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("unknown step: {s:?}"))
    }
}

/// `namespace/name` of a controller (a LinstorController CR or a plain Deployment).
/// In schemas it is a string: use `#[schema(value_type = String)]` on fields of this type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ControllerRef {
    pub namespace: String,
    pub name: String,
}

impl ControllerRef {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl FromStr for ControllerRef {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (ns, name) = s
            .split_once('/')
            .ok_or_else(|| format!("controller must be NAMESPACE/NAME, got {s:?}"))?;
        let valid = |p: &str| {
            !p.is_empty()
                && p.len() <= 253
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        };
        if !valid(ns) || !valid(name) {
            return Err(format!(
                "controller must be NAMESPACE/NAME with Kubernetes names, got {s:?}"
            ));
        }
        Ok(Self::new(ns, name))
    }
}

impl TryFrom<String> for ControllerRef {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<ControllerRef> for String {
    fn from(c: ControllerRef) -> String {
        c.to_string()
    }
}

impl fmt::Display for ControllerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// How step 8 checks the imported data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VerifyMode {
    /// Read the `k8s` backend's objects directly and compare them row by row with the backup
    /// (seconds, whatever the size).
    #[default]
    Direct,
    /// Export the `k8s` backend again with `linstor-database` and compare the two exports (also
    /// proves the tool can read what was written; 7-17 s more downtime on the real tool).
    Tool,
}

/// How step 7 writes the data into the `k8s` backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ImportMode {
    /// `delta` for a LINSTOR version whose recordings prove it (1.25.1 and 1.33.3), else `tool`;
    /// decided by step 4 from the LINSTOR version of its export, and reported with the reason.
    #[default]
    Auto,
    /// `linstor-database import-db` of the consistent export (it truncates, then creates one
    /// object per row, serially).
    Tool,
    /// A pre-copy before the stop, then during the downtime only the rows that differ from the
    /// consistent export, many at a time; the verification falls back to the tool when the result
    /// is not equal. Only for a recorded LINSTOR version: for any other, the tool's import runs
    /// and the run says why.
    Delta,
}

impl ImportMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ImportMode::Auto => "auto",
            ImportMode::Tool => "tool",
            ImportMode::Delta => "delta",
        }
    }
}

/// A failure the simulated cluster (`--demo`) plays for one run, so that the screens of a
/// rollback can be seen before they are needed. A property of the run, stored with it: two demo
/// runs with different scenarios do not meet each other's faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum DemoScenario {
    /// Nothing goes wrong.
    None,
    /// The import fails half way (the tool exits 1 after writing about half the rows): rolled back.
    ImportFails,
    /// The controller does not start on k8s (it crash-loops until the controller timeout):
    /// rolled back.
    ControllerDoesNotStart,
    /// Scaling the controller up is refused (an admission webhook): the start fails, and so does
    /// the rollback's start after its retries: `rollback_failed` with the commands that finish
    /// it; once the run has given up, the refusal is lifted, so "Retry the rollback" works.
    RollbackFails,
    /// The controller's database has 100,000 rows: a slow import (the delta import's pre-copy
    /// keeps most of it out of the downtime).
    #[serde(rename = "slow-100k")]
    #[value(name = "slow-100k")]
    Slow100k,
}

impl DemoScenario {
    pub const ALL: [DemoScenario; 5] = [
        DemoScenario::None,
        DemoScenario::ImportFails,
        DemoScenario::ControllerDoesNotStart,
        DemoScenario::RollbackFails,
        DemoScenario::Slow100k,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DemoScenario::None => "none",
            DemoScenario::ImportFails => "import-fails",
            DemoScenario::ControllerDoesNotStart => "controller-does-not-start",
            DemoScenario::RollbackFails => "rollback-fails",
            DemoScenario::Slow100k => "slow-100k",
        }
    }

    /// What it shows, for the start form.
    pub fn label(self) -> &'static str {
        match self {
            DemoScenario::None => "Nothing goes wrong",
            DemoScenario::ImportFails => "The import fails → rolled back",
            DemoScenario::ControllerDoesNotStart => {
                "The controller does not start on k8s → rolled back after the controller timeout"
            }
            DemoScenario::RollbackFails => {
                "Starting the controller is refused, also by the rollback → rollback failed, with its commands"
            }
            DemoScenario::Slow100k => "A slow database of 100,000 rows",
        }
    }

    /// The kinds of run it plays in: the failures need a migration's (or a backup's) steps.
    pub fn applies_to(self, kind: RunKind) -> bool {
        match self {
            DemoScenario::None => true,
            DemoScenario::ImportFails | DemoScenario::RollbackFails => kind == RunKind::Migrate,
            DemoScenario::ControllerDoesNotStart => kind == RunKind::Migrate,
            DemoScenario::Slow100k => matches!(kind, RunKind::Migrate | RunKind::Backup),
        }
    }
}

impl fmt::Display for DemoScenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Options of a run; every field has a safe default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RunOptions {
    /// Stop after the snapshot step in state `waiting` until someone approves the downtime.
    pub approve_before_downtime: bool,
    /// Roll back automatically when a step during downtime fails (default true).
    pub auto_rollback: bool,
    /// Allow a source other than etcd (SQL, H2) for a migration.
    pub allow_non_etcd_source: bool,
    /// Scale the etcd StatefulSet to 0 after a successful migration (its data is never deleted).
    pub scale_down_etcd: bool,
    /// Seconds to wait for the controller to stop or start.
    #[serde(deserialize_with = "whole_number")]
    #[schema(minimum = 5, maximum = 3600)]
    pub controller_timeout_seconds: u64,
    /// Seconds to wait for the migration pod to be Running.
    #[serde(deserialize_with = "whole_number")]
    #[schema(minimum = 5, maximum = 3600)]
    pub pod_timeout_seconds: u64,
    /// How the imported data is verified.
    pub verify: VerifyMode,
    /// How the data is written into the `k8s` backend.
    pub import: ImportMode,
    /// upgrade-plan: the namespace Piraeus Operator v2 will run in (default: the controller's).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length = 63)]
    pub v2_namespace: Option<String>,
    /// `serve --demo` and `--demo` only: a failure the simulated cluster plays for this run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub demo_scenario: Option<DemoScenario>,
}

/// A whole number, also when written `60.0`: JSON Schema's `integer`, which the API document
/// states, admits it, and so must the server.
fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    n.as_u64()
        .or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && (0.0..=u64::MAX as f64).contains(f))
                .map(|f| f as u64)
        })
        .ok_or_else(|| serde::de::Error::custom(format!("expected a whole number from 0, got {n}")))
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            approve_before_downtime: false,
            auto_rollback: true,
            allow_non_etcd_source: false,
            scale_down_etcd: false,
            controller_timeout_seconds: 300,
            pod_timeout_seconds: 300,
            verify: VerifyMode::Direct,
            import: ImportMode::Auto,
            v2_namespace: None,
            demo_scenario: None,
        }
    }
}

/// Who asked for something: a token name, a Kubernetes user, or `cli`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Actor(pub String);

impl Actor {
    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }
    pub fn system() -> Self {
        Self("system".into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controller_ref_parses_and_rejects() {
        let c: ControllerRef = "piraeus-datastore/piraeus-op-cs".parse().unwrap();
        assert_eq!(c.namespace, "piraeus-datastore");
        assert_eq!(c.to_string(), "piraeus-datastore/piraeus-op-cs");
        for bad in ["", "x", "/x", "x/", "A/b", "a/b/c", "a b/c"] {
            assert!(bad.parse::<ControllerRef>().is_err(), "{bad:?} must be rejected");
        }
    }

    #[test]
    fn names_round_trip() {
        for s in StepName::ALL {
            assert_eq!(s.as_str().parse::<StepName>().unwrap(), s);
        }
        assert_eq!("rolled_back".parse::<RunState>().unwrap(), RunState::RolledBack);
        assert!(RunState::RolledBack.is_final() && !RunState::Waiting.is_final());
        assert_eq!("upgrade-plan".parse::<RunKind>().unwrap(), RunKind::UpgradePlan);
        assert_eq!(
            serde_json::to_value(RunKind::UpgradePlan).unwrap(),
            "upgrade-plan"
        );
        assert!(RunKind::UpgradePlan.is_read_only() && !RunKind::Backup.is_read_only());
        assert!(RunKind::UpgradePlan.steps().iter().all(|s| !s.in_downtime()));
    }

    #[test]
    fn timeouts_are_whole_numbers_also_with_a_zero_fraction() {
        let o: RunOptions =
            serde_json::from_str(r#"{"controller_timeout_seconds": 60.0, "pod_timeout_seconds": 30}"#)
                .unwrap();
        assert_eq!((o.controller_timeout_seconds, o.pod_timeout_seconds), (60, 30));
        for bad in ["60.5", "-1", "-1.0", "\"60\"", "1e30", "null"] {
            let json = format!(r#"{{"pod_timeout_seconds": {bad}}}"#);
            assert!(serde_json::from_str::<RunOptions>(&json).is_err(), "{bad}");
        }
    }

    #[test]
    fn downtime_is_steps_five_to_eleven() {
        let migrate = RunKind::Migrate.steps();
        let down: Vec<usize> = migrate
            .iter()
            .enumerate()
            .filter(|(_, s)| s.in_downtime())
            .map(|(i, _)| i + 1)
            .collect();
        assert_eq!(down, (5..=11).collect::<Vec<_>>());
    }
}
