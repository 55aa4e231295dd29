//! Step 7: `linstor-database import-db` with the target (`k8s`) configuration, under the tool
//! guard. With automatic rollback on, the switch to `k8s` is asked for at the same time, so that
//! the operator's asynchronous re-render overlaps the import instead of adding to the downtime;
//! the controller is at 0 replicas, so nothing starts on the new config, and a rollback restores
//! the original URL. Without automatic rollback the switch waits for the verification: a person
//! who starts the controller by hand after a failure must get the old database, not partial data.

use super::tool::{backup_file, run_tool};
use super::{StepCtx, StepResult};

/// Step 7.
pub(super) async fn run(c: &mut StepCtx<'_>) -> StepResult {
    // recorded first: from here on the k8s backend may hold (partial) data
    c.ctx.import_started = true;
    c.save().await?;
    let file = backup_file(c);
    let target = c.inner.settings.pod_paths.target_config_dir.clone();
    let args = ["import-db", "-c", &target, &file];
    if c.run.options.auto_rollback {
        let (switch, imported) = tokio::join!(super::switch::begin(c), run_tool(c, &args, "Import finished"));
        imported?;
        switch?;
    } else {
        run_tool(c, &args, "Import finished").await?;
    }
    Ok("imported into the k8s backend".into())
}
