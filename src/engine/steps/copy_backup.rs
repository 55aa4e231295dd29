//! Step 6: the export is streamed out of the pod into the data directory (SHA-256 on the way,
//! fsync), validated by a streaming parse (`exported_from`, version, rows) and recorded with the
//! run in one transaction. Idempotent across a crash at any point: a recorded backup whose file
//! is unchanged is kept; an unrecorded file is copied again.

use super::files::{copy_out, record, recorded, summarize};
use super::tool::{backup_file, backup_name};
use super::{StepCtx, StepError, StepResult};
use crate::linstor::export::{self, Expectation};
use crate::model::RunKind;

fn expected_source(c: &StepCtx<'_>) -> Result<String, StepError> {
    let info = c.controller()?;
    let url = c
        .run
        .originals
        .as_ref()
        .and_then(|o| o.connection_url.clone())
        .or(info.connection_url.clone())
        .unwrap_or_default();
    info.backend
        .exported_from(&url)
        .ok_or_else(|| StepError::Failed(format!("cannot tell what an export of {url:?} says")))
}

/// Step 6.
pub(super) async fn run(c: &mut StepCtx<'_>) -> StepResult {
    let name = backup_name(c.run.kind);
    if let Some(b) = recorded(c, name).await? {
        c.ctx.backup_id = Some(b.id.clone());
        c.info(&format!(
            "backup {} was copied already (sha256 {})",
            b.file_name, b.sha256
        ))
        .await?;
        return Ok(format!("{} bytes, sha256 {}", b.size_bytes, b.sha256));
    }
    let data_dir = c.inner.settings.data_dir.clone();
    let copied = copy_out(c, &backup_file(c), name).await?;
    let summary = summarize(data_dir.join(&copied.relative)).await?;
    let source = expected_source(c)?;
    let version = c.controller()?.linstor_version.clone();
    if let Err(problems) = export::validate(
        &summary,
        &Expectation {
            exported_from: &source,
            linstor_version: version.as_deref(),
        },
    ) {
        for p in &problems {
            c.log.line(Some(c.step), "error", p).await?;
        }
        return Err(StepError::Failed(format!(
            "the backup is not a valid export of the {source} database: {}",
            problems.join("; ")
        )));
    }
    let purpose = if c.run.kind == RunKind::Migrate {
        "before-migration"
    } else {
        "backup"
    };
    let b = record(c, &copied, name, &summary, purpose).await?;
    c.ctx.backup_id = Some(b.id.clone());
    c.info(&format!(
        "copied {} bytes, sha256 {}, {} tables, {} rows, exported_from={}",
        b.size_bytes, b.sha256, b.tables, b.rows, b.exported_from
    ))
    .await?;
    c.info(&format!("saved as {}", data_dir.join(&b.path).display()))
        .await?;
    Ok(format!("{} bytes, sha256 {}", b.size_bytes, b.sha256))
}
