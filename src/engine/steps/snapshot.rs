//! Step 3: nodes, storage pools, resources and volumes through the LINSTOR REST API, before
//! anything changes (step 11 compares the controller's view after the migration with it). The
//! snapshot is a file of the data directory (`snapshots/<run>.json`), not part of the run's
//! context: it grows with the cluster.

use std::path::PathBuf;

use tokio::io::AsyncWriteExt;

use super::{StepCtx, StepError, StepResult};
use crate::linstor::snapshot::{ClusterSnapshot, take_snapshot};

pub(super) async fn snapshot_now(c: &StepCtx<'_>) -> Result<ClusterSnapshot, StepError> {
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
    write(c, &s).await?;
    c.info(&format!("recorded {msg}")).await?;
    c.ctx.snapshot_before_summary = Some(msg.clone());
    Ok(msg)
}

/// Where a run's snapshot is kept.
fn path(c: &StepCtx<'_>) -> PathBuf {
    c.inner
        .settings
        .data_dir
        .join("snapshots")
        .join(format!("{}.json", c.run.id))
}

/// Writes the snapshot durably: complete under its name or not there (a crash before the step
/// is recorded takes the snapshot again).
async fn write(c: &StepCtx<'_>, s: &ClusterSnapshot) -> Result<(), StepError> {
    let file = path(c);
    let body = serde_json::to_vec(s).map_err(|e| StepError::Internal(e.into()))?;
    let io = |e: std::io::Error| StepError::Failed(format!("cannot write {}: {e}", file.display()));
    let dir = file.parent().expect("a file in a directory").to_path_buf();
    tokio::fs::create_dir_all(&dir).await.map_err(io)?;
    let partial = dir.join(format!(".{}.partial", c.run.id));
    let mut f = tokio::fs::File::create(&partial).await.map_err(io)?;
    f.write_all(&body).await.map_err(io)?;
    f.sync_all().await.map_err(io)?;
    tokio::fs::rename(&partial, &file).await.map_err(io)?;
    Ok(())
}

/// Step 3's snapshot: from its file, or from the context of a run an earlier version began.
pub(super) async fn before(c: &StepCtx<'_>) -> Result<ClusterSnapshot, StepError> {
    if let Some(s) = &c.ctx.snapshot_before {
        return Ok(s.clone());
    }
    let file = path(c);
    let body = tokio::fs::read(&file)
        .await
        .map_err(|e| StepError::Failed(format!("no snapshot from before ({}: {e})", file.display())))?;
    serde_json::from_slice(&body)
        .map_err(|e| StepError::Failed(format!("the snapshot {} does not parse: {e}", file.display())))
}
