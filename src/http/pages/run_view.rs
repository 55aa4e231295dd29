//! What the run page shows, computed from a [`RunView`]: steps with icons and durations, the
//! downtime clock, the actions that fit the state, the log grouped by step, the report.

use crate::db::EventRecord;
use crate::engine::RunView;
use crate::http::api::runs::Action;
use crate::model::{RunKind, RunState, StepName};

use super::format::{bytes, clock, duration_ms, iso, run_state_label, short_id, step_icon, timestamp};

pub struct StepRow {
    pub name: String,
    pub title: String,
    pub state: String,
    pub icon: &'static str,
    pub duration: String,
    pub started_iso: String,
    pub message: String,
    pub downtime: bool,
    pub current: bool,
}

pub struct DowntimeRow {
    pub started_iso: String,
    pub ended_iso: String,
    pub clock: String,
    pub active: bool,
}

/// A manual rollback after the downtime: its own duration and the downtime it caused.
pub struct RollbackRow {
    pub duration: String,
    pub started: String,
    pub active: bool,
    /// Empty when it did not stop the controller.
    pub clock: String,
    pub started_iso: String,
    pub ended_iso: String,
    pub downtime_active: bool,
}

/// A button that acts on the run, with what the confirmation says.
pub struct ActionButton {
    pub action: &'static str,
    pub label: &'static str,
    /// The label without the ellipsis, for headings.
    pub heading: &'static str,
    /// `danger` or `primary`.
    pub style: &'static str,
    pub noun: &'static str,
    pub confirm: String,
}

impl ActionButton {
    pub fn for_action(action: Action, run: &RunView) -> Self {
        match action {
            Action::Cancel => Self {
                action: "cancel",
                label: "Cancel and roll back…",
                heading: "Cancel and roll back",
                style: "danger",
                noun: "Cancel",
                confirm: format!(
                    "Cancel this run? It stops at the next safe point; if the controller of {} is already stopped, \
                     everything is rolled back to etcd.",
                    run.controller
                ),
            },
            Action::Approve => Self {
                action: "approve",
                label: "Approve downtime…",
                heading: "Approve downtime",
                style: "primary",
                noun: "Approval",
                confirm: format!(
                    "Start the downtime now? The controller {} is stopped until the migration finishes or is rolled back. \
                     Existing volumes keep working; provisioning pauses.",
                    run.controller
                ),
            },
            Action::Resume if run.state == RunState::RollbackFailed => Self {
                action: "resume",
                label: "Retry the rollback…",
                heading: "Retry the rollback",
                style: "danger",
                noun: "Retry",
                confirm: format!(
                    "Retry the rollback of {}? Each action looks at the cluster first and only does what is still \
                     missing; steps you did by hand are recognised.",
                    run.controller
                ),
            },
            Action::Resume => Self {
                action: "resume",
                label: "Resume from the failed step…",
                heading: "Resume from the failed step",
                style: "primary",
                noun: "Resume",
                confirm: "Resume this run from its failed step? Steps check the cluster first and only do what is missing."
                    .into(),
            },
            Action::Rollback => Self {
                action: "rollback",
                label: "Roll back…",
                heading: "Roll back",
                style: "danger",
                noun: "Rollback",
                confirm: format!(
                    "Roll {} back to its original database? Whatever changed in LINSTOR since the switch \
                     (new resources, snapshots, settings) is lost.",
                    run.controller
                ),
            },
        }
    }
}

/// The actions the run's state allows, from the engine's transition table (the engine still
/// decides: a lost race is a 409).
pub fn actions(run: &RunView) -> Vec<ActionButton> {
    use crate::engine::lifecycle::{Action as A, next};
    let allowed = |a: A| next(run.state, run.phase, a).is_some();
    let mut out = Vec::new();
    if allowed(A::Approve) && !run.cancel_requested {
        out.push(Action::Approve);
    }
    // a preflight that failed its checks fails them again: a resume cannot help
    if allowed(A::Resume) && !failed_its_checks(run) {
        out.push(Action::Resume);
    }
    if allowed(A::Cancel) && !run.cancel_requested {
        out.push(Action::Cancel);
    }
    // a failed rollback is continued by "resume"; a manual rollback needs something to undo
    let changed = run.downtime.is_some() && !run.kind.is_read_only();
    if allowed(A::Rollback) && changed && run.state != RunState::RollbackFailed {
        out.push(Action::Rollback);
    }
    out.into_iter()
        .map(|a| ActionButton::for_action(a, run))
        .collect()
}

/// The run failed in step 1: its checks found what stops it, and nothing was changed.
fn failed_its_checks(run: &RunView) -> bool {
    run.state == RunState::Failed && run.current_step == Some(StepName::Preflight)
}

/// What to do next when the page offers no action that could help.
fn next_step(run: &RunView) -> String {
    if failed_its_checks(run) {
        return "Nothing was changed. Running the same checks again fails the same way: fix what the checks below \
                report, then start a new run from the dashboard."
            .into();
    }
    String::new()
}

pub struct BackupRow {
    pub name: String,
    pub url: String,
    pub size: String,
    pub sha256: String,
    pub contents: String,
    pub purpose: String,
}

pub struct AuditRow {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub detail: String,
}

pub struct RunPageView {
    pub id: String,
    pub short_id: String,
    pub title: String,
    pub state: String,
    pub state_label: &'static str,
    pub is_final: bool,
    pub created_by: String,
    pub created_at: String,
    pub finished_at: String,
    pub error: String,
    /// How the error reads: `error` (red), `warn`, or `note` (a cancel before the downtime, a
    /// rollback someone asked for: what happened, not a failure).
    pub error_style: &'static str,
    pub error_label: &'static str,
    /// A migration: the page says from which database to k8s.
    pub moves_to_k8s: bool,
    /// Some step stops the controller (the legend explains the mark).
    pub has_downtime: bool,
    pub rolling_back: bool,
    pub cancel_requested: bool,
    pub source: String,
    pub image: String,
    pub steps: Vec<StepRow>,
    pub downtime: Option<DowntimeRow>,
    pub rollback: Option<RollbackRow>,
    pub actions: Vec<ActionButton>,
    /// What to do when no action is offered that could help.
    pub next_step: String,
    pub backups: Vec<BackupRow>,
    pub audit: Vec<AuditRow>,
}

pub fn run_page_view(run: &RunView) -> RunPageView {
    let title = match run.kind {
        RunKind::Migrate => format!("Migrate {} to the k8s backend", run.controller),
        RunKind::Backup => format!("Back up {}", run.controller),
        RunKind::Preflight => format!("Preflight of {}", run.controller),
        RunKind::UpgradePlan => format!("Plan the v2 upgrade of {}", run.controller),
    };
    let steps = run
        .steps
        .iter()
        .map(|s| StepRow {
            name: s.name.to_string(),
            title: s.title.clone(),
            state: s.state.to_string(),
            icon: step_icon(s.state),
            duration: s.duration_ms.map(duration_ms).unwrap_or_default(),
            started_iso: s.started_at.as_ref().map(iso).unwrap_or_default(),
            message: s.message.clone().unwrap_or_default(),
            downtime: s.downtime && !run.kind.is_read_only(),
            current: run.current_step == Some(s.name),
        })
        .collect();
    let controller = run.report.controller.as_ref();
    let asked_rollback = run
        .rollback_cause
        .as_deref()
        .is_some_and(|c| c.starts_with("manual rollback requested"));
    let (error_style, error_label) = match run.state {
        RunState::Cancelled if run.downtime.is_none() => ("note", "Cancelled"),
        RunState::Cancelled => ("warn", "Cancelled and rolled back"),
        RunState::RolledBack if asked_rollback => ("note", "Rolled back"),
        _ => ("error", "Error"),
    };
    RunPageView {
        error_style,
        error_label,
        moves_to_k8s: run.kind == RunKind::Migrate,
        has_downtime: run.steps.iter().any(|s| s.downtime) && !run.kind.is_read_only(),
        id: run.id.clone(),
        short_id: short_id(&run.id),
        title,
        state: run.state.to_string(),
        state_label: run_state_label(run.state),
        is_final: run.state.is_final(),
        created_by: run.created_by.clone(),
        created_at: timestamp(&run.created_at),
        finished_at: run.finished_at.as_ref().map(timestamp).unwrap_or_default(),
        error: run.error.clone().unwrap_or_default(),
        rolling_back: run.rolling_back,
        cancel_requested: run.cancel_requested,
        source: run
            .original
            .as_ref()
            .and_then(|o| o.connection_url.clone())
            .or_else(|| controller.and_then(|c| c.connection_url.clone()))
            .unwrap_or_default(),
        image: controller.and_then(|c| c.image.clone()).unwrap_or_default(),
        steps,
        downtime: run.downtime.as_ref().map(|d| DowntimeRow {
            started_iso: iso(&d.started_at),
            ended_iso: d.ended_at.as_ref().map(iso).unwrap_or_default(),
            clock: clock(d.seconds),
            active: d.ended_at.is_none() && !run.state.is_final(),
        }),
        rollback: run.rollback.as_ref().map(|r| RollbackRow {
            duration: duration_ms((r.seconds * 1000.0) as i64),
            started: timestamp(&r.started_at),
            active: r.finished_at.is_none(),
            clock: r.downtime.as_ref().map(|d| clock(d.seconds)).unwrap_or_default(),
            started_iso: r
                .downtime
                .as_ref()
                .map(|d| iso(&d.started_at))
                .unwrap_or_default(),
            ended_iso: r
                .downtime
                .as_ref()
                .and_then(|d| d.ended_at.as_ref())
                .map(iso)
                .unwrap_or_default(),
            downtime_active: r.downtime.as_ref().is_some_and(|d| d.ended_at.is_none())
                && !run.state.is_final(),
        }),
        actions: actions(run),
        next_step: next_step(run),
        backups: run
            .backups
            .iter()
            .map(|b| BackupRow {
                name: b.name.clone(),
                url: b.url.clone(),
                size: bytes(b.size_bytes),
                sha256: b.sha256.clone(),
                contents: format!(
                    "{} tables · {} rows · from {} (LINSTOR {})",
                    b.tables, b.rows, b.exported_from, b.linstor_version
                ),
                purpose: b.purpose.clone(),
            })
            .collect(),
        audit: run
            .audit
            .iter()
            .map(|a| AuditRow {
                at: timestamp(&a.at),
                actor: a.actor.clone(),
                action: a.action.clone(),
                detail: a.detail.clone().unwrap_or_default(),
            })
            .collect(),
    }
}

pub struct LogLine {
    pub n: usize,
    pub time: String,
    pub iso: String,
    pub level: String,
    pub message: String,
}

/// Consecutive lines of one step.
pub struct LogGroup {
    pub step: String,
    pub title: String,
    pub lines: Vec<LogLine>,
}

/// Consecutive lines of the same step form a group (a step that runs again, after a resume,
/// starts a new one). Every group is open; the reader collapses what they do not need.
/// `lines` grouped by step; the first one is line `skipped + 1` of the log.
pub fn log_groups(lines: &[EventRecord], skipped: usize) -> Vec<LogGroup> {
    let mut groups: Vec<(Option<StepName>, LogGroup)> = Vec::new();
    for (i, e) in lines.iter().enumerate() {
        if groups.last().is_none_or(|(step, _)| *step != e.step) {
            let title = e.step.map_or("Run", |s| s.title()).to_string();
            let step = e.step.map_or("run".to_string(), |s| s.to_string());
            groups.push((
                e.step,
                LogGroup {
                    step,
                    title,
                    lines: Vec::new(),
                },
            ));
        }
        let (_, group) = groups.last_mut().expect("a group was pushed");
        group.lines.push(LogLine {
            n: skipped + i + 1,
            time: e.at.format("%H:%M:%S%.3f").to_string(),
            iso: iso(&e.at),
            level: e.level.clone(),
            message: e.message.clone(),
        });
    }
    groups.into_iter().map(|(_, g)| g).collect()
}
