//! Tests of the simulated control plane: the operator, REST, faults, the migration pod, Leases
//! and access reviews.

use std::time::Duration;

use serde_json::json;

use super::tests::{NS, POD, WAIT, migration_pod, sim};
use super::{Fault, SimCluster, SimTiming};
use crate::cluster::{Cluster, ClusterError};
use crate::linstor::rest::RestError;
use crate::model::StepName;

#[tokio::test]
async fn a_direct_scale_of_an_owned_deployment_is_reverted() {
    // the operator's reconcile well after the pod is gone: with both a few ms apart, a loaded
    // machine let the pod come back before the wait saw it gone
    let sim = SimCluster::new(SimTiming {
        operator_reconcile: Duration::from_millis(300),
        ..SimTiming::instant()
    });
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
    sim.wait_deployment_ready(NS, "piraeus-op-cs-controller", 1, WAIT)
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
    // a reconcile a few ms after the patch was missed on a loaded machine: give it 300 ms
    let sim = SimCluster::new(SimTiming {
        operator_reconcile: Duration::from_millis(300),
        ..SimTiming::instant()
    });
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
    sim.wait_deployment_ready(NS, "piraeus-op-cs-controller", 1, WAIT)
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
    let snap = crate::linstor::snapshot::take_snapshot(api.as_ref())
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
        .wait_deployment_ready(NS, "piraeus-op-cs-controller", 1, Duration::from_millis(50))
        .await;
    assert!(matches!(r, Err(ClusterError::Timeout { .. })), "{r:?}");
    sim.wait_deployment_ready(NS, "piraeus-op-cs-controller", 1, WAIT)
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
