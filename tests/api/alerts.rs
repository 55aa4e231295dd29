//! The metrics that the chart's PrometheusRule alerts on (deploy/linstor-migrator, values
//! `metrics.prometheusRule`): runs by state, and how long a controller has been down.

use linstor_migrator::cluster::sim::Fault;
use linstor_migrator::engine::EngineSettings;
use linstor_migrator::model::StepName;
use serde_json::json;

use crate::common::{self, CONTROLLER, PLAIN_CONTROLLER, spawn_app_in};

/// The value of the sample `name{labels}` in the text exposition, if there is one.
fn sample(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn a_controller_left_stopped_shows_its_downtime_until_a_run_starts_it() {
    let cluster = common::sim();
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_in(
        dir.path(),
        EngineSettings::new(dir.path().to_path_buf()),
        common::settings(),
        cluster.clone(),
    )
    .await;
    let metrics = || async { app.get("/metrics").send().await.unwrap().text().await.unwrap() };
    let down =
        r#"linstor_migrator_controller_downtime_seconds{controller="piraeus-datastore/piraeus-op-cs"}"#;

    // a failed import without automatic rollback leaves the controller stopped
    cluster.inject(StepName::Import, Fault::ExitOne);
    let run = app
        .start(
            "migrate",
            CONTROLLER,
            json!({"auto_rollback": false, "import": "tool"}),
        )
        .await;
    let id = run["id"].as_str().unwrap();
    app.wait_state(id, "failed").await;
    let text = metrics().await;
    assert!(sample(&text, down).is_some_and(|s| s > 0.0), "{text}");
    assert_eq!(
        sample(&text, r#"linstor_migrator_runs{state="failed"}"#),
        Some(1.0),
        "{text}"
    );

    // a backup of another controller stops and starts it: down only while it runs
    let backup = app.start("backup", PLAIN_CONTROLLER, json!({})).await;
    app.wait_state(backup["id"].as_str().unwrap(), "succeeded").await;
    let text = metrics().await;
    assert!(
        !text.contains(r#"controller="storage/linstor-controller""#),
        "{text}"
    );

    // rolling the failed run back starts the controller: its sample goes away
    let res = app
        .post(&format!("/api/v1/runs/{id}/rollback"), &json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    app.wait_state(id, "rolled_back").await;
    let text = metrics().await;
    assert_eq!(sample(&text, down), None, "{text}");
    app.stop().await;
}
