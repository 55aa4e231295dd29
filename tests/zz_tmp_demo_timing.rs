use std::sync::Arc;
use std::time::{Duration, Instant};

use linstor_migrator::cluster::sim::{SimCluster, SimTiming};
use linstor_migrator::db::Db;
use linstor_migrator::engine::{CreateRun, Engine, EngineSettings};
use linstor_migrator::metrics::Metrics;
use linstor_migrator::model::{Actor, ControllerRef, RunKind, RunOptions};

#[tokio::test]
async fn demo_timing() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimCluster::new(SimTiming::demo());
    let db = Db::open(dir.path()).await.unwrap();
    let settings = EngineSettings::new(dir.path().to_path_buf());
    let engine = Engine::start(db, Arc::new(sim.clone()), settings, Arc::new(Metrics::default())).await.unwrap();
    let t = Instant::now();
    let req = CreateRun { kind: RunKind::Migrate, controller: ControllerRef::new("piraeus-datastore", "piraeus-op-cs"), options: RunOptions::default() };
    let (run, _) = engine.create_run(req, &Actor::new("t"), None).await.unwrap();
    let run = tokio::time::timeout(Duration::from_secs(120), engine.wait_settled(&run.id)).await.unwrap().unwrap();
    eprintln!("STATE {:?} in {:?}", run.state, t.elapsed());
    for s in &run.steps { eprintln!("STEP {:?} {:?} {:?} {:?}", s.name, s.state, s.started_at, s.finished_at); }
}
