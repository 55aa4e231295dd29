//! Migrations: the full run with the downtime report (1), rollback after a failed import with
//! the copy throughput report (2), resume after the service was killed (3), a plain Deployment (7).

use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Pod;
use kube::api::AttachParams;
use linstor_migrator::cluster::Cluster;
use linstor_migrator::cluster::kube::{KubeCluster, KubeOptions};
use linstor_migrator::linstor::export::ExportDocument;
use serde_json::Value;

use super::install::{Installation, Shape};
use super::observe::{self, PodClock};
use super::service::{Service, step_json, step_state};
use super::suite::suite;

const RUN_TIMEOUT: Duration = Duration::from_secs(240);

/// The backup a run made before touching anything (not the verification export).
async fn main_backup(svc: &Service, run: &Value) -> (Value, Vec<u8>, ExportDocument) {
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
async fn assert_migrated(inst: &Installation, svc: &Service, run: &Value, etcd_sha_before: &str) {
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
}

fn seconds(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    (b - a).num_milliseconds() as f64 / 1000.0
}

/// Test 1, with the downtime report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the loopback control plane: tests/cluster/e2e"]
async fn full_migration_through_the_api() {
    let inst = Installation::new("piraeus-datastore", Shape::Piraeus, 1).await;
    let etcd_sha = observe::sha256_hex(&std::fs::read(&inst.dataset).unwrap());
    let (clock, _watch) =
        PodClock::start(&inst.client, &inst.ns, "app.kubernetes.io/instance=piraeus-op-cs").await;
    let rest_up_at = rest_up_recorder(inst.rest_url.clone());
    let svc = Service::start(&inst).await;

    let id = svc.start_ok("migrate", &inst.reference()).await;
    let run = svc.wait_final(&id, RUN_TIMEOUT).await;
    assert_migrated(&inst, &svc, &run, &etcd_sha).await;

    // the downtime, split
    let s = suite();
    let down = &run["downtime"];
    let (down_start, down_end) = (
        observe::parse_time(&down["started_at"]),
        observe::parse_time(&down["ended_at"]),
    );
    let total = seconds(down_start, down_end);
    s.report(&format!(
        "test 1 downtime: {total:.3} s (stop begun {down_start} -> controller ready {down_end})"
    ));
    for step in run["steps"].as_array().unwrap() {
        s.report(&format!(
            "  step {:<17} {:>7} ms{}",
            step["name"].as_str().unwrap(),
            step["duration_ms"].as_i64().unwrap_or(0),
            if step["downtime"] == true {
                "  (downtime)"
            } else {
                ""
            }
        ));
    }
    let tools = inst.tool_runs();
    let tool_total: f64 = tools.iter().map(|(_, secs, _)| secs).sum();
    for (cmd, secs, rc) in &tools {
        s.report(&format!("  linstor-database {cmd}: {secs:.3} s (exit {rc})"));
    }
    let start_step = step_json(&run, "start_controller");
    let start_begun = observe::parse_time(&start_step["started_at"]);
    let (pod, appeared, ready) = clock
        .first_after(start_begun)
        .expect("a controller pod started after the switch");
    let up = rest_up_at
        .lock()
        .unwrap()
        .iter()
        .copied()
        .find(|t| *t >= appeared)
        .unwrap_or(down_end);
    let controller_start = seconds(appeared, up);
    s.report(&format!(
        "  controller start: {controller_start:.3} s (pod {pod} created -> Ready {} s -> REST answers)",
        ready
            .map(|r| format!("{:.3}", seconds(appeared, r)))
            .unwrap_or_else(|| "?".into())
    ));
    let overhead = total - tool_total - controller_start;
    s.report(&format!(
        "  overhead outside linstor-database ({tool_total:.3} s) and the controller's start: {overhead:.3} s (goal <= 2 s)"
    ));
    let switch = step_json(&run, "switch")["duration_ms"].as_i64().unwrap_or(0);
    s.report(&format!("    of which switch (waiting for the operator to render the ConfigMap, stand-in delay 1.5 s): {switch} ms"));
}

/// Records every moment the REST stand-in turns from down to up (polled every 25 ms).
fn rest_up_recorder(url: String) -> std::sync::Arc<std::sync::Mutex<Vec<DateTime<Utc>>>> {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let out = seen.clone();
    tokio::spawn(async move {
        let mut was_up = true;
        loop {
            let up = observe::rest_up(&url).await;
            if up && !was_up {
                seen.lock().unwrap().push(Utc::now());
            }
            was_up = up;
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    });
    out
}

/// Test 2: the import fails (the tool is killed while importing) and the run rolls back. While
/// the import hangs, the migration pod holds the backup: copy throughput is measured then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the loopback control plane: tests/cluster/e2e"]
async fn failed_import_rolls_back() {
    let inst = Installation::new("e2e-rollback", Shape::Piraeus, 1).await;
    inst.arm_fault("import:hang");
    let svc = Service::start(&inst).await;
    let id = svc.start_ok("migrate", &inst.reference()).await;
    svc.wait_step_running(&id, "import", RUN_TIMEOUT).await;
    let tool = suite().bins.tool.display().to_string();
    let backup_dir = inst.backup_dir.display().to_string();
    let needles = [tool.as_str(), "import-db", backup_dir.as_str()];
    observe::wait_for(Duration::from_secs(30), "the hanging import", || async {
        !observe::processes_with(&needles).is_empty()
    })
    .await;

    let run = svc.run(&id).await;
    measure_copy(&inst, &run).await;

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
}

/// Copy-out throughput of the backup (and of a 64 MiB file) from the migration pod: the
/// service's own copy step, the service's copy code called directly, and `kubectl cp`; all
/// through the API server's exec and KWOK.
async fn measure_copy(inst: &Installation, run: &Value) {
    let s = suite();
    let pod = run["report"]["migration_pod"]
        .as_str()
        .expect("the migration pod")
        .to_string();
    let backup = run["backups"]
        .as_array()
        .unwrap()
        .first()
        .expect("the backup is recorded")
        .clone();
    let size = backup["size_bytes"].as_i64().unwrap() as f64;
    let step_ms = step_json(run, "copy_backup")["duration_ms"].as_i64().unwrap() as f64;
    let mib = |bytes: f64, secs: f64| bytes / 1048576.0 / secs;
    s.report(&format!(
        "test 2 copy-out: backup {} bytes; service copy_backup step {step_ms:.0} ms = {:.1} MiB/s (incl. fsync, SHA-256, validation)",
        size as i64,
        mib(size, step_ms / 1000.0)
    ));

    let big = inst.backup_dir.join("big.bin");
    let block: Vec<u8> = (0..1024 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&big, block.repeat(64)).unwrap();
    let kc = kube::config::Kubeconfig::read_from(&s.service_kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    let cluster = KubeCluster::from_config(config, KubeOptions::default()).unwrap();
    let files = [inst.backup_dir.join("backup-before-migration.json"), big];
    for file in &files {
        let path = file.display().to_string();
        let bytes = std::fs::metadata(file).unwrap().len() as f64;
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        let mut wide = Vec::new();
        for i in 0..3 {
            let dest = inst.dir.join(format!("copy-{i}"));
            let t = std::time::Instant::now();
            let mut out = tokio::fs::File::create(&dest).await.unwrap();
            let n = cluster
                .copy_from_pod(&inst.ns, &pod, "migration", &path, &mut out)
                .await
                .unwrap();
            tokio::io::AsyncWriteExt::flush(&mut out).await.unwrap();
            ours.push(t.elapsed().as_secs_f64());
            assert_eq!(n as f64, bytes);

            let dest = inst.dir.join(format!("big-pipe-{i}"));
            let t = std::time::Instant::now();
            let n = exec_cat(cluster.client(), &inst.ns, &pod, &path, &dest, 256 * 1024).await;
            wide.push(t.elapsed().as_secs_f64());
            assert_eq!(n as f64, bytes);

            let dest = inst.dir.join(format!("kubectl-cp-{i}"));
            let t = std::time::Instant::now();
            let status = tokio::process::Command::new(&s.kubectl)
                .env("KUBECONFIG", &s.service_kubeconfig)
                .args(["cp", "-c", "migration", &format!("{}/{pod}:{path}", inst.ns)])
                .arg(&dest)
                .output()
                .await
                .unwrap();
            theirs.push(t.elapsed().as_secs_f64());
            assert!(
                status.status.success(),
                "kubectl cp: {}",
                String::from_utf8_lossy(&status.stderr)
            );
            assert_eq!(std::fs::metadata(&dest).unwrap().len() as f64, bytes);
        }
        let best = |v: &[f64]| v.iter().copied().fold(f64::MAX, f64::min);
        s.report(&format!(
            "  {} ({} bytes), best of 3: service exec+cat {:.3} s = {:.1} MiB/s; the same with a 256 KiB \
             pipe {:.3} s = {:.1} MiB/s; kubectl cp {:.3} s = {:.1} MiB/s",
            file.file_name().unwrap().to_string_lossy(),
            bytes as i64,
            best(&ours),
            mib(bytes, best(&ours)),
            best(&wide),
            mib(bytes, best(&wide)),
            best(&theirs),
            mib(bytes, best(&theirs))
        ));
    }
}

/// `cat` over kube-rs exec as the service does it, but with a `buf`-sized stdout pipe (kube-rs
/// defaults to 1 KiB) and a buffered copy: what a larger pipe would gain.
async fn exec_cat(
    client: &kube::Client,
    ns: &str,
    pod: &str,
    path: &str,
    dest: &std::path::Path,
    buf: usize,
) -> u64 {
    let api: kube::Api<Pod> = kube::Api::namespaced(client.clone(), ns);
    let params = AttachParams::default()
        .container("migration")
        .stdin(false)
        .stdout(true)
        .stderr(false)
        .max_stdout_buf_size(buf);
    let mut process = api.exec(pod, vec!["cat", "--", path], &params).await.unwrap();
    let stdout = process.stdout().unwrap();
    let mut file = tokio::fs::File::create(dest).await.unwrap();
    let n = tokio::io::copy_buf(&mut tokio::io::BufReader::with_capacity(buf, stdout), &mut file)
        .await
        .unwrap();
    process.join().await.unwrap();
    n
}

/// Test 3: the service is SIGKILLed while exporting; after a restart the run resumes and succeeds.
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

    svc.kill().await;
    // the exec'd export outlives the exec connection, as it would in a real container
    observe::kill(&observe::processes_with(&needles));
    svc.restart().await;

    let run = svc.wait_final(&id, RUN_TIMEOUT).await;
    assert_migrated(&inst, &svc, &run, &etcd_sha).await;
    let exports = inst
        .tool_runs()
        .iter()
        .filter(|(c, _, _)| c == "export-db")
        .count();
    assert!(
        exports >= 3,
        "the export ran again after the restart (and once for verification): {:?}",
        inst.tool_runs()
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
