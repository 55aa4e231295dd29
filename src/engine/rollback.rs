//! The rollback: puts the controller back as it was before the run, from the original columns
//! (never from the JSON context). It is a one-way door: once begun it finishes, or, after each
//! action was retried with backoff within a bound, the run ends `rollback_failed` with what the
//! service saw of the controller and the commands that finish the job by hand; a resume continues
//! it. Every action looks before it acts, so a rollback interrupted anywhere (a crash, a restart)
//! is simply run again. It does not depend on the database: a log line that cannot be stored goes
//! to stderr and the restoring goes on; the outcome is stored when the database takes it again.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use tokio_util::sync::CancellationToken;

use super::backend::ownership;
use super::lifecycle::{Action, transition};
use super::log::RunLog;
use super::rollback_manual::{describe_controller, manual_commands};
use super::runner::rest_of_steps;
use super::steps::StepError;
use super::steps::control::{
    controller_pods, current_replicas, current_url, describe_replicas, request_url, set_replicas,
    wait_started, wait_url,
};
use super::steps::tool::stop_tool_in;
use super::{Inner, RollbackFailure, RunContext};
use crate::cluster::controller::ControllerInfo;
use crate::cluster::pod::MigrationObjects;
use crate::db::{BackendUse, DbError, ErrorChange, EventKind, NewEvent, Originals, RunRecord};
use crate::linstor::toml::redact_url;
use crate::model::RunState;

/// How rollback actions are retried.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per action, the first included.
    pub attempts: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Six attempts, 2 s to 30 s apart: about a minute and a half per action before giving up.
    fn default() -> Self {
        Self {
            attempts: 6,
            min_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(30),
        }
    }
}

/// Why an action did not get done.
enum Stopped {
    /// A shutdown or a lost Lease: the rollback is continued later, by whoever runs it next.
    Interrupted,
    /// The retries are used up.
    GaveUp(String),
}

struct Rollback<'a> {
    inner: &'a Inner,
    log: &'a RunLog,
    stop: &'a CancellationToken,
    run: &'a RunRecord,
    /// The rollback began after the run's downtime ended: the controller's stop and start here
    /// are the rollback's own downtime, not the run's.
    own_downtime: bool,
}

impl Rollback<'_> {
    async fn say(&self, level: &str, message: &str) {
        self.log.say(None, level, message).await;
    }

    /// Records that the controller stops (`true`) or runs again: the end of the run's downtime,
    /// or the rollback's own downtime when it began after the run's had ended. A record that
    /// fails is logged; the rollback goes on.
    async fn mark_downtime(&self, stopped: bool) {
        let db = &self.inner.db;
        let result = match (self.own_downtime, stopped) {
            (true, s) => db.mark_rollback_downtime(&self.run.id, s).await,
            (false, false) => db.mark_downtime(&self.run.id, false).await,
            // inside the run's downtime the controller is already down: nothing new begins
            (false, true) => Ok(()),
        };
        if let Err(e) = result {
            tracing::error!(run = %self.run.id, "cannot record the controller's downtime: {e}");
        }
    }

    /// Runs `action` until it succeeds, the retries are used up, or the rollback is interrupted.
    async fn attempt<T, F, Fut>(&self, what: &str, action: F) -> Result<T, Stopped>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StepError>>,
    {
        let policy = &self.inner.settings.rollback_retry;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let attempts = policy.attempts.max(1);
        let backoff = ExponentialBuilder::default()
            .with_min_delay(policy.min_delay)
            .with_max_delay(policy.max_delay)
            .with_max_times(attempts - 1);
        let retried =
            action
                .retry(backoff)
                .sleep(tokio::time::sleep)
                .notify(|e: &StepError, wait: Duration| {
                    let _ = tx.send(format!(
                        "{what} failed: {e}; retrying in {:.1} s",
                        wait.as_secs_f64()
                    ));
                });
        let mut retried = std::pin::pin!(retried);
        // the retry messages are logged while the retries go on
        let result = loop {
            tokio::select! {
                r = &mut retried => break Ok(r),
                Some(m) = rx.recv() => self.say("warn", &m).await,
                () = self.stop.cancelled() => break Err(Stopped::Interrupted),
            }
        };
        while let Ok(m) = rx.try_recv() {
            self.say("warn", &m).await;
        }
        match result? {
            Ok(v) => Ok(v),
            Err(e) => Err(Stopped::GaveUp(format!("{what} failed {attempts} times: {e}"))),
        }
    }
}

/// Runs (or continues) the rollback of `run`, which is in phase `rolling_back`.
pub(super) async fn run(
    inner: &Inner,
    log: &RunLog,
    run: RunRecord,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    let cause = run
        .rollback_cause
        .clone()
        .unwrap_or_else(|| "a rollback was requested".into());
    // a phase of its own when the run's downtime was over before it began (a manual rollback
    // after success); recorded once, so a resumed rollback sees it the same way
    let run = match inner.db.mark_rollback_started(&run.id).await {
        Ok(at) => RunRecord {
            rollback_started_at: Some(at),
            ..run
        },
        Err(e) => {
            tracing::error!(run = %run.id, "cannot record the start of the rollback: {e}");
            run
        }
    };
    let rb = Rollback {
        inner,
        log,
        stop,
        run: &run,
        own_downtime: run.rollback_after_downtime(),
    };
    rb.say(
        "warn",
        "restoring what the run changed: the database URL, etcd's replicas, the controller's replicas",
    )
    .await;
    let Some(o) = run.originals.clone() else {
        // preflight records the originals before anything changes: nothing to restore
        return finish(&rb, &cause, None).await;
    };
    match restore(&rb, &o).await {
        Ok(()) => {}
        Err(Stopped::Interrupted) => {
            rb.say(
                "warn",
                "rollback interrupted (shutdown or lost Lease); it continues on the next start",
            )
            .await;
            return Ok(());
        }
        Err(Stopped::GaveUp(problem)) => return give_up(&rb, &o, &cause, problem).await,
    }
    let url = o.connection_url.clone();
    finish(&rb, &cause, url).await
}

/// The rollback's actions, in order; each looks before it acts.
async fn restore(rb: &Rollback<'_>, o: &Originals) -> Result<(), Stopped> {
    let info = &o.target;
    let cluster = rb.inner.cluster.as_ref();
    let timeout = Duration::from_secs(rb.run.options.controller_timeout_seconds);
    let names = MigrationObjects::for_run(&info.name, &rb.run.id);

    // a linstor-database left running by the interrupted step goes first
    if matches!(cluster.get_pod(&info.namespace, &names.pod).await, Ok(Some(_))) {
        let (_, said) = stop_tool_in(
            cluster,
            &info.namespace,
            &names.pod,
            &rb.inner.settings.pod_paths.backup_dir,
        )
        .await;
        for (level, line) in said {
            rb.say(level, &line).await;
        }
    }

    if let Some(url) = &o.connection_url {
        let stopped_first = rb
            .attempt("restoring the database URL", || {
                restore_url(rb, info, o, url, timeout)
            })
            .await?;
        if stopped_first {
            rb.say(
                "info",
                "the controller was stopped before its database URL was restored",
            )
            .await;
        }
        rb.say(
            "info",
            &format!(
                "the controller's ConfigMap says connection_url = {:?} again",
                redact_url(url)
            ),
        )
        .await;
    }

    if let (Some(sts), Some(replicas)) = (&o.etcd_stateful_set, o.etcd_replicas) {
        let scaled = rb
            .attempt("restoring etcd", || {
                restore_etcd(rb, &info.namespace, sts, replicas, timeout)
            })
            .await?;
        if scaled {
            rb.say(
                "info",
                &format!(
                    "StatefulSet {}/{sts} is back at {replicas} ready replica(s)",
                    info.namespace
                ),
            )
            .await;
        }
    }

    let replicas = o.replicas;
    rb.attempt("starting the controller", || async move {
        set_replicas(cluster, info, replicas).await?;
        if replicas > 0 {
            wait_started(cluster, info, replicas, timeout).await?;
        }
        Ok(())
    })
    .await?;
    rb.say(
        "info",
        &format!(
            "{}; the controller runs on its original database again",
            describe_replicas(info, replicas)
        ),
    )
    .await;
    rb.mark_downtime(false).await;

    rb.attempt("deleting the migration pod", || async {
        super::steps::remove_migration_objects(
            cluster,
            &info.namespace,
            Some(&names.pod),
            Some(&names.target_config_map),
        )
        .await
        .map_err(StepError::from)
    })
    .await?;
    Ok(())
}

/// Points the controller at `url` again; a controller running on another URL is stopped first,
/// so it never runs on a half-switched configuration. True when it had to be stopped.
async fn restore_url(
    rb: &Rollback<'_>,
    info: &ControllerInfo,
    o: &Originals,
    url: &str,
    timeout: Duration,
) -> Result<bool, StepError> {
    let cluster = rb.inner.cluster.as_ref();
    let mut stopped = false;
    if current_url(cluster, info).await?.as_deref() != Some(url) {
        if current_replicas(cluster, info).await? != Some(0) || controller_pods(cluster, info).await? > 0 {
            // recorded before acting, like the run's own stop
            rb.mark_downtime(true).await;
            set_replicas(cluster, info, 0).await?;
            cluster
                .wait_pods_gone(&info.namespace, &info.pod_selector, timeout)
                .await?;
            stopped = true;
        }
        request_url(cluster, info, url, o.config_toml.as_deref()).await?;
    }
    // the operator renders the ConfigMap asynchronously: wait for what the controller reads
    wait_url(cluster, info, url, timeout).await?;
    Ok(stopped)
}

/// Scales etcd back to its replicas and waits until they are ready (a `scale_down_etcd` is
/// undone before the controller starts). True when it had to be scaled.
async fn restore_etcd(
    rb: &Rollback<'_>,
    ns: &str,
    sts: &str,
    replicas: i32,
    timeout: Duration,
) -> Result<bool, StepError> {
    let cluster = rb.inner.cluster.as_ref();
    let Some(current) = cluster.get_stateful_set(ns, sts).await? else {
        return Err(StepError::Failed(format!(
            "the etcd StatefulSet {ns}/{sts} is gone"
        )));
    };
    let now = current.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    if now != replicas {
        cluster.scale_stateful_set(ns, sts, replicas).await?;
    }
    if replicas > 0 {
        cluster
            .wait_stateful_set_ready(ns, sts, replicas, timeout)
            .await?;
    }
    Ok(now != replicas)
}

/// Stores the end of the rollback; retried while the database refuses it (the cluster is
/// restored already: only the record is missing, and a later start would redo it anyway).
async fn finish(rb: &Rollback<'_>, cause: &str, url: Option<String>) -> anyhow::Result<()> {
    let run = rb.run;
    let mut ctx = RunContext::parse(&run.context).ok();
    super::steps::remove_precopy(&rb.inner.settings.data_dir, &run.id).await;
    if let Some(ctx) = ctx.as_mut() {
        ctx.precopy_file = None;
    }
    if let Some(ctx) = ctx.as_mut()
        && (ctx.import_started || run.switch_requested)
    {
        match rb.inner.cluster.k8s_backend_inventory().await {
            Ok(inv) => {
                if inv.total_objects() > 0 {
                    rb.say(
                        "warn",
                        &format!(
                            "the k8s backend holds {} objects from the import; the controller does not use them \
                             and the next import replaces them",
                            inv.total_objects()
                        ),
                    )
                    .await;
                }
                ctx.k8s_backend_after_rollback = Some(inv);
            }
            Err(e) => rb.say("warn", &format!("cannot list the k8s backend: {e}")).await,
        }
    }
    // what the run leaves in the k8s backend: a later run may replace exactly that
    ownership::end_writing(&rb.inner.db, rb.inner.cluster.as_ref(), &run.id, BackendUse::Left).await;
    let state = if run.cancel_requested {
        RunState::Cancelled
    } else {
        RunState::RolledBack
    };
    let action = if run.cancel_requested {
        Action::CancelRolledBack
    } else {
        Action::RolledBack
    };
    let outcome = match &url {
        Some(u) => format!(
            "rolled back: the controller runs on its original database ({u}) again, whose data was never changed"
        ),
        None => "rolled back".to_string(),
    };
    let error = format!("{cause}; {outcome}");
    let record = || async {
        let steps = rb.inner.db.steps(&run.id).await?;
        let Some(mut change) = transition(&run.id, crate::model::RunState::Running, run.phase, action) else {
            return Ok(());
        };
        change.steps = super::rollback_report::after_rollback(rest_of_steps(&steps, true), url.as_deref());
        change.context = ctx.as_ref().map(RunContext::to_value);
        change.error = ErrorChange::Set(error.clone());
        change.events.push(NewEvent {
            kind: EventKind::Run,
            step: None,
            level: state.as_str().to_string(),
            message: format!("run {state}: {error}"),
        });
        match rb.log.commit(&change).await {
            Ok(()) | Err(DbError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    };
    store(rb, record).await
}

/// Stores an outcome, retrying while the database refuses; a final failure is logged (the run is
/// picked up again at the next start, and its rollback then finds nothing left to do).
async fn store<F, Fut>(rb: &Rollback<'_>, record: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), DbError>>,
{
    let result = record
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(200))
                .with_max_delay(Duration::from_secs(5))
                .with_max_times(5),
        )
        .sleep(tokio::time::sleep)
        .await;
    if let Err(e) = result {
        tracing::error!(
            run = %rb.run.id,
            "the rollback's outcome could not be stored ({e}); the run is picked up again at the next start"
        );
    }
    Ok(())
}

/// The rollback gave up: the run ends `rollback_failed` with what the service saw and how to
/// finish by hand.
async fn give_up(rb: &Rollback<'_>, o: &Originals, cause: &str, problem: String) -> anyhow::Result<()> {
    let run = rb.run;
    rb.inner.metrics.rollbacks_failed.inc();
    let observed = observe(rb, o).await;
    let failure = RollbackFailure {
        action: problem.split(" failed").next().unwrap_or(&problem).to_string(),
        error: problem.clone(),
        observed: observed.clone(),
        commands: manual_commands(o, &MigrationObjects::for_run(&o.target.name, &run.id)),
    };
    for line in &observed {
        rb.say("error", &format!("now: {line}")).await;
    }
    let error = format!(
        "{cause}; the rollback then failed: {problem}. Now: {}. Finish it with the commands in the run's report, or \
         resume the run to let the rollback try again",
        observed.join("; ")
    );
    rb.say("error", &error).await;
    let ctx = RunContext::parse(&run.context).ok().map(|mut c| {
        c.rollback_failure = Some(failure.clone());
        c
    });
    let record = || async {
        let Some(mut change) = transition(&run.id, RunState::Running, run.phase, Action::GiveUp) else {
            return Ok(());
        };
        change.context = ctx.as_ref().map(RunContext::to_value);
        change.error = ErrorChange::Set(error.clone());
        change.events.push(NewEvent {
            kind: EventKind::Run,
            step: None,
            level: RunState::RollbackFailed.as_str().to_string(),
            message: format!("run rollback_failed: {error}"),
        });
        match rb.log.commit(&change).await {
            Ok(()) | Err(DbError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    };
    store(rb, record).await
}

/// What the controller looks like now, in words (each read on its own; a failed read says so).
async fn observe(rb: &Rollback<'_>, o: &Originals) -> Vec<String> {
    describe_controller(rb.inner.cluster.as_ref(), o).await
}
