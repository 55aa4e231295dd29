//! Acting on the controller, for the steps and the rollback: its replicas, its database URL, its
//! start. A CR-owned controller is changed through its `LinstorController` (the operator reverts
//! direct Deployment edits); an unowned one through its Deployment and ConfigMap.

use std::time::Duration;

use serde_json::json;

use super::StepError;
use crate::cluster::Cluster;
use crate::cluster::controller::{ControllerInfo, ControllerKind};
use crate::linstor::toml::{LinstorConfig, with_connection_url};

/// Sets the controller's replicas (the CR's `spec.replicas`, or the Deployment's scale).
pub(in crate::engine) async fn set_replicas(
    cluster: &dyn Cluster,
    info: &ControllerInfo,
    replicas: i32,
) -> Result<(), StepError> {
    match info.kind {
        ControllerKind::LinstorController => {
            cluster
                .patch_linstor_controller(
                    &info.namespace,
                    &info.name,
                    json!({"spec": {"replicas": replicas}}),
                )
                .await?
        }
        ControllerKind::Deployment => {
            cluster
                .scale_deployment(&info.namespace, &info.deployment, replicas)
                .await?
        }
    }
    Ok(())
}

/// What [`set_replicas`] does, in words.
pub(in crate::engine) fn describe_replicas(info: &ControllerInfo, replicas: i32) -> String {
    match info.kind {
        ControllerKind::LinstorController => format!(
            "set LinstorController {}/{} spec.replicas = {replicas}",
            info.namespace, info.name
        ),
        ControllerKind::Deployment => format!(
            "scaled Deployment {}/{} to {replicas}",
            info.namespace, info.deployment
        ),
    }
}

/// The replicas the controller is asked to run now.
pub(in crate::engine) async fn current_replicas(
    cluster: &dyn Cluster,
    info: &ControllerInfo,
) -> Result<Option<i32>, StepError> {
    if info.kind == ControllerKind::LinstorController {
        return Ok(cluster
            .get_linstor_controller(&info.namespace, &info.name)
            .await?
            .and_then(|cr| cr.spec.replicas));
    }
    Ok(cluster
        .get_deployment(&info.namespace, &info.deployment)
        .await?
        .and_then(|d| d.spec.and_then(|s| s.replicas)))
}

/// Controller pods that exist now (terminating ones included).
pub(in crate::engine) async fn controller_pods(
    cluster: &dyn Cluster,
    info: &ControllerInfo,
) -> Result<usize, StepError> {
    Ok(cluster
        .list_pods(&info.namespace, &info.pod_selector)
        .await?
        .len())
}

/// Fails unless the controller is still stopped (asked for 0 replicas, no pod exists) before the
/// run does `what` during the downtime: someone may have scaled it up meanwhile, and the writes
/// would then go under a live controller.
pub(in crate::engine) async fn ensure_stopped(
    cluster: &dyn Cluster,
    info: &ControllerInfo,
    what: &str,
) -> Result<(), StepError> {
    let replicas = current_replicas(cluster, info).await?;
    let pods = controller_pods(cluster, info).await?;
    if replicas.unwrap_or(0) == 0 && pods == 0 {
        return Ok(());
    }
    Err(StepError::Failed(format!(
        "the controller is not stopped any more ({} replica(s) asked for, {pods} pod(s)) before {what}: someone \
         scaled it up during the downtime",
        replicas.unwrap_or(0)
    )))
}

fn config_map(info: &ControllerInfo) -> Result<&str, StepError> {
    info.config_map
        .as_deref()
        .ok_or_else(|| StepError::Failed("the controller has no ConfigMap".into()))
}

/// The database URL the controller is configured with now: the CR's `dbConnectionURL`, or the
/// `connection_url` in its ConfigMap.
pub(in crate::engine) async fn current_url(
    cluster: &dyn Cluster,
    info: &ControllerInfo,
) -> Result<Option<String>, StepError> {
    if info.kind == ControllerKind::LinstorController
        && let Some(cr) = cluster
            .get_linstor_controller(&info.namespace, &info.name)
            .await?
    {
        return Ok(cr.spec.db_connection_url.filter(|u| !u.is_empty()));
    }
    let Some(cm) = info.config_map.as_deref() else {
        return Ok(None);
    };
    Ok(cluster
        .get_config_map(&info.namespace, cm)
        .await?
        .and_then(|m| m.data)
        .and_then(|d| d.get("linstor.toml").cloned())
        .and_then(|t| LinstorConfig::parse(&t).ok())
        .map(|c| c.effective_url().to_string()))
}

/// Asks for the controller to be pointed at `url`: the CR's `dbConnectionURL` (the operator
/// renders the ConfigMap later), or the ConfigMap itself for an unowned controller. Looks first:
/// a resumed run may have asked already.
pub(in crate::engine) async fn request_url(
    cluster: &dyn Cluster,
    info: &ControllerInfo,
    url: &str,
    original_toml: Option<&str>,
) -> Result<(), StepError> {
    let cm = config_map(info)?;
    match info.kind {
        ControllerKind::LinstorController => {
            let cr = cluster
                .get_linstor_controller(&info.namespace, &info.name)
                .await?;
            if cr.and_then(|cr| cr.spec.db_connection_url).as_deref() != Some(url) {
                cluster
                    .patch_linstor_controller(
                        &info.namespace,
                        &info.name,
                        json!({"spec": {"dbConnectionURL": url}}),
                    )
                    .await?
            }
        }
        ControllerKind::Deployment => {
            let current = cluster
                .get_config_map(&info.namespace, cm)
                .await?
                .and_then(|m| m.data)
                .and_then(|d| d.get("linstor.toml").cloned())
                .or_else(|| original_toml.map(String::from))
                .unwrap_or_default();
            let says = |t: &str| LinstorConfig::parse(t).ok().and_then(|c| c.connection_url);
            if says(&current).as_deref() != Some(url) {
                // restoring the original: put back the exact original text
                let text = match original_toml {
                    Some(orig) if says(orig).as_deref() == Some(url) => orig.to_string(),
                    _ => with_connection_url(&current, url).map_err(StepError::Failed)?,
                };
                cluster
                    .set_config_map_key(&info.namespace, cm, "linstor.toml", &text)
                    .await?;
            }
        }
    }
    Ok(())
}

/// Waits until the controller's ConfigMap says `url`: the operator renders it asynchronously,
/// and a controller started before that would run on the old database.
pub(in crate::engine) async fn wait_url(
    cluster: &dyn Cluster,
    info: &ControllerInfo,
    url: &str,
    timeout: Duration,
) -> Result<(), StepError> {
    let cm = config_map(info)?;
    let want = url.to_string();
    let accept = move |v: Option<&str>| {
        v.and_then(|t| LinstorConfig::parse(t).ok())
            .is_some_and(|c| c.effective_url() == want)
    };
    cluster
        .wait_config_map_key(&info.namespace, cm, "linstor.toml", &accept, timeout)
        .await?;
    Ok(())
}

/// Waits until the Deployment runs `replicas` ready pods and the REST API answers; returns the
/// LINSTOR version it reports.
pub(in crate::engine) async fn wait_started(
    cluster: &dyn Cluster,
    info: &ControllerInfo,
    replicas: i32,
    timeout: Duration,
) -> Result<String, StepError> {
    cluster
        .wait_deployment_ready(&info.namespace, &info.deployment, replicas, timeout)
        .await?;
    let api = crate::cluster::controller::linstor_api(cluster, info).await?;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut delay = Duration::from_millis(50);
    loop {
        match api.version().await {
            Ok(v) => return Ok(v.version),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(StepError::Failed(format!(
                    "the controller started but its REST API does not answer: {e}"
                )));
            }
            Err(_) => {
                tokio::time::sleep(delay).await;
                // a short cap: the downtime ends when it answers, not at the next doubling
                delay = (delay * 2).min(Duration::from_millis(200));
            }
        }
    }
}

/// The etcd StatefulSet an `etcd://` URL names: the first endpoint's first DNS label
/// (`etcd://piraeus-op-etcd.ns.svc:2379` -> `piraeus-op-etcd`).
pub fn etcd_stateful_set(url: &str) -> Option<String> {
    let host = url
        .strip_prefix("etcd://")?
        .split(',')
        .next()?
        .split([':', '/'])
        .next()?;
    let name = host.split('.').next()?;
    (!name.is_empty()).then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_stateful_set_is_the_first_label_of_the_first_endpoint() {
        assert_eq!(
            etcd_stateful_set("etcd://piraeus-op-etcd:2379").as_deref(),
            Some("piraeus-op-etcd")
        );
        assert_eq!(
            etcd_stateful_set("etcd://a-etcd.ns.svc.cluster.local:2379,b:2379").as_deref(),
            Some("a-etcd")
        );
        assert_eq!(etcd_stateful_set("k8s"), None);
        assert_eq!(etcd_stateful_set("etcd://"), None);
    }
}
