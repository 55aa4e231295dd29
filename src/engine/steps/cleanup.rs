//! Step 12: the migration pod and the target ConfigMap go; the Helm command that persists the
//! change is said; etcd is scaled down when asked (its data is never deleted).

use super::prepare_pod::remove_migration_objects;
use super::{StepCtx, StepResult};
use crate::model::RunKind;

/// Step 12.
pub(super) async fn run(c: &mut StepCtx<'_>) -> StepResult {
    let info = c.controller()?.clone();
    remove_migration_objects(
        c.cluster(),
        &info.namespace,
        c.ctx.migration_pod.as_deref(),
        c.ctx.target_config_map.as_deref(),
    )
    .await?;
    c.info("deleted the migration pod and the target ConfigMap")
        .await?;
    if c.run.kind != RunKind::Migrate {
        return Ok("cleaned up".into());
    }
    if let Some(cmd) = c.ctx.helm_command.clone() {
        c.warn(&format!(
            "persist the change in Helm, or the next helm upgrade reverts it: {cmd}"
        ))
        .await?;
    }
    if c.run.options.scale_down_etcd {
        // only the StatefulSet preflight found (and whose replicas a rollback restores)
        let sts = c.run.originals.as_ref().and_then(|o| o.etcd_stateful_set.clone());
        match sts {
            Some(sts) => match c.cluster().scale_stateful_set(&info.namespace, &sts, 0).await {
                Ok(()) => {
                    c.info(&format!(
                        "scaled StatefulSet {}/{sts} to 0; its volumes and data are kept",
                        info.namespace
                    ))
                    .await?;
                    c.ctx.etcd_scaled_down = Some(sts);
                }
                Err(e) => c.warn(&format!("could not scale etcd down: {e}")).await?,
            },
            None => {
                c.warn("no etcd StatefulSet was found next to the controller; nothing scaled down")
                    .await?
            }
        }
    }
    Ok("cleaned up; etcd data kept".into())
}
