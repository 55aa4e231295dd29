//! Writes. Each one is safe to repeat: creating what exists, deleting what is gone and setting a
//! value that is already set all succeed (except `create_pod`, whose caller wants to know).

use std::fmt::Debug;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::core::NamespaceResourceScope;
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;

use super::FIELD_MANAGER;
use super::errors::{is_conflict, is_not_found, map_kube_error};
use super::reads::get_optional;
use super::waits::wait_pod_deleted;
use crate::cluster::{ClusterError, ClusterResult, LinstorController};

/// How often a read-modify-write is retried when someone else wrote in between.
const CONFLICT_RETRIES: usize = 3;

fn patch_params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    }
}

fn post_params() -> PostParams {
    PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PostParams::default()
    }
}

/// A JSON merge patch: custom resources take no strategic merge patches.
pub(super) async fn patch_linstor_controller(
    client: &kube::Client,
    ns: &str,
    name: &str,
    patch: serde_json::Value,
) -> ClusterResult<()> {
    let api: Api<LinstorController> = Api::namespaced(client.clone(), ns);
    api.patch(name, &patch_params(), &Patch::Merge(&patch))
        .await
        .map_err(|e| map_kube_error("patch", "LinstorController", ns, name, e))?;
    Ok(())
}

/// Sets `spec.replicas` through the scale subresource, which needs only `<resource>/scale`
/// rights and leaves the rest of the object alone.
pub(super) async fn scale<K>(
    client: &kube::Client,
    kind: &'static str,
    ns: &str,
    name: &str,
    replicas: i32,
) -> ClusterResult<()>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    api.patch_scale(
        name,
        &patch_params(),
        &Patch::Merge(json!({ "spec": { "replicas": replicas } })),
    )
    .await
    .map_err(|e| map_kube_error("scale", kind, ns, name, e))?;
    Ok(())
}

/// Sets one key of `data`, leaving the other keys as they are.
pub(super) async fn set_config_map_key(
    client: &kube::Client,
    ns: &str,
    name: &str,
    key: &str,
    value: &str,
) -> ClusterResult<()> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let patch = json!({ "data": { key: value } });
    api.patch(name, &patch_params(), &Patch::Merge(&patch))
        .await
        .map_err(|e| map_kube_error("patch", "ConfigMap", ns, name, e))?;
    Ok(())
}

/// Creates the ConfigMap, or makes an existing one's data exactly `cm`'s (keys it lacks are
/// removed), keeping the existing object's other metadata.
pub(super) async fn apply_config_map(client: &kube::Client, cm: &ConfigMap) -> ClusterResult<()> {
    let ns = cm
        .metadata
        .namespace
        .as_deref()
        .ok_or_else(|| no_namespace("ConfigMap", cm))?;
    let name = cm.name_any();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let mut new = cm.clone();
    new.metadata.resource_version = None;
    match api.create(&post_params(), &new).await {
        Ok(_) => return Ok(()),
        Err(e) if is_conflict(&e) => {}
        Err(e) => return Err(map_kube_error("create", "ConfigMap", ns, &name, e)),
    }
    for _ in 0..CONFLICT_RETRIES {
        let Some(mut existing) = get_optional(&api, &name)
            .await
            .map_err(|e| map_kube_error("get", "ConfigMap", ns, &name, e))?
        else {
            // Deleted since the create failed: create it again.
            return api
                .create(&post_params(), &new)
                .await
                .map(drop)
                .map_err(|e| map_kube_error("create", "ConfigMap", ns, &name, e));
        };
        existing.data = cm.data.clone();
        existing.binary_data = cm.binary_data.clone();
        if let Some(labels) = &cm.metadata.labels {
            existing.labels_mut().extend(labels.clone());
        }
        // `replace` carries the resourceVersion just read: a concurrent writer makes it fail
        // with 409 instead of being overwritten silently, and the loop reads again.
        match api.replace(&name, &post_params(), &existing).await {
            Ok(_) => return Ok(()),
            Err(e) if is_conflict(&e) => continue,
            Err(e) => return Err(map_kube_error("replace", "ConfigMap", ns, &name, e)),
        }
    }
    Err(ClusterError::Api(format!(
        "ConfigMap {ns}/{name} kept changing while it was replaced ({CONFLICT_RETRIES} attempts)"
    )))
}

/// Deletes a ConfigMap; absent is fine.
pub(super) async fn delete_config_map(client: &kube::Client, ns: &str, name: &str) -> ClusterResult<()> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(map_kube_error("delete", "ConfigMap", ns, name, e)),
    }
}

/// Creates a pod; [`ClusterError::AlreadyExists`] when one of that name exists.
pub(super) async fn create_pod(client: &kube::Client, pod: &Pod) -> ClusterResult<()> {
    let ns = pod
        .metadata
        .namespace
        .as_deref()
        .ok_or_else(|| no_namespace("Pod", pod))?;
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    api.create(&post_params(), pod)
        .await
        .map_err(|e| map_kube_error("create", "Pod", ns, &pod.name_any(), e))?;
    Ok(())
}

/// Deletes a pod without grace period and waits until it is gone; absent is fine.
pub(super) async fn delete_pod(
    client: &kube::Client,
    ns: &str,
    name: &str,
    timeout: Duration,
) -> ClusterResult<()> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    // The migration pod only sleeps; nothing in it needs a graceful shutdown.
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::default()
    };
    let deleted = match api.delete(name, &params).await {
        Ok(deleted) => deleted,
        Err(e) if is_not_found(&e) => return Ok(()),
        Err(e) => return Err(map_kube_error("delete", "Pod", ns, name, e)),
    };
    // `Left` is the pod as it is now, still terminating; `Right` means it is already gone.
    match deleted.left() {
        Some(pod) => wait_pod_deleted(client, ns, name, pod.metadata.uid, timeout).await,
        None => Ok(()),
    }
}

fn no_namespace<K: Resource>(kind: &str, object: &K) -> ClusterError {
    ClusterError::Api(format!("{kind} {} has no namespace", object.name_any()))
}
