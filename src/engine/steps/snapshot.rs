//! Step 3: nodes, storage pools, resources and volumes through the LINSTOR REST API, before
//! anything changes (step 11 compares the controller's view after the migration with it).

use super::{StepCtx, StepError, StepResult};
use crate::linstor::rest::take_snapshot;

pub(super) async fn snapshot_now(
    c: &StepCtx<'_>,
) -> Result<crate::linstor::rest::ClusterSnapshot, StepError> {
    let info = c.controller()?;
    let api = crate::cluster::controller::linstor_api(c.cluster(), info).await?;
    take_snapshot(api.as_ref())
        .await
        .map_err(|e| StepError::Failed(e.to_string()))
}

/// Step 3.
pub(super) async fn run(c: &mut StepCtx<'_>) -> StepResult {
    let s = snapshot_now(c).await?;
    let volumes: usize = s.resources.iter().map(|r| r.volumes.len()).sum();
    let msg = format!(
        "{} nodes, {} storage pools, {} resources, {} volumes",
        s.nodes.len(),
        s.storage_pools.len(),
        s.resources.len(),
        volumes
    );
    c.info(&format!("recorded {msg}")).await?;
    c.ctx.snapshot_before = Some(s);
    Ok(msg)
}
