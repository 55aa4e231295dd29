//! A manual rollback after a successful migration is a phase of its own: the migration's figures
//! (downtime, step times) stay as they were, and the steps say what is true after it.

use serde_json::{Value, json};

use crate::common::{CONTROLLER, spawn_app};

fn step<'a>(run: &'a Value, name: &str) -> &'a Value {
    run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name}"))
}

#[tokio::test]
async fn a_rollback_after_success_keeps_the_migrations_figures_and_reports_its_own() {
    // Arrange: a migration that succeeded
    let app = spawn_app().await;
    let run = app.start("migrate", CONTROLLER, json!({})).await;
    let id = run["id"].as_str().unwrap().to_string();
    let before = app.wait_state(&id, "succeeded").await;
    assert!(before["rollback"].is_null(), "{before:#}");

    // Act: roll it back by hand
    let res = app
        .post(&format!("/api/v1/runs/{id}/rollback"), &json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let after = app.wait_state(&id, "rolled_back").await;

    // Assert: the migration's downtime and step times are unchanged
    assert_eq!(after["downtime"], before["downtime"], "{after:#}");
    for name in [
        "stop_controller",
        "export",
        "import",
        "switch",
        "start_controller",
    ] {
        let (b, a) = (step(&before, name), step(&after, name));
        assert_eq!(a["state"], "rolled_back", "{name}");
        assert_eq!(a["started_at"], b["started_at"], "{name}");
        assert_eq!(a["finished_at"], b["finished_at"], "{name}");
        assert_eq!(a["duration_ms"], b["duration_ms"], "{name}");
    }
    // what the steps say is true after the rollback
    let start = step(&after, "start_controller")["message"].as_str().unwrap();
    assert!(!start.contains("controller running"), "{start}");
    assert!(start.contains("etcd://"), "{start}");
    let switch = step(&after, "switch")["message"].as_str().unwrap();
    assert!(switch.starts_with("undone"), "{switch}");
    // the rollback is reported as its own phase, with the downtime it caused
    let phase = &after["rollback"];
    assert!(phase["seconds"].as_f64().unwrap() >= 0.0, "{after:#}");
    assert!(!phase["finished_at"].is_null(), "{phase:#}");
    let downtime = &phase["downtime"];
    assert!(!downtime["ended_at"].is_null(), "{phase:#}");
    assert!(
        downtime["started_at"].as_str().unwrap() >= before["downtime"]["ended_at"].as_str().unwrap(),
        "the rollback's downtime comes after the migration's: {after:#}"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_automatic_rollback_is_part_of_the_runs_downtime() {
    // Arrange: a migration whose import fails (the simulated cluster's fault)
    let sim = crate::common::sim();
    sim.inject(
        linstor_migrator::model::StepName::Import,
        linstor_migrator::cluster::sim::Fault::ExitOne,
    );
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let path = dir.path().to_path_buf();
    let mut app = crate::common::spawn_app_in(
        &path,
        linstor_migrator::engine::EngineSettings::new(path.clone()),
        crate::common::settings(),
        sim,
    )
    .await;
    app._dir = Some(dir);

    // Act: the tool's import, which the fault makes fail in the downtime
    let run = app.start("migrate", CONTROLLER, json!({"import": "tool"})).await;
    let run = app.wait_state(run["id"].as_str().unwrap(), "rolled_back").await;

    // Assert: one downtime, ended by the rollback; no phase of its own
    assert!(!run["downtime"]["ended_at"].is_null(), "{run:#}");
    assert!(run["rollback"].is_null(), "{run:#}");
    app.stop().await;
}
