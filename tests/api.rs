//! The HTTP API over real HTTP: the server on port 0, a real SQLite file, the simulated cluster.

#[path = "common/mod.rs"]
mod common;

#[path = "api/alerts.rs"]
mod alerts;
#[path = "api/auth_limits.rs"]
mod auth_limits;
#[path = "api/backups.rs"]
mod backups;
#[path = "api/concurrency.rs"]
mod concurrency;
#[path = "api/connections.rs"]
mod connections;
#[path = "api/contract.rs"]
mod contract;
#[path = "api/demo.rs"]
mod demo;
#[path = "api/helm.rs"]
mod helm;
#[path = "api/login_redirect.rs"]
mod login_redirect;
#[path = "api/pages.rs"]
mod pages;
#[path = "api/preflight.rs"]
mod preflight;
#[path = "api/redaction.rs"]
mod redaction;
#[path = "api/rollback.rs"]
mod rollback;
#[path = "api/runs.rs"]
mod runs;
#[path = "api/security.rs"]
mod security;
#[path = "api/sessions.rs"]
mod sessions;
#[path = "api/sse.rs"]
mod sse;
#[path = "api/upgrade_plan.rs"]
mod upgrade_plan;

use common::{OTHER_TOKEN, spawn_app};
use serde_json::{Value, json};

/// Every protected API route with a method.
const PROTECTED: &[(&str, &str)] = &[
    ("GET", "/api/v1/controllers"),
    ("GET", "/api/v1/runs"),
    ("POST", "/api/v1/runs"),
    ("GET", "/api/v1/runs/x"),
    ("POST", "/api/v1/runs/x/cancel"),
    ("POST", "/api/v1/runs/x/resume"),
    ("POST", "/api/v1/runs/x/rollback"),
    ("POST", "/api/v1/runs/x/approve"),
    ("GET", "/api/v1/runs/x/logs"),
    ("GET", "/api/v1/runs/x/logs.txt"),
    ("GET", "/api/v1/runs/x/events"),
    ("GET", "/api/v1/runs/x/upgrade-plan"),
    ("GET", "/api/v1/runs/x/upgrade-plan.yaml"),
    ("GET", "/api/v1/runs/x/upgrade-plan.sh"),
    ("GET", "/api/v1/backups"),
    ("GET", "/api/v1/backups/x"),
];

#[tokio::test]
async fn every_protected_route_answers_401_without_or_with_a_wrong_token() {
    let app = spawn_app().await;
    for (method, path) in PROTECTED {
        for token in [None, Some("wrong-token")] {
            let mut req = app.client.request(method.parse().unwrap(), app.url(path));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let res = req.json(&json!({})).send().await.unwrap();
            assert_eq!(res.status(), 401, "{method} {path} with {token:?}");
            assert_eq!(res.headers()["www-authenticate"], "Bearer");
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["error"], "authentication required");
        }
    }
    for path in ["/", "/runs", "/runs/x", "/backups"] {
        let res = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 303, "{path}");
        assert!(
            res.headers()["location"]
                .to_str()
                .unwrap()
                .starts_with("/login?next=")
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn health_needs_no_token_and_metrics_are_listed() {
    let app = spawn_app().await;
    for path in ["/livez", "/healthz", "/readyz"] {
        let res = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["status"], "ok");
    }
    // one request to a templated route, so that the counter has a sample with its template
    app.get("/api/v1/runs/unknown").send().await.unwrap();
    let res = app.get("/metrics").send().await.unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    for name in [
        "linstor_migrator_runs",
        "linstor_migrator_active_runs",
        "linstor_migrator_backup_bytes",
        "linstor_migrator_sse_subscribers",
        "linstor_migrator_http_requests_total",
    ] {
        assert!(text.contains(name), "{name} missing from\n{text}");
    }
    assert!(
        text.contains(r#"route="/api/v1/runs/{id}""#),
        "routes are counted by template:\n{text}"
    );
    assert!(text.contains(r#"state="succeeded""#));
    app.stop().await;
}

#[tokio::test]
async fn openapi_document_lists_the_paths() {
    let app = spawn_app().await;
    let res = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/api/v1/controllers",
        "/api/v1/runs",
        "/api/v1/runs/{id}",
        "/api/v1/runs/{id}/cancel",
        "/api/v1/runs/{id}/resume",
        "/api/v1/runs/{id}/rollback",
        "/api/v1/runs/{id}/approve",
        "/api/v1/runs/{id}/logs",
        "/api/v1/runs/{id}/logs.txt",
        "/api/v1/runs/{id}/events",
        "/api/v1/backups",
        "/api/v1/backups/{id}",
    ] {
        assert!(
            paths.contains_key(p),
            "{p} missing from the OpenAPI paths: {:?}",
            paths.keys()
        );
    }
    assert!(paths["/api/v1/runs"]["post"]["responses"]["409"].is_object());
    assert!(doc["components"]["schemas"]["RunView"].is_object());
    app.stop().await;
}

#[tokio::test]
async fn controllers_are_listed_with_their_backend() {
    let app = spawn_app().await;
    let list = app.get_json("/api/v1/controllers").await;
    let names: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{}/{}",
                c["namespace"].as_str().unwrap(),
                c["name"].as_str().unwrap()
            )
        })
        .collect();
    assert!(names.contains(&common::CONTROLLER.to_string()), "{names:?}");
    assert!(names.contains(&common::PLAIN_CONTROLLER.to_string()), "{names:?}");
    assert!(list.as_array().unwrap().iter().all(|c| c["backend"] == "etcd"));
    // another caller's token works too
    let res = app
        .client
        .get(app.url("/api/v1/controllers"))
        .bearer_auth(OTHER_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn unknown_paths_are_json_404_under_api() {
    let app = spawn_app().await;
    let res = app.get("/api/v1/nothing").send().await.unwrap();
    assert_eq!(res.status(), 404);
    let body: Value = res.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("not found"));
    app.stop().await;
}

#[tokio::test]
async fn kubernetes_auth_uses_token_and_access_reviews() {
    use linstor_migrator::engine::EngineSettings;
    use linstor_migrator::http::{AuthMode, HttpSettings};

    let dir = tempfile::tempdir().unwrap();
    let cluster = common::sim();
    cluster.add_token("alice-token", "alice", &["storage-admins"]);
    cluster.add_token("bob-token", "bob", &[]);
    let http = HttpSettings::new(AuthMode::Kubernetes);
    let a = &http.access;
    cluster.deny("bob", &a.group, &a.resource, &a.verb);
    let app = common::spawn_app_in(
        dir.path(),
        EngineSettings::new(dir.path().to_path_buf()),
        http,
        cluster,
    )
    .await;

    let as_user = |token: &str| {
        app.client
            .get(app.url("/api/v1/runs"))
            .bearer_auth(token.to_string())
    };
    assert_eq!(as_user("alice-token").send().await.unwrap().status(), 200);
    assert_eq!(as_user("nobody").send().await.unwrap().status(), 401);
    let denied = as_user("bob-token").send().await.unwrap();
    assert_eq!(denied.status(), 403);
    let body: Value = denied.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("bob may not"), "{body}");

    // the run records the Kubernetes user
    let res = app
        .client
        .post(app.url("/api/v1/runs"))
        .bearer_auth("alice-token")
        .json(&json!({"kind": "preflight", "controller": common::CONTROLLER}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let run: Value = res.json().await.unwrap();
    assert_eq!(run["created_by"], "alice");
    app.stop().await;
}

#[tokio::test]
async fn auth_none_needs_no_credentials_but_keeps_forms_csrf_safe() {
    use linstor_migrator::engine::EngineSettings;
    use linstor_migrator::http::{AuthMode, HttpSettings};

    let dir = tempfile::tempdir().unwrap();
    let http = HttpSettings::new(AuthMode::None);
    let app = common::spawn_app_in(
        dir.path(),
        EngineSettings::new(dir.path().to_path_buf()),
        http,
        common::sim(),
    )
    .await;
    assert_eq!(
        app.client
            .get(app.url("/api/v1/controllers"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let res = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["set-cookie"].to_str().unwrap().contains("HttpOnly"));
    let cookie = res.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let res = app
        .client
        .post(app.url("/runs"))
        .header("cookie", cookie)
        .form(&[("kind", "preflight"), ("controller", common::CONTROLLER)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        403,
        "a form without the CSRF token is refused even without auth"
    );
    app.stop().await;
}
