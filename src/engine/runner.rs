//! Drives one run: takes the controller's Lease, then either runs the steps forward or
//! continues its rollback. Every state change goes through the lifecycle table and is stored
//! before it is acted on; a step's start and end are stored around it. A run interrupted at any
//! await (a crash, a kill, a shutdown, a lost Lease) is left as stored and resumed later: its
//! running step runs again (steps are idempotent), after the invariants of the downtime were
//! checked again.

use std::time::Instant;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use super::backend::ownership;
use super::gate;
use super::invariants;
use super::lifecycle::{Action, transition};
use super::log::RunLog;
use super::rollback;
use super::steps::{self, StepCtx, StepError};
use super::{Inner, RunContext};
use crate::db::{BackendUse, DbError, ErrorChange, EventKind, NewEvent, RunChange, RunRecord, StepRecord};
use crate::model::{Phase, RunState, StepName, StepState};

/// Why a pass ended without finishing the run.
fn interrupted(inner: &Inner, stop: &CancellationToken, cancel: &CancellationToken) -> bool {
    stop.is_cancelled() && !cancel.is_cancelled() || inner.shutdown.is_cancelled()
}

/// How a pass ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pass {
    /// Whatever could be done now is done (or a shutdown or a cancel ended it).
    Over,
    /// The Lease was lost: the run is left as stored, for a next pass once it is ours again.
    LeaseLost,
}

/// One pass over a run: everything this task can do for it now.
pub(super) async fn drive(inner: &Inner, id: &str, cancel: CancellationToken) -> Pass {
    let log = RunLog::new(id, inner.db.clone(), inner.bus.clone());
    let run = match inner.db.run(id).await {
        Ok(Some(run)) => run,
        Ok(None) => return Pass::Over,
        Err(e) => {
            tracing::error!(run = id, "cannot read the run: {e}");
            return Pass::Over;
        }
    };
    let needs_task = run.state == RunState::Queued
        || run.state == RunState::Running
        || (run.state == RunState::Waiting && run.cancel_requested);
    if !needs_task {
        return Pass::Over;
    }
    let Some((lease, lost)) = inner
        .leases
        .hold(inner, &run.controller, &log, &inner.shutdown)
        .await
    else {
        return Pass::Over;
    };
    // `stop` ends a step's waits: a user's cancel, a shutdown, a lost Lease
    let stop = CancellationToken::new();
    let _stop_on = {
        let (stop, cancel, shutdown, lost) =
            (stop.clone(), cancel.clone(), inner.shutdown.clone(), lost.clone());
        AbortOnDrop(tokio::spawn(async move {
            tokio::select! {
                () = cancel.cancelled() => {}
                () = shutdown.cancelled() => {}
                () = lost.cancelled() => {}
            }
            stop.cancel();
        }))
    };
    let result = forward(inner, &log, id, &stop, &cancel, &lost).await;
    if let Err(e) = result
        && !interrupted(inner, &stop, &cancel)
    {
        internal_error(inner, &log, id, &format!("{e:#}"), &lost).await;
    }
    // kept while the run holds the controller (waiting, failed inside the downtime,
    // rollback_failed, interrupted); given up once nothing needs it
    lease.done(inner).await;
    if lost.is_cancelled() && !inner.shutdown.is_cancelled() {
        log.say(
            None,
            "warn",
            "this process lost the controller's Lease (its renewals failed or hung): the run stopped at its \
             current step and goes on when the Lease is this process's again",
        )
        .await;
        return Pass::LeaseLost;
    }
    Pass::Over
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The token a rollback stops on: only a shutdown or a lost Lease, never a cancel.
/// Pauses between attempts to record the start of a rollback.
const RECORD_RETRY_FIRST: std::time::Duration = std::time::Duration::from_millis(500);
const RECORD_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(10);

fn rollback_stop(inner: &Inner, lost: &CancellationToken) -> CancellationToken {
    let stop = inner.shutdown.child_token();
    let (s, l) = (stop.clone(), lost.clone());
    tokio::spawn(async move {
        tokio::select! {
            () = l.cancelled() => s.cancel(),
            () = s.cancelled() => {}
        }
    });
    stop
}

async fn forward(
    inner: &Inner,
    log: &RunLog,
    id: &str,
    stop: &CancellationToken,
    cancel: &CancellationToken,
    lost: &CancellationToken,
) -> anyhow::Result<()> {
    let mut first_pass = true;
    loop {
        let run = inner.db.run(id).await?.context("run vanished")?;
        if run.phase == Phase::RollingBack {
            if run.state == RunState::Running {
                return rollback::run(inner, log, run, &rollback_stop(inner, lost)).await;
            }
            return Ok(());
        }
        if run.state.is_final() || (run.state == RunState::Waiting && !run.cancel_requested) {
            return Ok(());
        }
        if inner.shutdown.is_cancelled() || lost.is_cancelled() {
            return Ok(());
        }
        if run.cancel_requested {
            return cancelled(inner, log, run, lost).await;
        }
        if run.state == RunState::Queued {
            // the event tells a page rendered while queued that the run now runs
            let start = transition(id, run.state, run.phase, Action::Start)
                .map(|c| with_run_event(c, RunState::Running, "the run started".to_string()));
            commit_or_reread(log, start).await?;
            continue;
        }
        let ctx = match RunContext::parse(&run.context) {
            Ok(ctx) => ctx,
            Err(e) => return broken_context(inner, log, run, e, lost).await,
        };
        let all = inner.db.steps(id).await?;
        if first_pass {
            first_pass = false;
            if let Some(why) = invariants::check(inner, &run, &all).await {
                let cause = format!("after the run was interrupted, {why}");
                return begin_rollback(inner, log, run, None, cause, None, lost).await;
            }
        }
        let Some(step) = all
            .iter()
            .find(|s| !matches!(s.state, StepState::Succeeded | StepState::Skipped))
            .map(|s| s.name)
        else {
            let change = transition(id, run.state, run.phase, Action::Succeed)
                .map(|c| with_run_event(c, RunState::Succeeded, "run succeeded".into()));
            commit_or_reread(log, change).await?;
            // the migrated controller runs on what the run wrote
            ownership::end_writing(&inner.db, inner.cluster.as_ref(), id, BackendUse::InUse).await;
            continue;
        };
        // the gate comes before the downtime, and before step 4 when that must delete what an
        // earlier run left in the k8s backend: nothing is deleted before the approval
        let gate = if ctx.backend_to_replace.is_some() {
            StepName::PrepareTarget
        } else {
            StepName::StopController
        };
        if step == gate
            && !run.kind.is_read_only()
            && run.options.approve_before_downtime
            && run.approved_by.is_none()
        {
            let change = transition(id, run.state, run.phase, Action::Gate).map(|c| {
                with_run_event(
                    c,
                    RunState::Waiting,
                    "waiting for approval before the downtime begins".into(),
                )
            });
            commit_or_reread(log, change).await?;
            return Ok(());
        }
        // leaving the gate: the controller must still be what preflight saw
        if step == StepName::StopController
            && run.approved_by.is_some()
            && all
                .iter()
                .any(|s| s.name == step && s.state == StepState::Pending)
            && let Some(changed) = gate::changed_since_preflight(inner, &run).await
        {
            return refused_at_gate(inner, log, run, changed).await;
        }

        log.step(step, StepState::Running, None).await?;
        let started = Instant::now();
        let mut sc = StepCtx {
            inner,
            run: run.clone(),
            log: log.clone(),
            step,
            ctx,
            stop: stop.clone(),
        };
        let result = tokio::select! {
            r = steps::execute(&mut sc) => r,
            () = stop.cancelled() => Err(StepError::Failed("interrupted".into())),
        };
        let seconds = started.elapsed().as_secs_f64();
        let context = sc.ctx.to_value();
        match result {
            Ok(message) => {
                inner
                    .metrics
                    .observe_step(run.kind.as_str(), step.as_str(), "succeeded", seconds);
                inner.db.set_context(id, &context).await?;
                log.step(step, StepState::Succeeded, Some(&message)).await?;
                if inner.settings.stop_after_step == Some(step) {
                    return Ok(());
                }
            }
            Err(_) if inner.shutdown.is_cancelled() || lost.is_cancelled() => {
                inner.db.set_context(id, &context).await?;
                log.say(
                    Some(step),
                    "warn",
                    "interrupted (shutdown or lost Lease); the run resumes at this step",
                )
                .await;
                return Ok(());
            }
            Err(e) => {
                inner
                    .metrics
                    .observe_step(run.kind.as_str(), step.as_str(), "failed", seconds);
                if cancel.is_cancelled() {
                    inner.db.set_context(id, &context).await?;
                    log.step(step, StepState::Failed, Some("cancelled")).await?;
                    continue; // the cancel is stored: the top of the loop handles it
                }
                let message = e.to_string();
                log.say(Some(step), "error", &message).await;
                return step_failed(inner, log, run, step, message, context, lost).await;
            }
        }
    }
}

/// The controller changed while the run waited at the gate: the run fails before stopping it.
async fn refused_at_gate(inner: &Inner, log: &RunLog, run: RunRecord, changed: String) -> anyhow::Result<()> {
    let message = format!("while the run waited for approval the controller changed: {changed}");
    log.say(Some(StepName::StopController), "error", &message).await;
    let context = run.context.clone();
    remove_own_objects(inner, log, &run, &context).await;
    let error = format!(
        "{message}. The controller was not stopped and nothing of it was changed: look at it, then resume the run \
         (it starts over with preflight) or start a new one"
    );
    let step = (StepName::StopController, StepState::Failed, Some(message));
    fail(log, &run, Some(step), error, None).await
}

/// A step failed (not by a cancel or a shutdown): roll back, or fail, as the step's place asks.
async fn step_failed(
    inner: &Inner,
    log: &RunLog,
    run: RunRecord,
    step: StepName,
    message: String,
    context: serde_json::Value,
    lost: &CancellationToken,
) -> anyhow::Result<()> {
    let cause = format!("{} failed: {message}", step.title());
    let failed_step = (step, StepState::Failed, Some(message.clone()));
    // what the run leaves in the k8s backend, if it wrote there (a rollback records it at its end)
    if !(step.in_downtime() && run.options.auto_rollback) {
        let state = if step > StepName::StartController {
            BackendUse::InUse
        } else {
            BackendUse::Left
        };
        ownership::end_writing(&inner.db, inner.cluster.as_ref(), &run.id, state).await;
    }
    if step.in_downtime() && !run.kind.is_read_only() {
        if run.options.auto_rollback {
            return begin_rollback(inner, log, run, Some(failed_step), cause, Some(context), lost).await;
        }
        let error = format!(
            "{cause}; automatic rollback is disabled. {}",
            invariants::stopped_controller_state(inner, &run).await
        );
        return fail(log, &run, Some(failed_step), error, Some(context)).await;
    }
    if step < StepName::StopController {
        // nothing of the controller changed; remove what the run made
        remove_own_objects(inner, log, &run, &context).await;
        return fail(log, &run, Some(failed_step), cause, Some(context)).await;
    }
    let error = format!(
        "{cause}. The controller runs on the new backend; resume to retry this step, or roll back (changes made in \
         LINSTOR since the start are lost)"
    );
    fail(log, &run, Some(failed_step), error, Some(context)).await
}

fn with_run_event(mut change: RunChange, state: RunState, message: String) -> RunChange {
    change.events.push(NewEvent {
        kind: EventKind::Run,
        step: None,
        level: state.as_str().to_string(),
        message,
    });
    change
}

/// Commits a transition; a lost race (conflict) is fine: the caller reads the run again.
async fn commit_or_reread(log: &RunLog, change: Option<RunChange>) -> anyhow::Result<()> {
    let Some(change) = change else { return Ok(()) };
    match log.commit(&change).await {
        Ok(()) | Err(DbError::Conflict(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

async fn fail(
    log: &RunLog,
    run: &RunRecord,
    step: Option<(StepName, StepState, Option<String>)>,
    error: String,
    context: Option<serde_json::Value>,
) -> anyhow::Result<()> {
    let Some(mut change) = transition(&run.id, run.state, run.phase, Action::Fail) else {
        return Ok(());
    };
    change.steps.extend(step);
    change.context = context;
    change.error = ErrorChange::Set(error.clone());
    let change = with_run_event(change, RunState::Failed, format!("run failed: {error}"));
    commit_or_reread(log, Some(change)).await
}

/// Enters the rollback (one transaction: the failed step, the cause, the context, the phase)
/// and runs it. Nothing of the rollback acts on the cluster before its start is recorded: while
/// the database refuses the change, it is retried (the controller stays stopped meanwhile); a
/// shutdown or a lost Lease ends the wait without acting, and the next start finds the run where
/// it was and takes it up again (a rollback run from memory would be resumed forward after a
/// crash, over a half-restored controller).
async fn begin_rollback(
    inner: &Inner,
    log: &RunLog,
    run: RunRecord,
    step: Option<(StepName, StepState, Option<String>)>,
    cause: String,
    context: Option<serde_json::Value>,
    lost: &CancellationToken,
) -> anyhow::Result<()> {
    let Some(mut change) = transition(&run.id, run.state, run.phase, Action::BeginRollback) else {
        return Ok(());
    };
    change.steps.extend(step);
    change.context = context;
    change.rollback_cause = Some(cause.clone());
    let change = with_run_event(change, RunState::Running, format!("rolling back: {cause}"));
    let mut pause = RECORD_RETRY_FIRST;
    loop {
        match log.commit(&change).await {
            Ok(()) => break,
            Err(DbError::Conflict(_)) => return Ok(()),
            Err(e) => {
                tracing::error!(
                    run = %run.id,
                    "cannot record the start of the rollback ({e}); nothing is done before it is recorded, retrying in \
                     {} s (the controller stays stopped meanwhile)",
                    pause.as_secs()
                );
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = inner.shutdown.cancelled() => return Ok(()),
                    () = lost.cancelled() => return Ok(()),
                }
                pause = (pause * 2).min(RECORD_RETRY_MAX);
            }
        }
    }
    let run = inner.db.run(&run.id).await?.context("run vanished")?;
    rollback::run(inner, log, run, &rollback_stop(inner, lost)).await
}

/// A cancel: before the downtime the run's objects go and the run ends `cancelled`; during or
/// after it, the run rolls back like a failure.
async fn cancelled(
    inner: &Inner,
    log: &RunLog,
    run: RunRecord,
    lost: &CancellationToken,
) -> anyhow::Result<()> {
    let who = inner
        .db
        .audit(&run.id)
        .await?
        .into_iter()
        .rev()
        .find(|a| a.action == "cancel")
        .map(|a| a.actor)
        .unwrap_or_else(|| "someone".into());
    if run.downtime_started_at.is_some() && !run.kind.is_read_only() {
        return begin_rollback(inner, log, run, None, format!("cancelled by {who}"), None, lost).await;
    }
    let context = run.context.clone();
    remove_own_objects(inner, log, &run, &context).await;
    ownership::end_writing(&inner.db, inner.cluster.as_ref(), &run.id, BackendUse::Left).await;
    let Some(mut change) = transition(&run.id, run.state, run.phase, Action::Cancelled) else {
        return Ok(());
    };
    change.steps = rest_of_steps(&inner.db.steps(&run.id).await?, false);
    change.error = ErrorChange::Set(format!(
        "cancelled by {who} before the downtime; nothing of the controller was changed"
    ));
    let change = with_run_event(change, RunState::Cancelled, format!("run cancelled by {who}"));
    commit_or_reread(log, Some(change)).await
}

/// The steps after a run ended early: pending ones are skipped, an interrupted one failed, and
/// (after a rollback) done steps of the downtime and the pod rolled back.
pub(super) fn rest_of_steps(
    steps: &[StepRecord],
    rolled_back: bool,
) -> Vec<(StepName, StepState, Option<String>)> {
    steps
        .iter()
        .filter_map(|s| {
            let new = match s.state {
                StepState::Pending => StepState::Skipped,
                StepState::Running => StepState::Failed,
                StepState::Succeeded
                    if rolled_back && (s.name.in_downtime() || s.name == StepName::PreparePod) =>
                {
                    StepState::RolledBack
                }
                _ => return None,
            };
            Some((s.name, new, s.message.clone()))
        })
        .collect()
}

/// Deletes the migration pod and target ConfigMap of a run (names derived from the run, so this
/// works even when the context is lost), and its pre-copy export.
pub(super) async fn remove_own_objects(
    inner: &Inner,
    log: &RunLog,
    run: &RunRecord,
    context: &serde_json::Value,
) {
    steps::remove_precopy(&inner.settings.data_dir, &run.id).await;
    let ctx = RunContext::parse(context).unwrap_or_default();
    let controller = ctx
        .controller
        .clone()
        .or_else(|| run.originals.as_ref().map(|o| o.target.clone()));
    let Some(info) = controller else { return };
    let names = crate::cluster::pod::MigrationObjects::for_run(&info.name, &run.id);
    let result = steps::remove_migration_objects(
        inner.cluster.as_ref(),
        &info.namespace,
        Some(&names.pod),
        Some(&names.target_config_map),
    )
    .await;
    match result {
        Ok(()) if ctx.migration_pod.is_some() => {
            log.say(None, "info", "deleted the migration pod and its ConfigMap")
                .await
        }
        Ok(()) => {}
        Err(e) => {
            log.say(None, "warn", &format!("could not delete the migration pod: {e}"))
                .await
        }
    }
}

/// The stored context does not parse: the run cannot go on. During the downtime it rolls back
/// (from the original columns, which do not depend on the context); otherwise it fails.
async fn broken_context(
    inner: &Inner,
    log: &RunLog,
    run: RunRecord,
    problem: String,
    lost: &CancellationToken,
) -> anyhow::Result<()> {
    log.say(None, "error", &problem).await;
    if run.downtime_started_at.is_some() && !run.kind.is_read_only() {
        return begin_rollback(inner, log, run, None, problem, None, lost).await;
    }
    let context = run.context.clone();
    remove_own_objects(inner, log, &run, &context).await;
    fail(log, &run, None, problem, None).await
}

/// The pass failed outside any step (the database, a corrupt row): the run cannot go on. During
/// the downtime the cluster is rolled back anyway; otherwise the run fails, if that can be stored.
async fn internal_error(inner: &Inner, log: &RunLog, id: &str, problem: &str, lost: &CancellationToken) {
    tracing::error!(run = id, "run failed internally: {problem}");
    log.say(None, "error", &format!("internal error: {problem}"))
        .await;
    let run = match inner.db.run(id).await {
        Ok(Some(run)) => run,
        _ => {
            tracing::error!(
                run = id,
                "cannot read the run to recover from the internal error; it is resumed at the next start"
            );
            return;
        }
    };
    let cause = format!("internal error: {problem}");
    let result = if run.phase == Phase::RollingBack {
        rollback::run(inner, log, run, &rollback_stop(inner, lost)).await
    } else if run.downtime_started_at.is_some() && !run.kind.is_read_only() && !run.state.is_final() {
        begin_rollback(inner, log, run, None, cause, None, lost).await
    } else if run.state == RunState::Running {
        fail(log, &run, None, cause, None).await
    } else {
        Ok(())
    };
    if let Err(e) = result {
        tracing::error!(
            run = id,
            "could not record the failure: {e:#}; the run is resumed at the next start"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(name: StepName, state: StepState) -> StepRecord {
        StepRecord {
            idx: 0,
            name,
            state,
            started_at: None,
            finished_at: None,
            message: None,
        }
    }

    #[test]
    fn after_a_rollback_done_downtime_steps_are_rolled_back_and_the_rest_skipped() {
        let steps = [
            step(StepName::Preflight, StepState::Succeeded),
            step(StepName::PreparePod, StepState::Succeeded),
            step(StepName::StopController, StepState::Succeeded),
            step(StepName::Export, StepState::Running),
            step(StepName::Import, StepState::Pending),
        ];
        let rest = rest_of_steps(&steps, true);
        let states: Vec<_> = rest.iter().map(|(n, s, _)| (*n, *s)).collect();
        assert_eq!(
            states,
            vec![
                (StepName::PreparePod, StepState::RolledBack),
                (StepName::StopController, StepState::RolledBack),
                (StepName::Export, StepState::Failed),
                (StepName::Import, StepState::Skipped),
            ]
        );
        assert_eq!(rest_of_steps(&steps, false).len(), 2);
    }
}
