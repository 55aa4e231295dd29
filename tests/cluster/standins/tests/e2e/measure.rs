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

/// One `linstor-database` run, as the timing wrapper recorded it (`Installation::tool_runs`).
#[derive(Debug, Clone)]
pub struct ToolRun {
    pub command: String,
    pub started: DateTime<Utc>,
    pub ended: DateTime<Utc>,
    pub exit: i32,
}

impl ToolRun {
    /// Seconds of this run between `from` and `to`.
    pub fn within(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
        seconds(self.started.max(from), self.ended.min(to)).max(0.0)
    }
}

/// Every `linstor-database` run of the installation so far.
pub fn tool_runs(inst: &Installation) -> Vec<ToolRun> {
    std::fs::read_to_string(&inst.tool_runs)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let at = |i: usize| f.get(i)?.parse::<i64>().ok().map(DateTime::from_timestamp_nanos);
            Some(ToolRun {
                command: f.first()?.to_string(),
                started: at(1)?,
                ended: at(2)?,
                exit: f.get(3)?.parse().ok()?,
            })
        })
        .collect()
}

/// A finished migration's downtime (stop begun -> controller ready, the run's `downtime`), split.
#[derive(Debug, Clone)]
pub struct Downtime {
    pub started: DateTime<Utc>,
    pub ended: DateTime<Utc>,
    /// Every step: name, milliseconds, whether it is part of the downtime.
    pub steps: Vec<(String, i64, bool)>,
    /// The `linstor-database` runs that overlap the downtime.
    pub tool_runs: Vec<ToolRun>,
    /// The controller's own start: its new pod created -> its REST API answers.
    pub controller_start: f64,
    /// Its new pod created -> Ready (KWOK), when seen.
    pub controller_pod_ready: Option<f64>,
    pub controller_pod: String,
}

impl Downtime {
    pub fn total(&self) -> f64 {
        seconds(self.started, self.ended)
    }

    /// Seconds of `linstor-database` runs inside the downtime.
    pub fn tool(&self) -> f64 {
        self.tool_runs
            .iter()
            .map(|r| r.within(self.started, self.ended))
            .sum()
    }

    /// What is neither the tool nor the controller's own start: the service's overhead.
    pub fn overhead(&self) -> f64 {
        self.total() - self.tool() - self.controller_start
    }
}

/// The downtime of a finished migration: the run's `downtime`, its steps, the tool runs inside
/// it and the controller's own start (its new pod created -> REST answers, from `clock` and the
/// moments `rest_up_at` saw the REST stand-in come up).
pub fn downtime(
    inst: &Installation,
    run: &Value,
    clock: &PodClock,
    rest_up_at: &Mutex<Vec<DateTime<Utc>>>,
) -> Downtime {
    let down = &run["downtime"];
    let (started, ended) = (
        observe::parse_time(&down["started_at"]),
        observe::parse_time(&down["ended_at"]),
    );
    let steps = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| {
            (
                step["name"].as_str().unwrap().to_string(),
                step["duration_ms"].as_i64().unwrap_or(0),
                step["downtime"] == true,
            )
        })
        .collect();
    let tool_runs = tool_runs(inst)
        .into_iter()
        .filter(|r| r.within(started, ended) > 0.0)
        .collect();
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
        .unwrap_or(ended);
    Downtime {
        started,
        ended,
        steps,
        tool_runs,
        controller_start: seconds(appeared, up),
        controller_pod_ready: ready.map(|r| seconds(appeared, r)),
        controller_pod: pod,
    }
}

/// Reports the downtime of a finished migration: total (the run's `downtime`), each step, each
/// `linstor-database` run inside it, the controller's own start (its new pod created -> REST
/// answers), and what is left: the service's overhead.
pub fn report_downtime(
    inst: &Installation,
    run: &Value,
    clock: &PodClock,
    rest_up_at: &Mutex<Vec<DateTime<Utc>>>,
) {
    let s = suite();
    let d = downtime(inst, run, clock, rest_up_at);
    s.report(&format!(
        "test 1 downtime: {:.3} s (stop begun {} -> controller ready {})",
        d.total(),
        d.started,
        d.ended
    ));
    for (name, ms, in_downtime) in &d.steps {
        s.report(&format!(
            "  step {name:<17} {ms:>7} ms{}",
            if *in_downtime { "  (downtime)" } else { "" }
        ));
    }
    for r in &d.tool_runs {
        s.report(&format!(
            "  linstor-database {}: {:.3} s (exit {})",
            r.command,
            seconds(r.started, r.ended),
            r.exit
        ));
    }
    s.report(&format!(
        "  controller start: {:.3} s (pod {} created -> Ready {} s -> REST answers)",
        d.controller_start,
        d.controller_pod,
        d.controller_pod_ready
            .map(|r| format!("{r:.3}"))
            .unwrap_or_else(|| "?".into())
    ));
    s.report(&format!(
        "  overhead outside linstor-database ({:.3} s) and the controller's start: {:.3} s (goal <= 2 s)",
        d.tool(),
        d.overhead()
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
    let files = [inst.backup_dir.join("backup-before-migration.json"), big];
    for file in &files {
        let t = copy_times(inst, &pod, file).await;
        s.report(&format!(
            "  {} ({} bytes), best of 3: service exec+cat {:.3} s = {:.1} MiB/s; the same with a 256 KiB \
             pipe {:.3} s = {:.1} MiB/s; kubectl cp {:.3} s = {:.1} MiB/s",
            file.file_name().unwrap().to_string_lossy(),
            t.bytes,
            t.service,
            t.mib_per_s(t.service),
            t.wide_pipe,
            t.mib_per_s(t.wide_pipe),
            t.kubectl,
            t.mib_per_s(t.kubectl)
        ));
    }
}

/// Seconds to copy one file out of a pod, best of 3 each.
#[derive(Debug, Clone, Copy)]
pub struct CopyTimes {
    pub bytes: u64,
    /// The service's own copy code (`KubeCluster::copy_from_pod`).
    pub service: f64,
    /// The same exec `cat` with a 256 KiB stdout pipe instead of kube-rs's 1 KiB.
    pub wide_pipe: f64,
    /// `kubectl cp`.
    pub kubectl: f64,
}

impl CopyTimes {
    pub fn mib_per_s(&self, secs: f64) -> f64 {
        self.bytes as f64 / 1048576.0 / secs
    }
}

/// Copies `file` (a path in container `migration` of `pod`, which KWOK's exec runs on this
/// machine) out three times each way, with the service's credentials; returns the best times.
pub async fn copy_times(inst: &Installation, pod: &str, file: &std::path::Path) -> CopyTimes {
    let s = suite();
    // straight to the API server, as `kubectl cp` goes
    let kc = kube::config::Kubeconfig::read_from(&s.direct_kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    let cluster = KubeCluster::from_config(config, KubeOptions::default()).unwrap();
    let path = file.display().to_string();
    let bytes = std::fs::metadata(file).unwrap().len();
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    let mut wide = Vec::new();
    for i in 0..3 {
        let dest = inst.dir.join(format!("copy-{i}"));
        let t = std::time::Instant::now();
        let mut out = tokio::fs::File::create(&dest).await.unwrap();
        let n = cluster
            .copy_from_pod(&inst.ns, pod, "migration", &path, &mut out)
            .await
            .unwrap();
        tokio::io::AsyncWriteExt::flush(&mut out).await.unwrap();
        ours.push(t.elapsed().as_secs_f64());
        assert_eq!(n, bytes);

        let dest = inst.dir.join(format!("big-pipe-{i}"));
        let t = std::time::Instant::now();
        let n = exec_cat(cluster.client(), &inst.ns, pod, &path, &dest, 256 * 1024).await;
        wide.push(t.elapsed().as_secs_f64());
        assert_eq!(n, bytes);

        let dest = inst.dir.join(format!("kubectl-cp-{i}"));
        let t = std::time::Instant::now();
        let status = tokio::process::Command::new(&s.kubectl)
            .env("KUBECONFIG", &s.direct_kubeconfig)
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
        assert_eq!(std::fs::metadata(&dest).unwrap().len(), bytes);
    }
    let best = |v: &[f64]| v.iter().copied().fold(f64::MAX, f64::min);
    CopyTimes {
        bytes,
        service: best(&ours),
        wide_pipe: best(&wide),
        kubectl: best(&theirs),
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
