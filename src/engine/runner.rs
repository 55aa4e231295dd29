//! Drives one run through its steps: records each transition before acting, stops at the
//! approval gate, rolls back a failure during the downtime, and leaves an interrupted run
//! resumable (its running step is run again on the next start; steps are idempotent).

use std::time::{Duration, Instant};

use anyhow::Context as _;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::log::RunLog;
use super::steps::{self, StepCtx, StepError};
use super::{Inner, RunContext};
use crate::db::{EventKind, RunRecord};
use crate::model::{RunKind, RunState, StepName, StepState};

/// Lease duration; renewed at a third of it.
const LEASE_TTL: Duration = Duration::from_secs(30);

pub(super) async fn drive(inner: &Inner, id: &str, cancel: CancellationToken) {
    if let Err(e) = drive_leased(inner, id, cancel).await {
        tracing::error!(run = id, "run failed internally: {e:#}");
        let log = RunLog::new(id, inner.db.clone(), inner.bus.clone());
        let _ = log.line(None, "error", &format!("internal error: {e:#}")).await;
        if !inner.shutdown.is_cancelled() {
            let _ = set_state(
                inner,
                &log,
                id,
                RunState::Failed,
                Some(&format!("internal error: {e:#}")),
            )
            .await;
        }
    }
}

fn lease_name(run: &RunRecord) -> String {
    let digest = hex::encode(Sha256::digest(run.controller.to_string()));
    format!("linstor-migrator-{}", &digest[..16])
}

/// Holds the controller's Lease (when configured) while the run is driven.
async fn drive_leased(inner: &Inner, id: &str, cancel: CancellationToken) -> anyhow::Result<()> {
    let run = inner.db.run(id).await?.context("run vanished")?;
    let Some(ns) = inner.settings.lease_namespace.clone() else {
        return drive_run(inner, id, cancel).await;
    };
    let name = lease_name(&run);
    let holder = inner.settings.instance_id.clone();
    if !inner
        .cluster
        .acquire_lease(&ns, &name, &holder, LEASE_TTL)
        .await?
    {
        let log = RunLog::new(id, inner.db.clone(), inner.bus.clone());
        log.line(
            None,
            "warn",
            &format!("Lease {ns}/{name} is held by another replica; it drives this run"),
        )
        .await?;
        return Ok(());
    }
    let renew = {
        let cluster = inner.cluster.clone();
        let (ns, name, holder) = (ns.clone(), name.clone(), holder.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(LEASE_TTL / 3).await;
                if let Err(e) = cluster.acquire_lease(&ns, &name, &holder, LEASE_TTL).await {
                    tracing::warn!("failed to renew Lease {ns}/{name}: {e}");
                }
            }
        })
    };
    let result = drive_run(inner, id, cancel).await;
    renew.abort();
    if let Err(e) = inner.cluster.release_lease(&ns, &name, &holder).await {
        tracing::warn!("failed to release Lease {ns}/{name}: {e}");
    }
    result
}

async fn set_state(
    inner: &Inner,
    log: &RunLog,
    id: &str,
    state: RunState,
    error: Option<&str>,
) -> anyhow::Result<()> {
    inner.db.set_run_state(id, state, error).await?;
    let msg = match error {
        Some(e) => format!("run {state}: {e}"),
        None => format!("run {state}"),
    };
    log.event(EventKind::Run, None, state.as_str(), &msg, None)
        .await?;
    Ok(())
}

async fn set_step(
    inner: &Inner,
    log: &RunLog,
    id: &str,
    step: StepName,
    state: StepState,
    message: Option<&str>,
) -> anyhow::Result<()> {
    inner.db.set_step_state(id, step, state, message).await?;
    let text = match message {
        Some(m) => format!("{}: {state}: {m}", step.title()),
        None => format!("{}: {state}", step.title()),
    };
    log.event(EventKind::Step, Some(step), state.as_str(), &text, None)
        .await?;
    Ok(())
}

async fn drive_run(inner: &Inner, id: &str, cancel: CancellationToken) -> anyhow::Result<()> {
    let log = RunLog::new(id, inner.db.clone(), inner.bus.clone());
    // `stop` ends a step's waits: a user cancel or a shutdown
    let stop = CancellationToken::new();
    let _stop_on = {
        let (stop, cancel, shutdown) = (stop.clone(), cancel.clone(), inner.shutdown.clone());
        let task = tokio::spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = shutdown.cancelled() => {}
            }
            stop.cancel();
        });
        AbortOnDrop(task)
    };

    loop {
        let run = inner.db.run(id).await?.context("run vanished")?;
        if run.rolling_back {
            return rollback(inner, &log, run).await;
        }
        if run.state.is_final() {
            return Ok(());
        }
        if run.cancel_requested {
            return cancelled(inner, &log, run).await;
        }
        if run.state == RunState::Waiting || inner.shutdown.is_cancelled() {
            return Ok(());
        }
        if run.state == RunState::Queued {
            set_state(inner, &log, id, RunState::Running, None).await?;
        }
        let all = inner.db.steps(id).await?;
        let Some(next) = all
            .iter()
            .find(|s| !matches!(s.state, StepState::Succeeded | StepState::Skipped))
        else {
            set_state(inner, &log, id, RunState::Succeeded, None).await?;
            return Ok(());
        };
        let step = next.name;
        let context = RunContext::from_value(&run.context);
        if run.kind == RunKind::Migrate
            && run.options.approve_before_downtime
            && step == StepName::StopController
            && context.approved_by.is_none()
        {
            log.line(None, "info", "waiting for approval before the downtime begins")
                .await?;
            set_state(inner, &log, id, RunState::Waiting, None).await?;
            return Ok(());
        }

        set_step(inner, &log, id, step, StepState::Running, None).await?;
        let started = Instant::now();
        let mut sc = StepCtx {
            inner,
            run: run.clone(),
            log: log.clone(),
            step,
            ctx: context,
            stop: stop.clone(),
            rolling_back: false,
        };
        let result = tokio::select! {
            r = steps::execute(&mut sc) => r,
            _ = stop.cancelled() => Err(StepError::Failed("interrupted".into())),
        };
        inner.db.set_context(id, &sc.ctx.to_value()).await?;
        let seconds = started.elapsed().as_secs_f64();
        match result {
            Ok(message) => {
                inner
                    .metrics
                    .observe_step(run.kind.as_str(), step.as_str(), "succeeded", seconds);
                set_step(inner, &log, id, step, StepState::Succeeded, Some(&message)).await?;
                if inner.settings.stop_after_step == Some(step) {
                    return Ok(());
                }
            }
            Err(_) if inner.shutdown.is_cancelled() => {
                log.line(
                    Some(step),
                    "warn",
                    "interrupted by shutdown; the run resumes at this step on the next start",
                )
                .await?;
                return Ok(());
            }
            Err(e) => {
                let cancelled = cancel.is_cancelled();
                let message = if cancelled {
                    "cancelled".to_string()
                } else {
                    e.to_string()
                };
                inner
                    .metrics
                    .observe_step(run.kind.as_str(), step.as_str(), "failed", seconds);
                log.line(Some(step), "error", &message).await?;
                set_step(inner, &log, id, step, StepState::Failed, Some(&message)).await?;
                if cancelled {
                    continue; // handled at the top: cancel_requested is set
                }
                let cause = format!("{} failed: {message}", step.title());
                if step.in_downtime() && run.kind != RunKind::Preflight {
                    if run.options.auto_rollback {
                        let mut ctx =
                            RunContext::from_value(&inner.db.run(id).await?.context("run vanished")?.context);
                        ctx.rollback_cause = Some(cause);
                        inner.db.set_context(id, &ctx.to_value()).await?;
                        inner.db.set_rolling_back(id, true).await?;
                        continue;
                    }
                    let error = format!(
                        "{cause}; automatic rollback is disabled: the controller is still stopped. Resume the run or roll it back"
                    );
                    set_state(inner, &log, id, RunState::Failed, Some(&error)).await?;
                } else if step < StepName::StopController {
                    // nothing of the controller changed; remove what the run made
                    let fresh = inner.db.run(id).await?.context("run vanished")?;
                    remove_own_objects(inner, &log, &fresh).await;
                    set_state(inner, &log, id, RunState::Failed, Some(&cause)).await?;
                } else {
                    let error = format!(
                        "{cause}; the controller runs on the new backend, a manual rollback is offered"
                    );
                    set_state(inner, &log, id, RunState::Failed, Some(&error)).await?;
                }
                return Ok(());
            }
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn remove_own_objects(inner: &Inner, log: &RunLog, run: &RunRecord) {
    let ctx = RunContext::from_value(&run.context);
    let result = steps::remove_migration_objects(
        inner.cluster.as_ref(),
        &run.controller.namespace,
        ctx.migration_pod.as_deref(),
        ctx.target_config_map.as_deref(),
    )
    .await;
    let _ = match result {
        Ok(()) if ctx.migration_pod.is_some() => {
            log.line(None, "info", "deleted the migration pod and its ConfigMap")
                .await
        }
        Ok(()) => Ok(()),
        Err(e) => {
            log.line(None, "warn", &format!("could not delete the migration pod: {e}"))
                .await
        }
    };
}

/// A cancel before the downtime removes the run's objects; during or after it, it rolls back.
async fn cancelled(inner: &Inner, log: &RunLog, run: RunRecord) -> anyhow::Result<()> {
    if run.downtime_started_at.is_some() && run.kind != RunKind::Preflight {
        let mut ctx = RunContext::from_value(&run.context);
        ctx.rollback_cause.get_or_insert_with(|| "cancelled".into());
        inner.db.set_context(&run.id, &ctx.to_value()).await?;
        inner.db.set_rolling_back(&run.id, true).await?;
        let run = inner.db.run(&run.id).await?.context("run vanished")?;
        return rollback(inner, log, run).await;
    }
    remove_own_objects(inner, log, &run).await;
    mark_rest(inner, log, &run.id, false).await?;
    set_state(
        inner,
        log,
        &run.id,
        RunState::Cancelled,
        Some("cancelled before the downtime; nothing was changed"),
    )
    .await
}

/// Marks the steps after a rollback: done steps of the downtime become `rolled_back`, pending
/// ones `skipped`, an interrupted one `failed`.
async fn mark_rest(inner: &Inner, log: &RunLog, id: &str, rolled_back: bool) -> anyhow::Result<()> {
    for s in inner.db.steps(id).await? {
        let new = match s.state {
            StepState::Pending => StepState::Skipped,
            StepState::Running => StepState::Failed,
            StepState::Succeeded
                if rolled_back && (s.name.in_downtime() || s.name == StepName::PreparePod) =>
            {
                StepState::RolledBack
            }
            _ => continue,
        };
        set_step(inner, log, id, s.name, new, s.message.as_deref()).await?;
    }
    Ok(())
}

/// Puts the controller back as it was before the run; resumable (the phase is stored).
async fn rollback(inner: &Inner, log: &RunLog, run: RunRecord) -> anyhow::Result<()> {
    let mut ctx = RunContext::from_value(&run.context);
    let cause = ctx
        .rollback_cause
        .clone()
        .unwrap_or_else(|| "rollback requested".into());
    log.line(None, "warn", &format!("rolling back: {cause}")).await?;
    // a rollback is not interrupted by a cancel, only by a shutdown (and then resumed)
    let stop = inner.shutdown.child_token();
    let mut sc = StepCtx {
        inner,
        run: run.clone(),
        log: log.clone(),
        step: StepName::StartController,
        ctx: ctx.clone(),
        stop: stop.clone(),
        rolling_back: true,
    };
    let result: Result<(), StepError> = async {
        if run.downtime_started_at.is_some() {
            steps::rollback_controller(&mut sc).await?;
            sc.info("the controller runs on its original database again")
                .await?;
        }
        Ok(())
    }
    .await;
    if inner.shutdown.is_cancelled() {
        log.line(
            None,
            "warn",
            "rollback interrupted by shutdown; it resumes on the next start",
        )
        .await?;
        return Ok(());
    }
    ctx = sc.ctx;
    let run = inner.db.run(&run.id).await?.context("run vanished")?;
    if let Err(e) = result {
        let error = format!("rollback failed: {e} (rolled back because: {cause}); retry the rollback");
        log.line(None, "error", &error).await?;
        inner.db.set_context(&run.id, &ctx.to_value()).await?;
        inner.db.set_rolling_back(&run.id, false).await?;
        set_state(inner, log, &run.id, RunState::Failed, Some(&error)).await?;
        return Ok(());
    }
    remove_own_objects(inner, log, &run).await;
    if ctx.import_started {
        match inner.cluster.k8s_backend_inventory().await {
            Ok(inv) => {
                if inv.total_objects() > 0 {
                    log.line(
                        None,
                        "warn",
                        &format!(
                            "the k8s backend holds {} objects from the import; the controller does not use them and \
                             the next import replaces them",
                            inv.total_objects()
                        ),
                    )
                    .await?;
                }
                ctx.k8s_backend_after_rollback = Some(inv);
            }
            Err(e) => {
                log.line(None, "warn", &format!("cannot list the k8s backend: {e}"))
                    .await?
            }
        }
    }
    inner.db.set_context(&run.id, &ctx.to_value()).await?;
    mark_rest(inner, log, &run.id, true).await?;
    inner.db.set_rolling_back(&run.id, false).await?;
    let state = if run.cancel_requested {
        RunState::Cancelled
    } else {
        RunState::RolledBack
    };
    set_state(
        inner,
        log,
        &run.id,
        state,
        Some(&format!("{cause}; rolled back, the etcd data was never changed")),
    )
    .await
}
