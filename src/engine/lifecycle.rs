//! The run state machine as data: the actions, the one table of `(state, phase, action) ->
//! next`, and the change each transition writes. Everything that changes a run's state goes
//! through [`transition`]: the API, the runner, the rollback, the CLI and start-up recovery.
//! Each transition is one SQLite transaction whose precondition (the `(state, phase)` pairs the
//! table allows, plus the action's requirements) is in its `UPDATE`, so a lost race is a
//! conflict (409), never a second task.
//!
//! Two rules the table encodes:
//! - A rollback is a one-way door: nothing leads from `rolling_back` back to `forward`. A run
//!   whose rollback gave up (`rollback_failed`) can only be resumed into its rollback.
//! - One run holds a controller at a time (the database's unique index also counts
//!   `rollback_failed`).

use crate::db::{ErrorChange, NewEvent, Require, RunChange};
use crate::model::{Phase, RunState};

use Phase::{Forward, RollingBack};
use RunState::*;

/// What can happen to a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A task picks up a queued run.
    Start,
    /// The run reached the approval gate before the downtime.
    Gate,
    /// Someone approved the downtime.
    Approve,
    /// Someone asked the run to stop at its next safe point (and roll back if needed).
    Cancel,
    /// Someone resumed a failed run, or a rollback that gave up.
    Resume,
    /// Someone asked for a manual rollback.
    Rollback,
    /// The last step succeeded.
    Succeed,
    /// A step failed and nothing is rolled back (before the downtime, after it, or with
    /// automatic rollback disabled).
    Fail,
    /// Cancelled before the downtime: nothing of the controller changed.
    Cancelled,
    /// A failure, a cancel or a broken invariant during the downtime: the rollback begins.
    BeginRollback,
    /// The rollback finished.
    RolledBack,
    /// The rollback of a cancel finished.
    CancelRolledBack,
    /// The rollback gave up after its retries.
    GiveUp,
}

/// The transition table: where `action` takes a run in `(state, phase)`, if it may happen.
pub fn next(state: RunState, phase: Phase, action: Action) -> Option<(RunState, Phase)> {
    use Action as A;
    Some(match (state, phase, action) {
        (Queued, Forward, A::Start) => (Running, Forward),
        (Running, Forward, A::Gate) => (Waiting, Forward),
        (Waiting, Forward, A::Approve) => (Running, Forward),
        // a task handles every cancel: a queued or waiting run becomes running to be cancelled
        (Queued | Running | Waiting, Forward, A::Cancel) => (Running, Forward),
        (Failed, Forward, A::Resume) => (Running, Forward),
        (RollbackFailed, RollingBack, A::Resume | A::Rollback) => (Running, RollingBack),
        (Failed | Succeeded, Forward, A::Rollback) => (Running, RollingBack),
        (Running, Forward, A::Succeed) => (Succeeded, Forward),
        (Running, Forward, A::Fail) => (Failed, Forward),
        (Running, Forward, A::Cancelled) => (RunState::Cancelled, Forward),
        (Running, Forward, A::BeginRollback) => (Running, RollingBack),
        (Running, RollingBack, A::RolledBack) => (RunState::RolledBack, RollingBack),
        (Running, RollingBack, A::CancelRolledBack) => (RunState::Cancelled, RollingBack),
        (Running, RollingBack, A::GiveUp) => (RollbackFailed, RollingBack),
        _ => return None,
    })
}

/// Conditions beyond `(state, phase)` an action needs.
fn requirements(action: Action) -> Vec<Require> {
    match action {
        Action::Approve | Action::Cancel => vec![Require::NoCancelRequested],
        Action::Rollback => vec![Require::DowntimeStarted, Require::NotReadOnly],
        // read-only kinds (preflight, upgrade-plan) never stop the controller: no approval gate
        // and no rollback phase, whatever the runner asks
        Action::Gate | Action::BeginRollback => vec![Require::NotReadOnly],
        _ => Vec::new(),
    }
}

/// Every `(state, phase)` from which `action` leads somewhere, and where to.
fn arcs(action: Action) -> Vec<((RunState, Phase), (RunState, Phase))> {
    let mut out = Vec::new();
    for state in RunState::ALL {
        for phase in [Forward, RollingBack] {
            if let Some(to) = next(state, phase, action) {
                out.push(((state, phase), to));
            }
        }
    }
    out
}

/// The change for `action` on a run now in `(state, phase)`: `None` when the table does not
/// allow it. The caller adds what goes with it (steps, error, events...), then writes it with
/// `RunLog::commit`, which re-checks the precondition inside the transaction.
pub fn transition(run_id: &str, state: RunState, phase: Phase, action: Action) -> Option<RunChange> {
    let to = next(state, phase, action)?;
    // the precondition: exactly the pairs that lead to the same place by this action
    let from = arcs(action)
        .into_iter()
        .filter(|(_, t)| *t == to)
        .map(|(f, _)| f)
        .collect();
    let mut change = RunChange::new(run_id, from, to);
    change.require = requirements(action);
    Some(change)
}

/// Builder helpers for the parts every transition of the engine adds.
pub trait ChangeExt {
    fn with_error(self, error: ErrorChange) -> Self;
    fn with_event(self, event: NewEvent) -> Self;
}

impl ChangeExt for RunChange {
    fn with_error(mut self, error: ErrorChange) -> Self {
        self.error = error;
        self
    }

    fn with_event(mut self, event: NewEvent) -> Self {
        self.events.push(event);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACTIONS: [Action; 13] = [
        Action::Start,
        Action::Gate,
        Action::Approve,
        Action::Cancel,
        Action::Resume,
        Action::Rollback,
        Action::Succeed,
        Action::Fail,
        Action::Cancelled,
        Action::BeginRollback,
        Action::RolledBack,
        Action::CancelRolledBack,
        Action::GiveUp,
    ];

    #[test]
    fn nothing_leads_from_a_rollback_back_to_forward() {
        for state in RunState::ALL {
            for action in ACTIONS {
                if let Some((_, phase)) = next(state, RollingBack, action) {
                    assert_eq!(phase, RollingBack, "{state:?} {action:?}");
                }
            }
        }
    }

    #[test]
    fn a_failed_rollback_is_only_resumed_into_the_rollback() {
        for action in ACTIONS {
            match next(RollbackFailed, RollingBack, action) {
                Some(to) => assert_eq!(to, (Running, RollingBack), "{action:?}"),
                None => assert!(!matches!(action, Action::Resume | Action::Rollback)),
            }
        }
        assert_eq!(next(RollbackFailed, Forward, Action::Resume), None);
    }

    #[test]
    fn final_states_are_left_only_by_people() {
        for state in RunState::ALL.into_iter().filter(|s| s.is_final()) {
            for phase in [Forward, RollingBack] {
                for action in ACTIONS {
                    if next(state, phase, action).is_some() {
                        assert!(
                            matches!(action, Action::Resume | Action::Rollback),
                            "{state:?}/{phase:?} left by {action:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_precondition_is_every_state_the_table_allows() {
        let change = transition("r", Waiting, Forward, Action::Cancel).unwrap();
        assert_eq!(change.to, (Running, Forward));
        let mut from = change.from.clone();
        from.sort_by_key(|(s, _)| s.as_str());
        assert_eq!(
            from,
            vec![(Queued, Forward), (Running, Forward), (Waiting, Forward)]
        );
        assert_eq!(change.require, vec![Require::NoCancelRequested]);
        assert!(transition("r", Succeeded, Forward, Action::Approve).is_none());
        let rb = transition("r", Succeeded, Forward, Action::Rollback).unwrap();
        assert!(rb.from.contains(&(Failed, Forward)) && rb.from.contains(&(RollbackFailed, RollingBack)));
        assert!(rb.require.contains(&Require::DowntimeStarted));
    }

    #[test]
    fn read_only_runs_never_reach_the_gate_or_a_rollback() {
        for action in [Action::Gate, Action::BeginRollback, Action::Rollback] {
            for state in RunState::ALL {
                for phase in [Forward, RollingBack] {
                    if let Some(change) = transition("r", state, phase, action) {
                        assert!(change.require.contains(&Require::NotReadOnly), "{action:?}");
                    }
                }
            }
        }
    }
}
