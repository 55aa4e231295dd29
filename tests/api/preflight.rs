//! A preflight run checks what the migration's own preflight checks (one list of checks) and says
//! what the migration would do.

use serde_json::{Value, json};

use crate::common::{CONTROLLER, PLAIN_CONTROLLER, spawn_app};

/// `(name, level)` of a run's checks.
fn checks(run: &Value) -> Vec<(String, String)> {
    run["report"]["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().into(),
                c["level"].as_str().unwrap().into(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_preflight_runs_the_migrations_checks_and_says_what_it_would_do() {
    // Arrange: a controller with nothing in the way
    let app = spawn_app().await;

    // Act: a preflight with the options of the migration it is for
    let p = app
        .start("preflight", CONTROLLER, json!({"import": "delta"}))
        .await;
    let run = app.wait_state(p["id"].as_str().unwrap(), "succeeded").await;

    // Assert: the migration's checks ran, and the plan is the migration's
    let names: Vec<String> = checks(&run).into_iter().map(|(n, _)| n).collect();
    for name in [
        "backend",
        "k8s-backend",
        "permissions",
        "controller-rbac",
        "rest-api",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} missing: {names:?}");
    }
    let plan = &run["report"]["planned"];
    assert_eq!(plan["kind"], "migrate", "{plan:#}");
    assert_eq!(plan["import"], "delta");
    assert_eq!(plan["steps"].as_array().unwrap().len(), 13, "{plan:#}");
    assert_eq!(plan["downtime"][0], "5. Stop controller");
    assert!(
        plan["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c.as_str().unwrap().contains("spec.dbConnectionURL")),
        "{plan:#}"
    );
    let message = run["steps"][0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("all checks of a migration passed"),
        "{message}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_preflight_fails_where_the_migration_would_fail_its_own() {
    // Arrange: one controller moves to the cluster's one k8s backend
    let app = spawn_app().await;
    let first = app.start("migrate", CONTROLLER, json!({})).await;
    app.wait_state(first["id"].as_str().unwrap(), "succeeded").await;

    // Act: a preflight of the other controller, then its migration
    let p = app.start("preflight", PLAIN_CONTROLLER, json!({})).await;
    let preflight = app.wait_state(p["id"].as_str().unwrap(), "failed").await;
    let m = app.start("migrate", PLAIN_CONTROLLER, json!({})).await;
    let migrate = app.wait_state(m["id"].as_str().unwrap(), "failed").await;

    // Assert: both fail on the k8s backend, with the same checks
    let blocked = checks(&preflight);
    assert!(
        blocked.contains(&("k8s-backend".into(), "error".into())),
        "{preflight:#}"
    );
    assert_eq!(blocked, checks(&migrate), "one list of checks");
    assert_eq!(migrate["steps"][0]["state"], "failed");
    assert!(
        preflight["error"]
            .as_str()
            .unwrap()
            .contains("a migrate would fail its preflight"),
        "{preflight:#}"
    );
    app.stop().await;
}
