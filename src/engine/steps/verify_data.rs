//! Step 8: the `k8s` backend is exported again and compared table by table and row by row (by
//! primary key) with the backup. Every re-export is kept as a backup of its own (purpose
//! `verification`): a step that runs again writes `export-from-k8s-2.json`, ... and never
//! replaces a recorded file.

use super::files::{copy_out, record, recorded, summarize};
use super::tool::run_tool;
use super::{StepCtx, StepError, StepResult};
use crate::linstor::export::{self, Expectation};

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

/// Step 8.
pub(super) async fn run(c: &mut StepCtx<'_>) -> StepResult {
    let data_dir = c.inner.settings.data_dir.clone();
    let backup_name = super::tool::backup_name(c.run.kind);
    let backup = recorded(c, backup_name)
        .await?
        .ok_or_else(|| StepError::Failed("the backup is not recorded".into()))?;
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
    let expected = summarize(data_dir.join(&backup.path)).await?;
    let cmp = export::compare(&expected, &found);
    let equal = cmp.is_equal();
    for d in &cmp.differences {
        c.log
            .line(
                Some(c.step),
                "error",
                &format!(
                    "table {}: {} expected, {} found, {} missing, {} extra, {} changed (e.g. {})",
                    d.name,
                    d.rows_expected,
                    d.rows_found,
                    d.missing,
                    d.extra,
                    d.changed,
                    d.examples.join(", ")
                ),
            )
            .await?;
    }
    let summary = format!(
        "{} tables, {} rows compared",
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
