//! Tests of the simulated cluster's installation and dataset, and helpers for the other test files.

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{SimCluster, SimTiming};
use crate::cluster::controller::{self, ControllerKind};
use crate::cluster::{Cluster, ExecLine, Stream};
use crate::linstor::export::{self, Expectation, ExportDocument};
use crate::linstor::toml::Backend;
use linstor_fake::Release;

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

/// Every value has its column's JSON type; a column is left out (never `null`) only where it is
/// nullable, as in a real export.
fn check_types(doc: &ExportDocument) {
    let release = Release::modelling(&doc.linstor_version);
    for t in &doc.tables {
        let table = release.table(&t.name).expect("known table");
        for row in &t.data {
            assert!(row.values().all(|v| !v.is_null()), "{}: {row:?}", t.name);
            for c in &table.columns {
                let v = row
                    .get(&c.name.to_ascii_lowercase())
                    .unwrap_or(&serde_json::Value::Null);
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
    // the 39 tables a real 1.33.3 export writes, in its order, with its header versions
    let names = |doc: &ExportDocument| doc.tables.iter().map(|t| t.name.clone()).collect::<Vec<_>>();
    let exported = |r: Release| {
        r.exported_tables()
            .iter()
            .map(|t| t.name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&doc), exported(Release::V1_33_3));
    assert_eq!(
        (doc.etcd_version, doc.k8s_version, doc.sql_version.clone()),
        (Some(71), Some(30), Some("2025.12.31.23.59".into()))
    );
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
    assert_eq!(doc, linstor_fake::dataset::piraeus(Release::V1_33_3));

    // the chart's default image: LINSTOR 1.25.1's 41 tables and header
    let (ns, cr) = SimCluster::CHART_DEFAULT_CONTROLLER;
    let old = sim.etcd_dataset_of(ns, cr).expect("the 1.25.1 dataset");
    assert_eq!(names(&old), exported(Release::V1_25_1));
    assert_eq!(
        (
            old.data_version.as_str(),
            old.k8s_version,
            old.linstor_version.as_str()
        ),
        ("v1-19-1", Some(17), "1.25.1")
    );
    check_types(&old);
    export::validate(
        &summary(&old),
        &Expectation {
            exported_from: "etcd",
            linstor_version: Some("1.25.1"),
        },
    )
    .expect("valid");
}

#[tokio::test]
async fn the_installation_is_discovered() {
    let sim = sim();
    assert!(sim.is_simulated() && sim.describe().contains("simulated cluster"));
    let found = controller::discover(&sim).await.expect("discover");
    assert_eq!(found.len(), 3, "{found:?}");
    let cr = found
        .iter()
        .find(|c| c.kind == ControllerKind::LinstorController && c.namespace == SimCluster::CR_CONTROLLER.0)
        .expect("cr controller");
    assert_eq!(cr.linstor_version.as_deref(), Some("1.33.3"));
    // beside it, a Piraeus v1 installation on the v1.10.8 chart's default image
    let default = found
        .iter()
        .find(|c| (c.namespace.as_str(), c.name.as_str()) == SimCluster::CHART_DEFAULT_CONTROLLER)
        .expect("the chart default's controller");
    assert_eq!(
        (
            default.image.as_deref(),
            default.linstor_version.as_deref(),
            default.backend
        ),
        (
            Some("quay.io/piraeusdatastore/piraeus-server:v1.25.1"),
            Some("1.25.1"),
            Backend::Etcd
        )
    );
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
    // the chart's release and the separately installed HA controller's (install_v1.rs)
    assert_eq!(sim.list_helm_release_secrets(NS).await.expect("helm").len(), 2);
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
