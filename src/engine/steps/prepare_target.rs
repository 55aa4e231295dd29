//! Step 4, before the stop: the `k8s` backend is made ready while the controller still runs on
//! etcd (nothing reads the backend then), so that the downtime holds only what must happen in
//! it. Data a previous import left is deleted (by this service, table by table: the tool's
//! truncate fails half-way on large tables); a first export is taken while the controller runs
//! (etcd is only read); an import of that export's header with no rows makes the tool create and
//! migrate the schema (CRDs, `LinstorVersion`), its fixed ~35 s; and with
//! `options.import = "delta"` that export's rows are written as a pre-copy, so that the downtime
//! only writes what changed since; the export stays in the data directory as the record of what
//! the backend holds (the delta import compares the consistent export with it, so the downtime
//! reads the backend once, in the verification).

use super::delta;
use super::files::{copy_out, summarize};
use super::tool::run_tool;
use super::{StepCtx, StepError, StepResult};
use crate::cluster::pod::CONTAINER;
use crate::cluster::pod_write;
use crate::engine::context::ImportReport;
use crate::linstor::export::{self, ExportSummary};
use crate::linstor::schema;
use crate::model::ImportMode;

/// The pre-copy export in the pod and in the data directory.
const PRECOPY: &str = "precopy.json";
/// The schema-only export in the pod.
const SCHEMA_ONLY: &str = "schema-only.json";

/// Deletes a run's pre-copy export, if it is still there: it is no backup (the controller wrote
/// while it was taken), so it goes when the run ends without an import to plan.
pub(in crate::engine) async fn remove_precopy(data_dir: &std::path::Path, run_id: &str) {
    let file = data_dir.join("backups").join(run_id).join(PRECOPY);
    let _ = tokio::fs::remove_file(file).await;
}

/// Deletes what the backend holds (when it holds anything): returns how many objects went.
pub(super) async fn empty_backend(c: &StepCtx<'_>) -> Result<u64, StepError> {
    if c.cluster().k8s_backend_inventory().await?.total_objects() == 0 {
        return Ok(0);
    }
    let removed = delta::empty(c.inner.cluster.clone(), schema::DATA_VERSION).await?;
    let left = c.cluster().k8s_backend_inventory().await?.total_objects();
    if left > 0 {
        return Err(StepError::Failed(format!(
            "the k8s backend still holds {left} objects after deleting {removed}"
        )));
    }
    c.info(&format!(
        "deleted the {removed} objects the k8s backend held; it is empty"
    ))
    .await?;
    Ok(removed)
}

/// Writes a file into the migration pod.
async fn write_pod_file(c: &StepCtx<'_>, path: &str, content: &str) -> Result<(), StepError> {
    let info = c.controller()?;
    let pod = c.migration_pod()?;
    let command = pod_write::command(path, content)
        .ok_or_else(|| StepError::Failed(format!("{path} is too large to write through exec")))?;
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let drain = tokio::spawn(async move {
        let mut said = Vec::new();
        while let Some(l) = rx.recv().await {
            let l: crate::cluster::ExecLine = l;
            said.push(l.line);
        }
        said
    });
    let outcome = c
        .cluster()
        .exec(&info.namespace, &pod, CONTAINER, &command, tx, c.stop.clone())
        .await?;
    let said = drain.await.unwrap_or_default();
    if outcome.exit_code != 0 {
        return Err(StepError::Failed(format!(
            "writing {path} in the pod failed (exit {}): {}",
            outcome.exit_code,
            said.join(" ")
        )));
    }
    Ok(())
}

/// Step 4.
pub(super) async fn run(c: &mut StepCtx<'_>) -> StepResult {
    let mut report = ImportReport {
        mode: c.run.options.import,
        ..ImportReport::default()
    };
    report.emptied_objects = empty_backend(c).await?;

    // a first export while the controller runs: its header for the schema, its rows for the pre-copy
    let paths = c.inner.settings.pod_paths.clone();
    let pod_file = format!("{}/{PRECOPY}", paths.backup_dir);
    run_tool(
        c,
        &["export-db", "-c", &paths.source_config_dir, &pod_file],
        "Export finished",
    )
    .await?;
    let copied = copy_out(c, &pod_file, PRECOPY).await?;
    let local = c.inner.settings.data_dir.join(&copied.relative);
    let precopy: ExportSummary = summarize(local.clone()).await?;

    let names: Vec<&str> = precopy.tables.iter().map(|t| t.name.as_str()).collect();
    let schema_doc = export::schema_only(&precopy.header, &names).to_string();
    let schema_file = format!("{}/{SCHEMA_ONLY}", paths.backup_dir);
    write_pod_file(c, &schema_file, &schema_doc).await?;
    run_tool(
        c,
        &["import-db", "-c", &paths.target_config_dir, &schema_file],
        "Import finished",
    )
    .await?;
    report.schema_before_stop = true;
    c.info("the k8s backend's schema is in place (CRDs and LinstorVersion), with no rows")
        .await?;

    let mut message = "schema created before the stop".to_string();
    if c.run.options.import == ImportMode::Delta {
        let version = precopy
            .header
            .data_version
            .clone()
            .unwrap_or_else(|| schema::DATA_VERSION.to_string());
        let found = super::backend::read(c.inner.cluster.clone(), &version).await?;
        let plan = delta::plan(&precopy, &found.summary);
        // the per-row digests are not needed while writing
        drop(found);
        let started = std::time::Instant::now();
        let counts = delta::apply(c.inner.cluster.clone(), local, &version, plan).await?;
        c.info(&format!(
            "pre-copy: wrote {} rows into the k8s backend in {} ms while the controller runs",
            counts.total(),
            started.elapsed().as_millis()
        ))
        .await?;
        message = format!("schema and a pre-copy of {} rows in place", counts.total());
        report.precopy = Some(counts);
    }
    // the pre-copy export is not a backup (the controller wrote while it was taken); after a
    // pre-copy it says what the backend holds, for the delta import to plan against
    if report.precopy.is_some() {
        c.ctx.precopy_file = Some(copied.relative);
    } else {
        let _ = tokio::fs::remove_file(c.inner.settings.data_dir.join(&copied.relative)).await;
    }
    c.ctx.import_report = Some(report);
    Ok(message)
}
