//! Test 10: the upgrade plan on the real v1 CRDs (the suite installs the chart's own) with a
//! Piraeus-v1 installation as chart 1.10.8 renders it (the installation's LinstorSatelliteSet
//! and LinstorCSIDriver; here also the operator Deployment and the Helm release Secret): the plan changes nothing, its database check says
//! etcd before and k8s after a migration, and its YAML server-side dry-run applies cleanly once
//! the v2.6 CRDs are installed.

use std::path::PathBuf;

use base64::Engine as _;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use super::chart::{Chart, RELEASE};
use super::install::{Installation, Shape, obj};
use super::migrate::RUN_TIMEOUT;
use super::service::Service;
use super::suite::{run, suite};

const NS: &str = "e2e-upgrade";

fn fixtures() -> PathBuf {
    suite().repo.join("tests/fixtures")
}

fn v1(kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: "piraeus.linbit.com".into(),
        version: "v1".into(),
        api_version: "piraeus.linbit.com/v1".into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

/// What a running v1 adds to the chart's objects the installation created (chart.rs): the
/// satellite set's LVM thin pool and the operator's finalizer, the operator's Deployment (the
/// installation leaves it out: the operator stand-in runs as a process) and the Helm release.
async fn chart_objects(client: &kube::Client) {
    let sets: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        NS,
        &v1("LinstorSatelliteSet", "linstorsatellitesets"),
    );
    let patch = json!({"metadata": {"finalizers": ["finalizer.linstor-node.linbit.com"]},
                       "spec": {"storagePools": {"lvmThinPools": [{"name": "lvm-thin", "volumeGroup": "linstor_thinpool",
                                                                   "thinVolume": "thinpool", "devicePaths": ["/dev/vdb"]}]}}});
    sets.patch(
        &format!("{RELEASE}-ns"),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .unwrap();
    let chart = Chart::default_values(&suite().repo, NS);
    let operator = chart.get("Deployment", &format!("{RELEASE}-operator")).clone();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    deployments
        .create(&PostParams::default(), &obj(operator))
        .await
        .unwrap();
    // Helm's release record: base64 of the release JSON (Helm gzips it; both are read)
    let release = json!({"name": "piraeus-op", "namespace": NS, "version": 1, "info": {"status": "deployed"},
                         "chart": {"metadata": {"name": "piraeus", "version": "1.10.8"}},
                         "config": {"operator": {"controller": {"dbConnectionURL": "etcd://piraeus-op-etcd:2379"}}}});
    let text = base64::engine::general_purpose::STANDARD.encode(release.to_string());
    let secret = json!({"metadata": {"name": "sh.helm.release.v1.piraeus-op.v1",
                                     "labels": {"owner": "helm", "name": "piraeus-op", "version": "1", "status": "deployed"}},
                        "type": "helm.sh/release.v1", "stringData": {"release": text}});
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    secrets
        .create(&PostParams::default(), &obj(secret))
        .await
        .unwrap();
}

/// Makes a plan through the API and returns it.
async fn plan(svc: &Service, inst: &Installation) -> (String, Value) {
    let (status, run) = svc.start_run("upgrade-plan", &inst.reference(), json!({})).await;
    assert_eq!(status, 201, "{run:#}");
    let id = run["id"].as_str().unwrap().to_string();
    let run = svc.wait_final(&id, RUN_TIMEOUT).await;
    assert_eq!(run["state"], "succeeded", "{run:#}\n{}", svc.log_text(&id).await);
    let (status, plan) = svc.get(&format!("/api/v1/runs/{id}/upgrade-plan")).await;
    assert_eq!(status, 200);
    (id, plan)
}

fn check<'a>(plan: &'a Value, id: &str) -> &'a Value {
    plan["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id}"))
}

/// The resource versions of the v1 objects (a read-only run leaves them alone).
async fn versions(client: &kube::Client) -> Vec<String> {
    let mut out = Vec::new();
    for (kind, plural) in [
        ("LinstorController", "linstorcontrollers"),
        ("LinstorSatelliteSet", "linstorsatellitesets"),
        ("LinstorCSIDriver", "linstorcsidrivers"),
    ] {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), NS, &v1(kind, plural));
        for o in api.list(&Default::default()).await.unwrap() {
            out.push(format!(
                "{kind}/{}@{}",
                o.metadata.name.unwrap_or_default(),
                o.metadata.resource_version.unwrap_or_default()
            ));
        }
    }
    out
}

/// Removes the v2 CRDs again (the suite's other tests run without them).
struct V2Crds;

impl V2Crds {
    fn install() -> V2Crds {
        let dir = fixtures().join("piraeus-v2.6/crds");
        run(
            suite().kubectl().args(["apply", "--server-side", "-f"]).arg(&dir),
            None,
        );
        run(
            suite()
                .kubectl()
                .args(["wait", "--for=condition=Established", "--timeout=60s"])
                .args([
                    "crd/linstorclusters.piraeus.io",
                    "crd/linstorsatelliteconfigurations.piraeus.io",
                ]),
            None,
        );
        V2Crds
    }
}

impl Drop for V2Crds {
    fn drop(&mut self) {
        let dir = fixtures().join("piraeus-v2.6/crds");
        let _ = suite()
            .kubectl()
            .args(["delete", "--ignore-not-found", "--wait=false", "-f"])
            .arg(dir)
            .output();
    }
}

fn dry_run(yaml: &str) -> String {
    run(
        suite()
            .kubectl()
            .args(["apply", "--server-side", "--dry-run=server", "-f", "-"]),
        Some(yaml),
    )
}

/// Test 10.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the loopback control plane: tests/cluster/e2e"]
async fn upgrade_plan_on_the_real_v1_crds() {
    let inst = Installation::new(NS, Shape::Piraeus, 1).await;
    chart_objects(&inst.client).await;
    let svc = Service::start(&inst).await;

    // before the migration: the plan changes nothing and says the database is on etcd
    let before = versions(&inst.client).await;
    assert_eq!(before.len(), 3, "{before:?}");
    let (id, on_etcd) = plan(&svc, &inst).await;
    assert_eq!(
        versions(&inst.client).await,
        before,
        "the plan changed the v1 resources"
    );
    assert_eq!(
        check(&on_etcd, "database")["outcome"],
        "blocking",
        "{:#}",
        on_etcd["checks"]
    );
    assert!(
        check(&on_etcd, "database")["message"]
            .as_str()
            .unwrap()
            .contains("etcd")
    );
    assert_eq!(check(&on_etcd, "finalizers")["outcome"], "warning");
    assert_eq!(
        check(&on_etcd, "v1-crds")["outcome"],
        "warning",
        "the real v1 CRDs are installed"
    );
    assert_eq!(check(&on_etcd, "csi-driver")["outcome"], "passed");
    assert_eq!(
        on_etcd["installation"]["operator_deployment"],
        "piraeus-op-operator"
    );
    assert_eq!(on_etcd["installation"]["helm_release"], "piraeus-op");
    let etcd_yaml =
        String::from_utf8(svc.bytes(&format!("/api/v1/runs/{id}/upgrade-plan.yaml")).await).unwrap();
    assert!(etcd_yaml.contains("etcd://piraeus-op-etcd:2379"), "{etcd_yaml}");

    // the migration, then the plan says k8s
    let migrate = svc.start_ok("migrate", &inst.reference()).await;
    let run = svc.wait_final(&migrate, RUN_TIMEOUT).await;
    assert_eq!(run["state"], "succeeded", "{run:#}");
    let (id, on_k8s) = plan(&svc, &inst).await;
    assert_eq!(
        check(&on_k8s, "database")["outcome"],
        "passed",
        "{:#}",
        on_k8s["checks"]
    );
    assert_eq!(
        check(&on_k8s, "helm-values")["outcome"],
        "warning",
        "the release values still say etcd"
    );
    let yaml = String::from_utf8(svc.bytes(&format!("/api/v1/runs/{id}/upgrade-plan.yaml")).await).unwrap();
    assert!(!yaml.contains("connection_url"), "{yaml}");

    // the YAML against the v2 CRDs on the API server: both plans' resources are accepted
    let _crds = V2Crds::install();
    for (name, text) in [("after the migration", &yaml), ("on etcd", &etcd_yaml)] {
        let out = dry_run(text);
        for object in [
            "linstorcluster.piraeus.io/linstorcluster",
            "linstorsatelliteconfiguration.piraeus.io/host-networking",
            "linstorsatelliteconfiguration.piraeus.io/node-labels",
            "linstorsatelliteconfiguration.piraeus.io/piraeus-op-ns",
        ] {
            assert!(
                out.contains(&format!("{object} serverside-applied (server dry run)")),
                "{name}: {out}"
            );
        }
    }
    // and a field the CRD does not know is refused (the dry run validates, it does not prune)
    let broken = yaml.replacen(
        "spec:\n  podTemplate:",
        "spec:\n  notAField: 1\n  podTemplate:",
        1,
    );
    assert_ne!(broken, yaml);
    let refused = suite()
        .kubectl()
        .args(["apply", "--server-side", "--dry-run=server", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(broken.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(!refused.status.success(), "an unknown field passed the dry run");
}
