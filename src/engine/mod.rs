//! The run engine: creates runs, drives each one through its steps in a background task,
//! rolls back failures during downtime, resumes interrupted runs on start-up, and answers the
//! questions of the HTTP layer and the CLI. Every transition is stored before it is published.

mod bus;
mod context;
mod log;
mod runner;
mod steps;
mod view;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use context::{Check, CheckLevel, RunContext};
pub use view::{BackupView, DowntimeView, RunSummary, RunView, StepView};

use crate::cluster::controller::{self, ControllerInfo};
use crate::cluster::{Cluster, ClusterError};
use crate::db::{BackupRecord, Db, DbError, EventRecord, NewRunRecord};
use crate::metrics::Metrics;
use crate::model::{Actor, ControllerRef, RunKind, RunOptions, RunState, StepName, StepState};

/// Where the tool and the configurations are inside the migration pod.
#[derive(Debug, Clone)]
pub struct PodPaths {
    /// The `linstor-database` binary.
    pub tool: String,
    /// Where the migration pod mounts the controller's own config (the Deployment mounts it at
    /// `/etc/linstor`; its mounts under that path move along).
    pub source_config_dir: String,
    /// Where the target (`k8s`) `linstor.toml` is mounted.
    pub target_config_dir: String,
    /// The emptyDir for export files.
    pub backup_dir: String,
    /// The emptyDir the tool writes its logs into (its working directory's `logs`).
    pub logs_dir: String,
}

impl Default for PodPaths {
    fn default() -> Self {
        Self {
            tool: "/usr/share/linstor-server/bin/linstor-database".into(),
            source_config_dir: "/etc/linstor".into(),
            target_config_dir: "/etc/linstor-target".into(),
            backup_dir: "/backup".into(),
            logs_dir: "/logs".into(),
        }
    }
}

/// How the engine behaves; built from the command line.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub data_dir: PathBuf,
    pub pod_paths: PodPaths,
    /// Identity of this process for Leases (pod name in a cluster).
    pub instance_id: String,
    /// Namespace for the per-controller Lease; `None` disables Leases (single replica, demo).
    pub lease_namespace: Option<String>,
    /// Longest a `linstor-database` run may take.
    pub tool_timeout: Duration,
    /// Test hook: the run task stops (as if the process died) right after this step is
    /// recorded as succeeded.
    pub stop_after_step: Option<StepName>,
}

impl EngineSettings {
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            pod_paths: PodPaths::default(),
            instance_id: format!("linstor-migrator-{}", std::process::id()),
            lease_namespace: None,
            tool_timeout: Duration::from_secs(30 * 60),
            stop_after_step: None,
        }
    }
}

/// What the HTTP layer and the CLI can be told.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0} not found")]
    NotFound(String),
    /// A state conflict: an active run exists, or the action does not fit the run's state.
    #[error("{message}")]
    Conflict { message: String, run_id: Option<String> },
    /// The request is well-formed but cannot be done (unknown controller, bad options).
    #[error("{0}")]
    Invalid(String),
    /// The cluster refused or failed a request.
    #[error("cluster: {0}")]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<DbError> for EngineError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Conflict(message) => EngineError::Conflict {
                message,
                run_id: None,
            },
            other => EngineError::Internal(other.into()),
        }
    }
}

pub type EngineResult<T> = Result<T, EngineError>;

/// A request to start a run.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRun {
    pub kind: RunKind,
    /// `namespace/name` of the controller.
    #[schema(value_type = String, example = "piraeus-datastore/piraeus-op-cs")]
    pub controller: ControllerRef,
    #[serde(default)]
    pub options: RunOptions,
}

pub(crate) struct Inner {
    pub(crate) db: Db,
    pub(crate) cluster: Arc<dyn Cluster>,
    pub(crate) settings: EngineSettings,
    pub(crate) bus: Arc<bus::EventBus>,
    pub(crate) metrics: Arc<Metrics>,
    /// Cancels the running tasks for a shutdown: they stop at a safe point and stay resumable.
    pub(crate) shutdown: CancellationToken,
    tracker: TaskTracker,
    /// User cancellation per run that has a task, with the task's generation.
    cancels: Mutex<HashMap<String, (u64, CancellationToken)>>,
    generation: std::sync::atomic::AtomicU64,
}

/// The engine; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Engine {
    /// Builds the engine and resumes every run a previous process left active.
    pub async fn start(
        db: Db,
        cluster: Arc<dyn Cluster>,
        settings: EngineSettings,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Engine> {
        std::fs::create_dir_all(settings.data_dir.join("backups"))?;
        let engine = Engine {
            inner: Arc::new(Inner {
                db,
                cluster,
                settings,
                bus: Arc::new(bus::EventBus::default()),
                metrics,
                shutdown: CancellationToken::new(),
                tracker: TaskTracker::new(),
                cancels: Mutex::new(HashMap::new()),
                generation: std::sync::atomic::AtomicU64::new(0),
            }),
        };
        for run in engine.inner.db.active_runs().await? {
            if run.state == RunState::Waiting {
                continue;
            }
            tracing::info!(run = %run.id, state = %run.state, "resuming interrupted run");
            engine.spawn(&run.id);
        }
        Ok(engine)
    }

    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    pub fn cluster(&self) -> &Arc<dyn Cluster> {
        &self.inner.cluster
    }

    pub fn settings(&self) -> &EngineSettings {
        &self.inner.settings
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    fn spawn(&self, run_id: &str) {
        let token = CancellationToken::new();
        let generation = self
            .inner
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner
            .cancels
            .lock()
            .expect("cancels lock")
            .insert(run_id.to_string(), (generation, token.clone()));
        let inner = self.inner.clone();
        let id = run_id.to_string();
        self.inner.tracker.spawn(async move {
            runner::drive(&inner, &id, token).await;
            // a newer task for the same run (approve, resume) keeps its entry
            let mut map = inner.cancels.lock().expect("cancels lock");
            if map.get(&id).is_some_and(|(g, _)| *g == generation) {
                map.remove(&id);
            }
        });
    }

    /// Discovered controllers.
    pub async fn controllers(&self) -> EngineResult<Vec<ControllerInfo>> {
        Ok(controller::discover(self.inner.cluster.as_ref()).await?)
    }

    /// Starts a run. With an `idempotency_key` that was used before, returns that run (and
    /// `false`) when the request is the same, and 409 when it differs.
    pub async fn create_run(
        &self,
        req: CreateRun,
        actor: &Actor,
        idempotency_key: Option<String>,
    ) -> EngineResult<(RunView, bool)> {
        let digest = hex::encode(Sha256::digest(
            serde_json::json!({"kind": req.kind, "controller": req.controller, "options": req.options})
                .to_string(),
        ));
        if let Some(key) = &idempotency_key {
            if key.is_empty() || key.len() > 200 {
                return Err(EngineError::Invalid(
                    "Idempotency-Key must be 1 to 200 characters".into(),
                ));
            }
            if let Some(existing) = self.inner.db.run_by_idempotency_key(key).await? {
                if existing.request_digest.as_deref() != Some(digest.as_str()) {
                    return Err(EngineError::Conflict {
                        message: "Idempotency-Key was already used for a different request".into(),
                        run_id: Some(existing.id),
                    });
                }
                return Ok((self.run(&existing.id).await?, false));
            }
        }
        validate_options(&req.options)?;
        // The controller must exist now; preflight checks the rest.
        match controller::find(self.inner.cluster.as_ref(), &req.controller).await {
            Ok(_) => {}
            Err(ClusterError::NotFound { .. }) => {
                return Err(EngineError::Invalid(format!(
                    "controller {} does not exist",
                    req.controller
                )));
            }
            Err(e) => return Err(e.into()),
        }
        if let Some(active) = self.inner.db.active_run_for(&req.controller).await? {
            return Err(EngineError::Conflict {
                message: format!(
                    "controller {} already has an active run {}",
                    req.controller, active.id
                ),
                run_id: Some(active.id),
            });
        }
        let id = uuid::Uuid::now_v7().to_string();
        let new = NewRunRecord {
            id: id.clone(),
            kind: req.kind,
            controller: req.controller.clone(),
            options: req.options,
            actor: actor.clone(),
            idempotency_key: idempotency_key.clone(),
            request_digest: Some(digest),
        };
        match self.inner.db.insert_run(&new).await {
            Ok(_) => {}
            Err(DbError::Conflict(message)) => {
                // lost a race: another request with the same key, or for the same controller
                if let Some(key) = &idempotency_key
                    && let Some(existing) = self.inner.db.run_by_idempotency_key(key).await?
                {
                    return Ok((self.run(&existing.id).await?, false));
                }
                let run_id = self.inner.db.active_run_for(&req.controller).await?.map(|r| r.id);
                return Err(EngineError::Conflict { message, run_id });
            }
            Err(e) => return Err(e.into()),
        }
        let log = log::RunLog::new(&id, self.inner.db.clone(), self.inner.bus.clone());
        log.event(
            crate::db::EventKind::Run,
            None,
            RunState::Queued.as_str(),
            &format!("{} of {} requested by {actor}", req.kind, req.controller),
            None,
        )
        .await?;
        self.spawn(&id);
        Ok((self.run(&id).await?, true))
    }

    /// A run with its steps, backups and audit trail.
    pub async fn run(&self, id: &str) -> EngineResult<RunView> {
        let run = self
            .inner
            .db
            .run(id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("run {id}")))?;
        view::run_view(&self.inner.db, run).await
    }

    /// Runs, newest first.
    pub async fn runs(&self, limit: i64) -> EngineResult<Vec<RunSummary>> {
        let runs = self.inner.db.runs(limit.clamp(1, 1000)).await?;
        Ok(runs.into_iter().map(view::run_summary).collect())
    }

    async fn record(&self, id: &str) -> EngineResult<crate::db::RunRecord> {
        self.inner
            .db
            .run(id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("run {id}")))
    }

    fn conflict(run: &crate::db::RunRecord, action: &str) -> EngineError {
        EngineError::Conflict {
            message: format!("cannot {action} run {} in state {}", run.id, run.state),
            run_id: Some(run.id.clone()),
        }
    }

    /// Asks an active run to stop at its next safe point and roll back.
    pub async fn cancel(&self, id: &str, actor: &Actor) -> EngineResult<RunView> {
        let run = self.record(id).await?;
        if run.state.is_final() {
            return Err(Self::conflict(&run, "cancel"));
        }
        self.inner.db.set_cancel_requested(id).await?;
        self.inner.db.add_audit(id, actor, "cancel", None).await?;
        let log = log::RunLog::new(id, self.inner.db.clone(), self.inner.bus.clone());
        log.line(None, "warn", &format!("cancel requested by {actor}"))
            .await?;
        let token = self
            .inner
            .cancels
            .lock()
            .expect("cancels lock")
            .get(id)
            .map(|(_, t)| t.clone());
        match token {
            Some(t) => t.cancel(),
            // queued-but-not-running or waiting: let a task do the cancelling
            None => self.spawn(id),
        }
        self.run(id).await
    }

    /// Makes a run active again; 409 when its controller has another active run meanwhile.
    async fn activate(&self, run: &crate::db::RunRecord) -> EngineResult<()> {
        self.inner
            .db
            .set_run_state(&run.id, RunState::Running, None)
            .await
            .map_err(|e| match e {
                DbError::Conflict(_) => EngineError::Conflict {
                    message: format!("controller {} already has another active run", run.controller),
                    run_id: None,
                },
                other => other.into(),
            })
    }

    /// Records who did what, tells the subscribers and hands the run to a task.
    async fn hand_over(
        &self,
        id: &str,
        actor: &Actor,
        action: &str,
        detail: Option<&str>,
        message: &str,
    ) -> EngineResult<RunView> {
        self.inner.db.add_audit(id, actor, action, detail).await?;
        let log = log::RunLog::new(id, self.inner.db.clone(), self.inner.bus.clone());
        log.event(
            crate::db::EventKind::Run,
            None,
            RunState::Running.as_str(),
            message,
            None,
        )
        .await?;
        self.spawn(id);
        self.run(id).await
    }

    /// Releases a run waiting at the approval gate.
    pub async fn approve(&self, id: &str, actor: &Actor) -> EngineResult<RunView> {
        let run = self.record(id).await?;
        if run.state != RunState::Waiting {
            return Err(Self::conflict(&run, "approve"));
        }
        let mut ctx = RunContext::from_value(&run.context);
        ctx.approved_by = Some(actor.to_string());
        self.inner.db.set_context(id, &ctx.to_value()).await?;
        self.activate(&run).await?;
        self.hand_over(
            id,
            actor,
            "approve",
            None,
            &format!("downtime approved by {actor}"),
        )
        .await
    }

    /// Continues a failed run from its failed step.
    pub async fn resume(&self, id: &str, actor: &Actor) -> EngineResult<RunView> {
        let run = self.record(id).await?;
        if run.state != RunState::Failed {
            return Err(Self::conflict(&run, "resume"));
        }
        let failed = self
            .inner
            .db
            .steps(id)
            .await?
            .into_iter()
            .find(|s| s.state == StepState::Failed);
        self.activate(&run).await?;
        self.inner.db.reset_for_resume(id).await?;
        if let Some(step) = &failed {
            self.inner
                .db
                .set_step_state(id, step.name, StepState::Pending, None)
                .await?;
        }
        let step = failed.as_ref().map(|s| s.name.as_str());
        self.hand_over(id, actor, "resume", step, &format!("resumed by {actor}"))
            .await
    }

    /// Rolls back a finished run that changed the cluster (manual rollback; after a successful
    /// migration this loses whatever changed in LINSTOR since).
    pub async fn rollback(&self, id: &str, actor: &Actor) -> EngineResult<RunView> {
        let run = self.record(id).await?;
        let changed = run.downtime_started_at.is_some();
        if !run.state.is_final()
            || run.state == RunState::RolledBack
            || run.kind == RunKind::Preflight
            || !changed
        {
            return Err(Self::conflict(&run, "roll back"));
        }
        self.activate(&run).await?;
        let mut ctx = RunContext::from_value(&run.context);
        ctx.rollback_cause = Some(format!("manual rollback requested by {actor}"));
        self.inner.db.set_context(id, &ctx.to_value()).await?;
        self.inner.db.set_rolling_back(id, true).await?;
        self.hand_over(
            id,
            actor,
            "rollback",
            None,
            &format!("manual rollback requested by {actor}"),
        )
        .await
    }

    /// Events of a run after `after`, at most `limit`; `only_logs` for log lines only.
    pub async fn events(
        &self,
        id: &str,
        after: i64,
        limit: i64,
        only_logs: bool,
    ) -> EngineResult<Vec<EventRecord>> {
        self.record(id).await?;
        Ok(self
            .inner
            .db
            .events(id, after, limit.clamp(1, 10_000), only_logs)
            .await?)
    }

    /// Live events of a run (subscribe before reading history, then de-duplicate by `seq`).
    pub fn subscribe(&self, id: &str) -> broadcast::Receiver<EventRecord> {
        self.inner.bus.subscribe(id)
    }

    /// Number of live event subscribers.
    pub fn subscribers(&self) -> usize {
        self.inner.bus.subscribers()
    }

    pub async fn backups(&self) -> EngineResult<Vec<BackupRecord>> {
        Ok(self.inner.db.backups().await?)
    }

    /// A backup and the absolute path of its file.
    pub async fn backup(&self, id: &str) -> EngineResult<(BackupRecord, PathBuf)> {
        let b = self
            .inner
            .db
            .backup(id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("backup {id}")))?;
        let path = self.inner.settings.data_dir.join(&b.path);
        Ok((b, path))
    }

    /// Waits until the run is in a final state or waiting (CLI, tests).
    pub async fn wait_settled(&self, id: &str) -> EngineResult<RunView> {
        let mut rx = self.subscribe(id);
        loop {
            let run = self.record(id).await?;
            let running_task = self.inner.cancels.lock().expect("cancels lock").contains_key(id);
            if (run.state.is_final() || run.state == RunState::Waiting) && !running_task {
                return self.run(id).await;
            }
            // wake on any event, or re-check periodically
            let _ = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await;
        }
    }

    /// Stops every run task at its next safe point, leaving the runs resumable, and waits up to
    /// `grace` for them.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.shutdown.cancel();
        self.inner.tracker.close();
        if tokio::time::timeout(grace, self.inner.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "some runs did not reach a safe point within {grace:?}; they resume on the next start"
            );
        }
    }

    /// True when the run has a task in this process.
    pub fn is_driving(&self, id: &str) -> bool {
        self.inner.cancels.lock().expect("cancels lock").contains_key(id)
    }
}

fn validate_options(o: &RunOptions) -> EngineResult<()> {
    if !(5..=3600).contains(&o.controller_timeout_seconds) {
        return Err(EngineError::Invalid(
            "options.controller_timeout_seconds must be between 5 and 3600".into(),
        ));
    }
    if !(5..=3600).contains(&o.pod_timeout_seconds) {
        return Err(EngineError::Invalid(
            "options.pod_timeout_seconds must be between 5 and 3600".into(),
        ));
    }
    Ok(())
}

/// The steps of `kind` that follow `step`.
pub fn steps_after(kind: RunKind, step: StepName) -> impl Iterator<Item = StepName> {
    kind.steps()
        .iter()
        .copied()
        .skip_while(move |s| *s != step)
        .skip(1)
}
