//! The security smalls of issue 19 item 11: a weak token is refused at start-up, failed sign-ins
//! and bearer tokens are rate limited (per client address and overall, 429 with `Retry-After`),
//! `/metrics` needs a credential unless made public, and the log has no colour codes when it
//! goes to a file or a pipe.

use std::io::{BufRead as _, BufReader};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use linstor_migrator::engine::EngineSettings;
use linstor_migrator::http::{FailureLimits, HttpSettings, Rate};
use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;

use crate::common::{self, OTHER_TOKEN, TOKEN, TestApp, spawn_app_in};
use crate::security::serve;

const METRICS_TOKEN: &str = "metrics-only-token-5b8e21";

async fn app_with(http: HttpSettings) -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let app = spawn_app_in(&path, EngineSettings::new(path.clone()), http, common::sim()).await;
    (app, dir)
}

fn limits(per_client: u32, overall: u32) -> FailureLimits {
    let minute = Duration::from_secs(60);
    FailureLimits {
        per_client: Rate {
            burst: per_client,
            interval: minute,
        },
        overall: Rate {
            burst: overall,
            interval: minute,
        },
    }
}

/// A client whose connections come from `ip` (any 127.0.0.0/8 address reaches the server).
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn runs_with(app: &TestApp, client: &reqwest::Client, token: &str) -> reqwest::Response {
    client
        .get(app.url("/api/v1/runs"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

fn retry_after(res: &reqwest::Response) -> u64 {
    res.headers()[RETRY_AFTER].to_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn failed_tokens_are_limited_per_client_address() {
    let mut http = common::settings();
    http.auth_failures = limits(3, 100);
    let (app, _dir) = app_with(http).await;
    let guesser = client_from("127.0.0.2");

    for _ in 0..3 {
        assert_eq!(runs_with(&app, &guesser, "wrong-guess").await.status(), 401);
    }
    let refused = runs_with(&app, &guesser, "wrong-guess").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait = retry_after(&refused);
    assert!((1..=60).contains(&wait), "Retry-After: {wait}");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("too many failed"),
        "{body}"
    );
    // the right token from the blocked address is refused too: a right guess looks like a wrong one
    assert_eq!(runs_with(&app, &guesser, TOKEN).await.status(), 429);
    let sign_in = guesser
        .post(app.url("/login"))
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(sign_in.status(), 429, "the sign-in form shares the limit");

    // another client is not affected, and valid tokens never count
    let other = client_from("127.0.0.3");
    for _ in 0..50 {
        assert_eq!(runs_with(&app, &other, OTHER_TOKEN).await.status(), 200);
    }
    app.stop().await;
}

#[tokio::test]
async fn failed_sign_ins_are_limited_and_say_when_to_retry() {
    let mut http = common::settings();
    http.auth_failures = limits(2, 100);
    let (app, _dir) = app_with(http).await;
    let browser = client_from("127.0.0.4");
    let sign_in = |token: &'static str| browser.post(app.url("/login")).form(&[("token", token)]).send();

    for _ in 0..2 {
        assert_eq!(sign_in("wrong").await.unwrap().status(), 401);
    }
    let refused = sign_in("wrong").await.unwrap();
    assert_eq!(refused.status(), 429);
    assert!(retry_after(&refused) >= 1);
    let page = refused.text().await.unwrap();
    assert!(page.contains("Too many failed sign-ins. Try again in"), "{page}");
    app.stop().await;
}

#[tokio::test]
async fn all_clients_together_have_a_limit() {
    let mut http = common::settings();
    http.auth_failures = limits(100, 3);
    let (app, _dir) = app_with(http).await;
    for ip in ["127.0.0.5", "127.0.0.6", "127.0.0.7"] {
        assert_eq!(runs_with(&app, &client_from(ip), "wrong").await.status(), 401);
    }
    let refused = runs_with(&app, &client_from("127.0.0.8"), "wrong").await;
    assert_eq!(
        refused.status(),
        429,
        "a new address is refused once everybody failed enough"
    );
    assert!(retry_after(&refused) >= 1);
    app.stop().await;
}

#[tokio::test]
async fn metrics_need_a_credential_unless_made_public() {
    let mut http = common::settings();
    http.metrics_token = Some(METRICS_TOKEN.into());
    let (app, _dir) = app_with(http).await;
    let metrics = |token: Option<&'static str>| {
        let req = app.client.get(app.url("/metrics"));
        match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
        .send()
    };

    assert_eq!(metrics(None).await.unwrap().status(), 401);
    assert_eq!(metrics(Some("wrong")).await.unwrap().status(), 401);
    let scraped = metrics(Some(METRICS_TOKEN)).await.unwrap();
    assert_eq!(scraped.status(), 200, "the metrics token");
    assert!(scraped.text().await.unwrap().contains("linstor_migrator_runs"));
    assert_eq!(metrics(Some(TOKEN)).await.unwrap().status(), 200, "an API token");
    // the metrics token opens nothing else
    let api = runs_with(&app, &app.client, METRICS_TOKEN).await;
    assert_eq!(api.status(), 403);
    let sign_in = app
        .client
        .post(app.url("/login"))
        .form(&[("token", METRICS_TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(sign_in.status(), 403, "no browser session from the metrics token");
    app.stop().await;

    let mut http = common::settings();
    http.public_metrics = true;
    let (app, _dir) = app_with(http).await;
    assert_eq!(metrics_status(&app).await, 200, "--public-metrics");
    app.stop().await;
}

async fn metrics_status(app: &TestApp) -> StatusCode {
    app.client.get(app.url("/metrics")).send().await.unwrap().status()
}

#[test]
fn a_weak_token_is_refused_at_start_up() {
    for (env, flag, what) in [
        ("LINSTOR_MIGRATOR_TOKEN", None, "LINSTOR_MIGRATOR_TOKEN"),
        (
            "LINSTOR_MIGRATOR_TOKEN",
            Some("--token=ops:s3cret"),
            "the token of \"ops\"",
        ),
        (
            "LINSTOR_MIGRATOR_METRICS_TOKEN",
            None,
            "LINSTOR_MIGRATOR_METRICS_TOKEN",
        ),
    ] {
        let args: Vec<&str> = ["--listen", "127.0.0.1:0"].into_iter().chain(flag).collect();
        let (mut child, dir) = serve(&args, &[(env, "x")]);
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{env} {flag:?}: the server started with a 1-character token");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{env} {flag:?}: {stderr}");
        assert!(
            stderr.contains(what) && stderr.contains("too weak") && stderr.contains("at least 16 characters"),
            "{env} {flag:?}: {stderr}"
        );
        assert!(!dir.path().join("data").exists(), "nothing was opened");
    }
}

#[test]
fn the_log_has_no_colour_codes_when_it_is_not_a_terminal() {
    let (mut child, _dir) = serve(
        &["--listen", "127.0.0.1:0"],
        &[("LINSTOR_MIGRATOR_TOKEN", "a-long-enough-token-8d1f")],
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
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        let done = line.contains("listening on");
        seen.push(line);
        if done {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen.iter().any(|l| l.contains("listening on")), "{seen:#?}");
    assert!(
        seen.iter().all(|l| !l.contains('\u{1b}')),
        "ANSI escape codes in a piped log: {seen:#?}"
    );
}
