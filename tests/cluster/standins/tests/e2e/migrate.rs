//! Migrations: the full run with the downtime report (1), rollback after a failed import with
//! the copy throughput report (2), resume after the service was killed (3), a plain Deployment (7).
//! The full run and the rollback are also run on LINSTOR 1.25.1 and with each import mode
//! (`releases.rs`).

use std::time::Duration;

use linstor_fake::Release;
use linstor_migrator::linstor::export::ExportDocument;
use serde_json::{Value, json};

use super::install::{Installation, Shape};
use super::measure;
use super::observe::{self, PodClock};
use super::service::{Service, step_state};
use super::suite::suite;

pub(super) const RUN_TIMEOUT: Duration = Duration::from_secs(240);

/// The backup a run made before touching anything (not the verification export).
pub(super) async fn main_backup(svc: &Service, run: &Value) -> (Value, Vec<u8>, ExportDocument) {
    let id = run["report"]["backup_id"]
        .as_str()
        .expect("the run recorded its backup");
    let backup = run["backups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == id)
        .expect("the backup is listed")
        .clone();
    let bytes = svc.bytes(backup["url"].as_str().unwrap()).await;
    let doc: ExportDocument = serde_json::from_slice(&bytes).expect("the backup parses");
    (backup, bytes, doc)
}

/// Everything a successful migration must leave behind.
pub(super) async fn assert_migrated(inst: &Installation, svc: &Service, run: &Value, etcd_sha_before: &str) {
    let log = svc.log_text(run["id"].as_str().unwrap()).await;
    assert_eq!(run["state"], "succeeded", "run: {run:#}\nlog:\n{log}");
    if inst.shape == Shape::Piraeus {
        let cr = inst.linstor_controller().await;
        assert_eq!(cr.spec.db_connection_url.as_deref(), Some("k8s"));
        assert_eq!(cr.spec.replicas, Some(inst.replicas));
    }
    assert!(
        inst.config_toml().await.contains("connection_url = \"k8s\""),
        "{}",
        inst.config_toml().await
    );
    assert_eq!(
        inst.deployment().await.spec.unwrap().replicas,
        Some(inst.replicas)
    );
    inst.wait_controller_up(Duration::from_secs(30)).await;
    let state = observe::rest_state(&inst.rest_url).await;
    let serving: Vec<&Value> = state["pods"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["ready"] == true)
        .collect();
    assert!(
        !serving.is_empty() && serving.iter().all(|p| p["backend"] == "k8s"),
        "controller pods: {state:#}"
    );

    let (backup, bytes, doc) = main_backup(svc, run).await;
    assert_eq!(
        observe::sha256_hex(&bytes),
        backup["sha256"].as_str().unwrap(),
        "the backup's SHA-256"
    );
    assert_eq!(bytes.len() as i64, backup["size_bytes"].as_i64().unwrap());
    assert_eq!(doc.exported_from, "etcd");
    let diff = observe::k8s_backend_differences(&inst.client, &doc).await;
    assert!(diff.is_empty(), "k8s backend differs from the backup: {diff:?}");
    assert_eq!(
        inst.migration_objects().await,
        Vec::<String>::new(),
        "migration objects left"
    );
    let etcd_sha = observe::sha256_hex(&std::fs::read(&inst.dataset).unwrap());
    assert_eq!(etcd_sha, etcd_sha_before, "the etcd data changed");
    inst.assert_tool_runs_one_at_a_time_and_gone();
}

/// Test 1, with the downtime report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the loopback control plane: tests/cluster/e2e"]
async fn full_migration_through_the_api() {
    let inst = Installation::new("piraeus-datastore", Shape::Piraeus, 1).await;
    let etcd_sha = observe::sha256_hex(&std::fs::read(&inst.dataset).unwrap());
    let (clock, _watch) =
        PodClock::start(&inst.client, &inst.ns, "app.kubernetes.io/instance=piraeus-op-cs").await;
    let rest_up_at = measure::rest_up_recorder(inst.rest_url.clone());
    let svc = Service::start(&inst).await;

    let id = svc.start_ok("migrate", &inst.reference()).await;
    let run = svc.wait_final(&id, RUN_TIMEOUT).await;
    assert_migrated(&inst, &svc, &run, &etcd_sha).await;

    measure::report_downtime(&inst, &run, &clock, &rest_up_at);
}

/// A migration of `inst` with `options` that must succeed; returns the run.
pub(super) async fn migrate_ok(inst: &Installation, svc: &Service, options: Value) -> Value {
    let etcd_sha = observe::sha256_hex(&std::fs::read(&inst.dataset).unwrap());
    let (status, body) = svc.start_run("migrate", &inst.reference(), options).await;
    assert_eq!(status, 201, "POST /api/v1/runs: {body}");
    let id = body["id"].as_str().unwrap().to_string();
    let run = svc.wait_final(&id, RUN_TIMEOUT).await;
    assert_migrated(inst, svc, &run, &etcd_sha).await;
    let (_, _, backup) = main_backup(svc, &run).await;
    assert_eq!(
        (
            backup.linstor_version.as_str(),
            backup.data_version.as_str(),
            backup.tables.len()
        ),
        (
            inst.version.as_str(),
            inst.release.data_version(),
            inst.release.recorded().export_tables
        ),
        "the backup is the export of the controller's LINSTOR"
    );
    run
}

/// Test 2: the import fails (the tool is killed while importing) and the run rolls back. While
/// the import hangs, the migration pod holds the backup: copy throughput is measured then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the loopback control plane: tests/cluster/e2e"]
async fn failed_import_rolls_back() {
    failed_import_rolls_back_on("e2e-rollback", Release::V1_33_3).await;
}

/// Test 2 on a controller of LINSTOR `release`: the tool's import hangs and is killed.
pub(super) async fn failed_import_rolls_back_on(ns: &str, release: Release) {
    let inst = Installation::of_release(ns, release).await;
    inst.arm_fault("import:hang");
    let svc = Service::start(&inst).await;
    // the tool's import: the delta import runs no tool in the downtime
    let (status, body) = svc
        .start_run("migrate", &inst.reference(), json!({"import": "tool"}))
        .await;
    assert_eq!(status, 201, "POST /api/v1/runs: {body}");
    let id = body["id"].as_str().unwrap().to_string();
    svc.wait_step_running(&id, "import", RUN_TIMEOUT).await;
    let tool = suite().bins.tool.display().to_string();
    let backup_dir = inst.backup_dir.display().to_string();
    let needles = [tool.as_str(), "import-db", backup_dir.as_str()];
    observe::wait_for(Duration::from_secs(30), "the hanging import", || async {
        !observe::processes_with(&needles).is_empty()
    })
    .await;

    if release == Release::V1_33_3 {
        let run = svc.run(&id).await;
        measure::copy_out(&inst, &run).await;
    }

    observe::kill(&observe::processes_with(&needles));
    let run = svc.wait_final(&id, RUN_TIMEOUT).await;
    let log = svc.log_text(&id).await;
    assert_eq!(run["state"], "rolled_back", "run: {run:#}\nlog:\n{log}");
    assert_eq!(step_state(&run, "import"), "failed");
    assert!(
        run["error"].as_str().unwrap_or_default().contains("import"),
        "error: {}",
        run["error"]
    );
    let cr = inst.linstor_controller().await;
    assert_eq!(cr.spec.db_connection_url.as_deref(), Some(inst.etcd_url.as_str()));
    assert_eq!(cr.spec.replicas, Some(1));
    inst.wait_controller_up(Duration::from_secs(30)).await;
    let state = observe::rest_state(&inst.rest_url).await;
    assert!(
        state["pods"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["ready"] == true && p["backend"] == "etcd"),
        "{state:#}"
    );
    assert!(inst.config_toml().await.contains(&inst.etcd_url));
    assert_eq!(inst.migration_objects().await, Vec::<String>::new());
    inst.assert_tool_runs_one_at_a_time_and_gone();
}

/// Test 3: the service is SIGKILLed while exporting; after a restart the run resumes and succeeds.
/// The export the killed service started lives on (a dropped exec does not stop its process):
/// the restarted service must stop it before it runs the tool again, never beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the loopback control plane: tests/cluster/e2e"]
async fn killed_service_resumes_the_run() {
    let inst = Installation::new("e2e-resume", Shape::Piraeus, 1).await;
    let etcd_sha = observe::sha256_hex(&std::fs::read(&inst.dataset).unwrap());
    inst.arm_fault("export:hang");
    let mut svc = Service::start(&inst).await;
    let id = svc.start_ok("migrate", &inst.reference()).await;
    svc.wait_step_running(&id, "export", RUN_TIMEOUT).await;
    let tool = suite().bins.tool.display().to_string();
    let backup_dir = inst.backup_dir.display().to_string();
    let needles = [tool.as_str(), "export-db", backup_dir.as_str()];
    observe::wait_for(Duration::from_secs(30), "the hanging export", || async {
        !observe::processes_with(&needles).is_empty()
    })
    .await;
    // the process shows in /proc a moment before it has recorded its start: wait for both; the
    // hanging one is the downtime's export (step 4's pre-copy export ran and ended before it)
    let export_start = || {
        inst.tool_starts().into_iter().find(|s| {
            s.args.first().map(String::as_str) == Some("export-db")
                && s.args
                    .iter()
                    .any(|a| a.ends_with("/backup-before-migration.json"))
        })
    };
    observe::wait_for(Duration::from_secs(30), "the hanging export's record", || async {
        export_start().is_some()
    })
    .await;
    let hanging = export_start().expect("the stand-in recorded the hanging export");

    svc.kill().await;
    assert!(
        hanging.process.alive(),
        "the export outlives the killed service's exec connection, as in a real container"
    );
    svc.restart().await;

    let run = svc.wait_final(&id, RUN_TIMEOUT).await;
    assert_migrated(&inst, &svc, &run, &etcd_sha).await;
    let exports = inst
        .tool_runs()
        .iter()
        .filter(|(c, _, _)| c == "export-db")
        .count();
    // the hanging one, and the one after the restart (the verification reads the backend directly)
    assert!(
        exports >= 2,
        "the export ran again after the restart: {:?}",
        inst.tool_runs()
    );
    // assert_migrated checked that no two runs overlapped and none is left; and by name:
    assert!(
        !hanging.process.alive(),
        "the export the killed service left running is gone: {hanging:?}"
    );
    assert_eq!(
        observe::processes_with(&needles),
        Vec::<i32>::new(),
        "stand-in exports still running"
    );
}

/// Test 7: a controller Deployment no LinstorController owns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the loopback control plane: tests/cluster/e2e"]
async fn plain_deployment_migrates() {
    let inst = Installation::new("storage", Shape::Plain, 1).await;
    let etcd_sha = observe::sha256_hex(&std::fs::read(&inst.dataset).unwrap());
    let svc = Service::start(&inst).await;
    let id = svc.start_ok("migrate", &inst.reference()).await;
    let run = svc.wait_final(&id, RUN_TIMEOUT).await;
    assert_migrated(&inst, &svc, &run, &etcd_sha).await;
}
