//! The Helm command after a migration: the release's own chart, etcd kept, and a separate later
//! command (with its warning) that removes etcd.

use serde_json::json;

use crate::common::{CONTROLLER, spawn_app};

#[tokio::test]
async fn the_helm_command_names_the_releases_chart_and_keeps_etcd() {
    let app = spawn_app().await;
    let run = app.start("migrate", CONTROLLER, json!({})).await;
    let run = app.wait_state(run["id"].as_str().unwrap(), "succeeded").await;

    let command = run["report"]["helm_command"].as_str().unwrap();
    assert!(!command.contains("./charts/piraeus"), "{command}");
    assert!(!command.contains("etcd.enabled"), "etcd stays: {command}");
    assert!(
        command.contains("--branch v1.10.8"),
        "the release's chart version: {command}"
    );
    let helm = &run["report"]["helm"];
    assert_eq!(helm["chart"], "piraeus-1.10.8", "{helm:#}");
    assert!(
        helm["persist_changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c.as_str().unwrap().contains("etcd stays")),
        "{helm:#}"
    );
    let drop = helm["drop_etcd_command"].as_str().unwrap();
    assert!(drop.ends_with("--set etcd.enabled=false"), "{drop}");
    assert!(helm["drop_etcd_warning"].as_str().unwrap().contains("rollback"));
    app.stop().await;
}
