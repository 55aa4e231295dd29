//! Step 11: the controller's view through the REST API after the start, compared with step 3's
//! snapshot (identity fields only), and the error reports written since the run began.

use super::{StepCtx, StepError, StepResult};
use crate::linstor::snapshot::compare_snapshots;

/// Step 11.
pub(super) async fn run(c: &mut StepCtx<'_>) -> StepResult {
    let before = super::snapshot::before(c).await?;
    let after = super::snapshot::snapshot_now(c).await?;
    let cmp = compare_snapshots(&before, &after);
    for d in &cmp.differences {
        c.log.line(Some(c.step), "error", d).await?;
    }
    for e in &cmp.expected_changes {
        c.info(&format!("expected: {e}")).await?;
    }
    let info = c.controller()?;
    let api = crate::cluster::controller::linstor_api(c.cluster(), info).await?;
    let since = c.ctx.started_at_ms.unwrap_or(before.taken_at_ms);
    let reports = api
        .error_reports(since)
        .await
        .map_err(|e| StepError::Failed(e.to_string()))?;
    for r in &reports {
        c.warn(&format!(
            "error report {} on {}: {} {}",
            r.filename, r.node_name, r.exception, r.exception_message
        ))
        .await?;
    }
    let summary = format!(
        "{} nodes, {} storage pools, {} resources, {} volumes compared; {} error report(s)",
        cmp.nodes,
        cmp.storage_pools,
        cmp.resources,
        cmp.volumes,
        reports.len()
    );
    let equal = cmp.is_equal();
    c.ctx.cluster_verification = Some(cmp);
    c.ctx.error_reports = reports;
    if !equal {
        return Err(StepError::Failed(format!(
            "the cluster differs after the migration ({summary}); nothing is rolled back automatically now, \
             a manual rollback is offered"
        )));
    }
    c.info(&format!("the cluster looks the same as before: {summary}"))
        .await?;
    Ok(summary)
}
