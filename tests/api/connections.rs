//! Connections are closed when they idle and limited in number (issue 19 item 3): a connection
//! that sends no complete request head within the header timeout (idle, half-sent, or idle
//! between keep-alive requests) is closed, so is one whose body stalls past the body timeout;
//! at the connection limit the longest-idle connection makes room, so `/livez` answers while
//! idle connections fill the server; when every connection is busy a new one is closed at once;
//! event streams are not idle and outlive the header timeout; and with a low open-file limit the
//! connection limit stays below it.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use linstor_migrator::engine::EngineSettings;
use linstor_migrator::http::HttpSettings;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::common::{self, CONTROLLER, TOKEN, TestApp, spawn_app_in};

async fn app_with(http: HttpSettings) -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let app = spawn_app_in(&path, EngineSettings::new(path.clone()), http, common::sim()).await;
    (app, dir)
}

fn addr(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_string()
}

/// Reads until the server closes the connection or `deadline` passes; returns what it sent, or
/// `None` when the connection was still open at the deadline.
async fn closed_by(stream: &mut TcpStream, deadline: tokio::time::Instant) -> Option<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&got).to_string()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Reads one response with a `Content-Length` body (enough for `/livez`).
async fn read_response(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&got).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let len: usize = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_string)
                })
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if got.len() >= end + 4 + len {
                return text;
            }
        }
        let n = tokio::time::timeout(common::PATIENCE, stream.read(&mut buf))
            .await
            .expect("a response")
            .unwrap();
        assert!(n > 0, "closed before the response ended: {text}");
        got.extend_from_slice(&buf[..n]);
    }
}

#[tokio::test]
async fn idle_half_sent_and_stalled_connections_are_closed_after_their_timeouts() {
    // Arrange: short timeouts, and connections in every idle shape
    let mut http = common::settings();
    http.header_timeout = Duration::from_secs(1);
    http.body_timeout = Duration::from_secs(1);
    let (app, _dir) = app_with(http).await;
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(TcpStream::connect(addr(&app)).await.unwrap());
    }
    let mut half_sent = Vec::new();
    for _ in 0..10 {
        let mut s = TcpStream::connect(addr(&app)).await.unwrap();
        s.write_all(b"GET /livez HTTP/1.1\r\nHost: localhost\r\nUser-Agent: slow")
            .await
            .unwrap();
        half_sent.push(s);
    }
    let mut kept_alive = Vec::new();
    for _ in 0..5 {
        let mut s = TcpStream::connect(addr(&app)).await.unwrap();
        s.write_all(b"GET /livez HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        assert!(read_response(&mut s).await.starts_with("HTTP/1.1 200"));
        kept_alive.push(s);
    }
    let mut stalled_bodies = Vec::new();
    for _ in 0..5 {
        let mut s = TcpStream::connect(addr(&app)).await.unwrap();
        let head = format!(
            "POST /api/v1/runs HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"kind\":"
        );
        s.write_all(head.as_bytes()).await.unwrap();
        stalled_bodies.push(s);
    }

    // Act + Assert: each is closed within its timeout (1 s) and a generous margin for a busy
    // machine; the stalled bodies are answered 408 first
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    for (what, streams) in [
        ("idle", &mut idle),
        ("half-sent head", &mut half_sent),
        ("idle keep-alive", &mut kept_alive),
    ] {
        for s in streams.iter_mut() {
            let sent = closed_by(s, deadline).await;
            assert!(sent.is_some(), "an {what} connection is still open after 20 s");
        }
    }
    for s in &mut stalled_bodies {
        let sent = closed_by(s, deadline)
            .await
            .expect("a stalled body's connection is closed");
        assert!(sent.starts_with("HTTP/1.1 408"), "{sent}");
    }
    let runs = app.get_json("/api/v1/runs").await;
    assert_eq!(
        runs.as_array().map(Vec::len),
        Some(0),
        "nothing was started by a stalled body"
    );
    app.stop().await;
}

#[tokio::test]
async fn at_the_connection_limit_the_longest_idle_connection_makes_room_for_livez() {
    // Arrange: a limit of 16 and a header timeout far beyond the test: only eviction closes
    let mut http = common::settings();
    http.max_connections = 16;
    http.header_timeout = Duration::from_secs(600);
    let (app, _dir) = app_with(http).await;
    let mut idle = Vec::new();
    for i in 0..40 {
        let mut s = TcpStream::connect(addr(&app)).await.unwrap();
        if i % 2 == 1 {
            s.write_all(b"GET /livez HTTP/1.1\r\nHost: local").await.unwrap();
        }
        idle.push(s);
    }

    // Act: /livez on new connections while idle and half-sent connections fill the server
    for _ in 0..20 {
        let res = app.client.get(app.url("/livez")).send().await.unwrap();
        assert_eq!(res.status(), 200);
    }

    // Assert: the oldest idle connections were closed to make room, the newest still wait
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut closed = 0;
    for s in idle.iter_mut().take(24) {
        closed += usize::from(closed_by(s, deadline).await.is_some());
    }
    assert_eq!(closed, 24, "the 24 oldest of 40 idle connections made room");
    let last = idle.last_mut().unwrap();
    let still_open = closed_by(last, tokio::time::Instant::now() + Duration::from_millis(50)).await;
    assert!(still_open.is_none(), "the newest idle connection is kept");
    app.stop().await;
}

#[tokio::test]
async fn when_every_connection_is_busy_a_new_one_is_closed_and_the_server_goes_on() {
    // Arrange: a run waiting at the approval gate and 4 event streams on it, the limit
    let mut http = common::settings();
    http.max_connections = 4;
    let (app, _dir) = app_with(http).await;
    let run = app
        .start("migrate", CONTROLLER, json!({"approve_before_downtime": true}))
        .await;
    let id = run["id"].as_str().unwrap().to_string();
    app.wait_state(&id, "waiting").await;
    let mut streams = Vec::new();
    for _ in 0..4 {
        // one client per stream: each holds a connection of its own
        let client = reqwest::Client::new();
        let res = client
            .get(app.url(&format!("/api/v1/runs/{id}/events")))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        streams.push(res);
    }

    // Act: one more connection while all four are busy
    let mut extra = TcpStream::connect(addr(&app)).await.unwrap();
    let _ = extra
        .write_all(b"GET /livez HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await;
    let sent = closed_by(&mut extra, tokio::time::Instant::now() + Duration::from_secs(20)).await;

    // Assert: closed at once without an answer; when a stream ends the server answers again
    assert_eq!(sent.as_deref(), Some(""), "closed without an answer");
    drop(streams.pop());
    let deadline = Instant::now() + common::PATIENCE;
    loop {
        let ok = reqwest::Client::new()
            .get(app.url("/livez"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        if ok {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/livez never answered after a stream ended"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn an_event_stream_outlives_the_header_timeout() {
    let mut http = common::settings();
    http.header_timeout = Duration::from_secs(1);
    // keep-alive comments every second (common::settings)
    let (app, _dir) = app_with(http).await;
    let run = app
        .start("migrate", CONTROLLER, json!({"approve_before_downtime": true}))
        .await;
    let id = run["id"].as_str().unwrap().to_string();
    app.wait_state(&id, "waiting").await;
    let res = app
        .get(&format!("/api/v1/runs/{id}/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut body = res.bytes_stream();

    // read for four header timeouts: the stream must stay open, fed by keep-alive comments
    let until = Instant::now() + Duration::from_secs(4);
    let mut comments = 0;
    while Instant::now() < until {
        let chunk = tokio::time::timeout(common::PATIENCE, body.next())
            .await
            .expect("the stream stalled")
            .expect("the stream was closed")
            .expect("a chunk");
        comments += String::from_utf8_lossy(&chunk)
            .lines()
            .filter(|l| l.starts_with(':'))
            .count();
    }
    assert!(comments >= 2, "keep-alive comments arrived: {comments}");
    app.stop().await;
}

#[test]
fn with_a_low_open_file_limit_livez_answers_through_more_idle_connections_than_descriptors() {
    // Arrange: the binary with 256 open files at most (soft and hard), and 300 idle connections
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(r#"ulimit -n 256 && exec "$0" "$@""#)
        .arg(env!("CARGO_BIN_EXE_linstor-migrator"))
        .args(["--demo", "--log-format", "text", "--data-dir"])
        .arg(dir.path())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("LINSTOR_MIGRATOR_TOKEN", TOKEN)
        .env_remove("LINSTOR_MIGRATOR_MAX_CONNECTIONS")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start linstor-migrator");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut log = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        let up = line.contains("listening on");
        log.push(line);
        if up {
            break;
        }
    }
    let outcome = std::panic::catch_unwind(|| {
        assert!(
            log.iter().any(|l| l.contains("listening on")),
            "the server started"
        );
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let mut idle = Vec::new();
            for _ in 0..300 {
                idle.push(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
            }
            // Act + Assert: /livez answers, more than once
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap();
            for _ in 0..5 {
                let res = client
                    .get(format!("http://127.0.0.1:{port}/livez"))
                    .send()
                    .await
                    .expect("/livez answers with 300 idle connections open");
                assert_eq!(res.status(), 200);
            }
        });
    });
    let _ = child.kill();
    let _ = child.wait();
    // the server is gone: its stderr ends, and so does the reader
    log.extend(rx.iter());
    if let Err(panic) = outcome {
        eprintln!("server log:\n{}", log.join("\n"));
        std::panic::resume_unwind(panic);
    }
    // 256 descriptors - 64 kept for the rest - 16 for connections being closed
    let limit = log.iter().find(|l| l.contains("accepting connections"));
    assert!(
        limit.is_some_and(|l| l.contains("max_connections=176")),
        "the connection limit fits the open files: {log:#?}"
    );
}
