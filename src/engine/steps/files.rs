//! Backup files: streamed out of the pod into `<data>/backups/<run>/<name>` with SHA-256 computed
//! on the way, fsync'ed and renamed into place atomically; parsed by a streaming reader, never
//! held whole in memory; recorded together with the run's context in one transaction. A
//! recorded file is never overwritten, so a record's SHA-256, size and ETag always match it.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{StepCtx, StepError};
use crate::cluster::pod;
use crate::db::BackupRecord;
use crate::linstor::export::{self, ExportSummary};

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
pub(super) struct Copied {
    /// Relative to the data directory.
    pub relative: String,
    pub size: u64,
    pub sha256: String,
}

fn io(e: std::io::Error) -> StepError {
    StepError::Internal(e.into())
}

/// Streams `pod_path` into `<data>/backups/<run>/<name>`; returns size and digest. The file
/// appears under its name only complete and on disk (fsync, rename, fsync of the directory).
pub(super) async fn copy_out(c: &StepCtx<'_>, pod_path: &str, name: &str) -> Result<Copied, StepError> {
    let info = c.controller()?;
    let pod_name = c.migration_pod()?;
    let relative = format!("backups/{}/{name}", c.run.id);
    let dir = c.inner.settings.data_dir.join("backups").join(&c.run.id);
    tokio::fs::create_dir_all(&dir).await.map_err(io)?;
    let partial = dir.join(format!(".{name}.partial"));
    let file = tokio::fs::File::create(&partial).await.map_err(io)?;
    let mut w = HashingWriter {
        file,
        hasher: Sha256::new(),
        bytes: 0,
    };
    let result = c
        .cluster()
        .copy_from_pod(&info.namespace, &pod_name, pod::CONTAINER, pod_path, &mut w)
        .await;
    if let Err(e) = result {
        let _ = tokio::fs::remove_file(&partial).await;
        return Err(StepError::Failed(format!(
            "copying {pod_path} out of the pod failed: {e}"
        )));
    }
    w.flush().await.map_err(io)?;
    w.file.sync_all().await.map_err(io)?;
    tokio::fs::rename(&partial, dir.join(name)).await.map_err(io)?;
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

/// The summaries made last, by file (its path, size and modification time): inside the downtime a
/// backup is summarized by its copy, by the delta's plan and by the verification, and parsing
/// 100k rows costs about a second each time. A recorded file never changes (its SHA-256 is
/// checked before use), and an unrecorded one is keyed by its size and time too.
static SUMMARIES: Mutex<Vec<(SummaryKey, Arc<ExportSummary>)>> = Mutex::new(Vec::new());
/// Summaries kept (the backup and the pre-copy of a run: 48 bytes a row each).
const SUMMARIES_KEPT: usize = 2;

type SummaryKey = (PathBuf, u64, Option<std::time::SystemTime>);

fn summary_key(path: &Path) -> Option<SummaryKey> {
    let meta = std::fs::metadata(path).ok()?;
    Some((path.to_path_buf(), meta.len(), meta.modified().ok()))
}

/// Parses an export file as a stream: tables, rows, header (or takes the summary made last of the
/// same file).
pub(super) async fn summarize(path: PathBuf) -> Result<Arc<ExportSummary>, StepError> {
    tokio::task::spawn_blocking(move || {
        let key = summary_key(&path);
        if let Some(key) = &key {
            let kept = SUMMARIES.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((_, s)) = kept.iter().find(|(k, _)| k == key) {
                return Ok(s.clone());
            }
        }
        let f = std::fs::File::open(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let summary = Arc::new(export::summarize(f)?);
        if let Some(key) = key {
            let mut kept = SUMMARIES.lock().unwrap_or_else(|e| e.into_inner());
            kept.retain(|(k, _)| k.0 != key.0);
            kept.push((key, summary.clone()));
            if kept.len() > SUMMARIES_KEPT {
                kept.remove(0);
            }
        }
        Ok(summary)
    })
    .await
    .map_err(|e| StepError::Internal(e.into()))?
    .map_err(StepError::Failed)
}

/// SHA-256 and size of a file on disk.
pub(super) async fn digest(path: &Path) -> Result<(String, u64), StepError> {
    let mut f = tokio::fs::File::open(path).await.map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).await.map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// A recorded backup of this run named `name` whose file is there and unchanged; an error when
/// the record exists but the file was changed or removed (it is never replaced silently).
pub(super) async fn recorded(c: &StepCtx<'_>, name: &str) -> Result<Option<BackupRecord>, StepError> {
    let Some(b) = c.inner.db.backup_named(&c.run.id, name).await? else {
        return Ok(None);
    };
    let path = c.inner.settings.data_dir.join(&b.path);
    let (sha256, size) = digest(&path).await.map_err(|_| {
        StepError::Failed(format!(
            "backup {} is recorded but its file {} is missing",
            b.file_name,
            path.display()
        ))
    })?;
    if sha256 != b.sha256 || size as i64 != b.size_bytes {
        return Err(StepError::Failed(format!(
            "backup file {} changed on disk since it was recorded (sha256 {sha256}, recorded {})",
            path.display(),
            b.sha256
        )));
    }
    Ok(Some(b))
}

/// The record of a copied file, written with the run's context in one transaction.
pub(super) async fn record(
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
    let mut ctx = c.ctx.clone();
    match purpose {
        "verification" => ctx.verification_backup_id = Some(b.id.clone()),
        _ => ctx.backup_id = Some(b.id.clone()),
    }
    c.inner.db.insert_backup(&b, &ctx.to_value()).await?;
    Ok(b)
}
