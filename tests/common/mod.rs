//! Test helpers: the real server on port 0 with a real SQLite file in a temporary directory and
//! the simulated cluster, a client that speaks its API, and an SSE reader.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use linstor_migrator::cluster::sim::{SimCluster, SimTiming};
use linstor_migrator::db::Db;
use linstor_migrator::engine::{Engine, EngineSettings};
use linstor_migrator::http::{AppState, AuthMode, HttpSettings, serve};
use linstor_migrator::metrics::Metrics;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The token of the `ops` caller.
pub const TOKEN: &str = "test-token-ops-7f3a9c";
/// The token of the `ci-bot` caller.
pub const OTHER_TOKEN: &str = "test-token-ci-bot";
pub const CONTROLLER: &str = "piraeus-datastore/piraeus-op-cs";
pub const PLAIN_CONTROLLER: &str = "storage/linstor-controller";
/// Longest any test waits for a state.
pub const PATIENCE: Duration = Duration::from_secs(60);

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub engine: Engine,
    pub data_dir: PathBuf,
    /// Keeps the directory alive for the test.
    pub _dir: Option<Arc<tempfile::TempDir>>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

pub fn settings() -> HttpSettings {
    let mut s = HttpSettings::new(AuthMode::Token);
    s.tokens = Some(format!("ops:{TOKEN},ci-bot:{OTHER_TOKEN}"));
    s.sse_keep_alive = Duration::from_secs(1);
    s
}

/// A server with token auth on a fresh data directory.
pub async fn spawn_app() -> TestApp {
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let path = dir.path().to_path_buf();
    let mut app = spawn_app_in(&path, EngineSettings::new(path.clone()), settings(), sim()).await;
    app._dir = Some(dir);
    app
}

/// A fresh simulated cluster.
pub fn sim() -> Arc<SimCluster> {
    Arc::new(SimCluster::new(SimTiming::instant()))
}

/// A server on `data_dir` (which may hold the database of a previous server) and `cluster`.
pub async fn spawn_app_in(
    data_dir: &Path,
    engine_settings: EngineSettings,
    http: HttpSettings,
    cluster: Arc<SimCluster>,
) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    spawn_app_on(listener, data_dir, engine_settings, http, cluster).await
}

/// A server like [`spawn_app_in`] on the address of `before` (stopped): a restart under the
/// pages a browser has open.
pub async fn restart_app(
    before: TestApp,
    data_dir: &Path,
    engine_settings: EngineSettings,
    http: HttpSettings,
    cluster: Arc<SimCluster>,
) -> TestApp {
    let addr: std::net::SocketAddr = before
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("address");
    let dir = before._dir.clone();
    before.stop().await;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("bind the same address");
    let mut app = spawn_app_on(listener, data_dir, engine_settings, http, cluster).await;
    app._dir = dir;
    app
}

async fn spawn_app_on(
    listener: tokio::net::TcpListener,
    data_dir: &Path,
    engine_settings: EngineSettings,
    http: HttpSettings,
    cluster: Arc<SimCluster>,
) -> TestApp {
    let db = Db::open(data_dir).await.expect("database");
    let engine = Engine::start(db, cluster, engine_settings, Arc::new(Metrics::default()))
        .await
        .expect("engine");
    let state = AppState::new(engine.clone(), http).expect("state");
    let addr = listener.local_addr().expect("address");
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, state, async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    TestApp {
        base: format!("http://{addr}"),
        client,
        engine,
        data_dir: data_dir.to_path_buf(),
        _dir: None,
        stop: Some(stop),
        server: Some(server),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A GET as `ops`.
    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path)).bearer_auth(TOKEN)
    }

    /// A POST of `body` as `ops`.
    pub fn post(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.client.post(self.url(path)).bearer_auth(TOKEN).json(body)
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let res = self.get(path).send().await.expect("request");
        assert_eq!(res.status(), 200, "GET {path}");
        res.json().await.expect("JSON")
    }

    /// Starts a run and returns its JSON (asserts 201).
    pub async fn start(&self, kind: &str, controller: &str, options: Value) -> Value {
        let body = serde_json::json!({"kind": kind, "controller": controller, "options": options});
        let res = self.post("/api/v1/runs", &body).send().await.expect("request");
        let status = res.status();
        let json: Value = res.json().await.expect("JSON");
        assert_eq!(status, 201, "start {kind}: {json}");
        json
    }

    /// Polls the run until `done` holds for it.
    pub async fn wait_for(&self, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let run = self.get_json(&format!("/api/v1/runs/{id}")).await;
            if done(&run) {
                return run;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "run {id} never reached {what}: {run:#}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls until the run is in `state`; fails at once when it ends in another.
    pub async fn wait_state(&self, id: &str, state: &str) -> Value {
        let run = self
            .wait_for(id, state, |r| {
                r["state"] == state
                    || [
                        "succeeded",
                        "failed",
                        "cancelled",
                        "rolled_back",
                        "rollback_failed",
                    ]
                    .contains(&r["state"].as_str().unwrap_or(""))
            })
            .await;
        assert_eq!(run["state"], state, "run {id} ended otherwise: {run:#}");
        run
    }

    /// Stops the server and the engine (runs stay resumable).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
        }
        self.engine.shutdown(Duration::from_secs(10)).await;
    }
}

/// One Server-Sent Event.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: String,
    pub data: String,
}

impl SseEvent {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).expect("event data is JSON")
    }
    pub fn seq(&self) -> i64 {
        self.id
            .as_deref()
            .expect("event has an id")
            .parse()
            .expect("numeric id")
    }
}

/// Reads `text/event-stream` the way a browser does (comments skipped).
pub struct SseReader {
    stream: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: String,
    pub comments: usize,
}

impl SseReader {
    pub fn new(res: reqwest::Response) -> Self {
        Self {
            stream: res.bytes_stream().boxed(),
            buf: String::new(),
            comments: 0,
        }
    }

    /// The next event; `None` when the server closed the stream.
    pub async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut ev = SseEvent {
                    id: None,
                    event: "message".into(),
                    data: String::new(),
                };
                let mut has_field = false;
                for line in block.lines() {
                    // `lines()` yields the block's terminating empty line too: it is no field, and
                    // counting it as one turned every keep-alive comment into an empty event
                    if line.is_empty() {
                        continue;
                    }
                    if line.starts_with(':') {
                        self.comments += 1;
                        continue;
                    }
                    let (field, value) = line
                        .split_once(':')
                        .map_or((line, ""), |(f, v)| (f, v.strip_prefix(' ').unwrap_or(v)));
                    has_field = true;
                    match field {
                        "id" => ev.id = Some(value.to_string()),
                        "event" => ev.event = value.to_string(),
                        "data" => {
                            if !ev.data.is_empty() {
                                ev.data.push('\n');
                            }
                            ev.data.push_str(value);
                        }
                        _ => {}
                    }
                }
                if has_field {
                    return Some(ev);
                }
                continue;
            }
            let chunk = tokio::time::timeout(PATIENCE, self.stream.next())
                .await
                .expect("event stream stalled")?;
            self.buf
                .push_str(&String::from_utf8_lossy(&chunk.expect("stream chunk")).replace("\r\n", "\n"));
        }
    }
}
