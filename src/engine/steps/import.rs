//! Step 7: the consistent export goes into the `k8s` backend.
//! - `options.import = "tool"`: `linstor-database import-db` with the target configuration,
//!   under the tool guard (it truncates, then creates one object per row, serially). A backend
//!   that holds data (what an interrupted import left) is emptied by this service first: the
//!   tool's truncate fails half-way on large tables.
//! - `options.import = "delta"`: the backend (schema and pre-copy in place since step 4) is read
//!   directly, compared with the export row by row, and only the rows that differ are written;
//!   step 8 falls back to the tool when the result is not equal.
//!
//! With automatic rollback on, the switch to `k8s` is asked for at the same time, so that the
//! operator's asynchronous re-render overlaps the import instead of adding to the downtime; the
//! controller is at 0 replicas, so nothing starts on the new config, and a rollback restores the
//! original URL. Without automatic rollback the switch waits for the verification: a person who
//! starts the controller by hand after a failure must get the old database, not partial data.

use super::delta;
use super::files::{recorded, summarize};
use super::prepare_target::empty_backend;
use super::tool::{backup_file, backup_name, run_tool};
use super::{StepCtx, StepError, StepResult};
use crate::engine::context::ImportReport;
use crate::linstor::schema;
use crate::model::ImportMode;

/// The tool's import of the backup, over an emptied backend.
pub(super) async fn tool_import(c: &StepCtx<'_>) -> Result<u64, StepError> {
    let emptied = empty_backend(c).await?;
    let file = backup_file(c);
    let target = c.inner.settings.pod_paths.target_config_dir.clone();
    run_tool(c, &["import-db", "-c", &target, &file], "Import finished").await?;
    Ok(emptied)
}

/// Only the rows that differ from the backup.
async fn delta_import(c: &mut StepCtx<'_>) -> Result<String, StepError> {
    let backup = recorded(c, backup_name(c.run.kind))
        .await?
        .ok_or_else(|| StepError::Failed("the backup is not recorded".into()))?;
    let path = c.inner.settings.data_dir.join(&backup.path);
    let expected = summarize(path.clone()).await?;
    let version = expected
        .header
        .data_version
        .clone()
        .unwrap_or_else(|| schema::DATA_VERSION.to_string());
    let started = std::time::Instant::now();
    let found = super::backend::read(c.inner.cluster.clone(), &version).await?;
    let plan = delta::plan(&expected, &found.summary);
    if !plan.unsupported.is_empty() {
        c.warn(&format!(
            "tables without a primary key differ and cannot be written row by row: {}; the verification will \
             fall back to the tool",
            plan.unsupported.join(", ")
        ))
        .await?;
    }
    let counts = delta::apply(c.inner.cluster.clone(), path, &version, plan).await?;
    let message = format!(
        "delta: {} created, {} changed, {} removed in {} ms",
        counts.created,
        counts.changed,
        counts.removed,
        started.elapsed().as_millis()
    );
    c.info(&message).await?;
    c.ctx
        .import_report
        .get_or_insert_with(ImportReport::default)
        .delta = Some(counts);
    Ok(message)
}

/// Step 7.
pub(super) async fn run(c: &mut StepCtx<'_>) -> StepResult {
    // recorded first: from here on the k8s backend may hold (partial) data
    c.ctx.import_started = true;
    c.save().await?;
    let mode = c.run.options.import;
    c.ctx.import_report.get_or_insert_with(ImportReport::default).mode = mode;
    if c.run.options.auto_rollback {
        // the operator re-renders the ConfigMap while the import runs
        super::switch::begin(c).await?;
    }
    match mode {
        ImportMode::Tool => {
            let emptied = tool_import(c).await?;
            c.ctx
                .import_report
                .get_or_insert_with(ImportReport::default)
                .emptied_objects += emptied;
            Ok(if emptied > 0 {
                format!("imported into the k8s backend (after deleting {emptied} objects left there)")
            } else {
                "imported into the k8s backend".to_string()
            })
        }
        ImportMode::Delta => delta_import(c).await,
    }
}
