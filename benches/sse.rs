//! Benchmark of the live paths: 200 Server-Sent Events subscribers on one demo migration (delivery
//! latency from the engine's write of an event to a client's read of it), then
//! `GET /api/v1/runs/{id}` under concurrent load (throughput and latency), and the resident
//! memory of the idle server.
//!
//! `cargo bench --bench sse` runs it against the release binary (`serve --demo`, token auth) as a
//! child process on a free loopback port with a temporary data directory; `-- --in-process` runs
//! the server inside the benchmark instead (no memory figures then). It only talks to 127.0.0.1
//! and stops by itself after about a minute. Under `cargo test` it does nothing.
//!
//! Latency is the client's wall clock at the moment it has parsed the event minus the event's
//! `at`, which the engine sets just before it stores and publishes the event: same machine, same
//! clock.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use serde_json::{Value, json};
use tokio::task::JoinSet;

const SUBSCRIBERS: usize = 200;
const WORKERS: usize = 32;
const LOAD_FOR: Duration = Duration::from_secs(10);
/// How long the server sits idle before its memory is read.
const IDLE_FOR: Duration = Duration::from_secs(5);
const TOKEN: &str = "bench-token-4c1d9e";
const CONTROLLER: &str = "piraeus-datastore/piraeus-op-cs";
/// Longest the benchmark waits for anything (the demo migration takes about 40 s).
const PATIENCE: Duration = Duration::from_secs(180);

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("sse: a benchmark; run it with `cargo bench --bench sse` (nothing to do under cargo test)");
        return Ok(());
    }
    let in_process = args.iter().any(|a| a == "--in-process");
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(bench(in_process))
}

async fn bench(in_process: bool) -> anyhow::Result<()> {
    let server = match in_process {
        true => Server::in_process().await?,
        false => Server::child().await?,
    };
    let result = measure(&server).await;
    let describe = server.describe.clone();
    server.stop().await;
    result?.print(&describe);
    Ok(())
}

struct Report {
    idle_rss_kib: Option<u64>,
    peak_rss_kib: Option<u64>,
    run_state: String,
    run_seconds: f64,
    sse: Stats,
    log_events_min: usize,
    log_events_max: usize,
    streams_ended: usize,
    get: Stats,
    get_errors: usize,
}

async fn measure(server: &Server) -> anyhow::Result<Report> {
    let client = reqwest::Client::builder().timeout(PATIENCE).no_proxy().build()?;
    wait_live(&client, &server.base).await?;

    // idle memory: after start-up and a few quiet seconds
    tokio::time::sleep(IDLE_FOR).await;
    let idle_rss_kib = server.pid.and_then(|p| proc_status(p, "VmRSS"));

    // 200 subscribers on one migration
    let run = start_run(&client, &server.base).await?;
    let id = run["id"].as_str().context("run without id")?.to_string();
    let started = Instant::now();
    let url = format!("{}/api/v1/runs/{id}/events", server.base);
    let mut subscribers = JoinSet::new();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(SUBSCRIBERS);
    for _ in 0..SUBSCRIBERS {
        subscribers.spawn(subscribe(client.clone(), url.clone(), ready_tx.clone()));
    }
    drop(ready_tx);
    for _ in 0..SUBSCRIBERS {
        ready_rx.recv().await.context("a subscriber failed to connect")?;
    }
    // events written before every stream was open arrive as history: not a live delivery
    let all_connected = Utc::now();
    let mut latencies = Vec::new();
    let (mut log_events_min, mut log_events_max, mut streams_ended) = (usize::MAX, 0, 0);
    while let Some(r) = subscribers.join_next().await {
        let seen = r.context("subscriber panicked")??;
        log_events_min = log_events_min.min(seen.log_events);
        log_events_max = log_events_max.max(seen.log_events);
        streams_ended += usize::from(seen.ended);
        latencies.extend(
            seen.deliveries
                .iter()
                .filter(|(at, _)| *at > all_connected)
                .map(|(_, ms)| *ms),
        );
    }
    let run_seconds = started.elapsed().as_secs_f64();
    let run = get_json(&client, &format!("{}/api/v1/runs/{id}", server.base)).await?;
    let run_state = run["state"].as_str().unwrap_or("?").to_string();

    // reads of the finished run under load
    let (get, get_errors) = load(&client, &format!("{}/api/v1/runs/{id}", server.base)).await;
    let peak_rss_kib = server.pid.and_then(|p| proc_status(p, "VmHWM"));

    Ok(Report {
        idle_rss_kib,
        peak_rss_kib,
        run_state,
        run_seconds,
        sse: Stats::of(latencies),
        log_events_min,
        log_events_max,
        streams_ended,
        get,
        get_errors,
    })
}

async fn start_run(client: &reqwest::Client, base: &str) -> anyhow::Result<Value> {
    let res = client
        .post(format!("{base}/api/v1/runs"))
        .bearer_auth(TOKEN)
        .json(&json!({"kind": "migrate", "controller": CONTROLLER, "options": {}}))
        .send()
        .await?;
    let status = res.status();
    let body: Value = res.json().await?;
    if status != 201 {
        bail!("starting the run answered {status}: {body}");
    }
    Ok(body)
}

async fn get_json(client: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    let res = client.get(url).bearer_auth(TOKEN).send().await?;
    let status = res.status();
    if status != 200 {
        bail!("GET {url} answered {status}");
    }
    Ok(res.json().await?)
}

async fn wait_live(client: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(res) = client.get(format!("{base}/livez")).send().await
            && res.status() == 200
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the server at {base} did not come up");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What one subscriber saw.
struct Seen {
    /// Each `log` event's write time and its delivery latency in milliseconds.
    deliveries: Vec<(DateTime<Utc>, f64)>,
    log_events: usize,
    ended: bool,
}

async fn subscribe(
    client: reqwest::Client,
    url: String,
    ready: tokio::sync::mpsc::Sender<()>,
) -> anyhow::Result<Seen> {
    let res = client
        .get(&url)
        .bearer_auth(TOKEN)
        .header("accept", "text/event-stream")
        .send()
        .await?;
    if res.status() != 200 {
        bail!("GET {url} answered {}", res.status());
    }
    let _ = ready.send(()).await;
    drop(ready);
    let mut stream = res.bytes_stream();
    let mut buf = String::new();
    let mut seen = Seen {
        deliveries: Vec::new(),
        log_events: 0,
        ended: false,
    };
    while let Some(chunk) = tokio::time::timeout(PATIENCE, stream.next())
        .await
        .context("event stream stalled")?
    {
        buf.push_str(&String::from_utf8_lossy(&chunk?));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let (mut event, mut data) = ("message", String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event = if v.trim() == "log" {
                        "log"
                    } else if v.trim() == "end" {
                        "end"
                    } else {
                        "other"
                    };
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.strip_prefix(' ').unwrap_or(v));
                }
            }
            match event {
                "log" => {
                    let now = Utc::now();
                    let ev: Value = serde_json::from_str(&data)?;
                    let at: DateTime<Utc> = ev["at"].as_str().context("log event without `at`")?.parse()?;
                    let ms = (now - at).num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0;
                    seen.deliveries.push((at, ms));
                    seen.log_events += 1;
                }
                "end" => {
                    seen.ended = true;
                    return Ok(seen);
                }
                _ => {}
            }
        }
    }
    Ok(seen)
}

/// `WORKERS` loops of GET `url` for `LOAD_FOR`; latencies of the successful ones and the number
/// of failures.
async fn load(client: &reqwest::Client, url: &str) -> (Stats, usize) {
    let until = Instant::now() + LOAD_FOR;
    let mut workers = JoinSet::new();
    for _ in 0..WORKERS {
        let (client, url) = (client.clone(), url.to_string());
        workers.spawn(async move {
            let (mut ms, mut errors) = (Vec::new(), 0usize);
            while Instant::now() < until {
                let t = Instant::now();
                let ok = match client.get(&url).bearer_auth(TOKEN).send().await {
                    Ok(res) if res.status() == 200 => res.bytes().await.is_ok(),
                    _ => false,
                };
                match ok {
                    true => ms.push(t.elapsed().as_secs_f64() * 1000.0),
                    false => errors += 1,
                }
            }
            (ms, errors)
        });
    }
    let (mut all, mut errors) = (Vec::new(), 0);
    while let Some(Ok((ms, e))) = workers.join_next().await {
        all.extend(ms);
        errors += e;
    }
    let mut stats = Stats::of(all);
    stats.per_second = stats.count as f64 / LOAD_FOR.as_secs_f64();
    (stats, errors)
}

#[derive(Default)]
struct Stats {
    count: usize,
    p50: f64,
    p99: f64,
    max: f64,
    per_second: f64,
}

impl Stats {
    fn of(mut ms: Vec<f64>) -> Stats {
        if ms.is_empty() {
            return Stats::default();
        }
        ms.sort_by(f64::total_cmp);
        let at = |q: f64| ms[((q * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1];
        Stats {
            count: ms.len(),
            p50: at(0.50),
            p99: at(0.99),
            max: ms[ms.len() - 1],
            per_second: 0.0,
        }
    }
}

impl Report {
    fn print(&self, server: &str) {
        let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
        let mib =
            |kib: Option<u64>| kib.map_or("n/a".to_string(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
        println!();
        println!("linstor-migrator benchmark — server: {server}; {cpus} CPUs; client in the same machine");
        println!();
        println!("| measurement | value |");
        println!("|---|---|");
        println!(
            "| idle resident memory (VmRSS after start-up + {} s) | {} |",
            IDLE_FOR.as_secs(),
            mib(self.idle_rss_kib)
        );
        println!(
            "| demo migration | {} in {:.1} s |",
            self.run_state, self.run_seconds
        );
        println!(
            "| SSE subscribers | {SUBSCRIBERS} ({} streams ended with `end`) |",
            self.streams_ended
        );
        println!(
            "| `log` events per subscriber | {}{} |",
            self.log_events_min,
            if self.log_events_max != self.log_events_min {
                format!("–{}", self.log_events_max)
            } else {
                String::new()
            }
        );
        println!("| live deliveries measured | {} |", self.sse.count);
        println!("| SSE delivery latency p50 | {:.2} ms |", self.sse.p50);
        println!("| SSE delivery latency p99 | {:.2} ms |", self.sse.p99);
        println!("| SSE delivery latency max | {:.2} ms |", self.sse.max);
        println!(
            "| `GET /api/v1/runs/{{id}}`: {WORKERS} workers for {} s | {} requests, {} errors |",
            LOAD_FOR.as_secs(),
            self.get.count,
            self.get_errors
        );
        println!("| GET throughput | {:.0} requests/s |", self.get.per_second);
        println!("| GET latency p50 | {:.2} ms |", self.get.p50);
        println!("| GET latency p99 | {:.2} ms |", self.get.p99);
        println!("| GET latency max | {:.2} ms |", self.get.max);
        println!(
            "| peak resident memory (VmHWM, after the load) | {} |",
            mib(self.peak_rss_kib)
        );
        println!();
        let sse_ok = self.sse.p99 < 50.0;
        let rss_ok = self.idle_rss_kib.is_none_or(|k| k < 30 * 1024);
        println!(
            "goals: p99 SSE delivery < 50 ms: {}; idle resident memory < 30 MB: {}",
            if sse_ok { "met" } else { "MISSED" },
            match self.idle_rss_kib {
                None => "not measured",
                Some(_) if rss_ok => "met",
                Some(_) => "MISSED",
            }
        );
    }
}

/// A field of /proc/<pid>/status in KiB.
fn proc_status(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(&format!("{field}:")))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The server under test.
struct Server {
    base: String,
    describe: String,
    pid: Option<u32>,
    kind: ServerKind,
    _dir: tempfile::TempDir,
}

enum ServerKind {
    Child(tokio::process::Child),
    InProcess {
        stop: tokio::sync::oneshot::Sender<()>,
        task: tokio::task::JoinHandle<anyhow::Result<()>>,
        engine: linstor_migrator::engine::Engine,
    },
}

impl Server {
    /// The release binary, `serve --demo` with token auth on a free loopback port.
    async fn child() -> anyhow::Result<Server> {
        let bin = PathBuf::from(env!("CARGO_BIN_EXE_linstor-migrator"));
        let dir = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = tokio::process::Command::new(&bin)
            .args(["serve", "--demo", "--auth", "token", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(dir.path())
            .env("LINSTOR_MIGRATOR_TOKEN", TOKEN)
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        Ok(Server {
            base: format!("http://127.0.0.1:{port}"),
            describe: format!("{} serve --demo (child process)", bin.display()),
            pid: child.id(),
            kind: ServerKind::Child(child),
            _dir: dir,
        })
    }

    /// The library's server inside this process, on the demo's simulated cluster.
    async fn in_process() -> anyhow::Result<Server> {
        use linstor_migrator::cluster::sim::{SimCluster, SimTiming};
        use linstor_migrator::http::{AppState, AuthMode, HttpSettings, serve};
        let dir = tempfile::tempdir()?;
        let db = linstor_migrator::db::Db::open(dir.path()).await?;
        let engine = linstor_migrator::engine::Engine::start(
            db,
            Arc::new(SimCluster::new(SimTiming::demo())),
            linstor_migrator::engine::EngineSettings::new(dir.path().to_path_buf()),
            Arc::new(linstor_migrator::metrics::Metrics::default()),
        )
        .await?;
        let mut settings = HttpSettings::new(AuthMode::Token);
        settings.tokens = Some(TOKEN.to_string());
        let state = AppState::new(engine.clone(), settings)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, state, async {
            let _ = stopped.await;
        }));
        Ok(Server {
            base: format!("http://{addr}"),
            describe: "in-process router (SimTiming::demo)".into(),
            pid: None,
            kind: ServerKind::InProcess { stop, task, engine },
            _dir: dir,
        })
    }

    async fn stop(self) {
        match self.kind {
            ServerKind::Child(mut child) => {
                // SIGTERM first: the server stops the way it does in a pod
                if let Some(pid) = child.id() {
                    let _ = tokio::process::Command::new("kill")
                        .args(["-TERM", &pid.to_string()])
                        .status()
                        .await;
                }
                if tokio::time::timeout(Duration::from_secs(15), child.wait())
                    .await
                    .is_err()
                {
                    let _ = child.kill().await;
                }
            }
            ServerKind::InProcess { stop, task, engine } => {
                let _ = stop.send(());
                let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
                engine.shutdown(Duration::from_secs(10)).await;
            }
        }
    }
}
