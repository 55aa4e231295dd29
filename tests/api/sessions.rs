//! Browser sessions survive a restart of the service (issue 19 item 4): they live in SQLite, so
//! an open run page keeps its event stream. They still end when they expire, when the user signs
//! out, when the token they were signed in with is no longer configured, and when the service
//! runs with another `--auth`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use linstor_migrator::cluster::AccessQuestion;
use linstor_migrator::cluster::sim::SimCluster;
use linstor_migrator::engine::EngineSettings;
use linstor_migrator::http::{AuthMode, HttpSettings};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{Value, json};

use crate::common::{self, CONTROLLER, OTHER_TOKEN, TOKEN, TestApp, spawn_app_in};

async fn app_on(dir: &Path, http: HttpSettings, cluster: Arc<SimCluster>) -> TestApp {
    spawn_app_in(dir, EngineSettings::new(dir.to_path_buf()), http, cluster).await
}

async fn sign_in(app: &TestApp, token: &str) -> String {
    let res = app
        .client
        .post(app.url("/login"))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "sign in");
    let cookie = res.headers()[SET_COOKIE].to_str().unwrap();
    cookie.split(';').next().unwrap().to_string()
}

async fn status_with(app: &TestApp, cookie: &str, path: &str) -> StatusCode {
    app.client
        .get(app.url(path))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap()
        .status()
}

fn csrf_of(html: &str) -> String {
    let field = r#"name="csrf" value=""#;
    let start = html.find(field).expect("a CSRF field") + field.len();
    html[start..].split('"').next().unwrap().to_string()
}

#[tokio::test]
async fn a_session_survives_a_restart_on_the_same_data_dir() {
    // Arrange: a signed-in browser that has a page (and its CSRF token) from the first server
    let dir = tempfile::tempdir().unwrap();
    let cluster = common::sim();
    let app = app_on(dir.path(), common::settings(), cluster.clone()).await;
    let cookie = sign_in(&app, TOKEN).await;
    let page = app
        .client
        .get(app.url("/"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csrf = csrf_of(&page.text().await.unwrap());
    let run = app.start("preflight", CONTROLLER, json!({})).await;
    let id = run["id"].as_str().unwrap().to_string();
    app.wait_state(&id, "succeeded").await;

    // Act: the service restarts on the same data directory
    app.stop().await;
    let app = app_on(dir.path(), common::settings(), cluster).await;

    // Assert: the old cookie still signs the browser in: pages, the API, the event stream, and a
    // state-changing request with the session's CSRF token from before the restart
    assert_eq!(status_with(&app, &cookie, "/").await, 200, "dashboard");
    assert_eq!(
        status_with(&app, &cookie, &format!("/runs/{id}")).await,
        200,
        "run page"
    );
    assert_eq!(status_with(&app, &cookie, "/api/v1/runs").await, 200, "API");
    let events = app
        .client
        .get(app.url(&format!("/api/v1/runs/{id}/events")))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200, "event stream");
    drop(events);
    let started = app
        .client
        .post(app.url("/api/v1/runs"))
        .header(COOKIE, &cookie)
        .header("x-csrf-token", &csrf)
        .json(&json!({"kind": "preflight", "controller": CONTROLLER}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        started.status(),
        201,
        "CSRF token of the session from before the restart"
    );
    let run: Value = started.json().await.unwrap();
    assert_eq!(run["created_by"], "ops", "the session's actor survived too");

    // the database holds a hash of the session id, not the cookie
    let stored: Vec<String> = sqlx::query_scalar("SELECT id_sha256 FROM sessions")
        .fetch_all(app.engine.db().pool())
        .await
        .unwrap();
    let id_in_cookie = cookie.split_once('=').unwrap().1;
    assert!(!stored.is_empty() && stored.iter().all(|h| h != id_in_cookie && h.len() == 64));

    // signing out ends it, also across a restart
    let logout = app
        .client
        .post(app.url("/logout"))
        .header(COOKIE, &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 303);
    app.stop().await;
    let app = app_on(dir.path(), common::settings(), common::sim()).await;
    assert_eq!(
        status_with(&app, &cookie, "/api/v1/runs").await,
        401,
        "signed out"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_rotated_token_or_another_auth_mode_ends_the_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_on(dir.path(), common::settings(), common::sim()).await;
    let ops = sign_in(&app, TOKEN).await;
    let ci = sign_in(&app, OTHER_TOKEN).await;
    app.stop().await;

    // ops's token is replaced; ci-bot's stays
    let mut rotated = common::settings();
    rotated.tokens = Some(format!("ops:a-new-token-for-ops-91c2,ci-bot:{OTHER_TOKEN}"));
    let app = app_on(dir.path(), rotated, common::sim()).await;
    assert_eq!(
        status_with(&app, &ops, "/api/v1/runs").await,
        401,
        "the old token's session"
    );
    assert_eq!(
        status_with(&app, &ci, "/api/v1/runs").await,
        200,
        "an unchanged token's session"
    );
    // ci-bot's token given to another name is another credential
    app.stop().await;
    let mut renamed = common::settings();
    renamed.tokens = Some(format!("robot:{OTHER_TOKEN}"));
    let app = app_on(dir.path(), renamed, common::sim()).await;
    assert_eq!(status_with(&app, &ci, "/api/v1/runs").await, 401);
    app.stop().await;

    // a session of `--auth none` (anonymous, made for any visitor) is nothing under `--auth token`
    let open = app_on(dir.path(), HttpSettings::new(AuthMode::None), common::sim()).await;
    let res = open.client.get(open.url("/")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let anonymous = res.headers()[SET_COOKIE].to_str().unwrap();
    let anonymous = anonymous.split(';').next().unwrap().to_string();
    open.stop().await;
    let app = app_on(dir.path(), common::settings(), common::sim()).await;
    assert_eq!(status_with(&app, &anonymous, "/api/v1/runs").await, 401);
    assert_eq!(status_with(&app, &anonymous, "/").await, 303, "to the login page");
    app.stop().await;

    // `--auth kubernetes`: a session survives a restart, but not a change of the access question
    // its user was reviewed against
    let cluster = common::sim();
    cluster.add_token("alice-token", "alice", &["storage-admins"]);
    let app = app_on(
        dir.path(),
        HttpSettings::new(AuthMode::Kubernetes),
        cluster.clone(),
    )
    .await;
    let alice = sign_in(&app, "alice-token").await;
    app.stop().await;
    let app = app_on(
        dir.path(),
        HttpSettings::new(AuthMode::Kubernetes),
        cluster.clone(),
    )
    .await;
    assert_eq!(
        status_with(&app, &alice, "/api/v1/runs").await,
        200,
        "same question"
    );
    app.stop().await;
    let mut stricter = HttpSettings::new(AuthMode::Kubernetes);
    stricter.access = AccessQuestion::new("piraeus.linbit.com", "linstorcontrollers", "update", "");
    let app = app_on(dir.path(), stricter, cluster).await;
    assert_eq!(
        status_with(&app, &alice, "/api/v1/runs").await,
        401,
        "another question"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_expired_session_is_refused_and_its_event_stream_ends() {
    // Arrange: a session of 2 s following a run that waits (its stream would stay open)
    let dir = tempfile::tempdir().unwrap();
    let mut http = common::settings();
    http.session_ttl = Duration::from_secs(2);
    let app = app_on(dir.path(), http, common::sim()).await;
    let run = app
        .start("migrate", CONTROLLER, json!({"approve_before_downtime": true}))
        .await;
    let id = run["id"].as_str().unwrap().to_string();
    app.wait_state(&id, "waiting").await;
    let cookie = sign_in(&app, TOKEN).await;
    let res = app
        .client
        .get(app.url(&format!("/api/v1/runs/{id}/events")))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut events = common::SseReader::new(res);

    // Act + Assert: the stream ends when the session expires, without an `end` event (the run
    // goes on), and the session is refused from then on
    while let Some(e) = events.next().await {
        assert_ne!(e.event, "end", "the run did not end");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = status_with(&app, &cookie, "/api/v1/runs").await;
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(Instant::now() < deadline, "the session never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        status_with(&app, &cookie, &format!("/api/v1/runs/{id}/events")).await,
        401
    );
    assert_eq!(status_with(&app, &cookie, "/").await, 303, "to the login page");
    app.stop().await;
}
