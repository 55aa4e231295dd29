//! Test 6: a backup run stops the controller, exports, copies out and starts it again on etcd.

use std::time::Duration;

use linstor_migrator::linstor::export::ExportDocument;

use super::install::{Installation, Shape};
use super::observe;
use super::service::Service;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the loopback control plane: tests/cluster/e2e"]
async fn backup_run_keeps_the_controller_on_etcd() {
    let inst = Installation::new("e2e-backup", Shape::Piraeus, 1).await;
    let etcd_before = std::fs::read(&inst.dataset).unwrap();
    let svc = Service::start(&inst).await;
    let id = svc.start_ok("backup", &inst.reference()).await;
    let run = svc.wait_final(&id, Duration::from_secs(180)).await;
    let log = svc.log_text(&id).await;
    assert_eq!(run["state"], "succeeded", "run: {run:#}\nlog:\n{log}");

    let cr = inst.linstor_controller().await;
    assert_eq!(cr.spec.db_connection_url.as_deref(), Some(inst.etcd_url.as_str()));
    assert_eq!(cr.spec.replicas, Some(1));
    assert!(inst.config_toml().await.contains(&inst.etcd_url));
    inst.wait_controller_up(Duration::from_secs(30)).await;
    let state = observe::rest_state(&inst.rest_url).await;
    assert!(
        state["pods"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["ready"] == true && p["backend"] == "etcd"),
        "{state:#}"
    );

    let backups = run["backups"].as_array().unwrap();
    assert_eq!(backups.len(), 1, "{run:#}");
    let bytes = svc.bytes(backups[0]["url"].as_str().unwrap()).await;
    assert_eq!(
        observe::sha256_hex(&bytes),
        backups[0]["sha256"].as_str().unwrap()
    );
    let doc: ExportDocument = serde_json::from_slice(&bytes).unwrap();
    let etcd: ExportDocument = serde_json::from_slice(&etcd_before).unwrap();
    assert_eq!(doc.exported_from, "etcd");
    assert_eq!(doc.tables.len(), etcd.tables.len());
    // the same rows; an export lists them as etcd returns them, by key
    let sorted = |rows: &[serde_json::Map<String, serde_json::Value>]| {
        let mut v: Vec<String> = rows.iter().map(|r| serde_json::to_string(r).unwrap()).collect();
        v.sort();
        v
    };
    for (a, b) in doc.tables.iter().zip(&etcd.tables) {
        assert_eq!(
            (&a.name, sorted(&a.data)),
            (&b.name, sorted(&b.data)),
            "table {} differs from etcd's",
            a.name
        );
    }
    assert_eq!(
        std::fs::read(&inst.dataset).unwrap(),
        etcd_before,
        "the etcd data changed"
    );
    assert_eq!(inst.migration_objects().await, Vec::<String>::new());
}
