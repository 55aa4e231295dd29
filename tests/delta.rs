//! The delta import against the simulated cluster: its result equals the tool's import of the
//! same data object by object; rows the running controller changed between the pre-copy and the
//! stop are carried over during the downtime; a difference the delta leaves makes the
//! verification fall back to the tool's import in the same downtime. On the controller of the
//! Piraeus v1.10.8 chart's default image (LINSTOR 1.25.1) the default options migrate with the
//! delta import, and a migration after a rolled-back one empties what that one left and succeeds.

use std::sync::Arc;
use std::time::Duration;

use linstor_migrator::cluster::sim::{Fault, SimCluster, SimTiming};
use linstor_migrator::db::Db;
use linstor_migrator::engine::{CreateRun, Engine, EngineSettings, RunView};
use linstor_migrator::metrics::Metrics;
use linstor_migrator::model::{Actor, ControllerRef, ImportMode, RunKind, RunOptions, RunState, StepName};

const CR: (&str, &str) = SimCluster::CR_CONTROLLER;
/// The controller on the chart's default image, LINSTOR 1.25.1.
const CHART_DEFAULT: (&str, &str) = SimCluster::CHART_DEFAULT_CONTROLLER;

async fn engine(dir: &tempfile::TempDir, sim: &SimCluster) -> Engine {
    let db = Db::open(dir.path()).await.unwrap();
    Engine::start(
        db,
        Arc::new(sim.clone()),
        EngineSettings::new(dir.path().to_path_buf()),
        Arc::new(Metrics::default()),
    )
    .await
    .unwrap()
}

fn request(import: ImportMode, approve: bool) -> CreateRun {
    CreateRun {
        kind: RunKind::Migrate,
        controller: ControllerRef::new(CR.0, CR.1),
        options: RunOptions {
            controller_timeout_seconds: 10,
            pod_timeout_seconds: 10,
            approve_before_downtime: approve,
            import,
            ..RunOptions::default()
        },
    }
}

async fn settle(engine: &Engine, id: &str) -> RunView {
    tokio::time::timeout(Duration::from_secs(60), engine.wait_settled(id))
        .await
        .expect("the run settles")
        .unwrap()
}

async fn migrate(import: ImportMode) -> (SimCluster, RunView) {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimCluster::new(SimTiming::instant());
    let engine = engine(&dir, &sim).await;
    let (run, _) = engine
        .create_run(request(import, false), &Actor::new("test"), None)
        .await
        .unwrap();
    let run = settle(&engine, &run.id).await;
    engine.shutdown(Duration::from_secs(5)).await;
    (sim, run)
}

/// A delta run on a fresh simulated cluster, waiting for approval after step 4 (schema and
/// pre-copy written).
async fn waiting_delta_run() -> (tempfile::TempDir, SimCluster, Engine, RunView, RunView) {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimCluster::new(SimTiming::instant());
    let engine = engine(&dir, &sim).await;
    let (run, _) = engine
        .create_run(request(ImportMode::Delta, true), &Actor::new("test"), None)
        .await
        .unwrap();
    let waiting = settle(&engine, &run.id).await;
    assert_eq!(waiting.state, RunState::Waiting);
    (dir, sim, engine, run, waiting)
}

#[tokio::test]
async fn the_delta_import_leaves_the_same_objects_as_the_tools_import() {
    let (tool_sim, tool_run) = migrate(ImportMode::Tool).await;
    let (delta_sim, delta_run) = migrate(ImportMode::Delta).await;
    assert_eq!(tool_run.state, RunState::Succeeded, "{:?}", tool_run.error);
    assert_eq!(delta_run.state, RunState::Succeeded, "{:?}", delta_run.error);
    assert_eq!(
        tool_sim.fingerprint().k8s_backend_digest,
        delta_sim.fingerprint().k8s_backend_digest,
        "object by object"
    );
    let report = delta_run.report.import_report.expect("an import report");
    assert_eq!(report.mode, ImportMode::Delta);
    assert!(report.schema_before_stop);
    // every exported row (the four access types come from the schema-only import's migrations)
    let rows: u64 = tool_sim
        .k8s_backend_rows()
        .iter()
        .filter(|(table, _)| table.as_str() != "SEC_ACCESS_TYPES")
        .map(|(_, n)| *n as u64)
        .sum();
    assert_eq!(
        report.precopy.expect("a pre-copy").created,
        rows,
        "the pre-copy wrote every row"
    );
    assert_eq!(
        report.delta.expect("a delta").total(),
        0,
        "nothing changed since the pre-copy"
    );
    assert!(report.fallback.is_none());
    // the tool did not import the consistent export at all: only the schema-only import ran
    assert_eq!(delta_sim.effects().imports, 1);
}

#[tokio::test]
async fn rows_changed_between_the_pre_copy_and_the_stop_are_carried_over() {
    let (_dir, sim, engine, run, waiting) = waiting_delta_run().await;
    assert!(waiting.steps.iter().any(
        |s| s.name == StepName::PrepareTarget && s.message.as_deref().unwrap_or("").contains("pre-copy")
    ));

    // the controller runs on: it adds a resource definition, changes a property, removes a node's net interface
    let changed = sim.change_etcd_data(CR.0, CR.1, |doc| {
        let table = |doc: &mut linstor_migrator::linstor::export::ExportDocument, name: &str| {
            doc.tables.iter().position(|t| t.name == name).expect(name)
        };
        let props = table(doc, "PROPS_CONTAINERS");
        let row = doc.tables[props].data[0].clone();
        let mut new_row = row.clone();
        new_row.insert(
            "prop_key".into(),
            serde_json::json!("Aux/added-after-the-pre-copy"),
        );
        new_row.insert("prop_value".into(), serde_json::json!("yes"));
        doc.tables[props].data.push(new_row);
        doc.tables[props].data[0].insert(
            "prop_value".into(),
            serde_json::json!("changed-after-the-pre-copy"),
        );
        let nics = table(doc, "NODE_NET_INTERFACES");
        doc.tables[nics].data.pop();
    });
    assert!(changed);
    engine.approve(&run.id, &Actor::new("test")).await.unwrap();
    let done = settle(&engine, &run.id).await;
    assert_eq!(done.state, RunState::Succeeded, "{:?}", done.error);
    let report = done.report.import_report.expect("an import report");
    let delta = report.delta.expect("a delta");
    assert_eq!(
        (delta.created, delta.changed, delta.removed),
        (1, 1, 1),
        "{report:?}"
    );
    assert!(report.fallback.is_none());
    let verification = done.report.data_verification.expect("verified");
    assert!(verification.is_equal());
    // planned against the pre-copy export, which is no backup and is gone after the import
    let logs = engine.events(&run.id, 0, 10_000, true).await.unwrap();
    assert!(
        logs.iter().any(|l| l
            .message
            .starts_with("delta (against the pre-copy): 1 created, 1 changed, 1 removed")),
        "{:?}",
        logs.iter().map(|l| &l.message).collect::<Vec<_>>()
    );
    assert!(!precopy_file(&_dir, &run.id).exists());
}

#[tokio::test]
async fn a_refused_write_of_the_delta_import_rolls_back() {
    let (_dir, sim, engine, run, _) = waiting_delta_run().await;
    sim.change_etcd_data(CR.0, CR.1, |doc| {
        let props = doc
            .tables
            .iter()
            .position(|t| t.name == "PROPS_CONTAINERS")
            .unwrap();
        doc.tables[props].data[0].insert("prop_value".into(), serde_json::json!("changed"));
    });
    // the API server refuses the delta's write during the downtime
    sim.inject(StepName::Import, Fault::Error);
    engine.approve(&run.id, &Actor::new("test")).await.unwrap();
    let done = settle(&engine, &run.id).await;
    assert_eq!(done.state, RunState::RolledBack, "{:?}", done.error);
    assert!(
        done.error
            .as_deref()
            .unwrap_or("")
            .contains("write a k8s backend object"),
        "{:?}",
        done.error
    );
    let ctrl = engine
        .controllers()
        .await
        .unwrap()
        .into_iter()
        .find(|c| (c.namespace.as_str(), c.name.as_str()) == CR)
        .unwrap();
    assert_eq!(ctrl.backend.as_str(), "etcd");
}

fn precopy_file(dir: &tempfile::TempDir, run: &str) -> std::path::PathBuf {
    dir.path().join("backups").join(run).join("precopy.json")
}

#[tokio::test]
async fn the_pre_copy_export_is_kept_until_the_import_and_deleted_by_a_rollback_before_it() {
    let (dir, _sim, engine, run, _) = waiting_delta_run().await;
    assert!(precopy_file(&dir, &run.id).is_file(), "kept for the delta's plan");
    engine.cancel(&run.id, &Actor::new("test")).await.unwrap();
    let done = settle(&engine, &run.id).await;
    assert!(
        matches!(done.state, RunState::Cancelled | RunState::RolledBack),
        "{:?}",
        done.state
    );
    assert!(!precopy_file(&dir, &run.id).exists(), "not a backup");
}

#[tokio::test]
async fn a_difference_the_delta_leaves_makes_the_verification_fall_back_to_the_tool() {
    let (_dir, sim, engine, run, _) = waiting_delta_run().await;
    // one row changes, and the delta's write of it gets lost
    sim.change_etcd_data(CR.0, CR.1, |doc| {
        let props = doc
            .tables
            .iter()
            .position(|t| t.name == "PROPS_CONTAINERS")
            .unwrap();
        doc.tables[props].data[0].insert("prop_value".into(), serde_json::json!("changed"));
    });
    sim.inject(StepName::Import, Fault::PartialImport);
    engine.approve(&run.id, &Actor::new("test")).await.unwrap();
    let done = settle(&engine, &run.id).await;
    assert_eq!(done.state, RunState::Succeeded, "{:?}", done.error);
    let report = done.report.import_report.expect("an import report");
    let why = report.fallback.expect("a fallback");
    assert!(why.contains("PROPS_CONTAINERS"), "{why}");
    assert!(done.report.data_verification.expect("verified").is_equal());
    // the schema-only import and the fallback's import
    assert_eq!(sim.effects().imports, 2);
    let logs = engine.events(&run.id, 0, 10_000, true).await.unwrap();
    assert!(
        logs.iter()
            .any(|l| l.message.contains("falling back to linstor-database import-db"))
    );
}

#[tokio::test]
async fn an_object_the_delta_cannot_attribute_to_a_row_makes_it_fall_back_to_the_tool() {
    use linstor_migrator::cluster::{Cluster as _, K8sBackendObject};
    let (_dir, sim, engine, run, _) = waiting_delta_run().await;
    // after the pre-copy, somebody writes a node under a name that is not its key's SHA-256:
    // LINSTOR would never find it, and the delta (which names objects by key) cannot remove it
    let ghost = K8sBackendObject {
        name: "not-the-sha-256-of-its-key".into(),
        spec: serde_json::json!({"uuid": "0b7e5c1e-0000-4000-8000-000000000001", "node_name": "GHOST",
            "node_dsp_name": "ghost", "node_flags": 0, "node_type": 2})
        .as_object()
        .unwrap()
        .clone(),
    };
    sim.create_k8s_backend_object("nodes", "v1-31-1", "Nodes", &ghost)
        .await
        .unwrap();
    engine.approve(&run.id, &Actor::new("test")).await.unwrap();
    let done = settle(&engine, &run.id).await;
    assert_eq!(done.state, RunState::Succeeded, "{:?}", done.error);
    let report = done.report.import_report.expect("an import report");
    let why = report.fallback.expect("a fallback");
    assert!(why.contains("not named by their primary key"), "{why}");
    assert!(why.contains("not-the-sha-256-of-its-key"), "{why}");
    assert!(done.report.data_verification.expect("verified").is_equal());
    // the fallback's tool import emptied the backend first: the ghost is gone
    let nodes = sim
        .list_k8s_backend_page("nodes", "v1-31-1", 1000, None)
        .await
        .unwrap();
    assert!(nodes.objects.iter().all(|o| o.name != ghost.name));
}

/// A migration of the 1.25.1 controller with `options`.
fn request_1_25_1(options: RunOptions) -> CreateRun {
    CreateRun {
        kind: RunKind::Migrate,
        controller: ControllerRef::new(CHART_DEFAULT.0, CHART_DEFAULT.1),
        options: RunOptions {
            controller_timeout_seconds: 10,
            pod_timeout_seconds: 10,
            ..options
        },
    }
}

#[tokio::test]
async fn on_the_chart_default_1_25_1_the_default_options_migrate_with_the_delta_import() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimCluster::new(SimTiming::instant());
    let engine = engine(&dir, &sim).await;
    let (run, _) = engine
        .create_run(request_1_25_1(RunOptions::default()), &Actor::new("test"), None)
        .await
        .unwrap();
    let run = settle(&engine, &run.id).await;
    assert_eq!(run.state, RunState::Succeeded, "{:?}", run.error);
    let report = run.report.import_report.clone().expect("an import report");
    assert_eq!(report.mode, ImportMode::Delta, "{report:?}");
    assert!(
        report
            .mode_reason
            .as_deref()
            .is_some_and(|r| r.contains("LINSTOR 1.25.1 is recorded")),
        "{report:?}"
    );
    assert!(report.fallback.is_none(), "{report:?}");
    // the backup is LINSTOR 1.25.1's export, like the recording: 41 tables, data version v1-19-1
    let backup = run
        .backups
        .iter()
        .find(|b| b.purpose == "before-migration")
        .expect("a backup");
    let (_, path) = engine.backup(&backup.id).await.unwrap();
    let doc: linstor_migrator::linstor::export::ExportDocument =
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(
        (
            doc.linstor_version.as_str(),
            doc.data_version.as_str(),
            doc.tables.len()
        ),
        ("1.25.1", "v1-19-1", 41)
    );
    assert!(doc.tables.iter().any(|t| t.name == "LAYER_OPENFLEX_VOLUMES"));
    // every row is in the backend, verified directly; the controller runs on it
    let verification = run.report.data_verification.expect("verified");
    assert!(verification.is_equal());
    assert_eq!(verification.rows_compared as usize, doc.total_rows());
    let rows = sim.k8s_backend_rows();
    assert_eq!(rows.get("LAYER_OPENFLEX_VOLUMES"), Some(&0), "1.25.1's own CRDs");
    assert_eq!(rows.values().sum::<usize>(), doc.total_rows() + 4);
    assert!(run.report.cluster_verification.expect("verified").is_equal());
    let ctrl = engine
        .controllers()
        .await
        .unwrap()
        .into_iter()
        .find(|c| (c.namespace.as_str(), c.name.as_str()) == CHART_DEFAULT)
        .unwrap();
    assert_eq!(ctrl.backend.as_str(), "k8s");
    // only the schema-only import ran the tool's import
    assert_eq!(sim.effects().imports, 1);
    engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_second_migration_after_a_rolled_back_one_empties_the_1_25_1_backend_and_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimCluster::new(SimTiming::instant());
    let engine = engine(&dir, &sim).await;
    // the first: the pre-copy is written, then the API server refuses the delta's write in the
    // downtime (one row changed since the pre-copy) and the run rolls back
    let waiting = RunOptions {
        approve_before_downtime: true,
        ..RunOptions::default()
    };
    let (first, _) = engine
        .create_run(request_1_25_1(waiting), &Actor::new("test"), None)
        .await
        .unwrap();
    assert_eq!(settle(&engine, &first.id).await.state, RunState::Waiting);
    sim.change_etcd_data(CHART_DEFAULT.0, CHART_DEFAULT.1, |doc| {
        let props = doc
            .tables
            .iter()
            .position(|t| t.name == "PROPS_CONTAINERS")
            .unwrap();
        doc.tables[props].data[0].insert("prop_value".into(), serde_json::json!("changed"));
    });
    sim.inject(StepName::Import, Fault::Error);
    engine.approve(&first.id, &Actor::new("test")).await.unwrap();
    let first = settle(&engine, &first.id).await;
    assert_eq!(first.state, RunState::RolledBack, "{:?}", first.error);
    let left = first
        .report
        .k8s_backend_after_rollback
        .expect("what the backend holds is reported");
    assert!(left.total_objects() > 300, "the pre-copy stays: {left:?}");

    // the second finds the objects the first left (at v1-19-1, the version 1.25.1's CRDs
    // store), deletes every one of them, and migrates
    let (second, _) = engine
        .create_run(request_1_25_1(RunOptions::default()), &Actor::new("test"), None)
        .await
        .unwrap();
    let second = settle(&engine, &second.id).await;
    assert_eq!(second.state, RunState::Succeeded, "{:?}", second.error);
    let report = second.report.import_report.expect("an import report");
    assert_eq!(report.emptied_objects, left.total_objects(), "{report:?}");
    assert!(second.report.data_verification.expect("verified").is_equal());
    engine.shutdown(Duration::from_secs(5)).await;
}
