//! The operator stand-in itself behaves as REFERENCE.md §2 says Piraeus Operator v1 does: the
//! Deployment follows the CR and a direct scale is reverted; a `dbConnectionURL` change reaches
//! the ConfigMap only later, and a changed ConfigMap restarts the rollout.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams};
use linstor_standins::operator::render::CONFIG_HASH_ANNOTATION;
use serde_json::json;

use super::install::{Installation, Shape};
use super::observe;

fn replicas(d: &Deployment) -> Option<i32> {
    d.spec.as_ref().and_then(|s| s.replicas)
}

fn config_hash(d: &Deployment) -> Option<String> {
    d.spec
        .as_ref()?
        .template
        .metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get(CONFIG_HASH_ANNOTATION)
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the loopback control plane: tests/cluster/e2e"]
async fn operator_stand_in_reconciles_like_piraeus_v1() {
    let inst = Installation::new("e2e-operator", Shape::Piraeus, 1).await;
    let deployments: Api<Deployment> = Api::namespaced(inst.client.clone(), &inst.ns);
    let crs: Api<linstor_migrator::cluster::LinstorController> =
        Api::namespaced(inst.client.clone(), &inst.ns);
    let merge = PatchParams::default();

    // a direct scale of the owned Deployment (what `kubectl scale` does) is reverted
    let started = Instant::now();
    deployments
        .patch_scale(
            &inst.deployment,
            &merge,
            &Patch::Merge(json!({"spec": {"replicas": 0}})),
        )
        .await
        .unwrap();
    observe::wait_for(
        Duration::from_secs(10),
        "the operator to revert the scale",
        || async { replicas(&deployments.get(&inst.deployment).await.unwrap()) == Some(1) },
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "reverted after {:?}",
        started.elapsed()
    );

    // replicas follow the CR
    crs.patch(
        &inst.controller,
        &merge,
        &Patch::Merge(json!({"spec": {"replicas": 0}})),
    )
    .await
    .unwrap();
    observe::wait_for(Duration::from_secs(10), "replicas 0 from the CR", || async {
        observe::deployment_ready(&inst.client, &inst.ns, &inst.deployment).await
            && replicas(&deployments.get(&inst.deployment).await.unwrap()) == Some(0)
    })
    .await;

    // the ConfigMap follows dbConnectionURL only later, then the rollout restarts
    let hash_before = config_hash(&deployments.get(&inst.deployment).await.unwrap());
    crs.patch(
        &inst.controller,
        &merge,
        &Patch::Merge(json!({"spec": {"dbConnectionURL": "k8s"}})),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        inst.config_toml().await.contains(&inst.etcd_url),
        "the ConfigMap changed at once"
    );
    observe::wait_for(Duration::from_secs(10), "the ConfigMap to say k8s", || async {
        inst.config_toml().await.contains("connection_url = \"k8s\"")
    })
    .await;
    let toml = inst.config_toml().await;
    let db = toml.split("[http]").next().unwrap_or_default();
    assert_eq!(
        db.trim(),
        "[db]\n  connection_url = \"k8s\"",
        "only connection_url in [db] for k8s"
    );
    observe::wait_for(
        Duration::from_secs(10),
        "the pod template to carry the new config hash",
        || async { config_hash(&deployments.get(&inst.deployment).await.unwrap()) != hash_before },
    )
    .await;
}
