//! The run engine: creates runs, drives each one through its steps in a background task (at
//! most one per run: `registry`), rolls back failures during the downtime (`rollback`), resumes
//! interrupted runs on start-up, and answers the questions of the HTTP layer and the CLI. Every
//! state change goes through the transition table (`lifecycle`) and is stored before it is
//! published or acted on.

mod actions;
mod backend;
mod bus;
pub(crate) mod context;
mod demo;
mod gate;
mod invariants;
mod lease;
pub mod lifecycle;
mod log;
mod registry;
mod rollback;
mod rollback_manual;
mod rollback_report;
mod runner;
mod steps;
mod view;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use crate::cluster::pod::PodPaths;
pub use bus::Subscription;
pub use context::{
    Check, CheckLevel, DeltaCounts, ImportReport, PlannedStep, RollbackFailure, RunContext, RunPlan,
};
pub use lease::lease_name;
pub use rollback::RetryPolicy;
pub use steps::control::etcd_stateful_set;
pub use steps::{checked_kind, discovery_checks, k8s_backend_rules, own_rules};
pub use view::{BackupView, DowntimeView, OriginalView, RollbackPhaseView, RunSummary, RunView, StepView};

use crate::cluster::controller::{self, ControllerInfo};
use crate::cluster::{Cluster, ClusterError};
use crate::db::{BackupRecord, Db, DbError, EventRecord, NewRunRecord};
use crate::linstor::toml::redact_url;
use crate::metrics::Metrics;
use crate::model::{Actor, DemoScenario, RunKind, RunOptions, RunState, StepName};

/// How the engine behaves; built from the command line.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub data_dir: PathBuf,
    pub pod_paths: PodPaths,
    /// Identity of this process in Leases (the pod's name in a cluster).
    pub instance_id: String,
    /// Take the controller's Lease (in its namespace) while a run is driven: on for a real
    /// cluster, so that a CLI and the service, or two replicas, never act on one controller.
    pub leases: bool,
    /// How long a Lease lasts without renewal (renewed at a third of it).
    pub lease_ttl: Duration,
    /// Longest a `linstor-database` run may take.
    pub tool_timeout: Duration,
    /// How rollback actions are retried before a rollback gives up.
    pub rollback_retry: RetryPolicy,
    /// Test hook: the run task stops (as if the process died) right after this step is
    /// recorded as succeeded.
    pub stop_after_step: Option<StepName>,
    /// `--demo-scenario`: the scenario of runs that name none, where it applies (stored with each
    /// run; the simulated cluster only).
    pub demo_scenario: Option<DemoScenario>,
}

impl EngineSettings {
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            pod_paths: PodPaths::default(),
            instance_id: format!("linstor-migrator-{}", std::process::id()),
            leases: false,
            lease_ttl: Duration::from_secs(30),
            tool_timeout: Duration::from_secs(30 * 60),
            rollback_retry: RetryPolicy::default(),
            stop_after_step: None,
            demo_scenario: None,
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
    #[schema(
        value_type = String,
        example = "piraeus-datastore/piraeus-op-cs",
        pattern = "^[a-z0-9.-]{1,253}/[a-z0-9.-]{1,253}$"
    )]
    pub controller: crate::model::ControllerRef,
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
    registry: registry::Registry,
    leases: lease::Leases,
    /// The runs a previous process left active, which this engine resumed at its start.
    resumed: Vec<String>,
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
        let active = db.active_runs().await?;
        let resumed = active
            .iter()
            .filter(|r| r.state != RunState::Waiting || r.cancel_requested)
            .map(|r| r.id.clone())
            .collect();
        let engine = Engine {
            inner: Arc::new(Inner {
                db,
                cluster,
                settings,
                bus: Arc::new(bus::EventBus::default()),
                metrics,
                shutdown: CancellationToken::new(),
                tracker: TaskTracker::new(),
                registry: registry::Registry::default(),
                leases: lease::Leases::default(),
                resumed,
            }),
        };
        // the Leases of controllers that runs of this data directory hold, with or without a task
        for run in engine.inner.db.holding_runs().await? {
            engine.inner.leases.keep(&engine.inner, &run.controller);
        }
        for run in active {
            if run.state == RunState::Waiting && !run.cancel_requested {
                continue;
            }
            tracing::info!(run = %run.id, state = %run.state, phase = %run.phase, "resuming interrupted run");
            engine.ensure_driving(&run.id);
        }
        Ok(engine)
    }

    /// The runs a previous process left active and this engine resumed when it started (they
    /// may have ended since).
    pub fn resumed_at_start(&self) -> &[String] {
        &self.inner.resumed
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

    /// Makes sure a task drives the run: starts one, or tells the one driving it to look again.
    fn ensure_driving(&self, run_id: &str) {
        if self.inner.shutdown.is_cancelled() {
            return;
        }
        let Some(token) = self.inner.registry.claim(run_id) else {
            return;
        };
        self.inner.metrics.run_tasks_started.inc();
        let inner = self.inner.clone();
        let id = run_id.to_string();
        let handle = self.inner.tracker.spawn(async move {
            let mut token = token;
            loop {
                demo::arm(&inner, &id).await;
                let pass = runner::drive(&inner, &id, token.clone()).await;
                if pass == runner::Pass::LeaseLost && !inner.shutdown.is_cancelled() {
                    // drive it again: the next pass waits until the Lease is ours again
                    continue;
                }
                match inner.registry.pass_done(&id, inner.shutdown.is_cancelled()) {
                    Some(next) => token = next,
                    None => break,
                }
            }
            demo::end_if_final(&inner, &id).await;
        });
        self.inner.registry.set_abort(run_id, handle.abort_handle());
    }

    /// Discovered controllers, to be shown: their database URLs without passwords.
    pub async fn controllers(&self) -> EngineResult<Vec<ControllerInfo>> {
        let mut found = controller::discover(self.inner.cluster.as_ref()).await?;
        for c in &mut found {
            c.connection_url = c.connection_url.as_deref().map(redact_url);
        }
        Ok(found)
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
        let mut req = req;
        validate_options(&req.options)?;
        demo::scenario_of(
            &mut req,
            self.inner.cluster.as_ref(),
            self.inner.settings.demo_scenario,
        )?;
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
        if let Some(holding) = self.inner.db.run_holding(&req.controller).await? {
            return Err(holding_conflict(&req.controller, &holding));
        }
        // another linstor-migrator process (a CLI, another replica) works on this controller
        let lease = self.take_lease(&req.controller).await?;
        let result = self.insert_and_start(req, actor, idempotency_key, digest).await;
        // the run's task holds the Lease now, and the database says the run holds the controller
        lease.done(&self.inner).await;
        result
    }

    async fn insert_and_start(
        &self,
        req: CreateRun,
        actor: &Actor,
        idempotency_key: Option<String>,
        digest: String,
    ) -> EngineResult<(RunView, bool)> {
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
                let run_id = self.inner.db.run_holding(&req.controller).await?.map(|r| r.id);
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
        self.ensure_driving(&id);
        Ok((self.run(&id).await?, true))
    }

    /// Takes the controller's Lease for a new run (its task keeps it); 409 when another live
    /// process holds it.
    async fn take_lease(&self, controller: &crate::model::ControllerRef) -> EngineResult<lease::LeaseUse> {
        self.inner
            .leases
            .take(&self.inner, controller)
            .await
            .map_err(|holding| match holding {
                lease::Holding::Failing(e) => EngineError::Cluster(ClusterError::Api(format!(
                    "cannot take Lease {}/{}: {e}",
                    controller.namespace,
                    lease_name(controller)
                ))),
                _ => EngineError::Conflict {
                    message: format!(
                        "another linstor-migrator process (a CLI or another replica) works on controller {controller}: \
                         it holds Lease {}/{}",
                        controller.namespace,
                        lease_name(controller)
                    ),
                    run_id: None,
                },
            })
    }

    /// A run with its steps, backups and audit trail.
    pub async fn run(&self, id: &str) -> EngineResult<RunView> {
        let run = self.record(id).await?;
        view::run_view(&self.inner.db, run).await
    }

    /// Runs, newest first.
    pub async fn runs(&self, limit: i64) -> EngineResult<Vec<RunSummary>> {
        let runs = self.inner.db.runs(limit.clamp(1, 1000)).await?;
        Ok(runs.into_iter().map(view::run_summary).collect())
    }

    /// The run that holds a controller now (active, or its rollback unfinished).
    pub async fn run_holding(
        &self,
        controller: &crate::model::ControllerRef,
    ) -> EngineResult<Option<RunView>> {
        match self.inner.db.run_holding(controller).await? {
            Some(run) => Ok(Some(view::run_view(&self.inner.db, run).await?)),
            None => Ok(None),
        }
    }

    async fn record(&self, id: &str) -> EngineResult<crate::db::RunRecord> {
        self.inner
            .db
            .run(id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("run {id}")))
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

    /// The last `limit` log lines of a run and its number of log lines.
    pub async fn log_tail(&self, id: &str, limit: i64) -> EngineResult<(Vec<EventRecord>, i64)> {
        self.record(id).await?;
        Ok(self.inner.db.log_tail(id, limit.clamp(1, 10_000)).await?)
    }

    /// Live events of a run (subscribe before reading history, then de-duplicate by `seq`).
    pub fn subscribe(&self, id: &str) -> Subscription {
        self.inner.bus.subscribe(id)
    }

    /// Number of live event subscribers.
    pub fn subscribers(&self) -> usize {
        self.inner.bus.subscribers()
    }

    /// Runs that have an event channel (somebody listens), and runs that have an event order
    /// lock (something writes their events), now: both go when their last user does.
    pub fn event_channels(&self) -> (usize, usize) {
        self.inner.bus.live()
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

    /// Waits until the run is in a final state or waiting, with no task driving it (CLI, tests).
    pub async fn wait_settled(&self, id: &str) -> EngineResult<RunView> {
        let mut rx = self.subscribe(id);
        loop {
            let run = self.record(id).await?;
            let settled = run.state.is_final() || (run.state == RunState::Waiting && !run.cancel_requested);
            if settled && !self.is_driving(id) {
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
        // the Leases of runs left resumable stay until they expire (or this pod comes back)
        self.inner.leases.abandon_all();
    }

    /// Stops every task at its next await without reaching a safe point: what a SIGKILL does to
    /// the process (tests use it to crash the engine anywhere). Runs stay as stored.
    pub fn kill(&self) {
        self.inner.shutdown.cancel();
        self.inner.registry.abort_all();
        self.inner.leases.abandon_all();
    }

    /// The run's controller now (replicas, database URL, pods, etcd) against what the run found
    /// before it changed anything; empty when the run never got that far.
    pub async fn describe_controller(&self, id: &str) -> EngineResult<Vec<String>> {
        let run = self.record(id).await?;
        Ok(match &run.originals {
            Some(o) => rollback_manual::describe_controller(self.inner.cluster.as_ref(), o).await,
            None => Vec::new(),
        })
    }

    /// True when the run has a task in this process.
    pub fn is_driving(&self, id: &str) -> bool {
        self.inner.registry.is_driving(id)
    }

    /// Tasks this engine started to drive runs (never two at once for one run).
    pub fn tasks_started(&self) -> u64 {
        self.inner.registry.tasks_started()
    }
}

fn holding_conflict(controller: &crate::model::ControllerRef, run: &crate::db::RunRecord) -> EngineError {
    let message = if run.state == RunState::RollbackFailed {
        format!(
            "controller {controller} has run {} whose rollback failed: finish it (resume it, or follow its manual \
             steps and then resume it) before starting another",
            run.id
        )
    } else {
        format!("controller {controller} already has an active run {}", run.id)
    };
    EngineError::Conflict {
        message,
        run_id: Some(run.id.clone()),
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
    if let Some(ns) = &o.v2_namespace {
        let label = !ns.is_empty()
            && ns.len() <= 63
            && ns
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !ns.starts_with('-')
            && !ns.ends_with('-');
        if !label {
            return Err(EngineError::Invalid(format!(
                "options.v2_namespace must be a Kubernetes namespace name, got {ns:?}"
            )));
        }
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
