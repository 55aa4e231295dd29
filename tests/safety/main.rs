//! The safety core against the simulated cluster: crashes at any point, a rollback that meets a
//! refusing cluster, a tool left running by a killed service, invariants after a resume, a
//! stored context that no longer parses, the Lease of a dead holder, and one process per
//! controller for a run's whole life.

mod crash_anywhere;
mod crashing;
mod holding;
mod interruptions;
mod rollback_failure;
mod shared_backend;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use linstor_migrator::cluster::Cluster;
use linstor_migrator::cluster::sim::{SimCluster, SimTiming};
use linstor_migrator::db::Db;
use linstor_migrator::engine::{CreateRun, Engine, EngineSettings, RetryPolicy, RunView};
use linstor_migrator::metrics::Metrics;
use linstor_migrator::model::{ControllerRef, RunKind, RunOptions};

pub const CR: (&str, &str) = SimCluster::CR_CONTROLLER;

/// A data directory and a simulated cluster whose tool takes a little time (so that a crash can
/// land while it runs).
pub struct Bench {
    pub dir: tempfile::TempDir,
    pub sim: SimCluster,
}

impl Default for Bench {
    fn default() -> Self {
        Self::new()
    }
}

impl Bench {
    pub fn new() -> Self {
        let timing = SimTiming {
            export: Duration::from_millis(3),
            import_per_row: Duration::from_micros(20),
            ..SimTiming::instant()
        };
        // the data directory on tmpfs when there is one: these tests are about order, not
        // about fsync (every stored event is one), and hundreds of runs would wait on the disk
        let shm = Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::tempdir_in(shm).unwrap()
        } else {
            tempfile::tempdir().unwrap()
        };
        Self {
            dir,
            sim: SimCluster::new(timing),
        }
    }
}

/// Settings of a restarted service in the same pod: the same Lease identity, fast retries.
pub fn settings(dir: &Path) -> EngineSettings {
    let mut s = EngineSettings::new(dir.to_path_buf());
    s.instance_id = "linstor-migrator-0".into();
    s.leases = true;
    s.tool_timeout = Duration::from_secs(20);
    s.rollback_retry = RetryPolicy {
        attempts: 3,
        min_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
    };
    s
}

/// An engine on the bench's data directory and `cluster` (the bench's simulated one, or a
/// wrapper of it).
pub async fn engine_with(
    bench: &Bench,
    cluster: Arc<dyn Cluster>,
    s: EngineSettings,
    metrics: Arc<Metrics>,
) -> Engine {
    let db = Db::open(bench.dir.path()).await.unwrap();
    Engine::start(db, cluster, s, metrics).await.unwrap()
}

/// An engine on the bench's simulated cluster.
pub async fn engine(bench: &Bench, s: EngineSettings) -> Engine {
    engine_with(
        bench,
        Arc::new(bench.sim.clone()),
        s,
        Arc::new(Metrics::default()),
    )
    .await
}

/// Waits until the run settles; when it does not, the panic shows its log.
pub async fn settle(engine: &Engine, id: &str) -> RunView {
    match tokio::time::timeout(Duration::from_secs(60), engine.wait_settled(id)).await {
        Ok(run) => run.unwrap(),
        Err(_) => {
            let log = engine.events(id, 0, 10_000, false).await.unwrap();
            let said: Vec<String> = log
                .iter()
                .map(|e| format!("{} {:?} {}", e.level, e.step, e.message))
                .collect();
            panic!(
                "the run did not settle: {:?}\n{}",
                engine.run(id).await.unwrap().state,
                said.join("\n")
            );
        }
    }
}

/// Polls `done` with a deadline.
pub async fn poll(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !done().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// True while `step` of the run is running.
pub async fn step_running(engine: &Engine, id: &str, step: linstor_migrator::model::StepName) -> bool {
    let run = engine.run(id).await.unwrap();
    run.steps
        .iter()
        .any(|s| s.name == step && s.state == linstor_migrator::model::StepState::Running)
}

pub fn request(kind: RunKind) -> CreateRun {
    CreateRun {
        kind,
        controller: ControllerRef::new(CR.0, CR.1),
        options: RunOptions {
            controller_timeout_seconds: 10,
            pod_timeout_seconds: 10,
            ..RunOptions::default()
        },
    }
}

pub fn sha256_file(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}
