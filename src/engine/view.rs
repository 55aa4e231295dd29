//! The JSON shapes of runs for the API and the pages.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::{EngineResult, RunContext};
use crate::db::{AuditEntry, BackupRecord, Db, RunRecord, StepRecord};
use crate::linstor::toml::redact_url;
use crate::model::{Phase, RunKind, RunOptions, RunState, StepName, StepState};

/// A step of a run.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct StepView {
    pub name: StepName,
    pub title: String,
    pub state: StepState,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<i64>,
    pub message: Option<String>,
    /// True for the steps during which the controller is down.
    pub downtime: bool,
}

/// A backup of a run, with its download URL.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct BackupView {
    pub id: String,
    pub name: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub url: String,
    pub purpose: String,
    pub exported_from: String,
    pub linstor_version: String,
    pub tables: i64,
    pub rows: i64,
    pub created_at: DateTime<Utc>,
}

impl From<&BackupRecord> for BackupView {
    fn from(b: &BackupRecord) -> Self {
        Self {
            id: b.id.clone(),
            name: b.file_name.clone(),
            size_bytes: b.size_bytes,
            sha256: b.sha256.clone(),
            url: format!("/api/v1/backups/{}", b.id),
            purpose: b.purpose.clone(),
            exported_from: b.exported_from.clone(),
            linstor_version: b.linstor_version.clone(),
            tables: b.tables,
            rows: b.rows,
            created_at: b.created_at,
        }
    }
}

/// The controller's downtime during a run.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DowntimeView {
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    /// Up to now while the controller is still down.
    pub seconds: f64,
}

/// A rollback that began after the run's downtime had ended (a manual rollback after success):
/// a phase of its own, whose time and downtime are not the migration's.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RollbackPhaseView {
    pub started_at: DateTime<Utc>,
    /// When it finished (rolled back, or gave up); `None` while it runs.
    pub finished_at: Option<DateTime<Utc>>,
    /// How long it took (up to now while it runs).
    pub seconds: f64,
    /// The controller's downtime it caused, if it stopped the controller.
    pub downtime: Option<DowntimeView>,
}

/// What a rollback restores, as preflight recorded it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct OriginalView {
    pub connection_url: Option<String>,
    pub replicas: i32,
    pub etcd_stateful_set: Option<String>,
    pub etcd_replicas: Option<i32>,
    /// The controller's `linstor.toml` with passwords, keys and passphrases redacted.
    pub linstor_toml: Option<String>,
}

/// A run in full.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RunView {
    pub id: String,
    pub kind: RunKind,
    pub controller: String,
    pub state: RunState,
    pub options: RunOptions,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    /// The step running now (or that failed last).
    pub current_step: Option<StepName>,
    /// `forward`, or `rolling_back` from the moment a rollback began (for good).
    pub phase: Phase,
    /// True while a rollback runs.
    pub rolling_back: bool,
    pub cancel_requested: bool,
    /// The first reason a rollback began.
    pub rollback_cause: Option<String>,
    pub approved_by: Option<String>,
    pub original: Option<OriginalView>,
    /// What the Helm values must say now, for every final state but a successful migration
    /// (whose report has the command that persists `k8s`).
    pub helm_advice: Option<String>,
    /// Set when the run's stored context does not parse (the report is then empty).
    pub context_error: Option<String>,
    /// The controller's downtime of the run itself (from the stop to the start of the migration,
    /// or to the end of an automatic rollback).
    pub downtime: Option<DowntimeView>,
    /// A rollback after the downtime had ended, with its own duration and downtime.
    pub rollback: Option<RollbackPhaseView>,
    pub steps: Vec<StepView>,
    pub backups: Vec<BackupView>,
    pub audit: Vec<AuditEntry>,
    pub report: RunContext,
}

/// A run in a list.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RunSummary {
    pub id: String,
    pub kind: RunKind,
    pub controller: String,
    pub state: RunState,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    pub downtime: Option<DowntimeView>,
}

fn downtime(run: &RunRecord) -> Option<DowntimeView> {
    let started_at = run.downtime_started_at?;
    let end = run.downtime_ended_at.unwrap_or_else(Utc::now);
    Some(DowntimeView {
        started_at,
        ended_at: run.downtime_ended_at,
        seconds: (end - started_at).num_milliseconds() as f64 / 1000.0,
    })
}

fn seconds(from: DateTime<Utc>, to: Option<DateTime<Utc>>) -> f64 {
    (to.unwrap_or_else(Utc::now) - from).num_milliseconds() as f64 / 1000.0
}

fn rollback_phase(run: &RunRecord) -> Option<RollbackPhaseView> {
    if !run.rollback_after_downtime() {
        return None;
    }
    let started_at = run.rollback_started_at?;
    let finished_at = run
        .finished_at
        .filter(|f| run.state.is_final() && *f >= started_at);
    Some(RollbackPhaseView {
        started_at,
        finished_at,
        seconds: seconds(started_at, finished_at),
        downtime: run.rollback_downtime_started_at.map(|d| DowntimeView {
            started_at: d,
            ended_at: run.rollback_downtime_ended_at,
            seconds: seconds(d, run.rollback_downtime_ended_at),
        }),
    })
}

fn step_view(s: StepRecord) -> StepView {
    let duration_ms = match (s.started_at, s.finished_at) {
        (Some(a), Some(b)) => Some((b - a).num_milliseconds()),
        (Some(a), None) if s.state == StepState::Running => Some((Utc::now() - a).num_milliseconds()),
        _ => None,
    };
    StepView {
        title: s.name.title().to_string(),
        downtime: s.name.in_downtime(),
        name: s.name,
        state: s.state,
        started_at: s.started_at,
        finished_at: s.finished_at,
        duration_ms,
        message: s.message,
    }
}

pub(super) fn run_summary(run: RunRecord) -> RunSummary {
    RunSummary {
        downtime: downtime(&run),
        id: run.id,
        kind: run.kind,
        controller: run.controller.to_string(),
        state: run.state,
        created_by: run.created_by,
        created_at: run.created_at,
        finished_at: run.finished_at,
        error: run.error,
    }
}

/// What the Helm values must say after a run that did not (or no longer does) leave the
/// controller on `k8s`.
fn helm_advice(run: &RunRecord) -> Option<String> {
    let url = redact_url(run.originals.as_ref()?.connection_url.as_deref()?);
    if run.kind != RunKind::Migrate || !run.state.is_final() || run.state == RunState::Succeeded {
        return None;
    }
    // nothing of the controller changed: no advice needed
    run.downtime_started_at?;
    Some(match run.state {
        RunState::RollbackFailed => format!(
            "Do not change the Helm values: operator.controller.dbConnectionURL must stay {url} and \
             etcd must stay enabled while the rollback is finished."
        ),
        RunState::Failed if run.phase == Phase::Forward => format!(
            "Do not change the Helm values yet: until the run is resumed to success or rolled back, \
             operator.controller.dbConnectionURL stays {url} and etcd stays enabled."
        ),
        _ => format!(
            "Keep the Helm values as they are: the controller runs on {url}, so \
             operator.controller.dbConnectionURL stays {url} and etcd stays enabled. Do not persist k8s."
        ),
    })
}

pub(super) async fn run_view(db: &Db, run: RunRecord) -> EngineResult<RunView> {
    let steps: Vec<StepView> = db.steps(&run.id).await?.into_iter().map(step_view).collect();
    let backups = db
        .backups_of_run(&run.id)
        .await?
        .iter()
        .map(BackupView::from)
        .collect();
    let audit = db.audit(&run.id).await?;
    let current_step = steps
        .iter()
        .find(|s| s.state == StepState::Running)
        .or_else(|| steps.iter().rev().find(|s| s.state == StepState::Failed))
        .map(|s| s.name);
    let (mut report, context_error) = match RunContext::parse(&run.context) {
        Ok(c) => (c, None),
        Err(e) => (RunContext::default(), Some(e)),
    };
    // the command that persists k8s in Helm belongs to a migration that succeeded (and was not
    // rolled back since): anywhere else, following it would point the controller at k8s data
    // that is not (or no longer) its database
    if !(run.kind == RunKind::Migrate && run.state == RunState::Succeeded) {
        report.helm_command = None;
    }
    if let Some(c) = &mut report.controller {
        c.connection_url = c.connection_url.as_deref().map(redact_url);
    }
    Ok(RunView {
        downtime: downtime(&run),
        rollback: rollback_phase(&run),
        helm_advice: helm_advice(&run),
        original: run.originals.as_ref().map(|o| OriginalView {
            connection_url: o.connection_url.as_deref().map(redact_url),
            replicas: o.replicas,
            etcd_stateful_set: o.etcd_stateful_set.clone(),
            etcd_replicas: o.etcd_replicas,
            linstor_toml: o.config_toml.as_deref().map(crate::linstor::toml::redact),
        }),
        context_error,
        report,
        id: run.id,
        kind: run.kind,
        controller: run.controller.to_string(),
        state: run.state,
        options: run.options,
        created_by: run.created_by,
        created_at: run.created_at,
        started_at: run.started_at,
        finished_at: run.finished_at,
        error: run.error,
        current_step,
        phase: run.phase,
        rolling_back: run.phase == Phase::RollingBack && !run.state.is_final(),
        cancel_requested: run.cancel_requested,
        rollback_cause: run.rollback_cause,
        approved_by: run.approved_by,
        steps,
        backups,
        audit,
    })
}
