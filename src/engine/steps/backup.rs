//! Step 6 (copy the backup out of the pod) and step 8 (verify the imported data). Files are
//! streamed into the data directory with SHA-256 computed on the way, fsync'ed and renamed into
//! place atomically; they are validated by a streaming parse and never held whole in memory.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::tool::{backup_file, backup_name, run_tool};
use super::{StepCtx, StepError, StepResult};
use crate::cluster::pod;
use crate::db::BackupRecord;
use crate::linstor::export::{self, Expectation, ExportSummary};

/// Writes through to a file while hashing and counting.
struct HashingWriter {
    file: tokio::fs::File,
    hasher: Sha256,
    bytes: u64,
}

impl AsyncWrite for HashingWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.file).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                this.hasher.update(&buf[..n]);
                this.bytes += n as u64;
                Poll::Ready(Ok(n))
            }
            other => other,
        }
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.file).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.file).poll_shutdown(cx)
    }
}

/// A file copied out of the pod.
struct Copied {
    relative: String,
    size: u64,
    sha256: String,
}

/// Streams `pod_path` into `<data>/backups/<run>/<name>`; returns size and digest.
async fn copy_out(c: &StepCtx<'_>, pod_path: &str, name: &str) -> Result<Copied, StepError> {
    let info = c.controller()?;
    let pod_name = c
        .ctx
        .migration_pod
        .as_deref()
        .ok_or_else(|| StepError::Failed("no migration pod".into()))?;
    let relative = format!("backups/{}/{name}", c.run.id);
    let dir = c.inner.settings.data_dir.join("backups").join(&c.run.id);
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| StepError::Internal(e.into()))?;
    let partial = dir.join(format!(".{name}.partial"));
    let file = tokio::fs::File::create(&partial)
        .await
        .map_err(|e| StepError::Internal(e.into()))?;
    let mut w = HashingWriter {
        file,
        hasher: Sha256::new(),
        bytes: 0,
    };
    let result = c
        .cluster()
        .copy_from_pod(&info.namespace, pod_name, pod::CONTAINER, pod_path, &mut w)
        .await;
    if let Err(e) = result {
        let _ = tokio::fs::remove_file(&partial).await;
        return Err(StepError::Failed(format!(
            "copying {pod_path} out of the pod failed: {e}"
        )));
    }
    w.flush().await.map_err(|e| StepError::Internal(e.into()))?;
    w.file
        .sync_all()
        .await
        .map_err(|e| StepError::Internal(e.into()))?;
    let final_path = dir.join(name);
    tokio::fs::rename(&partial, &final_path)
        .await
        .map_err(|e| StepError::Internal(e.into()))?;
    // make the rename itself durable
    if let Ok(d) = tokio::fs::File::open(&dir).await {
        let _ = d.sync_all().await;
    }
    Ok(Copied {
        relative,
        size: w.bytes,
        sha256: hex::encode(w.hasher.finalize()),
    })
}

async fn summarize_file(path: PathBuf) -> Result<ExportSummary, StepError> {
    tokio::task::spawn_blocking(move || {
        let f = std::fs::File::open(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        export::summarize(f)
    })
    .await
    .map_err(|e| StepError::Internal(e.into()))?
    .map_err(StepError::Failed)
}

async fn record(
    c: &StepCtx<'_>,
    copied: &Copied,
    name: &str,
    summary: &ExportSummary,
    purpose: &str,
) -> Result<BackupRecord, StepError> {
    let b = BackupRecord {
        id: uuid::Uuid::now_v7().to_string(),
        run_id: c.run.id.clone(),
        controller: c.run.controller.to_string(),
        file_name: name.to_string(),
        path: copied.relative.clone(),
        size_bytes: copied.size as i64,
        sha256: copied.sha256.clone(),
        created_at: chrono::Utc::now(),
        exported_from: summary.header.exported_from.clone().unwrap_or_default(),
        linstor_version: summary.header.linstor_version.clone().unwrap_or_default(),
        tables: summary.tables.len() as i64,
        rows: summary.total_rows() as i64,
        purpose: purpose.to_string(),
    };
    c.inner.db.insert_backup(&b).await?;
    Ok(b)
}

fn expected_source(c: &StepCtx<'_>) -> Result<String, StepError> {
    let info = c.controller()?;
    let url = c
        .ctx
        .original_connection_url
        .clone()
        .or(info.connection_url.clone())
        .unwrap_or_default();
    info.backend
        .exported_from(&url)
        .ok_or_else(|| StepError::Failed(format!("cannot tell what an export of {url:?} says")))
}

async fn existing_backup(
    c: &StepCtx<'_>,
    id: Option<&String>,
    data_dir: &Path,
) -> Result<Option<BackupRecord>, StepError> {
    let Some(id) = id else { return Ok(None) };
    Ok(c.inner
        .db
        .backup(id)
        .await?
        .filter(|b| data_dir.join(&b.path).is_file()))
}

pub(super) async fn copy(c: &mut StepCtx<'_>) -> StepResult {
    let data_dir = c.inner.settings.data_dir.clone();
    if let Some(b) = existing_backup(c, c.ctx.backup_id.as_ref(), &data_dir).await? {
        c.info(&format!(
            "backup {} was copied already (sha256 {})",
            b.file_name, b.sha256
        ))
        .await?;
        return Ok(format!("{} bytes, sha256 {}", b.size_bytes, b.sha256));
    }
    let name = backup_name(c);
    let copied = copy_out(c, &backup_file(c), name).await?;
    let summary = summarize_file(data_dir.join(&copied.relative)).await?;
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
    let purpose = if c.run.kind == crate::model::RunKind::Migrate {
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

pub(super) async fn verify_data(c: &mut StepCtx<'_>) -> StepResult {
    let data_dir = c.inner.settings.data_dir.clone();
    let backup = existing_backup(c, c.ctx.backup_id.as_ref(), &data_dir)
        .await?
        .ok_or_else(|| StepError::Failed("the backup file is missing from the data directory".into()))?;
    let name = "export-from-k8s.json";
    let pod_file = format!("{}/{name}", c.inner.settings.pod_paths.backup_dir);
    let target = c.inner.settings.pod_paths.target_config_dir.clone();
    run_tool(c, &["export-db", "-c", &target, &pod_file], "Export finished").await?;
    // a resumed step copies the re-export again under a fresh record
    let copied = copy_out(c, &pod_file, name).await?;
    let found = summarize_file(data_dir.join(&copied.relative)).await?;
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
    if c.ctx.verification_backup_id.is_none() {
        let b = record(c, &copied, name, &found, "verification").await?;
        c.ctx.verification_backup_id = Some(b.id);
    }
    let expected = summarize_file(data_dir.join(&backup.path)).await?;
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
