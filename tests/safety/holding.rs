//! One process per controller for a run's whole life: a second process (a CLI beside the
//! service, another replica: its own data directory, the same cluster) is refused while the
//! first one's run waits at the approval gate, after it failed inside the downtime, and while its
//! rollback gave up; a holder whose renewals hang stops acting before the other may take over,
//! and its run goes on once the Lease is its own again; a controller that changed while its run
//! waited at the gate is not stopped.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use linstor_migrator::cluster::Cluster;
use linstor_migrator::cluster::pod::MigrationObjects;
use linstor_migrator::cluster::sim::{Fault, LeaseTrouble, Refusal};
use linstor_migrator::db::Db;
use linstor_migrator::engine::{Engine, EngineError};
use linstor_migrator::metrics::Metrics;
use linstor_migrator::model::{Actor, ImportMode, RunKind, RunState, StepName, StepState, VerifyMode};

use super::{Bench, CR, engine, poll, request, settings, settle, step_running};

fn actor() -> Actor {
    Actor::new("operator")
}

/// Long enough that a loaded machine renews in time, short enough for a quick test.
const TTL: Duration = Duration::from_secs(3);

/// Another linstor-migrator process on the same cluster: its own identity and data directory.
async fn other_process(bench: &Bench, identity: &str, dir: &Path, ttl: Duration) -> Engine {
    let mut s = settings(dir);
    s.instance_id = identity.into();
    s.lease_ttl = ttl;
    let db = Db::open(dir).await.unwrap();
    Engine::start(db, Arc::new(bench.sim.clone()), s, Arc::new(Metrics::default()))
        .await
        .unwrap()
}

/// The service: the bench's data directory, identity `service-0`.
async fn service(bench: &Bench, ttl: Duration) -> Engine {
    let mut s = settings(bench.dir.path());
    s.instance_id = "service-0".into();
    s.lease_ttl = ttl;
    engine(bench, s).await
}

/// A backup run of the other process is refused because of the Lease.
async fn assert_refused_by_the_lease(other: &Engine) {
    match other.create_run(request(RunKind::Backup), &actor(), None).await {
        Err(EngineError::Conflict { message, .. }) => {
            assert!(message.contains("holds Lease"), "{message}")
        }
        other => panic!("the second process was let in: {other:?}"),
    }
}

/// For three Lease durations, every start of the other process is refused: the Lease is renewed,
/// not merely not expired yet.
async fn assert_refused_for_a_while(other: &Engine) {
    let until = tokio::time::Instant::now() + TTL * 3;
    while tokio::time::Instant::now() < until {
        assert_refused_by_the_lease(other).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The other process may start a run now, and it ends well.
async fn assert_let_in(other: &Engine) {
    let (run, _) = other
        .create_run(request(RunKind::Backup), &actor(), None)
        .await
        .unwrap();
    let done = settle(other, &run.id).await;
    assert_eq!(done.state, RunState::Succeeded, "{:?}", done.error);
    assert_eq!(
        done.original.map(|o| o.replicas),
        Some(1),
        "the controller's own replicas recorded"
    );
}

#[tokio::test]
async fn a_run_waiting_at_the_gate_keeps_the_controller_from_a_second_process() {
    let bench = Bench::new();
    let first = service(&bench, TTL).await;
    let mut req = request(RunKind::Migrate);
    req.options.approve_before_downtime = true;
    let (run, _) = first.create_run(req, &actor(), None).await.unwrap();
    assert_eq!(settle(&first, &run.id).await.state, RunState::Waiting);
    let dir = tempfile::tempdir().unwrap();
    let cli = other_process(&bench, "cli-laptop", dir.path(), TTL).await;

    assert_refused_for_a_while(&cli).await;

    first.cancel(&run.id, &actor()).await.unwrap();
    assert_eq!(settle(&first, &run.id).await.state, RunState::Cancelled);
    assert_let_in(&cli).await;
}

#[tokio::test]
async fn a_run_failed_inside_the_downtime_keeps_its_controller_from_a_second_run_and_process() {
    let bench = Bench::new();
    bench.sim.inject(StepName::Import, Fault::ExitOne);
    let first = service(&bench, TTL).await;
    let mut req = request(RunKind::Migrate);
    req.options.auto_rollback = false;
    // the tool's import, which the fault makes fail in the downtime
    req.options.import = ImportMode::Tool;
    let (run, _) = first.create_run(req, &actor(), None).await.unwrap();
    let failed = settle(&first, &run.id).await;
    assert_eq!(failed.state, RunState::Failed, "{:?}", failed.error);
    assert!(failed.downtime.is_some_and(|d| d.ended_at.is_none()));
    let dir = tempfile::tempdir().unwrap();
    let cli = other_process(&bench, "cli-laptop", dir.path(), TTL).await;

    // a second run of the same process would record the stopped controller's 0 replicas as
    // what its rollback restores
    match first.create_run(request(RunKind::Backup), &actor(), None).await {
        Err(EngineError::Conflict { run_id, .. }) => assert_eq!(run_id, Some(run.id.clone())),
        other => panic!("a second run started on the stopped controller: {other:?}"),
    }
    assert_refused_for_a_while(&cli).await;

    first.rollback(&run.id, &actor()).await.unwrap();
    assert_eq!(settle(&first, &run.id).await.state, RunState::RolledBack);
    assert_let_in(&cli).await;
}

#[tokio::test]
async fn a_rollback_that_gave_up_keeps_the_controller_from_a_second_process() {
    let bench = Bench::new();
    bench.sim.inject(StepName::VerifyData, Fault::Hang);
    let mut s = settings(bench.dir.path());
    s.instance_id = "service-0".into();
    s.lease_ttl = TTL;
    s.tool_timeout = Duration::from_secs(1);
    let first = engine(&bench, s).await;
    let mut req = request(RunKind::Migrate);
    req.options.verify = VerifyMode::Tool;
    let (run, _) = first.create_run(req, &actor(), None).await.unwrap();
    poll("the verification export", async || {
        step_running(&first, &run.id, StepName::VerifyData).await
    })
    .await;
    bench.sim.refuse(Refusal::CrPatch, true);
    assert_eq!(settle(&first, &run.id).await.state, RunState::RollbackFailed);
    let dir = tempfile::tempdir().unwrap();
    let cli = other_process(&bench, "cli-laptop", dir.path(), TTL).await;

    assert_refused_for_a_while(&cli).await;

    bench.sim.refuse(Refusal::CrPatch, false);
    first.resume(&run.id, &actor()).await.unwrap();
    assert_eq!(settle(&first, &run.id).await.state, RunState::RolledBack);
    assert_let_in(&cli).await;
}

#[tokio::test]
async fn a_holder_whose_renewals_hang_stops_acting_before_another_takes_over_and_goes_on_after() {
    let bench = Bench::new();
    bench.sim.inject(StepName::Export, Fault::Hang);
    // a third of the duration between the holder stopping and the other taking over
    let ttl = Duration::from_secs(6);
    let first = service(&bench, ttl).await;
    let (run, _) = first
        .create_run(request(RunKind::Migrate), &actor(), None)
        .await
        .unwrap();
    let pod = MigrationObjects::for_run(CR.1, &run.id).pod;
    poll("the hanging export", async || {
        bench
            .sim
            .pod_processes(CR.0, &pod)
            .iter()
            .any(|argv| argv.iter().any(|a| a.ends_with("/backup-before-migration.json")))
    })
    .await;

    // from now on the service's Lease calls never answer
    bench.sim.lease_trouble("service-0", Some(LeaseTrouble::Hang));
    let dir = tempfile::tempdir().unwrap();
    let cli = other_process(&bench, "cli-laptop", dir.path(), ttl).await;
    let deadline = tokio::time::Instant::now() + ttl * 10;
    let taken = loop {
        match cli.create_run(request(RunKind::Preflight), &actor(), None).await {
            Ok((taken, _)) => break taken,
            Err(EngineError::Conflict { .. }) => {}
            Err(e) => panic!("{e}"),
        }
        assert!(tokio::time::Instant::now() < deadline, "the Lease was never free");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // by the time the other process had it, the holder had stopped its step
    let said = first.events(&run.id, 0, 10_000, true).await.unwrap();
    assert!(
        said.iter()
            .any(|l| l.message.contains("lost the controller's Lease")),
        "{:?}",
        said.iter().map(|l| &l.message).collect::<Vec<_>>()
    );
    let stopped = first.run(&run.id).await.unwrap();
    let export = stopped.steps.iter().find(|s| s.name == StepName::Export).unwrap();
    assert_eq!(export.state, StepState::Running, "left to resume, not failed");
    settle(&cli, &taken.id).await;

    // reachable again: the run goes on from its interrupted step and ends well
    bench.sim.lease_trouble("service-0", None);
    let done = settle(&first, &run.id).await;
    assert_eq!(done.state, RunState::Succeeded, "{:?}", done.error);
    assert_eq!(bench.sim.effects().tool_overlaps, 0);
}

#[tokio::test]
async fn a_controller_scaled_while_the_run_waited_is_not_stopped() {
    let bench = Bench::new();
    let engine = service(&bench, TTL).await;
    let mut req = request(RunKind::Migrate);
    req.options.approve_before_downtime = true;
    let (run, _) = engine.create_run(req, &actor(), None).await.unwrap();
    assert_eq!(settle(&engine, &run.id).await.state, RunState::Waiting);
    bench
        .sim
        .patch_linstor_controller(CR.0, CR.1, serde_json::json!({"spec": {"replicas": 2}}))
        .await
        .unwrap();

    engine.approve(&run.id, &actor()).await.unwrap();
    let refused = settle(&engine, &run.id).await;

    assert_eq!(refused.state, RunState::Failed);
    let error = refused.error.unwrap_or_default();
    assert!(
        error.starts_with(
            "while the run waited for approval the controller changed: it asks for 2 replica(s) where preflight saw 1"
        ),
        "{error}"
    );
    assert!(refused.downtime.is_none(), "the controller was not stopped");
    let cr = bench
        .sim
        .get_linstor_controller(CR.0, CR.1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cr.spec.replicas, Some(2));
    // the controller is free for a run that starts from what it is now
    let (next, _) = engine
        .create_run(request(RunKind::Backup), &actor(), None)
        .await
        .unwrap();
    let done = settle(&engine, &next.id).await;
    assert_eq!(done.state, RunState::Succeeded, "{:?}", done.error);
    assert_eq!(done.original.map(|o| o.replicas), Some(2));
}

#[tokio::test]
async fn a_controller_migrated_by_someone_else_while_the_run_waited_is_not_stopped() {
    let bench = Bench::new();
    let engine = service(&bench, TTL).await;
    let mut req = request(RunKind::Migrate);
    req.options.approve_before_downtime = true;
    let (run, _) = engine.create_run(req, &actor(), None).await.unwrap();
    assert_eq!(settle(&engine, &run.id).await.state, RunState::Waiting);
    bench
        .sim
        .patch_linstor_controller(
            CR.0,
            CR.1,
            serde_json::json!({"spec": {"dbConnectionURL": "k8s"}}),
        )
        .await
        .unwrap();

    engine.approve(&run.id, &actor()).await.unwrap();
    let refused = settle(&engine, &run.id).await;

    assert_eq!(refused.state, RunState::Failed);
    let error = refused.error.unwrap_or_default();
    assert!(
        error.contains("its database URL is k8s where preflight saw etcd://"),
        "{error}"
    );
    assert!(refused.downtime.is_none(), "the controller was not stopped");
    let cr = bench
        .sim
        .get_linstor_controller(CR.0, CR.1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cr.spec.db_connection_url.as_deref(), Some("k8s"));
}
