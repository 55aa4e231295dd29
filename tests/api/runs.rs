//! Starting runs, input validation, state transitions, idempotency, the audit trail, logs and a
//! restart in the middle of a run.

use linstor_migrator::engine::EngineSettings;
use linstor_migrator::model::StepName;
use serde_json::{Value, json};

use crate::common::{
    CONTROLLER, OTHER_TOKEN, PLAIN_CONTROLLER, TOKEN, settings, sim, spawn_app, spawn_app_in,
};

async fn post_raw(app: &crate::common::TestApp, body: &str, content_type: &str) -> (u16, Value) {
    let res = app
        .client
        .post(app.url("/api/v1/runs"))
        .bearer_auth(TOKEN)
        .header("content-type", content_type)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

#[tokio::test]
async fn bad_requests_get_400_415_422_and_413() {
    let app = spawn_app().await;
    let json = "application/json";
    let cases = [
        (r#"{"kind": "preflight", "controller": "#, json, 400),
        ("not json", json, 400),
        (r#"{"kind": "preflight", "controller": 5}"#, json, 422),
        (
            r#"{"kind": "preflight", "controller": "a/b", "options": {"auto_rollback": "yes"}}"#,
            json,
            422,
        ),
        (
            r#"{"kind": "dance", "controller": "piraeus-datastore/piraeus-op-cs"}"#,
            json,
            422,
        ),
        (r#"{"kind": "preflight", "controller": "no-slash"}"#, json, 422),
        (
            r#"{"kind": "preflight", "controller": "piraeus-datastore/piraeus-op-cs", "options": {"nope": true}}"#,
            json,
            422,
        ),
        (
            r#"{"kind": "preflight", "controller": "piraeus-datastore/piraeus-op-cs", "options": {"pod_timeout_seconds": 1}}"#,
            json,
            422,
        ),
        (
            r#"{"kind": "preflight", "controller": "nowhere/none"}"#,
            json,
            422,
        ),
        (
            r#"{"kind": "preflight", "controller": "piraeus-datastore/piraeus-op-cs"}"#,
            "text/plain",
            415,
        ),
    ];
    for (body, content_type, expected) in cases {
        let (status, json) = post_raw(&app, body, content_type).await;
        assert_eq!(status, expected, "{body}: {json}");
        assert!(json["error"].as_str().is_some_and(|e| !e.is_empty()), "{json}");
    }
    let huge = format!(
        r#"{{"kind": "preflight", "controller": "{}"}}"#,
        "a".repeat(200_000)
    );
    let (status, json) = post_raw(&app, &huge, json).await;
    assert_eq!(status, 413, "{json}");
    let res = app.get("/api/v1/runs?limit=abc").send().await.unwrap();
    assert_eq!(res.status(), 400);
    app.stop().await;
}

#[tokio::test]
async fn unknown_ids_are_404() {
    let app = spawn_app().await;
    for path in [
        "/api/v1/runs/nope",
        "/api/v1/runs/nope/logs",
        "/api/v1/runs/nope/logs.txt",
        "/api/v1/runs/nope/events",
        "/api/v1/backups/nope",
    ] {
        let res = app.get(path).send().await.unwrap();
        assert_eq!(res.status(), 404, "{path}");
        let body: Value = res.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().contains("not found"), "{body}");
    }
    for action in ["cancel", "resume", "rollback", "approve"] {
        let res = app
            .post(&format!("/api/v1/runs/nope/{action}"), &json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{action}");
    }
    app.stop().await;
}

#[tokio::test]
async fn preflight_runs_and_refuses_wrong_transitions() {
    let app = spawn_app().await;
    let res = app
        .post(
            "/api/v1/runs",
            &json!({"kind": "preflight", "controller": CONTROLLER}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let run: Value = res.json().await.unwrap();
    let id = run["id"].as_str().unwrap().to_string();
    assert_eq!(location, format!("/api/v1/runs/{id}"));
    assert_eq!(run["created_by"], "ops");

    let run = app.wait_state(&id, "succeeded").await;
    assert_eq!(run["steps"].as_array().unwrap().len(), 1);
    assert!(!run["report"]["checks"].as_array().unwrap().is_empty(), "{run:#}");

    for (action, why) in [
        ("resume", "succeeded"),
        ("rollback", "a preflight"),
        ("approve", "not waiting"),
        ("cancel", "final"),
    ] {
        let res = app
            .post(&format!("/api/v1/runs/{id}/{action}"), &json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 409, "{action} of {why}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["run_id"], id.as_str());
    }
    let list = app.get_json("/api/v1/runs").await;
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(
        app.get_json("/api/v1/runs?limit=1")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    app.stop().await;
}

#[tokio::test]
async fn one_active_run_per_controller_and_actions_are_audited() {
    let app = spawn_app().await;
    let run = app
        .start("migrate", CONTROLLER, json!({"approve_before_downtime": true}))
        .await;
    let id = run["id"].as_str().unwrap();
    app.wait_state(id, "waiting").await;

    // a second start on the same controller while the first is active
    let res = app
        .post(
            "/api/v1/runs",
            &json!({"kind": "backup", "controller": CONTROLLER}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["run_id"], id);
    // another controller is free (for a backup: a preflight checks for a migration, which the
    // run writing the cluster's one k8s backend blocks)
    let other = app.start("backup", PLAIN_CONTROLLER, json!({})).await;
    app.wait_state(other["id"].as_str().unwrap(), "succeeded").await;

    // waiting: approve works once, as another caller
    let res = app
        .client
        .post(app.url(&format!("/api/v1/runs/{id}/approve")))
        .bearer_auth(OTHER_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = app
        .post(&format!("/api/v1/runs/{id}/approve"), &json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409, "approving a run that is no longer waiting");
    let run = app.wait_state(id, "succeeded").await;
    let audit: Vec<(String, String)> = run["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["actor"].as_str().unwrap().to_string(),
                a["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(audit.contains(&("ci-bot".into(), "approve".into())), "{audit:?}");
    assert!(audit.iter().any(|(actor, _)| actor == "ops"), "{audit:?}");
    assert!(run["downtime"]["seconds"].as_f64().unwrap() >= 0.0);
    assert!(!run["backups"].as_array().unwrap().is_empty(), "{run:#}");
    let metrics = app.get("/metrics").send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("linstor_migrator_step_duration_seconds_bucket"),
        "{metrics}"
    );

    // a finished migration can be rolled back by hand, once
    let res = app
        .post(&format!("/api/v1/runs/{id}/rollback"), &json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    app.wait_state(id, "rolled_back").await;
    let res = app
        .post(&format!("/api/v1/runs/{id}/rollback"), &json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    app.stop().await;
}

#[tokio::test]
async fn cancelling_a_waiting_run_records_who() {
    let app = spawn_app().await;
    let run = app
        .start(
            "migrate",
            PLAIN_CONTROLLER,
            json!({"approve_before_downtime": true}),
        )
        .await;
    let id = run["id"].as_str().unwrap();
    app.wait_state(id, "waiting").await;
    let res = app
        .client
        .post(app.url(&format!("/api/v1/runs/{id}/cancel")))
        .bearer_auth(OTHER_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let run = app
        .wait_for(id, "a final state", |r| {
            !["queued", "running", "waiting"].contains(&r["state"].as_str().unwrap())
        })
        .await;
    assert_eq!(run["state"], "cancelled", "{run:#}");
    assert!(
        run["audit"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["actor"] == "ci-bot" && a["action"] == "cancel")
    );
    app.stop().await;
}

#[tokio::test]
async fn idempotency_key_returns_the_same_run() {
    let app = spawn_app().await;
    let body = json!({"kind": "preflight", "controller": CONTROLLER});
    let first = app
        .post("/api/v1/runs", &body)
        .header("Idempotency-Key", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let again = app
        .post("/api/v1/runs", &body)
        .header("Idempotency-Key", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(first["id"], again["id"]);
    let different = json!({"kind": "backup", "controller": CONTROLLER});
    let res = app
        .post("/api/v1/runs", &different)
        .header("Idempotency-Key", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    app.stop().await;
}

#[tokio::test]
async fn logs_are_paged_and_downloadable_as_text() {
    let app = spawn_app().await;
    let run = app.start("backup", CONTROLLER, json!({})).await;
    let id = run["id"].as_str().unwrap();
    app.wait_state(id, "succeeded").await;

    let all = app.get_json(&format!("/api/v1/runs/{id}/logs?limit=5000")).await;
    let all_lines = all["lines"].as_array().unwrap().clone();
    assert!(all_lines.len() > 5, "a backup logs more than five lines");
    assert_eq!(all["more"], false);

    let mut paged = Vec::new();
    let mut after = 0;
    loop {
        let page = app
            .get_json(&format!("/api/v1/runs/{id}/logs?after={after}&limit=3"))
            .await;
        let lines = page["lines"].as_array().unwrap();
        assert!(lines.len() <= 3);
        paged.extend(lines.iter().cloned());
        after = page["next_after"].as_i64().unwrap();
        if page["more"] == false {
            break;
        }
    }
    assert_eq!(paged, all_lines);
    assert!(all_lines.iter().all(|l| l["kind"] == "log"));

    let res = app
        .get(&format!("/api/v1/runs/{id}/logs.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let text = res.text().await.unwrap();
    assert_eq!(text.lines().count(), all_lines.len());
    for l in &all_lines {
        assert!(text.contains(l["message"].as_str().unwrap().lines().next().unwrap_or("")));
    }
    for bad in ["limit=0", "limit=100000", "after=-1", "after=x", "bogus=1"] {
        let res = app
            .get(&format!("/api/v1/runs/{id}/logs?{bad}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{bad}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_run_interrupted_by_a_restart_finishes_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = EngineSettings::new(dir.path().to_path_buf());
    engine.stop_after_step = Some(StepName::Export);
    // the same cluster on both sides of the restart, as in reality
    let cluster = sim();
    let app = spawn_app_in(dir.path(), engine, settings(), cluster.clone()).await;
    let run = app.start("migrate", CONTROLLER, json!({})).await;
    let id = run["id"].as_str().unwrap().to_string();
    app.wait_for(&id, "export done", |r| {
        r["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "export" && s["state"] == "succeeded")
    })
    .await;
    app.stop().await;

    let app = spawn_app_in(
        dir.path(),
        EngineSettings::new(dir.path().to_path_buf()),
        settings(),
        cluster,
    )
    .await;
    let run = app.wait_state(&id, "succeeded").await;
    assert!(
        run["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "succeeded"),
        "{run:#}"
    );
    app.stop().await;
}
