//! What people do to a run: cancel, approve, resume, roll back. Each is one transition of the
//! lifecycle table, written in one transaction with its audit entry and its event, whose
//! precondition is re-checked inside that transaction: of two concurrent requests one wins and
//! the other gets a conflict (409), and only the winner hands the run to a task.

use super::lifecycle::{Action, transition};
use super::log::RunLog;
use super::{Engine, EngineError, EngineResult, RunView};
use crate::db::{DbError, ErrorChange, EventKind, NewEvent, RunChange, RunRecord};
use crate::model::{Actor, Phase, RunState, StepState};

impl Engine {
    fn conflict(run: &RunRecord, action: &str) -> EngineError {
        let why = match (run.state, run.phase) {
            (RunState::Running, Phase::RollingBack) => {
                " (a rollback is under way: it finishes, or gives up and can then be resumed)".to_string()
            }
            (RunState::Running | RunState::Queued | RunState::Waiting, _) if run.cancel_requested => {
                " (a cancel was requested already)".to_string()
            }
            _ => String::new(),
        };
        EngineError::Conflict {
            message: format!("cannot {action} run {} in state {}{why}", run.id, run.state),
            run_id: Some(run.id.clone()),
        }
    }

    /// The change for `action`, or 409 when the table does not allow it in the run's state.
    fn change_for(run: &RunRecord, action: Action, verb: &str) -> EngineResult<RunChange> {
        transition(&run.id, run.state, run.phase, action).ok_or_else(|| Self::conflict(run, verb))
    }

    /// Writes the change; a lost race is a 409 that names the run's state now.
    async fn commit(&self, run: &RunRecord, change: RunChange, verb: &str) -> EngineResult<()> {
        let log = RunLog::new(&run.id, self.inner.db.clone(), self.inner.bus.clone());
        match log.commit(&change).await {
            Ok(()) => Ok(()),
            Err(DbError::Conflict(message)) if message.contains("another active run") => {
                Err(EngineError::Conflict {
                    message: format!("controller {} already has another active run", run.controller),
                    run_id: None,
                })
            }
            Err(DbError::Conflict(_)) => {
                let now = self.record(&run.id).await?;
                Err(Self::conflict(&now, verb))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Asks an active run to stop at its next safe point and roll back (a run that has not
    /// stopped the controller yet just ends, with its pod removed).
    pub async fn cancel(&self, id: &str, actor: &Actor) -> EngineResult<RunView> {
        let run = self.record(id).await?;
        let mut change = Self::change_for(&run, Action::Cancel, "cancel")?;
        change.cancel_requested = Some(true);
        change.audit = Some((actor.clone(), "cancel".into(), None));
        change
            .events
            .push(log_event("warn", format!("cancel requested by {actor}")));
        self.commit(&run, change, "cancel").await?;
        if !self.inner.registry.cancel(id) {
            self.ensure_driving(id);
        }
        self.run(id).await
    }

    /// Releases a run waiting at the approval gate: the downtime begins.
    pub async fn approve(&self, id: &str, actor: &Actor) -> EngineResult<RunView> {
        let run = self.record(id).await?;
        let mut change = Self::change_for(&run, Action::Approve, "approve")?;
        change.approved_by = Some(actor.to_string());
        change.audit = Some((actor.clone(), "approve".into(), None));
        change.events.push(run_event(
            RunState::Running,
            format!("downtime approved by {actor}"),
        ));
        self.commit(&run, change, "approve").await?;
        self.ensure_driving(id);
        self.run(id).await
    }

    /// Continues a failed run from its failed step (a run that never stopped the controller
    /// starts over with preflight), or a rollback that gave up.
    pub async fn resume(&self, id: &str, actor: &Actor) -> EngineResult<RunView> {
        let run = self.record(id).await?;
        let mut change = Self::change_for(&run, Action::Resume, "resume")?;
        let steps = self.inner.db.steps(id).await?;
        let detail = if run.phase == Phase::RollingBack {
            change.events.push(run_event(
                RunState::Running,
                format!("rollback resumed by {actor}"),
            ));
            "rollback".to_string()
        } else {
            let redo: Vec<_> = if run.downtime_started_at.is_none() {
                // nothing of the controller changed and the run's pod is gone: from the start
                steps.iter().filter(|s| s.state != StepState::Pending).collect()
            } else {
                steps
                    .iter()
                    .filter(|s| matches!(s.state, StepState::Failed | StepState::Running))
                    .collect()
            };
            change.steps = redo.iter().map(|s| (s.name, StepState::Pending, None)).collect();
            change
                .events
                .push(run_event(RunState::Running, format!("resumed by {actor}")));
            redo.first().map(|s| s.name.to_string()).unwrap_or_default()
        };
        change.error = ErrorChange::Clear;
        change.audit = Some((actor.clone(), "resume".into(), Some(detail)));
        self.commit(&run, change, "resume").await?;
        self.ensure_driving(id);
        self.run(id).await
    }

    /// Rolls back a finished run that changed the cluster (after a successful migration this
    /// loses whatever changed in LINSTOR since), or continues a rollback that gave up.
    pub async fn rollback(&self, id: &str, actor: &Actor) -> EngineResult<RunView> {
        let run = self.record(id).await?;
        let mut change = Self::change_for(&run, Action::Rollback, "roll back")?;
        change.rollback_cause = Some(format!("manual rollback requested by {actor}"));
        change.error = ErrorChange::Clear;
        change.audit = Some((actor.clone(), "rollback".into(), None));
        change.events.push(run_event(
            RunState::Running,
            format!("manual rollback requested by {actor}"),
        ));
        self.commit(&run, change, "roll back").await?;
        self.ensure_driving(id);
        self.run(id).await
    }
}

fn log_event(level: &str, message: String) -> NewEvent {
    NewEvent {
        kind: EventKind::Log,
        step: None,
        level: level.into(),
        message,
    }
}

fn run_event(state: RunState, message: String) -> NewEvent {
    NewEvent {
        kind: EventKind::Run,
        step: None,
        level: state.as_str().into(),
        message,
    }
}
