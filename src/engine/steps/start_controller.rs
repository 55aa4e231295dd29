//! Step 10: the controller starts again with its original replica count; the downtime ends when
//! the Deployment runs that many ready pods and the LINSTOR REST API answers.

use std::time::Duration;

use super::control::{describe_replicas, set_replicas, wait_started};
use super::{StepCtx, StepResult};

/// Step 10.
pub(super) async fn run(c: &mut StepCtx<'_>) -> StepResult {
    let info = c.controller()?.clone();
    let replicas = c.run.originals.as_ref().map_or(info.replicas, |o| o.replicas);
    if replicas == 0 {
        c.inner.db.mark_downtime(&c.run.id, false).await?;
        return Ok("the controller was scaled to 0 before; left at 0".into());
    }
    set_replicas(c.cluster(), &info, replicas).await?;
    c.info(&describe_replicas(&info, replicas)).await?;
    let timeout = Duration::from_secs(c.run.options.controller_timeout_seconds);
    let version = wait_started(c.cluster(), &info, replicas, timeout).await?;
    c.info(&format!(
        "Deployment {}/{} is ready",
        info.namespace, info.deployment
    ))
    .await?;
    c.inner.db.mark_downtime(&c.run.id, false).await?;
    c.info(&format!(
        "the LINSTOR REST API answers (version {version}); downtime over"
    ))
    .await?;
    Ok("controller running".into())
}
