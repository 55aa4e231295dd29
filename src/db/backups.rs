//! Backups: export files copied into the data directory. The service never deletes them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row as _;
use utoipa::ToSchema;

use super::{Db, DbResult, conflict_or};

/// A backup file as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct BackupRecord {
    pub id: String,
    pub run_id: String,
    pub controller: String,
    pub file_name: String,
    /// Relative to the data directory.
    #[serde(skip)]
    pub path: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub created_at: DateTime<Utc>,
    pub exported_from: String,
    pub linstor_version: String,
    pub tables: i64,
    pub rows: i64,
    /// `before-migration`, `backup` or `verification` (the re-export from `k8s`).
    pub purpose: String,
}

fn backup_from_row(r: &sqlx::sqlite::SqliteRow) -> DbResult<BackupRecord> {
    Ok(BackupRecord {
        id: r.try_get("id")?,
        run_id: r.try_get("run_id")?,
        controller: r.try_get("controller")?,
        file_name: r.try_get("file_name")?,
        path: r.try_get("path")?,
        size_bytes: r.try_get("size_bytes")?,
        sha256: r.try_get("sha256")?,
        created_at: r.try_get("created_at")?,
        exported_from: r.try_get("exported_from")?,
        linstor_version: r.try_get("linstor_version")?,
        tables: r.try_get("tables")?,
        rows: r.try_get("rows")?,
        purpose: r.try_get("purpose")?,
    })
}

impl Db {
    /// Records a backup file and stores the run's context (which names it) in one transaction,
    /// so that a crash never leaves a record the run does not know, nor a context naming a
    /// record that does not exist.
    pub async fn insert_backup(&self, b: &BackupRecord, context: &serde_json::Value) -> DbResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO backups (id, run_id, controller, file_name, path, size_bytes, sha256, created_at, \
             exported_from, linstor_version, tables, rows, purpose) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&b.id)
        .bind(&b.run_id)
        .bind(&b.controller)
        .bind(&b.file_name)
        .bind(&b.path)
        .bind(b.size_bytes)
        .bind(&b.sha256)
        .bind(b.created_at)
        .bind(&b.exported_from)
        .bind(&b.linstor_version)
        .bind(b.tables)
        .bind(b.rows)
        .bind(&b.purpose)
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_or(e, &format!("backup {} of run {} exists", b.file_name, b.run_id)))?;
        sqlx::query("UPDATE runs SET context = ? WHERE id = ?")
            .bind(context.to_string())
            .bind(&b.run_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The backup of a run with this file name, if recorded.
    pub async fn backup_named(&self, run_id: &str, file_name: &str) -> DbResult<Option<BackupRecord>> {
        let row = sqlx::query("SELECT * FROM backups WHERE run_id = ? AND file_name = ?")
            .bind(run_id)
            .bind(file_name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(backup_from_row).transpose()
    }

    pub async fn backup(&self, id: &str) -> DbResult<Option<BackupRecord>> {
        let row = sqlx::query("SELECT * FROM backups WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(backup_from_row).transpose()
    }

    /// All backups, newest first.
    pub async fn backups(&self) -> DbResult<Vec<BackupRecord>> {
        let rows = sqlx::query("SELECT * FROM backups ORDER BY created_at DESC")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(backup_from_row).collect()
    }

    pub async fn backups_of_run(&self, run_id: &str) -> DbResult<Vec<BackupRecord>> {
        let rows = sqlx::query("SELECT * FROM backups WHERE run_id = ? ORDER BY created_at")
            .bind(run_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(backup_from_row).collect()
    }

    /// Total bytes of all backups (for metrics).
    pub async fn backup_bytes(&self) -> DbResult<i64> {
        Ok(
            sqlx::query_scalar("SELECT COALESCE(SUM(size_bytes), 0) FROM backups")
                .fetch_one(&self.pool)
                .await?,
        )
    }
}
