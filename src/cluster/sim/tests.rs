//! Tests of the simulated cluster: installation, dataset, operator behaviour, REST, faults.

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Fault, SimCluster, SimTiming};
use crate::cluster::controller::{self, ControllerKind};
use crate::cluster::{Cluster, ClusterError, ExecLine, Stream};
use crate::linstor::export::{self, Expectation, ExportDocument};
use crate::linstor::rest::RestError;
use crate::linstor::schema;
use crate::linstor::toml::Backend;
use crate::model::StepName;

pub(super) const NS: &str = "piraeus-datastore";
pub(super) const CONTAINER: &str = "linstor-controller";
pub(super) const POD: &str = "linstor-database-migration";
pub(super) const WAIT: Duration = Duration::from_secs(5);

pub(super) fn sim() -> SimCluster {
    SimCluster::new(SimTiming::instant())
}

/// The migration pod as the engine builds it: the controller's pod template with `sleep`, the
/// target config at `/etc/linstor-target` and an emptyDir at `/backup`.
pub(super) async fn migration_pod(sim: &SimCluster) -> Pod {
    let target = ConfigMap {
        metadata: serde_json::from_value(json!({"namespace": NS, "name": "linstor-migrator-target"}))
            .expect("meta"),
        data: Some(
            [(
                "linstor.toml".to_string(),
                "[db]\n  connection_url = \"k8s\"\n".to_string(),
            )]
            .into(),
        ),
        ..Default::default()
    };
    sim.apply_config_map(&target).await.expect("target config");
    let dep = sim
        .get_deployment(NS, "piraeus-op-cs-controller")
        .await
        .expect("get")
        .expect("deployment");
    let mut spec = dep.spec.expect("spec").template.spec.expect("pod spec");
    let c = &mut spec.containers[0];
    c.command = Some(vec!["sleep".into(), "infinity".into()]);
    c.args = None;
    c.volume_mounts.get_or_insert_with(Vec::new).extend(
        serde_json::from_value::<Vec<_>>(json!([
            {"name": "target-conf", "mountPath": "/etc/linstor-target", "readOnly": true},
            {"name": "backup", "mountPath": "/backup"}
        ]))
        .expect("mounts"),
    );
    spec.volumes.get_or_insert_with(Vec::new).extend(
        serde_json::from_value::<Vec<_>>(json!([
            {"name": "target-conf", "configMap": {"name": "linstor-migrator-target"}},
            {"name": "backup", "emptyDir": {}}
        ]))
        .expect("volumes"),
    );
    Pod {
        metadata: serde_json::from_value(
            json!({"namespace": NS, "name": POD, "labels": {"app": "linstor-migrator"}}),
        )
        .expect("meta"),
        spec: Some(spec),
        status: None,
    }
}

pub(super) async fn running_migration_pod(sim: &SimCluster) {
    let pod = migration_pod(sim).await;
    sim.create_pod(&pod).await.expect("create");
    sim.wait_pod_running(NS, POD, WAIT).await.expect("running");
}

/// Runs a command in the migration pod: exit code and every line.
pub(super) async fn run(sim: &SimCluster, cmd: &[&str]) -> (i32, Vec<ExecLine>) {
    let (tx, mut rx) = mpsc::channel(100_000);
    let cmd: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
    let outcome = sim
        .exec(NS, POD, CONTAINER, &cmd, tx, CancellationToken::new())
        .await
        .expect("exec");
    let mut lines = Vec::new();
    while let Ok(l) = rx.try_recv() {
        lines.push(l);
    }
    (outcome.exit_code, lines)
}

pub(super) fn text(lines: &[ExecLine], stream: Stream) -> String {
    lines
        .iter()
        .filter(|l| l.stream == stream)
        .map(|l| l.line.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

pub(super) fn summary(doc: &ExportDocument) -> export::ExportSummary {
    export::summarize(serde_json::to_vec(doc).expect("json").as_slice()).expect("summary")
}

/// Every value has its column's JSON type; nulls only where allowed.
fn check_types(doc: &ExportDocument) {
    for t in &doc.tables {
        let table = schema::table(&t.name).expect("known table");
        for row in &t.data {
            assert_eq!(row.len(), table.columns.len(), "{}: {row:?}", t.name);
            for c in &table.columns {
                let v = &row[&c.name.to_ascii_lowercase()];
                let ok = match (v, c.sql_type.as_str()) {
                    (serde_json::Value::Null, _) => c.nullable,
                    (serde_json::Value::String(_), "CHAR" | "VARCHAR" | "CLOB" | "BLOB") => true,
                    (
                        serde_json::Value::Number(_),
                        "BIGINT" | "INTEGER" | "SMALLINT" | "DATE" | "TIMESTAMP",
                    ) => true,
                    (serde_json::Value::Bool(_), "BOOLEAN") => true,
                    _ => false,
                };
                assert!(ok, "{}.{} ({}) = {v}", t.name, c.name, c.sql_type);
            }
        }
    }
}

#[test]
fn datasets_are_valid_realistic_exports() {
    let sim = sim();
    let doc = sim.etcd_dataset();
    assert_eq!(doc.tables.len(), 43);
    assert_eq!(
        (
            doc.exported_from.as_str(),
            doc.data_version.as_str(),
            doc.etcd_version.is_some()
        ),
        ("etcd", "v1-31-1", true)
    );
    check_types(&doc);
    let s = summary(&doc);
    export::validate(
        &s,
        &Expectation {
            exported_from: "etcd",
            linstor_version: Some("1.33.3"),
        },
    )
    .expect("valid");
    let rows = s.row_counts();
    assert_eq!(
        (
            rows["NODES"],
            rows["RESOURCE_DEFINITIONS"],
            rows["RESOURCES"],
            rows["SEC_ROLES"]
        ),
        (4, 18, 54, 4)
    );
    assert!(rows["PROPS_CONTAINERS"] > 300, "{rows:?}");
    assert!(
        rows["PROPS_CONTAINERS"]
            > rows
                .iter()
                .filter(|(t, _)| *t != "PROPS_CONTAINERS")
                .map(|(_, n)| *n)
                .max()
                .unwrap_or(0)
    );
    assert!(rows["LAYER_STORAGE_VOLUMES"] == 54 && rows["EBS_REMOTES"] == 0);

    let plain = sim
        .etcd_dataset_of("storage", "linstor-controller")
        .expect("plain dataset");
    check_types(&plain);
    let p = summary(&plain);
    export::validate(
        &p,
        &Expectation {
            exported_from: "etcd",
            linstor_version: Some("1.32.3"),
        },
    )
    .expect("valid");
    assert!(p.total_rows() < s.total_rows());
    // deterministic
    assert_eq!(doc, super::dataset::cr_controller());
}

#[tokio::test]
async fn the_installation_is_discovered() {
    let sim = sim();
    assert!(sim.is_simulated() && sim.describe().contains("simulated cluster"));
    let found = controller::discover(&sim).await.expect("discover");
    assert_eq!(found.len(), 2, "{found:?}");
    let cr = found
        .iter()
        .find(|c| c.kind == ControllerKind::LinstorController)
        .expect("cr controller");
    assert_eq!(
        (cr.namespace.as_str(), cr.name.as_str()),
        SimCluster::CR_CONTROLLER
    );
    assert_eq!(cr.backend, Backend::Etcd);
    assert_eq!(
        (cr.replicas, cr.ready_replicas, cr.service_account.as_str()),
        (1, 1, "linstor-controller")
    );
    assert_eq!(cr.connection_url.as_deref(), Some("etcd://piraeus-op-etcd:2379"));
    let plain = found
        .iter()
        .find(|c| c.kind == ControllerKind::Deployment)
        .expect("plain controller");
    assert_eq!(
        (plain.namespace.as_str(), plain.name.as_str()),
        SimCluster::PLAIN_CONTROLLER
    );
    assert_eq!(sim.list_helm_release_secrets(NS).await.expect("helm").len(), 1);
    let pods = sim.list_pods(NS, &cr.pod_selector).await.expect("pods");
    assert_eq!(pods.len(), 1);
    assert!(
        pods[0]
            .metadata
            .name
            .as_deref()
            .is_some_and(|n| n.starts_with("piraeus-op-cs-controller-"))
    );
}

#[tokio::test]
async fn a_direct_scale_of_an_owned_deployment_is_reverted() {
    let sim = sim();
    sim.scale_deployment(NS, "piraeus-op-cs-controller", 0)
        .await
        .expect("scale");
    sim.wait_pods_gone(NS, "app.kubernetes.io/instance=piraeus-op-cs", WAIT)
        .await
        .expect("gone");
    sim.settle().await;
    let dep = sim
        .get_deployment(NS, "piraeus-op-cs-controller")
        .await
        .expect("get")
        .expect("dep");
    assert_eq!(
        dep.spec.and_then(|s| s.replicas),
        Some(1),
        "the operator re-applies the CR's replicas"
    );
    sim.wait_deployment_ready(NS, "piraeus-op-cs-controller", WAIT)
        .await
        .expect("ready again");

    // a Deployment nobody owns stays scaled
    sim.scale_deployment("storage", "linstor-controller", 0)
        .await
        .expect("scale");
    sim.settle().await;
    assert_eq!(
        sim.fingerprint().deployment_replicas["storage/linstor-controller"],
        0
    );
    assert_eq!(sim.effects().deployment_scales, 2);
}

#[tokio::test]
async fn the_config_map_follows_a_cr_patch_only_after_the_reconcile() {
    let sim = sim();
    let before = sim.fingerprint();
    sim.patch_linstor_controller(
        NS,
        "piraeus-op-cs",
        json!({"spec": {"dbConnectionURL": "k8s", "replicas": 1}}),
    )
    .await
    .expect("patch");
    let cm = sim
        .get_config_map(NS, "piraeus-op-cs-controller-config")
        .await
        .expect("get")
        .expect("cm");
    assert!(
        cm.data.expect("data")["linstor.toml"].contains("etcd://"),
        "not yet re-rendered"
    );
    let is_k8s = |v: Option<&str>| v.is_some_and(|t| t.contains("connection_url = \"k8s\""));
    sim.wait_config_map_key(
        NS,
        "piraeus-op-cs-controller-config",
        "linstor.toml",
        &is_k8s,
        WAIT,
    )
    .await
    .expect("re-rendered");
    sim.settle().await;
    let after = sim.fingerprint();
    assert_ne!(before.controller_tomls, after.controller_tomls);
    assert_eq!(
        after.cr_specs["piraeus-datastore/piraeus-op-cs"]["dbConnectionURL"],
        "k8s"
    );
    // the rollout restarted on the new config; an empty k8s backend gives an error report
    let urls = sim.controller_connection_urls(NS, "piraeus-op-cs-controller");
    assert_eq!(urls, ["k8s"]);
    let api = sim.linstor_api(NS, "piraeus-op-cs", None).await.expect("api");
    assert!(api.nodes().await.expect("nodes").is_empty());
    assert!(!api.error_reports(0).await.expect("reports").is_empty());
}

#[tokio::test]
async fn a_controller_started_before_the_reconcile_runs_on_etcd() {
    let sim = SimCluster::new(SimTiming {
        operator_reconcile: Duration::from_millis(500),
        ..SimTiming::instant()
    });
    sim.patch_linstor_controller(NS, "piraeus-op-cs", json!({"spec": {"replicas": 0}}))
        .await
        .expect("stop");
    sim.wait_pods_gone(NS, "app.kubernetes.io/instance=piraeus-op-cs", WAIT)
        .await
        .expect("gone");
    let patch = json!({"spec": {"dbConnectionURL": "k8s", "replicas": 1}});
    sim.patch_linstor_controller(NS, "piraeus-op-cs", patch)
        .await
        .expect("patch");
    sim.wait_deployment_ready(NS, "piraeus-op-cs-controller", WAIT)
        .await
        .expect("ready");
    let urls = sim.controller_connection_urls(NS, "piraeus-op-cs-controller");
    assert_eq!(
        urls,
        ["etcd://piraeus-op-etcd:2379"],
        "the trap: ready, but on the old config"
    );
    // the operator's reconcile re-renders the ConfigMap and restarts the rollout
    sim.settle().await;
    assert_eq!(
        sim.controller_connection_urls(NS, "piraeus-op-cs-controller"),
        ["k8s"]
    );
}

#[tokio::test]
async fn rest_answers_from_etcd_and_is_unreachable_without_replicas() {
    let sim = sim();
    let api = sim.linstor_api(NS, "piraeus-op-cs", None).await.expect("api");
    assert_eq!(api.version().await.expect("version").version, "1.33.3");
    let snap = crate::linstor::rest::take_snapshot(api.as_ref())
        .await
        .expect("snapshot");
    assert_eq!(
        (snap.nodes.len(), snap.storage_pools.len(), snap.resources.len()),
        (4, 8, 54)
    );
    assert!(
        snap.resources
            .iter()
            .all(|r| r.volumes.len() == 1 && r.volumes[0].usable_size_kib.is_some())
    );
    assert!(
        snap.resources
            .iter()
            .any(|r| r.flags.contains(&"TIE_BREAKER".to_string()))
    );
    assert!(api.error_reports(0).await.expect("reports").is_empty());
    let plain = sim
        .linstor_api("storage", "linstor-controller", None)
        .await
        .expect("api");
    assert_eq!(plain.nodes().await.expect("nodes").len(), 3);

    sim.patch_linstor_controller(NS, "piraeus-op-cs", json!({"spec": {"replicas": 0}}))
        .await
        .expect("stop");
    sim.wait_pods_gone(NS, "app.kubernetes.io/instance=piraeus-op-cs", WAIT)
        .await
        .expect("gone");
    assert!(matches!(api.nodes().await, Err(RestError::Unreachable { .. })));
    assert!(matches!(api.version().await, Err(RestError::Unreachable { .. })));
}

#[tokio::test]
async fn faults_fire_once_at_their_step() {
    let sim = sim();
    sim.inject(StepName::StopController, Fault::Error);
    sim.inject(StepName::Snapshot, Fault::Error);
    let stop = json!({"spec": {"replicas": 0}});
    assert!(matches!(
        sim.patch_linstor_controller(NS, "piraeus-op-cs", stop.clone())
            .await,
        Err(ClusterError::Api(_))
    ));
    assert_eq!(
        sim.fingerprint().cr_specs["piraeus-datastore/piraeus-op-cs"]["replicas"],
        1,
        "a failed patch changes nothing"
    );
    let api = sim.linstor_api(NS, "piraeus-op-cs", None).await.expect("api");
    assert!(api.version().await.is_ok(), "version checks are not the snapshot");
    assert!(matches!(api.nodes().await, Err(RestError::Unreachable { .. })));
    assert!(api.nodes().await.is_ok());
    sim.patch_linstor_controller(NS, "piraeus-op-cs", stop)
        .await
        .expect("second try works");
    assert!(sim.pending_faults().is_empty());

    sim.inject(StepName::Preflight, Fault::Hang);
    let hung = tokio::time::timeout(Duration::from_millis(50), sim.list_deployments()).await;
    assert!(hung.is_err(), "a hung read never answers");
    assert!(sim.list_deployments().await.is_ok());
}

#[tokio::test]
async fn stop_and_start_hangs_time_out_once() {
    let sim = sim();
    sim.inject(StepName::StopController, Fault::Hang);
    sim.patch_linstor_controller(NS, "piraeus-op-cs", json!({"spec": {"replicas": 0}}))
        .await
        .expect("patch");
    let sel = "app.kubernetes.io/instance=piraeus-op-cs";
    let r = sim.wait_pods_gone(NS, sel, Duration::from_millis(50)).await;
    assert!(matches!(r, Err(ClusterError::Timeout { .. })), "{r:?}");
    sim.wait_pods_gone(NS, sel, WAIT)
        .await
        .expect("the pod goes after all");

    sim.inject(StepName::StartController, Fault::Hang);
    sim.patch_linstor_controller(NS, "piraeus-op-cs", json!({"spec": {"replicas": 1}}))
        .await
        .expect("patch");
    let r = sim
        .wait_deployment_ready(NS, "piraeus-op-cs-controller", Duration::from_millis(50))
        .await;
    assert!(matches!(r, Err(ClusterError::Timeout { .. })), "{r:?}");
    sim.wait_deployment_ready(NS, "piraeus-op-cs-controller", WAIT)
        .await
        .expect("ready after all");

    sim.inject(StepName::Switch, Fault::Hang);
    sim.patch_linstor_controller(NS, "piraeus-op-cs", json!({"spec": {"dbConnectionURL": "k8s"}}))
        .await
        .expect("patch");
    let is_k8s = |v: Option<&str>| v.is_some_and(|t| t.contains("\"k8s\""));
    let cm = "piraeus-op-cs-controller-config";
    let r = sim
        .wait_config_map_key(NS, cm, "linstor.toml", &is_k8s, Duration::from_millis(50))
        .await;
    assert!(matches!(r, Err(ClusterError::Timeout { .. })), "{r:?}");
    sim.wait_config_map_key(NS, cm, "linstor.toml", &is_k8s, WAIT)
        .await
        .expect("re-rendered after all");
}

#[tokio::test]
async fn the_migration_pod_starts_or_reports_why_not() {
    let sim = sim();
    sim.inject(StepName::PreparePod, Fault::PodNeverRunning);
    let pod = migration_pod(&sim).await;
    sim.create_pod(&pod).await.expect("create");
    let r = sim.wait_pod_running(NS, POD, WAIT).await;
    assert!(
        matches!(&r, Err(ClusterError::PodStart { reason, .. }) if reason.contains("Unschedulable")),
        "{r:?}"
    );
    sim.delete_pod(NS, POD, WAIT).await.expect("delete");

    sim.inject(StepName::PreparePod, Fault::ImagePullError);
    sim.create_pod(&pod).await.expect("create");
    assert!(matches!(
        sim.create_pod(&pod).await,
        Err(ClusterError::AlreadyExists(_))
    ));
    let r = sim.wait_pod_running(NS, POD, WAIT).await;
    assert!(
        matches!(&r, Err(ClusterError::PodStart { reason, .. }) if reason.contains("ErrImagePull")),
        "{r:?}"
    );
    sim.delete_pod(NS, POD, WAIT).await.expect("delete");

    sim.create_pod(&pod).await.expect("create");
    sim.wait_pod_running(NS, POD, WAIT).await.expect("running");
    let fp = sim.fingerprint();
    assert!(
        fp.our_pods
            .contains("piraeus-datastore/linstor-database-migration")
    );
    assert!(
        fp.our_config_maps
            .contains("piraeus-datastore/linstor-migrator-target")
    );
    assert_eq!(sim.effects().pods_created, 3);
}

#[tokio::test]
async fn leases_access_reviews_and_tokens() {
    let sim = sim();
    let ttl = Duration::from_secs(30);
    assert!(sim.acquire_lease(NS, "run-lock", "a", ttl).await.expect("lease"));
    assert!(!sim.acquire_lease(NS, "run-lock", "b", ttl).await.expect("lease"));
    assert!(sim.acquire_lease(NS, "run-lock", "a", ttl).await.expect("renew"));
    sim.release_lease(NS, "run-lock", "a").await.expect("release");
    assert!(
        sim.acquire_lease(NS, "run-lock", "b", Duration::ZERO)
            .await
            .expect("lease")
    );
    assert!(
        sim.acquire_lease(NS, "run-lock", "a", ttl)
            .await
            .expect("expired lease is free")
    );

    let sa = "system:serviceaccount:piraeus-datastore:linstor-controller";
    sim.deny(sa, "internal.linstor.linbit.com", "*", "deletecollection");
    let q = |r: &str, v: &str| crate::cluster::AccessQuestion::new("internal.linstor.linbit.com", r, v, "");
    let d = sim
        .review_subject_access(
            sa,
            &[],
            &[
                q("*", "deletecollection"),
                q("nodes", "deletecollection"),
                q("*", "list"),
            ],
        )
        .await
        .expect("sar");
    assert_eq!(
        d.iter().map(|d| d.allowed).collect::<Vec<_>>(),
        [false, false, true]
    );
    assert!(
        sim.review_self_access(&[q("*", "deletecollection")])
            .await
            .expect("ssar")[0]
            .allowed
    );
    sim.add_token("t0k3n", "alice", &["admins"]);
    assert_eq!(
        sim.review_token("t0k3n")
            .await
            .expect("review")
            .map(|u| u.username),
        Some("alice".into())
    );
    assert_eq!(sim.review_token("nope").await.expect("review"), None);
}
#[test]
fn tmp_count_rows() {
    let d = sim().etcd_dataset();
    let n: usize = d.tables.iter().map(|t| t.data.len()).sum();
    let bytes = serde_json::to_vec(&d).unwrap().len();
    panic!("rows {n} bytes {bytes}");
}
