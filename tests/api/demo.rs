//! Demo scenarios: a run on the simulated cluster that fails inside the downtime, rolls back, or
//! ends `rollback_failed`, chosen per run (stored with it) through `options.demo_scenario`.

use std::sync::Arc;
use std::time::Duration;

use linstor_migrator::engine::{EngineSettings, RetryPolicy};
use serde_json::{Value, json};

use crate::common::{CONTROLLER, PLAIN_CONTROLLER, TestApp, settings, sim, spawn_app_in};

/// A server whose rollbacks give up quickly.
async fn app() -> TestApp {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let path = dir.path().to_path_buf();
    let mut engine = EngineSettings::new(path.clone());
    engine.rollback_retry = RetryPolicy {
        attempts: 3,
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(20),
    };
    let mut app = spawn_app_in(&path, engine, settings(), sim()).await;
    app._dir = Some(dir);
    app
}

async fn play(app: &TestApp, controller: &str, options: Value, end: &str) -> Value {
    let run = app.start("migrate", controller, options).await;
    app.wait_state(run["id"].as_str().unwrap(), end).await
}

#[tokio::test]
async fn each_scenario_ends_where_it_says() {
    let app = app().await;
    for import in ["tool", "delta"] {
        let run = play(
            &app,
            CONTROLLER,
            json!({"demo_scenario": "import-fails", "import": import}),
            "rolled_back",
        )
        .await;
        assert_eq!(
            run["options"]["demo_scenario"], "import-fails",
            "stored with the run"
        );
        let cause = run["rollback_cause"].as_str().unwrap();
        assert!(cause.contains("failed"), "{import}: {cause}");
    }

    let run = play(
        &app,
        CONTROLLER,
        json!({"demo_scenario": "controller-does-not-start", "controller_timeout_seconds": 5}),
        "rolled_back",
    )
    .await;
    assert!(
        run["rollback_cause"]
            .as_str()
            .unwrap()
            .starts_with("Start controller failed"),
        "{run:#}"
    );

    let run = play(
        &app,
        CONTROLLER,
        json!({"demo_scenario": "rollback-fails"}),
        "rollback_failed",
    )
    .await;
    let commands = run["report"]["rollback_failure"]["commands"].as_array().unwrap();
    assert!(!commands.is_empty(), "{run:#}");
    // once the run gave up, the scenario is over: retrying the rollback finishes it
    let id = run["id"].as_str().unwrap();
    let res = app
        .post(&format!("/api/v1/runs/{id}/resume"), &json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    app.wait_state(id, "rolled_back").await;

    // nothing left behind: a migration without a scenario succeeds
    play(&app, CONTROLLER, json!({}), "succeeded").await;
    app.stop().await;
}

#[tokio::test]
async fn the_slow_scenario_migrates_a_database_of_100k_rows() {
    let app = app().await;
    let run = app
        .start(
            "migrate",
            PLAIN_CONTROLLER,
            json!({"demo_scenario": "slow-100k", "import": "delta"}),
        )
        .await;
    // a debug build takes minutes for 100k rows: poll with a deadline of its own
    let id = run["id"].as_str().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(900);
    let run = loop {
        let run = app.get_json(&format!("/api/v1/runs/{id}")).await;
        if run["state"] != "running" && run["state"] != "queued" {
            break run;
        }
        assert!(tokio::time::Instant::now() < deadline, "{run:#}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(run["state"], "succeeded", "{run:#}");
    let rows = run["backups"][0]["rows"].as_i64().unwrap();
    assert!(rows >= 90_000, "{rows} rows");
    app.stop().await;
}

#[tokio::test]
async fn two_runs_with_different_scenarios_do_not_meet_each_others_faults() {
    // Arrange: a migration whose controller may not be started again, waiting at the gate
    let app = app().await;
    let refused = app
        .start(
            "migrate",
            CONTROLLER,
            json!({"demo_scenario": "rollback-fails", "approve_before_downtime": true}),
        )
        .await;
    let refused = refused["id"].as_str().unwrap().to_string();
    app.wait_state(&refused, "waiting").await;

    // Act: a backup of another controller stops and starts it meanwhile
    let backup = app.start("backup", PLAIN_CONTROLLER, json!({})).await;

    // Assert: the other controller starts; the first run meets its own refusal
    app.wait_state(backup["id"].as_str().unwrap(), "succeeded").await;
    let res = app
        .post(&format!("/api/v1/runs/{refused}/approve"), &json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    app.wait_state(&refused, "rollback_failed").await;
    app.stop().await;
}

#[tokio::test]
async fn a_scenario_must_fit_the_run() {
    let app = app().await;
    for (kind, scenario) in [
        ("backup", "import-fails"),
        ("preflight", "rollback-fails"),
        ("migrate", "nope"),
    ] {
        let res = app
            .post(
                "/api/v1/runs",
                &json!({"kind": kind, "controller": CONTROLLER, "options": {"demo_scenario": scenario}}),
            )
            .send()
            .await
            .unwrap();
        assert!(
            res.status() == 422 || res.status() == 400,
            "{kind} {scenario}: {}",
            res.status()
        );
    }
    app.stop().await;
}
