//! A service killed while the tool runs (the orphaned process is stopped before the next export
//! starts), a stored context that no longer parses, the Lease of a dead holder and of a live
//! one, the approval gate of a backup run, and cancels of a waiting run.

use std::time::Duration;

use linstor_migrator::cluster::Cluster;
use linstor_migrator::cluster::pod::MigrationObjects;
use linstor_migrator::cluster::sim::Fault;
use linstor_migrator::engine::{EngineError, lease_name};
use linstor_migrator::model::{Actor, ControllerRef, RunKind, RunState, StepName};

use super::{Bench, CR, engine, poll, request, settings, settle};

fn actor() -> Actor {
    Actor::new("operator")
}

#[tokio::test]
async fn a_tool_left_running_by_a_killed_service_is_stopped_before_the_next_export() {
    let bench = Bench::new();
    bench.sim.inject(StepName::Export, Fault::Hang);
    let first = engine(&bench, settings(bench.dir.path())).await;
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
    // SIGKILL: the exec connection goes, the export does not
    first.kill();
    drop(first);
    assert!(
        bench
            .sim
            .pod_processes(CR.0, &pod)
            .iter()
            .any(|a| a.iter().any(|a| a.ends_with("/backup-before-migration.json"))),
        "the export outlives the service"
    );

    let second = engine(&bench, settings(bench.dir.path())).await;
    let done = settle(&second, &run.id).await;
    assert_eq!(done.state, RunState::Succeeded, "{:?}", done.error);
    let e = bench.sim.effects();
    assert_eq!(e.tool_overlaps, 0, "two linstor-database ran at once: {e:?}");
    assert!(e.processes_killed >= 1, "{e:?}");
    let logs = second.events(&run.id, 0, 10_000, true).await.unwrap();
    let stopped = logs
        .iter()
        .position(|l| l.message.contains("stopping linstor-database"))
        .expect("the guard said it stopped the old export");
    let finished = logs
        .iter()
        .rposition(|l| l.message.contains("Export finished"))
        .expect("the new export finished");
    assert!(stopped < finished);
}

#[tokio::test]
async fn a_context_that_does_not_parse_fails_loudly_and_rolls_back_from_the_original_columns() {
    let bench = Bench::new();
    let before = bench.sim.fingerprint();
    let mut s = settings(bench.dir.path());
    s.stop_after_step = Some(StepName::Export);
    let first = engine(&bench, s).await;
    let (run, _) = first
        .create_run(request(RunKind::Migrate), &actor(), None)
        .await
        .unwrap();
    poll("the first engine to stop after the export", async || {
        !first.is_driving(&run.id)
    })
    .await;
    first.shutdown(Duration::from_secs(5)).await;
    sqlx::query("UPDATE runs SET context = '{\"checks\": 42' WHERE id = ?")
        .bind(&run.id)
        .execute(first.db().pool())
        .await
        .unwrap();
    drop(first);

    let second = engine(&bench, settings(bench.dir.path())).await;
    let done = settle(&second, &run.id).await;
    assert_eq!(done.state, RunState::RolledBack, "{:?}", done.error);
    assert!(
        done.error.clone().unwrap_or_default().contains("does not parse"),
        "{:?}",
        done.error
    );
    assert!(done.context_error.is_some());
    let mut after = bench.sim.fingerprint();
    after.k8s_backend_digest = before.k8s_backend_digest.clone();
    assert_eq!(
        after, before,
        "restored from the original columns, pod and ConfigMap removed"
    );
}

#[tokio::test]
async fn the_lease_of_a_dead_holder_is_taken_over_and_the_run_continues() {
    let bench = Bench::new();
    bench.sim.inject(StepName::Export, Fault::Hang);
    let mut a = settings(bench.dir.path());
    a.instance_id = "pod-a".into();
    a.lease_ttl = Duration::from_secs(1);
    let first = engine(&bench, a).await;
    let (run, _) = first
        .create_run(request(RunKind::Migrate), &actor(), None)
        .await
        .unwrap();
    // the hanging export runs (its fault is used up): the first process dies holding the Lease
    let pod = MigrationObjects::for_run(CR.1, &run.id).pod;
    poll("the hanging export", async || {
        bench
            .sim
            .pod_processes(CR.0, &pod)
            .iter()
            .any(|argv| argv.iter().any(|a| a.ends_with("/backup-before-migration.json")))
    })
    .await;
    first.kill();
    drop(first);

    // a replacement pod with another name: the dead pod's Lease blocks it until it expires
    let mut b = settings(bench.dir.path());
    b.instance_id = "pod-b".into();
    b.lease_ttl = Duration::from_secs(1);
    let second = engine(&bench, b).await;
    let done = settle(&second, &run.id).await;
    assert_eq!(done.state, RunState::Succeeded, "{:?}", done.error);
    let logs = second.events(&run.id, 0, 10_000, true).await.unwrap();
    assert!(
        logs.iter()
            .any(|l| l.message.contains("is held by another linstor-migrator process"))
    );
    assert!(logs.iter().any(|l| l.message.contains("took Lease")));
    assert_eq!(bench.sim.effects().tool_overlaps, 0);
}

#[tokio::test]
async fn a_live_holder_of_the_lease_keeps_new_runs_off_the_controller() {
    let bench = Bench::new();
    let controller = ControllerRef::new(CR.0, CR.1);
    assert!(
        bench
            .sim
            .acquire_lease(
                CR.0,
                &lease_name(&controller),
                "cli-laptop-4242",
                Duration::from_secs(60)
            )
            .await
            .unwrap()
    );
    let engine = engine(&bench, settings(bench.dir.path())).await;
    match engine.create_run(request(RunKind::Migrate), &actor(), None).await {
        Err(EngineError::Conflict { message, .. }) => assert!(message.contains("Lease"), "{message}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(engine.runs(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_backup_run_also_waits_for_approval_before_the_downtime() {
    let bench = Bench::new();
    let engine = engine(&bench, settings(bench.dir.path())).await;
    let mut req = request(RunKind::Backup);
    req.options.approve_before_downtime = true;
    let (run, _) = engine.create_run(req, &actor(), None).await.unwrap();
    let waiting = settle(&engine, &run.id).await;
    assert_eq!(waiting.state, RunState::Waiting);
    assert!(waiting.downtime.is_none(), "the controller was not stopped");
    engine.approve(&run.id, &Actor::new("boss")).await.unwrap();
    let done = settle(&engine, &run.id).await;
    assert_eq!(done.state, RunState::Succeeded, "{:?}", done.error);
    assert_eq!(done.approved_by.as_deref(), Some("boss"));
}

#[tokio::test]
async fn a_waiting_run_is_cancelled_once_and_changes_nothing() {
    let bench = Bench::new();
    let before = bench.sim.fingerprint();
    let engine = engine(&bench, settings(bench.dir.path())).await;
    let mut req = request(RunKind::Migrate);
    req.options.approve_before_downtime = true;
    let (run, _) = engine.create_run(req, &actor(), None).await.unwrap();
    settle(&engine, &run.id).await;
    engine.cancel(&run.id, &actor()).await.unwrap();
    assert!(matches!(
        engine.cancel(&run.id, &actor()).await,
        Err(EngineError::Conflict { .. })
    ));
    assert!(matches!(
        engine.approve(&run.id, &actor()).await,
        Err(EngineError::Conflict { .. })
    ));
    let done = settle(&engine, &run.id).await;
    assert_eq!(done.state, RunState::Cancelled, "{:?}", done.error);
    assert!(
        done.error
            .unwrap_or_default()
            .contains("nothing of the controller was changed")
    );
    // the k8s backend's schema, made before the gate, stays (nothing uses it)
    let mut after = bench.sim.fingerprint();
    after.k8s_backend_digest = before.k8s_backend_digest.clone();
    assert_eq!(after, before);
}

/// Someone scales the controller up during the downtime (issue 18, item 5): the import writes
/// nothing under the live controller, nothing is switched, and the run rolls back saying why.
#[tokio::test]
async fn a_controller_started_during_the_downtime_gets_no_writes_and_no_switch() {
    let bench = Bench {
        sim: linstor_migrator::cluster::sim::SimCluster::new(linstor_migrator::cluster::sim::SimTiming {
            export: Duration::from_millis(1500),
            ..linstor_migrator::cluster::sim::SimTiming::instant()
        }),
        ..Bench::new()
    };
    let engine = engine(&bench, settings(bench.dir.path())).await;
    let mut req = request(RunKind::Migrate);
    req.options.approve_before_downtime = true;
    let (run, _) = engine.create_run(req, &actor(), None).await.unwrap();
    assert_eq!(settle(&engine, &run.id).await.state, RunState::Waiting);
    // the controller wrote since the pre-copy: the delta has a row to write
    assert!(bench.sim.change_etcd_data(CR.0, CR.1, |doc| {
        let props = doc
            .tables
            .iter()
            .position(|t| t.name == "PROPS_CONTAINERS")
            .unwrap();
        doc.tables[props].data[0].insert("prop_value".into(), serde_json::json!("changed"));
    }));
    engine.approve(&run.id, &actor()).await.unwrap();
    poll("the export", async || {
        super::step_running(&engine, &run.id, StepName::Export).await
    })
    .await;
    let writes = bench.sim.effects().backend_writes;
    bench
        .sim
        .patch_linstor_controller(CR.0, CR.1, serde_json::json!({"spec": {"replicas": 1}}))
        .await
        .unwrap();
    let done = settle(&engine, &run.id).await;
    assert_eq!(done.state, RunState::RolledBack, "{:?}", done.error);
    assert!(
        done.error
            .as_deref()
            .unwrap_or("")
            .contains("not stopped any more"),
        "{:?}",
        done.error
    );
    assert_eq!(
        bench.sim.effects().backend_writes,
        writes,
        "no write under a live controller"
    );
    let logs = engine.events(&run.id, 0, 10_000, true).await.unwrap();
    assert!(
        !logs
            .iter()
            .any(|l| l.message.contains("asked for connection_url")),
        "nothing switched"
    );
}
