//! A controller whose database URL carries a password: the password shows nowhere, neither in
//! the controller list, nor in a run (its original URL, the controller it found, its checks),
//! nor in the run's log.

use linstor_migrator::cluster::Cluster;
use serde_json::json;

use crate::common::{self, PLAIN_CONTROLLER, spawn_app_in};

const PASSWORD: &str = "Pa55-in-the-url";

#[tokio::test]
async fn a_password_in_the_connection_url_is_never_shown() {
    let cluster = common::sim();
    let toml = format!(
        "[db]\nconnection_url = \"jdbc:postgresql://db.storage:5432/linstor?user=linstor&password={PASSWORD}&ssl=true\"\n"
    );
    cluster
        .set_config_map_key("storage", "linstor-controller-config", "linstor.toml", &toml)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_in(
        dir.path(),
        linstor_migrator::engine::EngineSettings::new(dir.path().to_path_buf()),
        common::settings(),
        cluster,
    )
    .await;

    let controllers = app.get_json("/api/v1/controllers").await.to_string();
    let run = app
        .start(
            "backup",
            PLAIN_CONTROLLER,
            json!({"approve_before_downtime": true}),
        )
        .await;
    let id = run["id"].as_str().unwrap();
    let waiting = app.wait_state(id, "waiting").await.to_string();
    let log = app
        .get(&format!("/api/v1/runs/{id}/logs.txt"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    for (what, text) in [("controllers", &controllers), ("run", &waiting), ("log", &log)] {
        assert!(!text.contains(PASSWORD), "{what} shows the password: {text}");
    }
    assert!(
        controllers.contains("jdbc:postgresql://db.storage:5432/linstor?user=linstor&password=***&ssl=true"),
        "{controllers}"
    );
    assert!(
        waiting.contains("password=***"),
        "the run's original URL, redacted: {waiting}"
    );
    app.stop().await;
}
