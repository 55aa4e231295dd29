//! Steps 4, 9 and 10: stop the controller, switch its database to `k8s`, start it again; and
//! the rollback of those. A CR-owned controller is changed through its `LinstorController`
//! (the operator reverts direct Deployment edits); an unowned one through its Deployment and
//! ConfigMap.

use std::time::Duration;

use serde_json::json;

use super::{StepCtx, StepError, StepResult};
use crate::cluster::Cluster;
use crate::cluster::controller::{ControllerInfo, ControllerKind};
use crate::linstor::toml::{LinstorConfig, with_connection_url};

async fn set_replicas(cluster: &dyn Cluster, info: &ControllerInfo, replicas: i32) -> Result<(), StepError> {
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

/// Asks for the controller to be pointed at `url`: the CR's `dbConnectionURL` (the operator
/// renders the ConfigMap later), or the ConfigMap itself for an unowned controller.
async fn request_connection_url(
    cluster: &dyn Cluster,
    info: &ControllerInfo,
    url: &str,
    original_toml: Option<&str>,
) -> Result<(), StepError> {
    let cm = info
        .config_map
        .as_deref()
        .ok_or_else(|| StepError::Failed("the controller has no ConfigMap".into()))?;
    match info.kind {
        ControllerKind::LinstorController => {
            let cr = cluster
                .get_linstor_controller(&info.namespace, &info.name)
                .await?;
            // look first: a resumed run or the early request may have set it already
            if cr.and_then(|cr| cr.spec.db_connection_url).as_deref() != Some(url) {
                let patch = json!({"spec": {"dbConnectionURL": url}});
                cluster
                    .patch_linstor_controller(&info.namespace, &info.name, patch)
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
            if LinstorConfig::parse(&current)
                .ok()
                .and_then(|c| c.connection_url)
                .as_deref()
                != Some(url)
            {
                // restoring the original: put back the exact original text
                let text = match original_toml {
                    Some(orig)
                        if LinstorConfig::parse(orig)
                            .ok()
                            .and_then(|c| c.connection_url)
                            .as_deref()
                            == Some(url) =>
                    {
                        orig.to_string()
                    }
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

/// Points the controller at `url` and waits until its ConfigMap says so.
async fn set_connection_url(
    cluster: &dyn Cluster,
    info: &ControllerInfo,
    url: &str,
    original_toml: Option<&str>,
    timeout: Duration,
) -> Result<(), StepError> {
    request_connection_url(cluster, info, url, original_toml).await?;
    let cm = info
        .config_map
        .as_deref()
        .ok_or_else(|| StepError::Failed("the controller has no ConfigMap".into()))?;
    // the operator renders the ConfigMap asynchronously: a controller started before that would
    // run on the old database
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

/// Asks for the switch to `k8s` while the import runs, so that the operator's asynchronous
/// re-render overlaps the import instead of adding to the downtime. The controller is at 0
/// replicas, so nothing starts on the new config; the switch step confirms it, and a rollback
/// restores the original URL. A failure here only costs that overlap.
pub(super) async fn begin_switch(c: &StepCtx<'_>) -> Result<(), StepError> {
    let info = c.controller()?.clone();
    match request_connection_url(c.cluster(), &info, "k8s", c.ctx.original_config_toml.as_deref()).await {
        Ok(()) => {
            c.info("asked for connection_url = \"k8s\" now, so the ConfigMap is ready when the import is")
                .await
        }
        Err(e) => {
            c.warn(&format!(
                "could not ask for the switch early ({e}); the switch step does it"
            ))
            .await
        }
    }
}

async fn wait_started(
    c: &StepCtx<'_>,
    info: &ControllerInfo,
    timeout: Duration,
) -> Result<String, StepError> {
    c.cluster()
        .wait_deployment_ready(&info.namespace, &info.deployment, timeout)
        .await?;
    c.info(&format!(
        "Deployment {}/{} is ready",
        info.namespace, info.deployment
    ))
    .await?;
    let api = crate::cluster::controller::linstor_api(c.cluster(), info).await?;
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
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
    }
}

pub(super) async fn stop(c: &mut StepCtx<'_>) -> StepResult {
    let info = c.controller()?.clone();
    c.inner.db.mark_downtime(&c.run.id, true).await?;
    set_replicas(c.cluster(), &info, 0).await?;
    c.info(&match info.kind {
        ControllerKind::LinstorController => format!(
            "set LinstorController {}/{} spec.replicas = 0",
            info.namespace, info.name
        ),
        ControllerKind::Deployment => {
            format!("scaled Deployment {}/{} to 0", info.namespace, info.deployment)
        }
    })
    .await?;
    let timeout = Duration::from_secs(c.run.options.controller_timeout_seconds);
    c.cluster()
        .wait_pods_gone(&info.namespace, &info.pod_selector, timeout)
        .await?;
    c.info("no controller pod exists any more").await?;
    Ok("controller stopped".into())
}

pub(super) async fn switch(c: &mut StepCtx<'_>) -> StepResult {
    let info = c.controller()?.clone();
    let timeout = Duration::from_secs(c.run.options.controller_timeout_seconds);
    c.info(&match info.kind {
        ControllerKind::LinstorController => format!(
            "setting LinstorController {}/{} spec.dbConnectionURL = k8s",
            info.namespace, info.name
        ),
        ControllerKind::Deployment => "setting connection_url = \"k8s\" in the controller's ConfigMap".into(),
    })
    .await?;
    set_connection_url(
        c.cluster(),
        &info,
        "k8s",
        c.ctx.original_config_toml.as_deref(),
        timeout,
    )
    .await?;
    c.info("the controller's ConfigMap says connection_url = \"k8s\"")
        .await?;
    Ok("database switched to k8s".into())
}

pub(super) async fn start(c: &mut StepCtx<'_>) -> StepResult {
    let info = c.controller()?.clone();
    let replicas = c.ctx.original_replicas.unwrap_or(1);
    if replicas == 0 {
        c.inner.db.mark_downtime(&c.run.id, false).await?;
        return Ok("the controller was scaled to 0 before; left at 0".into());
    }
    set_replicas(c.cluster(), &info, replicas).await?;
    c.info(&format!("set replicas back to {replicas}")).await?;
    let version = wait_started(
        c,
        &info,
        Duration::from_secs(c.run.options.controller_timeout_seconds),
    )
    .await?;
    c.inner.db.mark_downtime(&c.run.id, false).await?;
    c.info(&format!(
        "the LINSTOR REST API answers (version {version}); downtime over"
    ))
    .await?;
    Ok("controller running".into())
}

/// The database URL the controller is configured with now.
async fn current_url(cluster: &dyn Cluster, info: &ControllerInfo) -> Result<Option<String>, StepError> {
    if info.kind == ControllerKind::LinstorController
        && let Some(cr) = cluster
            .get_linstor_controller(&info.namespace, &info.name)
            .await?
    {
        return Ok(cr.spec.db_connection_url);
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

/// Puts the controller back as it was: original database URL, original replicas. A controller
/// that runs on the new URL is stopped first, so that it never runs on a half-switched config.
pub(in crate::engine) async fn rollback_controller(c: &mut StepCtx<'_>) -> Result<(), StepError> {
    let info = c.controller()?.clone();
    let timeout = Duration::from_secs(c.run.options.controller_timeout_seconds);
    if let Some(url) = c.ctx.original_connection_url.clone() {
        if current_url(c.cluster(), &info).await?.as_deref() != Some(url.as_str()) {
            set_replicas(c.cluster(), &info, 0).await?;
            c.cluster()
                .wait_pods_gone(&info.namespace, &info.pod_selector, timeout)
                .await?;
            c.info("the controller is stopped").await?;
            c.info(&format!("restoring the database URL {url}")).await?;
        }
        set_connection_url(
            c.cluster(),
            &info,
            &url,
            c.ctx.original_config_toml.as_deref(),
            timeout,
        )
        .await?;
    }
    let replicas = c.ctx.original_replicas.unwrap_or(info.replicas);
    set_replicas(c.cluster(), &info, replicas).await?;
    if replicas > 0 {
        c.info(&format!("starting the controller with {replicas} replica(s)"))
            .await?;
        wait_started(c, &info, timeout).await?;
    }
    c.inner.db.mark_downtime(&c.run.id, false).await?;
    Ok(())
}
