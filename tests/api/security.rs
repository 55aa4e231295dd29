//! Security defaults over HTTP: the session cookie's `Secure` behind TLS, the `Host` check and
//! the loopback-only listen address of `--auth none`, and a `/readyz` that does not list the
//! cluster on every probe.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use linstor_migrator::cluster::sim::Fault;
use linstor_migrator::engine::EngineSettings;
use linstor_migrator::http::{AuthMode, HttpSettings};
use linstor_migrator::model::StepName;
use reqwest::header::{HOST, SET_COOKIE};
use serde_json::Value;

use crate::common::{self, TOKEN, TestApp, spawn_app, spawn_app_in};

const BINARY: &str = env!("CARGO_BIN_EXE_linstor-migrator");

async fn login_cookie(app: &TestApp, forwarded_proto: Option<&str>) -> String {
    let mut req = app.client.post(app.url("/login")).form(&[("token", TOKEN)]);
    if let Some(proto) = forwarded_proto {
        req = req.header("x-forwarded-proto", proto);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), 303, "login");
    res.headers()[SET_COOKIE].to_str().unwrap().to_string()
}

fn is_secure(cookie: &str) -> bool {
    cookie.split(';').any(|a| a.trim().eq_ignore_ascii_case("secure"))
}

async fn app_with(settings: HttpSettings) -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_in(
        dir.path(),
        EngineSettings::new(dir.path().to_path_buf()),
        settings,
        common::sim(),
    )
    .await;
    (app, dir)
}

#[tokio::test]
async fn the_session_cookie_is_secure_when_the_login_came_over_tls() {
    let app = spawn_app().await;

    let plain = login_cookie(&app, None).await;
    let behind_tls = login_cookie(&app, Some("https")).await;
    let behind_plain_proxy = login_cookie(&app, Some("http")).await;

    assert!(!is_secure(&plain), "plain HTTP keeps a usable cookie: {plain}");
    assert!(is_secure(&behind_tls), "X-Forwarded-Proto: https: {behind_tls}");
    assert!(!is_secure(&behind_plain_proxy), "{behind_plain_proxy}");
    for cookie in [&plain, &behind_tls] {
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
            "{cookie}"
        );
    }
    app.stop().await;

    // --secure-cookies: always
    let mut settings = common::settings();
    settings.secure_cookies = true;
    let (app, _dir) = app_with(settings).await;
    let forced = login_cookie(&app, None).await;
    assert!(is_secure(&forced), "{forced}");
    app.stop().await;
}

#[tokio::test]
async fn auth_none_answers_only_requests_for_loopback_hosts() {
    let (app, _dir) = app_with(HttpSettings::new(AuthMode::None)).await;
    let port = app.base.rsplit(':').next().unwrap().to_string();
    let with_host = |path: &str, host: String| app.client.get(app.url(path)).header(HOST, host);

    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "localhost".to_string(),
        format!("[::1]:{port}"),
    ] {
        let res = with_host("/api/v1/controllers", host.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "Host: {host}");
    }
    // a DNS-rebinding page sends its own name
    for path in ["/api/v1/controllers", "/", "/api/v1/runs", "/livez", "/nothing"] {
        for host in [
            format!("evil.example:{port}"),
            format!("localhost.evil.example:{port}"),
        ] {
            let res = with_host(path, host.clone()).send().await.unwrap();
            assert_eq!(res.status(), 421, "{path} with Host: {host}");
            assert!(
                res.headers().get(SET_COOKIE).is_none(),
                "no session for another host"
            );
            let body: Value = res.json().await.unwrap();
            let error = body["error"].as_str().unwrap_or_default();
            assert!(
                error.contains("localhost") && error.contains("evil.example"),
                "{body}"
            );
        }
    }
    let res = app
        .client
        .post(app.url("/api/v1/runs"))
        .header(HOST, "evil.example")
        .json(&serde_json::json!({"kind": "preflight", "controller": common::CONTROLLER}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 421, "no run is started for another host");
    assert!(app.get_json("/api/v1/runs").await.as_array().unwrap().is_empty());
    app.stop().await;

    // forced (--allow-unauthenticated-remote): any host
    let mut settings = HttpSettings::new(AuthMode::None);
    settings.loopback_hosts_only = false;
    let (app, _dir) = app_with(settings).await;
    let res = app
        .client
        .get(app.url("/api/v1/controllers"))
        .header(HOST, "migrator.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    app.stop().await;

    // with authentication the Host is not checked
    let app = spawn_app().await;
    let res = app
        .get("/api/v1/controllers")
        .header(HOST, "migrator.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    app.stop().await;
}

/// Runs the binary with `args` on the demo cluster in a fresh data directory.
pub(crate) fn serve(args: &[&str], env: &[(&str, &str)]) -> (std::process::Child, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let child = Command::new(BINARY)
        .args(["--demo", "--log-format", "text", "--data-dir"])
        .arg(&data)
        .arg("serve")
        .args(args)
        .env_remove("LINSTOR_MIGRATOR_ALLOW_UNAUTHENTICATED_REMOTE")
        .env_remove("LINSTOR_MIGRATOR_AUTH")
        .env_remove("LINSTOR_MIGRATOR_LISTEN")
        .env_remove("LINSTOR_MIGRATOR_TOKEN")
        .env_remove("LINSTOR_MIGRATOR_METRICS_TOKEN")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start linstor-migrator");
    (child, dir)
}

#[test]
fn auth_none_refuses_a_remote_listen_address_unless_forced() {
    // refused, before the data directory is even created
    let (child, dir) = serve(&["--auth", "none", "--listen", "0.0.0.0:0"], &[]);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("refusing to serve without authentication on 0.0.0.0:0")
            && stderr.contains("--allow-unauthenticated-remote"),
        "{stderr}"
    );
    assert!(!dir.path().join("data").exists(), "nothing was opened");

    // forced through the environment, as the Helm chart does: it starts
    let (mut child, _dir) = serve(
        &["--auth", "none", "--listen", "0.0.0.0:0"],
        &[("LINSTOR_MIGRATOR_ALLOW_UNAUTHENTICATED_REMOTE", "true")],
    );
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    let listening = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains("listening on http://0.0.0.0:") => break true,
            Ok(line) => seen.push(line),
            Err(_) => break false,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(listening, "the forced server did not start: {seen:#?}");
}

#[tokio::test]
async fn readyz_asks_the_cluster_at_most_once_per_window() {
    // every cluster read takes one injected fault: the faults left count the calls
    let cluster = common::sim();
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_in(
        dir.path(),
        EngineSettings::new(dir.path().to_path_buf()),
        common::settings(),
        cluster.clone(),
    )
    .await;
    let calls = |injected: usize| injected - cluster.pending_faults().len();
    let readyz = || async { app.client.get(app.url("/readyz")).send().await.unwrap() };

    // healthy: one call, then probes answer from the cache for 10 s
    let started = Instant::now();
    assert_eq!(readyz().await.status(), 200);
    cluster.inject(StepName::Preflight, Fault::Error);
    for _ in 0..5 {
        assert_eq!(readyz().await.status(), 200, "the cached success");
    }
    if started.elapsed() < Duration::from_secs(10) {
        assert_eq!(calls(1), 0, "no cluster call within the success window");
    }
    app.stop().await;

    // failing: the failure is repeated, and the cluster asked again only after 2 s
    let cluster = common::sim();
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_in(
        dir.path(),
        EngineSettings::new(dir.path().to_path_buf()),
        common::settings(),
        cluster.clone(),
    )
    .await;
    let calls = |injected: usize| injected - cluster.pending_faults().len();
    let readyz = || async { app.client.get(app.url("/readyz")).send().await.unwrap() };
    cluster.inject(StepName::Preflight, Fault::Error);
    cluster.inject(StepName::Preflight, Fault::Error);
    let started = Instant::now();
    let res = readyz().await;
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "the Kubernetes API is not reachable");
    for _ in 0..5 {
        assert_eq!(readyz().await.status(), 503, "the cached failure");
    }
    let windows = started.elapsed().as_secs() / 2 + 1;
    assert!(
        calls(2) as u64 <= windows,
        "{} calls in {windows} windows",
        calls(2)
    );
    // it recovers by itself once the cluster answers again
    let deadline = Instant::now() + common::PATIENCE;
    while readyz().await.status() != 200 {
        assert!(Instant::now() < deadline, "readiness never recovered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(calls(2), 2, "both faults were met, one per window");
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "two failure windows of 2 s passed before the recovery"
    );
    app.stop().await;
}
