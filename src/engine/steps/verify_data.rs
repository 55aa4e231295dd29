//! Step 8: the `k8s` backend compared with the backup, table by table and row by row by primary
//! key. By default it reads the backend's objects directly (`backend.rs`: paged LISTs, tables in
//! parallel, digests only), which takes seconds whatever the size and also finds objects LINSTOR
//! could not find (a name that is not its key's SHA-256) and pending `Rollback` objects (a
//! controller refuses to start on them). With `options.verify = "tool"` the tool exports the
//! backend again; every such re-export is kept as a backup of its own (purpose `verification`,
//! `export-from-k8s[-N].json`; a recorded file is never replaced).
//!
//! After a delta import, a backend that differs, or holds objects the delta could not attribute
//! to a row (misnamed), is not an error yet: the tool's import runs in its place within the same
//! downtime, and the check is made again.

use std::path::PathBuf;
use std::sync::Arc;

use super::files::{copy_out, record, recorded, summarize};
use super::tool::run_tool;
use super::{StepCtx, StepError, StepResult};
use crate::engine::backend::{RunSchema, read};
use crate::linstor::compare::{self, DataComparison};
use crate::linstor::export::{self, Expectation, ExportSummary};
use crate::model::VerifyMode;

/// The first `export-from-k8s[-N].json` of this run that is not recorded yet.
async fn fresh_name(c: &StepCtx<'_>) -> Result<String, StepError> {
    for attempt in 1.. {
        let name = if attempt == 1 {
            "export-from-k8s.json".to_string()
        } else {
            format!("export-from-k8s-{attempt}.json")
        };
        if c.inner.db.backup_named(&c.run.id, &name).await?.is_none() {
            return Ok(name);
        }
    }
    unreachable!("some attempt number is free")
}

/// The backend as the tool exports it, copied out and recorded.
async fn tool_export(c: &mut StepCtx<'_>) -> Result<Arc<ExportSummary>, StepError> {
    let data_dir = c.inner.settings.data_dir.clone();
    let name = fresh_name(c).await?;
    let pod_file = format!("{}/{name}", c.inner.settings.pod_paths.backup_dir);
    let target = c.inner.settings.pod_paths.target_config_dir.clone();
    run_tool(c, &["export-db", "-c", &target, &pod_file], "Export finished").await?;
    let copied = copy_out(c, &pod_file, &name).await?;
    let found = summarize(data_dir.join(&copied.relative)).await?;
    if let Err(problems) = export::validate(
        &found,
        &Expectation {
            exported_from: "k8s",
            linstor_version: None,
        },
    ) {
        return Err(StepError::Failed(format!(
            "the export from k8s is not valid: {}",
            problems.join("; ")
        )));
    }
    let b = record(c, &copied, &name, &found, "verification").await?;
    c.ctx.verification_backup_id = Some(b.id);
    Ok(found)
}

/// What the verification found in the backend.
struct Found {
    summary: Arc<ExportSummary>,
    /// Objects whose name is not the SHA-256 of their primary key: LINSTOR would not find them
    /// (only a direct read sees these).
    misnamed: Vec<String>,
}

/// The backend read directly: the tables of the backup at its CRD version.
async fn direct_read(c: &StepCtx<'_>, expected: &ExportSummary) -> Result<Found, StepError> {
    let schema = RunSchema::of(expected).map_err(StepError::Failed)?;
    let started = std::time::Instant::now();
    let read = read::read(c.inner.cluster.clone(), &schema).await?;
    let rows: u64 = read.summary.tables.iter().map(|t| t.rows).sum();
    c.info(&format!(
        "read {rows} objects of {} tables from the k8s backend in {} ms",
        read.summary.tables.len(),
        started.elapsed().as_millis()
    ))
    .await?;
    let mut misnamed = read.misnamed;
    if read.misnamed_count > misnamed.len() as u64 {
        misnamed.push(format!("{} more", read.misnamed_count - misnamed.len() as u64));
    }
    Ok(Found {
        summary: Arc::new(read.summary),
        misnamed,
    })
}

/// The backend as `options.verify` says to read it.
async fn read_found(c: &mut StepCtx<'_>, expected: &ExportSummary) -> Result<Found, StepError> {
    Ok(match c.run.options.verify {
        VerifyMode::Direct => direct_read(c, expected).await?,
        VerifyMode::Tool => Found {
            summary: tool_export(c).await?,
            misnamed: Vec::new(),
        },
    })
}

/// `expected` (the backup at `path`) compared with `found`, the rows that differ named by their
/// keys (a second read of the backup, made only when something differs).
async fn compare(
    path: PathBuf,
    expected: &ExportSummary,
    found: &ExportSummary,
) -> Result<DataComparison, StepError> {
    let mut cmp = compare::compare(expected, found);
    if cmp.is_equal() {
        return Ok(cmp);
    }
    let tables = expected.schema();
    tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        compare::name_examples(file, &tables, &mut cmp).map(|()| cmp)
    })
    .await
    .map_err(|e| StepError::Internal(e.into()))?
    .map_err(StepError::Failed)
}

fn misnamed_text(misnamed: &[String]) -> String {
    format!(
        "objects in the k8s backend are not named by their primary key, so LINSTOR would not find them: {}",
        misnamed.join(", ")
    )
}

fn report(cmp: &DataComparison) -> Vec<String> {
    cmp.differences
        .iter()
        .map(|d| {
            format!(
                "table {}: {} expected, {} found, {} missing, {} extra, {} changed (e.g. {})",
                d.name,
                d.rows_expected,
                d.rows_found,
                d.missing,
                d.extra,
                d.changed,
                d.examples.join(", ")
            )
        })
        .collect()
}

/// Step 8.
pub(super) async fn run(c: &mut StepCtx<'_>) -> StepResult {
    let data_dir = c.inner.settings.data_dir.clone();
    let backup_name = super::tool::backup_name(c.run.kind);
    let backup = recorded(c, backup_name)
        .await?
        .ok_or_else(|| StepError::Failed("the backup is not recorded".into()))?;
    let backup_path = data_dir.join(&backup.path);
    let expected = summarize(backup_path.clone()).await?;
    let mut found = read_found(c, &expected).await?;
    let mut cmp = compare(backup_path.clone(), &expected, &found.summary).await?;
    let delta_ran = c
        .ctx
        .import_report
        .as_ref()
        .is_some_and(|r| r.delta.is_some() && r.fallback.is_none());
    if delta_ran && (!cmp.is_equal() || !found.misnamed.is_empty()) {
        // the delta import did not produce the export (or left objects it cannot attribute to a
        // row): the tool's import runs in its place, in the same downtime (over an emptied
        // backend, which takes every object with it), and the check is made again
        let mut problems = report(&cmp);
        if !found.misnamed.is_empty() {
            problems.push(misnamed_text(&found.misnamed));
        }
        let why = format!(
            "after the delta import the k8s backend differs: {}",
            problems.join("; ")
        );
        c.warn(&format!("{why}; falling back to linstor-database import-db"))
            .await?;
        // (`tool_import` makes sure that the controller is still stopped before it empties)
        c.ctx.import_report.get_or_insert_with(Default::default).fallback = Some(why);
        c.save().await?;
        let emptied = super::import::tool_import(c).await?;
        c.ctx
            .import_report
            .get_or_insert_with(Default::default)
            .emptied_objects += emptied;
        found = read_found(c, &expected).await?;
        cmp = compare(backup_path, &expected, &found.summary).await?;
    }
    // a controller refuses to start while Rollback objects are pending (linstor-server#357)
    let rollbacks = c.cluster().k8s_backend_rollback_objects().await?;
    if rollbacks > 0 {
        return Err(StepError::Failed(format!(
            "the k8s backend holds {rollbacks} pending Rollback object(s): the controller would refuse to start on it"
        )));
    }
    if !found.misnamed.is_empty() {
        return Err(StepError::Failed(misnamed_text(&found.misnamed)));
    }
    let equal = cmp.is_equal();
    for line in report(&cmp) {
        c.log.line(Some(c.step), "error", &line).await?;
    }
    let how = match c.run.options.verify {
        VerifyMode::Direct => "read directly",
        VerifyMode::Tool => "exported again",
    };
    let summary = format!(
        "{} tables, {} rows compared ({how})",
        cmp.tables_compared, cmp.rows_compared
    );
    c.ctx.data_verification = Some(cmp);
    if !equal {
        return Err(StepError::Failed(format!(
            "the k8s backend differs from the backup ({summary})"
        )));
    }
    c.info(&format!("the k8s backend equals the backup: {summary}"))
        .await?;
    Ok(summary)
}
