//! Step 5: `linstor-database export-db` with the controller's own configuration, under the tool
//! guard, its output streamed into the run log.

use super::tool::{backup_file, run_tool};
use super::{StepCtx, StepResult};

/// Step 5.
pub(super) async fn run(c: &mut StepCtx<'_>) -> StepResult {
    let file = backup_file(c);
    let source = c.inner.settings.pod_paths.source_config_dir.clone();
    run_tool(c, &["export-db", "-c", &source, &file], "Export finished").await?;
    Ok(format!("exported to {file}"))
}
