//! Step 2: the migration pod, made **before** the downtime from the controller Deployment's own
//! pod template (`cluster::pod`), with a ConfigMap holding the target `linstor.toml`; then a look
//! inside: the tool is there and both configurations are mounted as expected.

use std::time::Duration;

use super::{StepCtx, StepError, StepResult};
use crate::cluster::pod::{self, MigrationObjects, RUN_LABEL};
use crate::cluster::{ClusterError, Stream};
use crate::linstor::toml::{Backend, LinstorConfig, target_config};

/// Step 2.
pub(super) async fn run(c: &mut StepCtx<'_>) -> StepResult {
    let info = c.controller()?.clone();
    let ns = info.namespace.clone();
    let names = MigrationObjects::for_run(&info.name, &c.run.id);
    c.ctx.migration_pod = Some(names.pod.clone());
    c.ctx.target_config_map = Some(names.target_config_map.clone());
    c.save().await?;

    let deployment = c
        .cluster()
        .get_deployment(&ns, &info.deployment)
        .await?
        .ok_or_else(|| StepError::Failed(format!("Deployment {ns}/{} is gone", info.deployment)))?;
    let paths = c.inner.settings.pod_paths.clone();
    let source_toml = c
        .run
        .originals
        .as_ref()
        .and_then(|o| o.config_toml.clone())
        .ok_or_else(|| StepError::Failed("the controller's linstor.toml is unknown".into()))?;
    let target = target_config(&source_toml).map_err(StepError::Failed)?;
    c.cluster()
        .apply_config_map(&pod::target_config_map(&ns, &names, &c.run.id, &target))
        .await?;
    c.info(&format!(
        "ConfigMap {ns}/{} holds the target linstor.toml (connection_url = \"k8s\")",
        names.target_config_map
    ))
    .await?;

    let spec = pod::migration_pod(&deployment, &names, &c.run.id, &paths).map_err(StepError::Failed)?;
    match c.cluster().create_pod(&spec).await {
        Ok(()) => c.info(&format!("created pod {ns}/{}", names.pod)).await?,
        Err(ClusterError::AlreadyExists(_)) => {
            let existing = c.cluster().get_pod(&ns, &names.pod).await?;
            let ours = existing
                .as_ref()
                .and_then(|p| p.metadata.labels.as_ref())
                .is_some_and(|l| l.get(RUN_LABEL) == Some(&c.run.id));
            if !ours {
                return Err(StepError::Failed(format!(
                    "a pod {ns}/{} exists that this run did not create",
                    names.pod
                )));
            }
            c.info(&format!("pod {ns}/{} exists already (resumed run)", names.pod))
                .await?;
        }
        Err(e) => return Err(e.into()),
    }
    let timeout = Duration::from_secs(c.run.options.pod_timeout_seconds);
    c.cluster().wait_pod_running(&ns, &names.pod, timeout).await?;
    c.info(&format!("pod {ns}/{} is running", names.pod)).await?;

    // look inside: the tool is there and both configurations are mounted as expected
    let tool_ok = exec_quiet(c, &["test", "-x", &paths.tool]).await?.0 == 0;
    if !tool_ok {
        return Err(StepError::Failed(format!(
            "{} is not in the image {}",
            paths.tool,
            info.image.unwrap_or_default()
        )));
    }
    let source_dir = &paths.source_config_dir;
    let (code, source_seen) = exec_quiet(c, &["cat", &format!("{source_dir}/linstor.toml")]).await?;
    if code != 0 {
        return Err(StepError::Failed(format!(
            "{source_dir}/linstor.toml is not mounted in the pod"
        )));
    }
    let seen = LinstorConfig::parse(&source_seen).map_err(StepError::Failed)?;
    if seen.connection_url
        != LinstorConfig::parse(&source_toml)
            .map_err(StepError::Failed)?
            .connection_url
    {
        return Err(StepError::Failed(
            "the pod sees a different source linstor.toml than the controller's ConfigMap".into(),
        ));
    }
    let target_path = format!("{}/linstor.toml", paths.target_config_dir);
    let (code, target_seen) = exec_quiet(c, &["cat", &target_path]).await?;
    if code != 0 || LinstorConfig::parse(&target_seen).map(|t| t.backend()) != Ok(Backend::K8s) {
        return Err(StepError::Failed(format!(
            "{target_path} in the pod does not say connection_url = \"k8s\""
        )));
    }
    c.info(&format!(
        "{} is present; {source_dir} and {} are mounted",
        paths.tool, paths.target_config_dir
    ))
    .await?;
    Ok(format!("pod {} ready", names.pod))
}

/// Runs a short command in the migration pod and returns its exit code and stdout.
pub(super) async fn exec_quiet(c: &StepCtx<'_>, cmd: &[&str]) -> Result<(i32, String), StepError> {
    let info = c.controller()?;
    let pod = c.migration_pod()?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<crate::cluster::ExecLine>(256);
    let command: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
    let collect = tokio::spawn(async move {
        let mut out = String::new();
        while let Some(l) = rx.recv().await {
            if l.stream == Stream::Stdout {
                out.push_str(&l.line);
                out.push('\n');
            }
        }
        out
    });
    let outcome = c
        .cluster()
        .exec(
            &info.namespace,
            &pod,
            pod::CONTAINER,
            &command,
            tx,
            c.stop.clone(),
        )
        .await?;
    let out = collect.await.map_err(|e| StepError::Internal(e.into()))?;
    Ok((outcome.exit_code, out))
}

/// Deletes the migration pod and the target ConfigMap (both absent is fine).
pub(in crate::engine) async fn remove_migration_objects(
    cluster: &dyn crate::cluster::Cluster,
    ns: &str,
    pod_name: Option<&str>,
    config_map: Option<&str>,
) -> Result<(), ClusterError> {
    if let Some(p) = pod_name {
        cluster.delete_pod(ns, p, Duration::from_secs(120)).await?;
    }
    if let Some(cm) = config_map {
        cluster.delete_config_map(ns, cm).await?;
    }
    Ok(())
}
