//! Step 4, before the stop: the `k8s` backend is made ready while the controller still runs on
//! etcd (nothing reads the backend then), so that the downtime holds only what must happen in
//! it. Objects an earlier run of this service left are deleted (by this service, table by table:
//! the tool's truncate fails half-way on large tables; only when preflight proved them this
//! service's own, and never before the approval gate: the runner holds the gate before this step
//! then); a first export is taken while the controller runs (etcd is only read); it tells the
//! run's LINSTOR version, tables and CRD version, and so which import runs ([`choose_import`]); an
//! import of that export's header with no rows makes the tool create and migrate the schema (CRDs,
//! `LinstorVersion`), its fixed ~35 s; with the delta import that export's rows are written as a
//! pre-copy, so that the downtime only writes what changed since; the export stays in the data
//! directory as the record of what the backend holds (the delta import compares the consistent
//! export with it, so the downtime reads the backend once, in the verification).

use super::files::{copy_out, summarize};
use super::tool::run_tool;
use super::{StepCtx, StepError, StepResult};
use crate::cluster::pod::CONTAINER;
use crate::cluster::pod_write;
use crate::db::BackendUse;
use crate::engine::backend::ownership::{self, Ownership};
use crate::engine::backend::{RunSchema, delta, empty, read};
use crate::engine::context::ImportReport;
use crate::linstor::export;
use crate::linstor::versions::{self, Support};
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

/// Deletes the export rows the backend holds (of whichever LINSTOR version), when it holds any:
/// returns how many objects went. The caller has made sure they are this service's own.
pub(super) async fn empty_backend(c: &StepCtx<'_>) -> Result<u64, StepError> {
    let inventory = c.cluster().k8s_backend_inventory().await?;
    if inventory.total_objects() == 0 {
        return Ok(0);
    }
    let removed = empty::empty(c.inner.cluster.clone(), &inventory).await?;
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

/// Which import the run makes, and why: the requested one, with `auto` (the default) and `delta`
/// becoming the delta import only for a LINSTOR version whose recordings prove it.
pub(super) fn choose_import(requested: ImportMode, linstor_version: Option<&str>) -> (ImportMode, String) {
    if requested == ImportMode::Tool {
        return (
            ImportMode::Tool,
            "the tool's import, as asked (options.import = \"tool\")".into(),
        );
    }
    let Some(version) = linstor_version else {
        return (
            ImportMode::Tool,
            "the export does not say its LINSTOR version, so the tool's import runs".into(),
        );
    };
    match versions::support(version, true) {
        Support::Proven(r) => (
            ImportMode::Delta,
            format!(
                "the delta import: LINSTOR {} is recorded, and the replay of its recordings shows the delta's \
                 objects equal to the real import-db's (the tool's import stays the fallback)",
                r.linstor
            ),
        ),
        Support::ToolOnly(why) | Support::Refused(why) => (ImportMode::Tool, why),
    }
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

/// The backend must hold nothing this service cannot account for before anything is deleted or
/// imported (it may have changed since preflight); then the run records that it writes it, so that
/// no other run does until this one ends.
async fn claim_backend(c: &StepCtx<'_>) -> Result<(), StepError> {
    let inventory = c.cluster().k8s_backend_inventory().await?;
    let last = c.inner.db.last_backend_write().await?;
    match ownership::judge(&inventory, last.as_ref(), &c.run.id) {
        Ownership::Empty | Ownership::Ours(_) => {}
        Ownership::Foreign(why) => return Err(StepError::Failed(why)),
    }
    if !last.is_some_and(|l| l.run_id == c.run.id && l.state == BackendUse::Writing) {
        ownership::begin_writing(&c.inner.db, &c.run, &inventory).await?;
    }
    Ok(())
}

/// The backend's CRDs, where they exist, must be of the export's version before the tool's schema
/// import runs over them (an import of another version destroys data and fails).
async fn check_existing_schema(c: &StepCtx<'_>, schema: &RunSchema) -> Result<(), StepError> {
    let inventory = c.cluster().k8s_backend_inventory().await?;
    let other: Vec<String> = schema
        .tables
        .iter()
        .filter_map(|t| inventory.crd(t.plural()))
        .filter(|crd| crd.storage_version != schema.version)
        .map(|crd| format!("{} stores {}", crd.name, crd.storage_version))
        .collect();
    if other.is_empty() {
        return Ok(());
    }
    Err(StepError::Failed(format!(
        "the k8s backend's CRDs are of another LINSTOR version than this controller's export ({}): {}; {}, and \
         delete the CRDs as well",
        schema.version,
        other.join(", "),
        ownership::HOW_TO_CHECK
    )))
}

/// Step 4.
pub(super) async fn run(c: &mut StepCtx<'_>) -> StepResult {
    claim_backend(c).await?;
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
    let precopy = summarize(local.clone()).await?;
    let schema = RunSchema::of(&precopy).map_err(StepError::Failed)?;
    let (mode, why) = choose_import(c.run.options.import, precopy.header.linstor_version.as_deref());
    c.info(&format!(
        "LINSTOR {}: {} tables, CRD version {}; import: {why}",
        precopy
            .header
            .linstor_version
            .as_deref()
            .unwrap_or("(version unknown)"),
        schema.tables.len(),
        schema.version
    ))
    .await?;
    report.mode = mode;
    report.mode_reason = Some(why);
    check_existing_schema(c, &schema).await?;

    let schema_doc = export::schema_only(&precopy.header, &precopy.tables).to_string();
    let schema_file = format!("{}/{SCHEMA_ONLY}", paths.backup_dir);
    write_pod_file(c, &schema_file, &schema_doc).await?;
    run_tool(
        c,
        &["import-db", "-c", &paths.target_config_dir, &schema_file],
        "Import finished",
    )
    .await?;
    let inventory = c.cluster().k8s_backend_inventory().await?;
    schema.check(&inventory).map_err(|why| {
        StepError::Failed(format!(
            "after the tool's schema import, the k8s backend cannot take this export: {why}"
        ))
    })?;
    report.schema_before_stop = true;
    c.info("the k8s backend's schema is in place (CRDs and LinstorVersion), with no rows")
        .await?;

    let mut message = "schema created before the stop".to_string();
    if mode == ImportMode::Delta {
        let found = read::read(c.inner.cluster.clone(), &schema).await?;
        let plan = delta::plan(&schema, &precopy, &found.summary, &found.odd_names);
        // the per-row digests are not needed while writing
        drop(found);
        let started = std::time::Instant::now();
        let counts = delta::apply(c.inner.cluster.clone(), local, &schema, plan).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delta_import_is_chosen_only_where_the_recordings_prove_it() {
        assert_eq!(
            choose_import(ImportMode::Auto, Some("1.25.1")).0,
            ImportMode::Delta
        );
        assert_eq!(
            choose_import(ImportMode::Delta, Some("1.33.3")).0,
            ImportMode::Delta
        );
        let (mode, why) = choose_import(ImportMode::Auto, Some("1.28.0"));
        assert_eq!(mode, ImportMode::Tool);
        assert!(why.contains("not among the recorded versions"), "{why}");
        assert_eq!(
            choose_import(ImportMode::Delta, Some("1.28.0")).0,
            ImportMode::Tool
        );
        assert_eq!(
            choose_import(ImportMode::Tool, Some("1.25.1")).0,
            ImportMode::Tool
        );
        assert_eq!(choose_import(ImportMode::Auto, None).0, ImportMode::Tool);
    }
}
