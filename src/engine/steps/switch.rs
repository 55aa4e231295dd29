//! Step 9: the controller's database becomes `k8s`: `dbConnectionURL` on the CR (or
//! `connection_url` in the ConfigMap of an unowned controller), then a wait until the ConfigMap
//! really says `k8s` (the operator renders it asynchronously; a controller started before that
//! would run on etcd again). The run records that it asked before it asks, so that a resumed
//! run knows the URL may say `k8s`; it asks only while the controller is still stopped.

use std::time::Duration;

use super::control::{ensure_stopped, request_url, wait_url};
use super::{StepCtx, StepError, StepResult};
use crate::cluster::controller::ControllerKind;

async fn request(c: &StepCtx<'_>) -> Result<(), StepError> {
    let info = c.controller()?.clone();
    // a controller someone started meanwhile would be restarted onto a backend not yet verified
    ensure_stopped(c.cluster(), &info, "the switch to k8s").await?;
    c.inner.db.mark_switch_requested(&c.run.id).await?;
    let original_toml = c.run.originals.as_ref().and_then(|o| o.config_toml.clone());
    request_url(c.cluster(), &info, "k8s", original_toml.as_deref()).await
}

/// Asks for the switch early (during the import); a failure only costs the overlap.
pub(super) async fn begin(c: &StepCtx<'_>) -> Result<(), StepError> {
    match request(c).await {
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

/// Step 9.
pub(super) async fn run(c: &mut StepCtx<'_>) -> StepResult {
    let info = c.controller()?.clone();
    c.info(&match info.kind {
        ControllerKind::LinstorController => format!(
            "setting LinstorController {}/{} spec.dbConnectionURL = k8s",
            info.namespace, info.name
        ),
        ControllerKind::Deployment => "setting connection_url = \"k8s\" in the controller's ConfigMap".into(),
    })
    .await?;
    request(c).await?;
    let timeout = Duration::from_secs(c.run.options.controller_timeout_seconds);
    wait_url(c.cluster(), &info, "k8s", timeout).await?;
    c.info("the controller's ConfigMap says connection_url = \"k8s\"")
        .await?;
    Ok("database switched to k8s".into())
}
