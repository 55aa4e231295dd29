//! Step 7: the consistent export goes into the `k8s` backend, by the import step 4 chose
//! (`ImportReport::mode`, from the export's LINSTOR version and `options.import`):
//! - the tool's import: `linstor-database import-db` with the target configuration, under the tool
//!   guard (it truncates, then creates one object per row, serially). A backend that holds data
//!   (step 4's schema, what an interrupted import left) is emptied by this service first: the
//!   tool's truncate fails half-way on large tables.
//! - the delta import: the export is compared row by row with what the backend holds (schema and
//!   pre-copy in place since step 4: the pre-copy export; after an interrupted attempt, the backend
//!   read directly), and only the rows that differ are written; step 8 reads the backend and falls
//!   back to the tool when the result is not equal.
//!
//! An attempt that resumes an interrupted one first stops the import it interrupted (a dropped
//! exec's tool keeps running in the pod and keeps writing) and waits until it is gone, before
//! anything touches the backend. Every write goes only under a controller that is still stopped.
//!
//! With automatic rollback on, the switch to `k8s` is asked for at the same time, so that the
//! operator's asynchronous re-render overlaps the import instead of adding to the downtime; the
//! controller is at 0 replicas, so nothing starts on the new config, and a rollback restores the
//! original URL. Without automatic rollback the switch waits for the verification: a person who
//! starts the controller by hand after a failure must get the old database, not partial data.

use std::path::PathBuf;

use super::control::ensure_stopped;
use super::files::{recorded, summarize};
use super::prepare_target::empty_backend;
use super::tool::{backup_file, backup_name, run_tool, stop_tool};
use super::{StepCtx, StepError, StepResult};
use crate::engine::backend::{RunSchema, delta, read};
use crate::engine::context::ImportReport;
use crate::model::ImportMode;

/// The tool's import of the backup, over an emptied backend, under a controller still stopped.
pub(super) async fn tool_import(c: &StepCtx<'_>) -> Result<u64, StepError> {
    ensure_stopped(
        c.cluster(),
        c.controller()?,
        "the tool's import empties the k8s backend",
    )
    .await?;
    let emptied = empty_backend(c).await?;
    let file = backup_file(c);
    let target = c.inner.settings.pod_paths.target_config_dir.clone();
    run_tool(c, &["import-db", "-c", &target, &file], "Import finished").await?;
    Ok(emptied)
}

/// What the backend holds, for the delta's plan: on a first attempt, the pre-copy export step 4
/// wrote (nothing else writes the backend since: the controller runs on etcd until the switch,
/// and the verification reads the backend anyway); after an interrupted attempt, the backend
/// itself. Also the export itself, both read at once.
async fn plan_inputs(
    c: &mut StepCtx<'_>,
    path: PathBuf,
    resumed: bool,
) -> Result<(delta::Delta, RunSchema), StepError> {
    let precopy = c.ctx.precopy_file.take();
    if let Some(rel) = &precopy {
        c.save().await?;
        let file = c.inner.settings.data_dir.join(rel);
        if !resumed {
            let both = tokio::try_join!(summarize(path), summarize(file.clone()));
            let _ = tokio::fs::remove_file(&file).await;
            let (expected, found) = both?;
            let schema = RunSchema::of(&expected).map_err(StepError::Failed)?;
            let plan = delta::plan(&schema, &expected, &found, &Default::default());
            return Ok((plan, schema));
        }
        let _ = tokio::fs::remove_file(&file).await;
    }
    let expected = summarize(path).await?;
    let schema = RunSchema::of(&expected).map_err(StepError::Failed)?;
    let found = read::read(c.inner.cluster.clone(), &schema).await?;
    let plan = delta::plan(&schema, &expected, &found.summary, &found.odd_names);
    Ok((plan, schema))
}

/// Only the rows that differ from the backup.
async fn delta_import(c: &mut StepCtx<'_>, resumed: bool) -> Result<String, StepError> {
    let backup = recorded(c, backup_name(c.run.kind))
        .await?
        .ok_or_else(|| StepError::Failed("the backup is not recorded".into()))?;
    let path = c.inner.settings.data_dir.join(&backup.path);
    let started = std::time::Instant::now();
    let how = if resumed || c.ctx.precopy_file.is_none() {
        "against the backend read"
    } else {
        "against the pre-copy"
    };
    let (plan, schema) = plan_inputs(c, path.clone(), resumed).await?;
    if !plan.unsupported.is_empty() {
        c.warn(&format!(
            "tables without a primary key differ and cannot be written row by row: {}; the verification will \
             fall back to the tool",
            plan.unsupported.join(", ")
        ))
        .await?;
    }
    ensure_stopped(
        c.cluster(),
        c.controller()?,
        "the delta import writes the k8s backend",
    )
    .await?;
    let counts = delta::apply(c.inner.cluster.clone(), path, &schema, plan).await?;
    let message = format!(
        "delta ({how}): {} created, {} changed, {} removed in {} ms",
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

/// The import step 4 chose; a run that has no choice recorded (it began before step 4 chose
/// imports) makes the tool's import unless it asked for the delta.
fn chosen(c: &StepCtx<'_>) -> ImportMode {
    match c.ctx.import_report.as_ref().map(|r| r.mode) {
        Some(ImportMode::Delta) => ImportMode::Delta,
        Some(ImportMode::Tool) => ImportMode::Tool,
        _ if c.run.options.import == ImportMode::Delta => ImportMode::Delta,
        _ => ImportMode::Tool,
    }
}

/// Step 7.
pub(super) async fn run(c: &mut StepCtx<'_>) -> StepResult {
    // recorded first: from here on the k8s backend may hold (partial) data
    let resumed = c.ctx.import_started;
    if resumed {
        // the import this attempt resumes may still run in the pod: it is stopped, and gone,
        // before anything touches the backend
        c.info("resuming an interrupted import: stopping the tool it may have left running first")
            .await?;
        let pod = c.migration_pod()?;
        stop_tool(c, &pod).await?;
    }
    ensure_stopped(c.cluster(), c.controller()?, "the import").await?;
    c.ctx.import_started = true;
    c.save().await?;
    let mode = chosen(c);
    c.ctx.import_report.get_or_insert_with(ImportReport::default).mode = mode;
    if c.run.options.auto_rollback {
        // the operator re-renders the ConfigMap while the import runs
        super::switch::begin(c).await?;
    }
    match mode {
        ImportMode::Delta => delta_import(c, resumed).await,
        _ => {
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
    }
}
