//! Upgrade-plan runs over HTTP on the simulated Piraeus v1 installation: the plan before and after
//! a migration, its downloads, what it refuses, and that it changes nothing.

use std::sync::Arc;

use linstor_migrator::cluster::sim::{SimCluster, SimTiming};
use linstor_migrator::engine::EngineSettings;
use serde_json::{Value, json};

use crate::common::{CONTROLLER, PLAIN_CONTROLLER, settings, spawn_app, spawn_app_in};

fn check<'a>(plan: &'a Value, id: &str) -> &'a Value {
    plan["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["id"] == id))
        .unwrap_or_else(|| panic!("no check {id}: {plan:#}"))
}

async fn plan_of(app: &crate::common::TestApp, options: Value) -> (String, Value) {
    let run = app.start("upgrade-plan", CONTROLLER, options).await;
    let id = run["id"].as_str().unwrap().to_string();
    let run = app.wait_state(&id, "succeeded").await;
    assert_eq!(run["kind"], "upgrade-plan");
    assert!(run["downtime"].is_null(), "a plan never stops the controller");
    let plan = app.get_json(&format!("/api/v1/runs/{id}/upgrade-plan")).await;
    assert_eq!(
        plan, run["report"]["upgrade_plan"],
        "the run view carries the same plan"
    );
    (id, plan)
}

#[tokio::test]
async fn a_plan_before_and_after_the_migration_says_where_the_database_is() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let path = dir.path().to_path_buf();
    let sim = Arc::new(SimCluster::new(SimTiming::instant()));
    let app = spawn_app_in(&path, EngineSettings::new(path.clone()), settings(), sim.clone()).await;

    // Arrange/Act: a plan on etcd changes nothing and blocks
    let before = sim.fingerprint();
    let (_, plan) = plan_of(&app, json!({})).await;
    assert_eq!(sim.fingerprint(), before, "the plan run changed the cluster");
    assert_eq!(check(&plan, "database")["outcome"], "blocking");
    assert!(
        check(&plan, "database")["action"]
            .as_str()
            .unwrap()
            .contains("migrate")
    );
    assert_eq!(plan["installation"]["satellite_sets"], json!(["piraeus-op-ns"]));
    assert_eq!(check(&plan, "ha-controllers")["outcome"], "warning");
    assert_eq!(check(&plan, "finalizers")["outcome"], "warning");
    let yaml = plan_yaml(&plan);
    assert!(
        yaml.contains("connection_url = \"etcd://piraeus-op-etcd:2379\""),
        "{yaml}"
    );

    // after the migration the database check passes and the etcd URL is gone from the YAML
    let migrate = app.start("migrate", CONTROLLER, json!({})).await;
    let migrate_id = migrate["id"].as_str().unwrap();
    app.wait_state(migrate_id, "succeeded").await;
    let page = app
        .get(&format!("/runs/{migrate_id}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("id=\"plan-v2-upgrade\"") && page.contains("value=\"upgrade-plan\""),
        "the migration's page offers the plan"
    );
    let (id, plan) = plan_of(&app, json!({"v2_namespace": "piraeus-v2"})).await;
    let page = app
        .get(&format!("/runs/{id}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for part in [
        "id=\"upgrade-checks\"",
        "id=\"upgrade-yaml\"",
        "kind: LinstorCluster",
        "id=\"upgrade-commands\"",
        "id=\"download-bundle\"",
    ] {
        assert!(page.contains(part), "the plan's page lacks {part}");
    }
    assert!(
        !page.contains("id=\"plan-v2-upgrade\""),
        "only a migration offers a new plan"
    );
    assert_eq!(check(&plan, "database")["outcome"], "passed");
    assert_eq!(plan["installation"]["target_namespace"], "piraeus-v2");
    let yaml = plan_yaml(&plan);
    assert!(!yaml.contains("connection_url"), "{yaml}");
    assert!(
        yaml.contains("thinPool: thinpool") && yaml.contains("/dev/vdb"),
        "the sim's lvm-thin pool: {yaml}"
    );
    let steps: Vec<&str> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert!(
        steps.contains(&"3.6"),
        "the HA controller is uninstalled: {steps:?}"
    );

    // the downloads
    let res = app
        .get(&format!("/api/v1/runs/{id}/upgrade-plan.yaml"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/yaml");
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("v2-resources.yaml")
    );
    assert_eq!(res.text().await.unwrap(), yaml);
    let res = app
        .get(&format!("/api/v1/runs/{id}/upgrade-plan.sh"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("piraeus-v2-upgrade-piraeus-datastore.sh")
    );
    let script = res.text().await.unwrap();
    assert!(
        script.starts_with("#!/usr/bin/env bash\n") && script.contains(&yaml),
        "the script embeds the YAML"
    );
    assert!(script.contains(&id), "the script names the run that made it");
    app.stop().await;
}

/// The YAML the API serves for the plan's resources, rebuilt from the JSON's resources.
fn plan_yaml(plan: &Value) -> String {
    let resources: Vec<Value> = plan["resources"].as_array().unwrap().clone();
    linstor_migrator::upgrade::render::documents(&resources)
}

#[tokio::test]
async fn a_plain_deployment_has_no_v2_upgrade_and_other_runs_no_plan() {
    let app = spawn_app().await;
    let run = app.start("upgrade-plan", PLAIN_CONTROLLER, json!({})).await;
    let run = app.wait_state(run["id"].as_str().unwrap(), "failed").await;
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .contains("no LinstorController owns"),
        "{run:#}"
    );
    let preflight = app.start("preflight", CONTROLLER, json!({})).await;
    let id = preflight["id"].as_str().unwrap();
    app.wait_state(id, "succeeded").await;
    for suffix in ["", ".yaml", ".sh"] {
        let res = app
            .get(&format!("/api/v1/runs/{id}/upgrade-plan{suffix}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{suffix}");
    }
    let bad = app
        .post(
            "/api/v1/runs",
            &json!({"kind": "upgrade-plan", "controller": CONTROLLER, "options": {"v2_namespace": "Not A Namespace"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    app.stop().await;
}

/// Right after `POST /runs`, a plan not made yet answers 409 with the run (ask again), not 404
/// like a plan that will never exist; the OpenAPI document says so.
#[tokio::test]
async fn a_plan_not_made_yet_is_409_not_404() {
    // Arrange: an engine that takes no run up any more (as if stopping), so a new run stays
    // queued
    let app = spawn_app().await;
    app.engine.kill();
    let run = app.start("upgrade-plan", CONTROLLER, json!({})).await;
    let id = run["id"].as_str().unwrap();

    // Act and Assert
    for suffix in ["", ".yaml", ".sh"] {
        let res = app
            .get(&format!("/api/v1/runs/{id}/upgrade-plan{suffix}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 409, "{suffix}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["run_id"], id, "{body}");
        assert!(
            body["error"].as_str().unwrap().contains("not ready yet"),
            "{body}"
        );
    }
    let doc = app.get_json("/api/v1/openapi.json").await;
    let yaml = &doc["paths"]["/api/v1/runs/{id}/upgrade-plan.yaml"]["get"]["responses"];
    assert!(yaml.get("409").is_some(), "{yaml:#}");
    app.stop().await;
}
