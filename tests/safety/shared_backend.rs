//! The `k8s` backend is one per Kubernetes cluster (issue 18, item 1): objects this service cannot
//! prove it left there block a migration at preflight, and every one of them is still there;
//! objects an earlier run left are replaced, but never before the approval gate (the gate then
//! comes before step 4, which deletes them); two runs never write the backend at once.

use linstor_migrator::cluster::Cluster;
use linstor_migrator::cluster::sim::Fault;
use linstor_migrator::model::{Actor, ImportMode, RunKind, RunState, StepName, StepState};

use super::{Bench, engine, request, settings, settle};

fn actor() -> Actor {
    Actor::new("operator")
}

fn step_state(run: &linstor_migrator::engine::RunView, step: StepName) -> StepState {
    run.steps
        .iter()
        .find(|s| s.name == step)
        .map_or(StepState::Pending, |s| s.state)
}

#[tokio::test]
async fn objects_of_an_unknown_writer_block_the_run_at_preflight_and_stay() {
    let bench = Bench::new();
    // another LINSTOR (a Piraeus v2 installation, say) already runs on the backend
    bench.sim.preload_k8s_backend(&bench.sim.etcd_dataset());
    let before = bench.sim.k8s_backend_rows();
    let held: usize = before.values().sum();
    assert!(held > 100, "{before:?}");
    let engine = engine(&bench, settings(bench.dir.path())).await;
    let (run, _) = engine
        .create_run(request(RunKind::Migrate), &actor(), None)
        .await
        .unwrap();
    let done = settle(&engine, &run.id).await;
    assert_eq!(done.state, RunState::Failed, "{:?}", done.error);
    assert_eq!(step_state(&done, StepName::Preflight), StepState::Failed);
    let check = done
        .report
        .checks
        .iter()
        .find(|c| c.name == "k8s-backend")
        .expect("the k8s-backend check");
    assert!(
        check.message.contains("cannot account for") && check.message.contains("kubectl get crd"),
        "{}",
        check.message
    );
    assert_eq!(
        bench.sim.k8s_backend_rows(),
        before,
        "every object is still there"
    );
    assert!(done.downtime.is_none());
}

#[tokio::test]
async fn what_an_earlier_run_left_is_deleted_only_after_the_approval() {
    let bench = Bench::new();
    let engine = engine(&bench, settings(bench.dir.path())).await;
    // run 1: its import fails half-way, it rolls back and leaves partial data (recorded as left)
    bench.sim.inject(StepName::Import, Fault::PartialImport);
    let mut first = request(RunKind::Migrate);
    first.options.import = ImportMode::Tool;
    let (run1, _) = engine.create_run(first, &actor(), None).await.unwrap();
    let run1 = settle(&engine, &run1.id).await;
    assert_eq!(run1.state, RunState::RolledBack, "{:?}", run1.error);
    let left = bench.sim.k8s_backend_rows();
    assert!(left.values().sum::<usize>() > 0);

    // run 2 with the approval gate: it may replace that data, but waits before step 4
    let mut second = request(RunKind::Migrate);
    second.options.approve_before_downtime = true;
    let (run2, _) = engine.create_run(second, &actor(), None).await.unwrap();
    let waiting = settle(&engine, &run2.id).await;
    assert_eq!(waiting.state, RunState::Waiting, "{:?}", waiting.error);
    assert_eq!(step_state(&waiting, StepName::PrepareTarget), StepState::Pending);
    assert!(
        waiting
            .report
            .checks
            .iter()
            .any(|c| c.name == "k8s-backend" && c.message.contains(&format!("run {}", run1.id))),
        "{:?}",
        waiting.report.checks
    );
    assert_eq!(
        bench.sim.k8s_backend_rows(),
        left,
        "nothing deleted before the approval"
    );

    engine.approve(&run2.id, &actor()).await.unwrap();
    let done = settle(&engine, &run2.id).await;
    assert_eq!(done.state, RunState::Succeeded, "{:?}", done.error);
    let report = done.report.import_report.expect("import report");
    assert!(report.emptied_objects > 0, "{report:?}");
    assert!(done.report.data_verification.expect("verified").is_equal());
}

#[tokio::test]
async fn a_backend_changed_since_this_service_left_it_blocks_the_next_run() {
    let bench = Bench::new();
    let engine = engine(&bench, settings(bench.dir.path())).await;
    bench.sim.inject(StepName::Import, Fault::PartialImport);
    let mut first = request(RunKind::Migrate);
    first.options.import = ImportMode::Tool;
    let (run1, _) = engine.create_run(first, &actor(), None).await.unwrap();
    assert_eq!(settle(&engine, &run1.id).await.state, RunState::RolledBack);
    // someone else writes into the backend since: one more object
    let inventory = bench.sim.k8s_backend_inventory().await.unwrap();
    let mut doc = bench.sim.etcd_dataset();
    let nodes = doc.tables.iter_mut().find(|t| t.name == "NODES").unwrap();
    nodes.data.truncate(1);
    let name = nodes.data[0]["node_name"].as_str().unwrap().to_string();
    nodes.data[0].insert("node_name".into(), serde_json::json!(format!("{name}-OTHER")));
    for t in doc.tables.iter_mut().filter(|t| t.name != "NODES") {
        t.data.clear();
    }
    bench.sim.add_k8s_backend_rows(&doc);
    let after = bench.sim.k8s_backend_inventory().await.unwrap();
    assert_eq!(after.total_objects(), inventory.total_objects() + 1);

    let (run2, _) = engine
        .create_run(request(RunKind::Migrate), &actor(), None)
        .await
        .unwrap();
    let done = settle(&engine, &run2.id).await;
    assert_eq!(done.state, RunState::Failed, "{:?}", done.error);
    let check = done
        .report
        .checks
        .iter()
        .find(|c| c.name == "k8s-backend")
        .unwrap();
    assert!(check.message.contains("changed since"), "{}", check.message);
    assert_eq!(
        bench.sim.k8s_backend_inventory().await.unwrap().total_objects(),
        after.total_objects()
    );
}
