//! Step 4: the downtime begins. The controller is scaled to 0 (its CR, or its Deployment when
//! unowned) and the step waits until **no controller pod exists**: a pod still terminating could
//! write to etcd while the export reads it.

use std::time::Duration;

use super::control::{describe_replicas, set_replicas};
use super::{StepCtx, StepResult};

/// Step 4.
pub(super) async fn run(c: &mut StepCtx<'_>) -> StepResult {
    let info = c.controller()?.clone();
    // recorded before acting: from here on a failure is rolled back
    c.inner.db.mark_downtime(&c.run.id, true).await?;
    set_replicas(c.cluster(), &info, 0).await?;
    c.info(&describe_replicas(&info, 0)).await?;
    let timeout = Duration::from_secs(c.run.options.controller_timeout_seconds);
    c.cluster()
        .wait_pods_gone(&info.namespace, &info.pod_selector, timeout)
        .await?;
    c.info("no controller pod exists any more").await?;
    Ok("controller stopped".into())
}
