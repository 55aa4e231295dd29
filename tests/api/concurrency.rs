//! Concurrent actions on one run over HTTP: of many simultaneous approve, resume, cancel and
//! rollback requests, the state machine lets exactly one of each kind that fits win, every loser
//! gets 409, and one task drives the run (one stop, one export, one import).

use futures::future::join_all;
use serde_json::{Value, json};

use crate::common::{CONTROLLER, spawn_app};

async fn post_all(app: &crate::common::TestApp, id: &str, actions: &[&str]) -> Vec<(String, u16)> {
    let requests = actions.iter().map(|action| {
        let req = app.post(&format!("/api/v1/runs/{id}/{action}"), &json!({}));
        async move {
            let res = req.send().await.expect("request");
            (action.to_string(), res.status().as_u16())
        }
    });
    join_all(requests).await
}

fn lines_with(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

/// A migration waiting at the approval gate: its id and the engine's task count then.
async fn waiting_run(app: &crate::common::TestApp) -> (String, u64) {
    let run = app
        .start("migrate", CONTROLLER, json!({"approve_before_downtime": true}))
        .await;
    let id = run["id"].as_str().unwrap().to_string();
    app.wait_state(&id, "waiting").await;
    (id, app.engine.tasks_started())
}

async fn log_text(app: &crate::common::TestApp, id: &str) -> String {
    app.get(&format!("/api/v1/runs/{id}/logs.txt"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_parallel_approvals_start_the_downtime_once() {
    let app = spawn_app().await;
    let (id, tasks_before) = waiting_run(&app).await;
    let id = id.as_str();

    let answers = post_all(&app, id, &["approve"; 50]).await;
    let ok = answers.iter().filter(|(_, s)| *s == 200).count();
    assert_eq!(ok, 1, "{answers:?}");
    assert!(answers.iter().all(|(_, s)| *s == 200 || *s == 409), "{answers:?}");

    let done = app.wait_state(id, "succeeded").await;
    assert_eq!(
        app.engine.tasks_started() - tasks_before,
        1,
        "one task drove the run after the approval"
    );
    let log = log_text(&app, id).await;
    assert_eq!(lines_with(&log, "spec.replicas = 0"), 1, "{log}");
    // the consistent export and its (delta) import (step 4's pre-copy export and schema import
    // aside)
    assert_eq!(
        lines_with(
            &log,
            "export-db -c /etc/linstor /backup/backup-before-migration.json"
        ),
        1,
        "{log}"
    );
    assert_eq!(lines_with(&log, "delta (against the pre-copy)"), 1, "{log}");
    let approvals = done["audit"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "approve")
        .count();
    assert_eq!(approvals, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_parallel_mixed_actions_have_one_winner_per_kind_and_a_consistent_end() {
    let app = spawn_app().await;
    let (id, tasks_before) = waiting_run(&app).await;
    let id = id.as_str();

    let kinds = ["approve", "resume", "cancel", "rollback"];
    let actions: Vec<&str> = (0..50).map(|i| kinds[i % kinds.len()]).collect();
    let answers = post_all(&app, id, &actions).await;
    assert!(answers.iter().all(|(_, s)| *s == 200 || *s == 409), "{answers:?}");
    for kind in kinds {
        let won = answers.iter().filter(|(a, s)| a == kind && *s == 200).count();
        assert!(won <= 1, "{kind} won {won} times: {answers:?}");
    }
    let won = |kind: &str| answers.iter().any(|(a, s)| a == kind && *s == 200);
    assert!(
        !won("resume") && !won("rollback"),
        "nothing to resume or roll back: {answers:?}"
    );
    assert!(won("approve") || won("cancel"), "{answers:?}");

    let done: Value = app
        .wait_for(id, "a final state", |r| {
            !["queued", "running", "waiting"].contains(&r["state"].as_str().unwrap_or(""))
        })
        .await;
    let state = done["state"].as_str().unwrap();
    if won("cancel") {
        assert_eq!(state, "cancelled", "{done:#}");
    } else {
        assert_eq!(state, "succeeded", "{done:#}");
    }
    // one task at a time: a second pass of the same task may handle the cancel, never a second task
    assert_eq!(app.engine.tasks_started() - tasks_before, 1);
    let log = log_text(&app, id).await;
    assert!(lines_with(&log, "spec.replicas = 0") <= 1, "{log}");
    assert!(
        lines_with(
            &log,
            "export-db -c /etc/linstor /backup/backup-before-migration.json"
        ) <= 1,
        "{log}"
    );
}
