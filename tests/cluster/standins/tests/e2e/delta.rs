//! The delta import (`options.import = "delta"`) on the real API server: its result equals the
//! tool's import of the same export object by object (13, and on LINSTOR 1.25.1 in
//! `releases.rs`), rows the running controller changed between the pre-copy and the stop are
//! carried over (14), and an object the delta cannot attribute to a row makes the verification
//! fall back to the tool in the same downtime (15).

use std::collections::BTreeMap;
use std::process::Command;

use kube::api::{Api, DynamicObject, PostParams};
use linstor_fake::Release;
use linstor_migrator::linstor::export::ExportDocument;
use linstor_standins::dbtool::{IMAGE_FILE_ENV, LINGER_ENV};
use linstor_standins::podfs::IMAGE_FILE;
use linstor_standins::{backend, dataset};
use serde_json::{Value, json};

use super::install::{Installation, Shape};
use super::migrate::{RUN_TIMEOUT, assert_migrated, main_backup};
use super::observe;
use super::service::Service;
use super::suite::{self, suite};

/// Every object of every table of the installation's LINSTOR: `plural/name` -> `spec`.
async fn backend_objects(inst: &Installation) -> BTreeMap<String, Value> {
    let (client, release) = (&inst.client, inst.release);
    let mut out = BTreeMap::new();
    for t in release.tables() {
        let objects = backend::list_objects(client, &backend::table_resource(release, t))
            .await
            .unwrap()
            .unwrap_or_default();
        for o in objects {
            let name = o.metadata.name.clone().unwrap_or_default();
            out.insert(format!("{}/{name}", t.plural()), o.data["spec"].clone());
        }
    }
    out
}

/// The import report of a finished run.
fn import_report(run: &Value) -> &Value {
    &run["report"]["import_report"]
}

/// Starts a delta migration that waits for approval after step 4 (schema and pre-copy done).
async fn delta_run_waiting(svc: &Service, inst: &Installation) -> String {
    let (status, body) = svc
        .start_run(
            "migrate",
            &inst.reference(),
            json!({"import": "delta", "approve_before_downtime": true}),
        )
        .await;
    assert_eq!(status, 201, "POST /api/v1/runs: {body}");
    let id = body["id"].as_str().unwrap().to_string();
    let waiting = svc.wait_state(&id, "waiting", RUN_TIMEOUT).await;
    let report = import_report(&waiting);
    assert_eq!(report["schema_before_stop"], true, "{waiting:#}");
    assert!(
        report["precopy"]["created"].as_u64().unwrap_or(0) > 0,
        "{waiting:#}"
    );
    id
}

async fn approve(svc: &Service, id: &str) {
    let (status, body) = svc.post(&format!("/api/v1/runs/{id}/approve")).await;
    assert!((200..300).contains(&status), "approve: {status} {body}");
}

/// Test 13: the delta import's objects, then the tool stand-in's `import-db` of the same backup
/// over them: the same names, the same specs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the loopback control plane: tests/cluster/e2e"]
async fn delta_import_equals_the_tools_import() {
    delta_import_equals_the_tools_import_on("e2e-delta-equal", Release::V1_33_3).await;
}

/// Test 13 on a controller of LINSTOR `release`.
pub(super) async fn delta_import_equals_the_tools_import_on(ns: &str, release: Release) {
    let inst = Installation::of_release(ns, release).await;
    let etcd_sha = observe::sha256_hex(&std::fs::read(&inst.dataset).unwrap());
    let svc = Service::start(&inst).await;
    let (status, body) = svc
        .start_run("migrate", &inst.reference(), json!({"import": "delta"}))
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    let run = svc.wait_final(&id, RUN_TIMEOUT).await;
    assert_migrated(&inst, &svc, &run, &etcd_sha).await;
    let report = import_report(&run);
    assert_eq!(report["mode"], "delta", "{run:#}");
    assert!(report["fallback"].is_null(), "{run:#}");
    let by_delta = backend_objects(&inst).await;

    // the tool's import of the same backup, over what the delta left (it truncates first)
    let (_, bytes, _) = main_backup(&svc, &run).await;
    let dir = inst.dir.join("tool-import");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("linstor.toml"), "[db]\nconnection_url = \"k8s\"\n").unwrap();
    std::fs::write(dir.join("backup.json"), &bytes).unwrap();
    let s = suite();
    let out = suite::run(
        Command::new(&s.bins.tool)
            .env("KUBECONFIG", &s.admin_kubeconfig)
            // the controller's LINSTOR, as the migration pod's tool was; its exit waited for
            .env(IMAGE_FILE_ENV, inst.dir.join("pod").join(IMAGE_FILE))
            .env(LINGER_ENV, "off")
            .arg("import-db")
            .arg("-c")
            .arg(&dir)
            .arg(dir.join("backup.json")),
        None,
    );
    assert!(out.contains("Import finished"), "{out}");
    let by_tool = backend_objects(&inst).await;

    let only_delta: Vec<&String> = by_delta.keys().filter(|k| !by_tool.contains_key(*k)).collect();
    let only_tool: Vec<&String> = by_tool.keys().filter(|k| !by_delta.contains_key(*k)).collect();
    let different: Vec<&String> = by_delta
        .iter()
        .filter(|(k, v)| by_tool.get(*k).is_some_and(|t| t != *v))
        .map(|(k, _)| k)
        .collect();
    assert!(
        only_delta.is_empty() && only_tool.is_empty() && different.is_empty(),
        "delta and tool differ: only by delta {only_delta:?}, only by the tool {only_tool:?}, spec differs {different:?}"
    );
    assert!(by_delta.len() > 900, "{} objects", by_delta.len());
}

/// Test 14: after the pre-copy the controller (still on etcd) changes a property, adds one and
/// removes one; the downtime's delta writes exactly those three.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the loopback control plane: tests/cluster/e2e"]
async fn rows_changed_after_the_pre_copy_are_carried_over() {
    let inst = Installation::new("e2e-delta-changed", Shape::Piraeus, 1).await;
    let svc = Service::start(&inst).await;
    let id = delta_run_waiting(&svc, &inst).await;

    let mut doc: ExportDocument = serde_json::from_slice(&std::fs::read(&inst.dataset).unwrap()).unwrap();
    let props = doc
        .tables
        .iter()
        .position(|t| t.name == "PROPS_CONTAINERS")
        .unwrap();
    let rows = &mut doc.tables[props].data;
    let ctrl: Vec<usize> = (0..rows.len())
        .filter(|i| rows[*i]["props_instance"] == "/CTRL")
        .collect();
    assert!(ctrl.len() >= 2, "the dataset has controller properties");
    let mut added = rows[ctrl[0]].clone();
    added.insert("prop_key".into(), json!("Aux/added-after-the-pre-copy"));
    added.insert("prop_value".into(), json!("yes"));
    rows[ctrl[0]].insert("prop_value".into(), json!("changed-after-the-pre-copy"));
    let removed = rows.remove(ctrl[1]);
    rows.push(added);
    dataset::write(&doc, &inst.dataset).unwrap();
    let etcd_sha = observe::sha256_hex(&std::fs::read(&inst.dataset).unwrap());

    approve(&svc, &id).await;
    let run = svc.wait_final(&id, RUN_TIMEOUT).await;
    assert_migrated(&inst, &svc, &run, &etcd_sha).await;
    let report = import_report(&run);
    assert!(report["fallback"].is_null(), "{run:#}");
    let delta = &report["delta"];
    assert_eq!(
        (&delta["created"], &delta["changed"], &delta["removed"]),
        (&json!(1), &json!(1), &json!(1)),
        "{run:#}"
    );
    // assert_migrated compared the backend with the backup row for row; the backup is the
    // consistent export, taken after the change
    let (_, _, backup) = main_backup(&svc, &run).await;
    let backed_up = &backup
        .tables
        .iter()
        .find(|t| t.name == "PROPS_CONTAINERS")
        .unwrap()
        .data;
    assert!(
        backed_up
            .iter()
            .any(|r| r["prop_value"] == "changed-after-the-pre-copy")
    );
    assert!(
        backed_up
            .iter()
            .any(|r| r["prop_key"] == "Aux/added-after-the-pre-copy")
    );
    assert!(
        !backed_up
            .iter()
            .any(|r| r["prop_key"] == removed["prop_key"] && r["props_instance"] == "/CTRL")
    );
}

/// Test 15: after the pre-copy an object appears under a name that is not its key's SHA-256
/// (LINSTOR would never find it; the delta, which names objects by key, cannot remove it): the
/// verification falls back to the tool's import in the same downtime, which empties the backend
/// first, and the run succeeds with the reason recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the loopback control plane: tests/cluster/e2e"]
async fn an_unattributable_object_makes_the_delta_fall_back_to_the_tool() {
    let inst = Installation::new("e2e-delta-fallback", Shape::Piraeus, 1).await;
    let etcd_sha = observe::sha256_hex(&std::fs::read(&inst.dataset).unwrap());
    let svc = Service::start(&inst).await;
    let id = delta_run_waiting(&svc, &inst).await;

    let nodes = inst.release.table("NODES").unwrap();
    let api: Api<DynamicObject> =
        Api::all_with(inst.client.clone(), &backend::table_resource(inst.release, nodes));
    let ghost = "not-the-sha-256-of-its-key";
    let spec = json!({"uuid": "0b7e5c1e-0000-4000-8000-000000000001", "node_name": "GHOST",
        "node_dsp_name": "ghost", "node_flags": 0, "node_type": 2});
    let object = DynamicObject::new(ghost, &backend::table_resource(inst.release, nodes))
        .data(json!({ "spec": spec }));
    api.create(&PostParams::default(), &object).await.unwrap();

    approve(&svc, &id).await;
    let run = svc.wait_final(&id, RUN_TIMEOUT).await;
    assert_migrated(&inst, &svc, &run, &etcd_sha).await;
    let why = import_report(&run)["fallback"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        why.contains("not named by their primary key") && why.contains(ghost),
        "{run:#}"
    );
    assert!(
        api.get_opt(ghost).await.unwrap().is_none(),
        "the fallback emptied the backend first"
    );
    let log = svc.log_text(&id).await;
    assert!(
        log.contains("falling back to linstor-database import-db"),
        "{log}"
    );
}
