//! The measurements the cluster tests report (`E2E_REPORT`): the controller's downtime in a
//! migration, split per step, and copy-out throughput from the migration pod.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Pod;
use kube::api::AttachParams;
use linstor_migrator::cluster::Cluster;
use linstor_migrator::cluster::kube::{KubeCluster, KubeOptions};
use serde_json::Value;

use super::install::Installation;
use super::observe::{self, PodClock};
use super::service::step_json;
use super::suite::suite;

fn seconds(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    (b - a).num_milliseconds() as f64 / 1000.0
}

/// Reports the downtime of a finished migration: total (the run's `downtime`), each step, each
/// `linstor-database` run, the controller's own start (its new pod created -> REST answers), and
/// what is left: the service's overhead.
pub fn report_downtime(
    inst: &Installation,
    run: &Value,
    clock: &PodClock,
    rest_up_at: &Mutex<Vec<DateTime<Utc>>>,
) {
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
    let start_step = step_json(run, "start_controller");
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
    let switch = step_json(run, "switch")["duration_ms"].as_i64().unwrap_or(0);
    s.report(&format!("    of which switch (waiting for the operator to render the ConfigMap, stand-in delay 1.5 s): {switch} ms"));
}

/// Records every moment the REST stand-in turns from down to up (polled every 25 ms).
pub fn rest_up_recorder(url: String) -> Arc<Mutex<Vec<DateTime<Utc>>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
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

/// Copy-out throughput of the backup (and of a 64 MiB file) from the migration pod: the
/// service's own copy step, the service's copy code called directly, and `kubectl cp`; all
/// through the API server's exec and KWOK.
pub async fn copy_out(inst: &Installation, run: &Value) {
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
