//! SQLite persistence (sqlx, WAL): runs, steps, events, backups and the audit trail. Every state
//! change and log line is written here before it is published to anyone.

mod backend_writes;
mod backups;
mod downtime;
mod events;
mod runs;
mod transition;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub use backend_writes::{BackendUse, BackendWrite};
pub use backups::BackupRecord;
pub use events::{EventKind, EventRecord};
pub use runs::{AuditEntry, NewRunRecord, Originals, RunRecord, StepRecord};
pub use transition::{ErrorChange, NewEvent, Require, RunChange};

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "linstor-migrator.db";

/// The database handle; cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    pool: SqlitePool,
}

/// A database error the callers tell apart.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A unique constraint was violated (an active run for the controller, a reused key).
    #[error("conflict: {0}")]
    Conflict(String),
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

pub type DbResult<T> = Result<T, DbError>;

impl Db {
    /// Opens (creating if needed) the database in `data_dir` and applies the migrations.
    pub async fn open(data_dir: &Path) -> anyhow::Result<Db> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("failed to create data directory {}", data_dir.display()))?;
        let path = data_dir.join(DB_FILE);
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a step recorded as done survives a power cut
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .with_context(|| format!("failed to open database {}", path.display()))?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .context("failed to apply database migrations")?;
        Ok(Db { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes the pool (checkpoints the WAL into the database file).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Cheap liveness check for `/readyz`.
    pub async fn ping(&self) -> DbResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

fn conflict_or(e: sqlx::Error, what: &str) -> DbError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => DbError::Conflict(what.to_string()),
        _ => DbError::Sqlx(e),
    }
}

fn parse<T: FromStr<Err = String>>(s: &str) -> DbResult<T> {
    s.parse().map_err(DbError::Corrupt)
}
