//! Events of a run: log lines, step transitions and run transitions, in one sequence. The
//! sequence number (`seq`) is global and only grows, so it serves as the SSE event id.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row as _;
use utoipa::ToSchema;

use super::{Db, DbError, DbResult};
use crate::model::StepName;

/// What an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Log,
    Step,
    Run,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Log => "log",
            EventKind::Step => "step",
            EventKind::Run => "run",
        }
    }
}

/// One event, as stored and as sent to clients.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EventRecord {
    pub seq: i64,
    pub run_id: String,
    pub at: DateTime<Utc>,
    pub kind: EventKind,
    pub step: Option<StepName>,
    /// Log lines: `info`, `warn`, `error`, `stdout`, `stderr`. Step/run events: the new state.
    pub level: String,
    pub message: String,
    #[schema(value_type = Option<Object>)]
    pub data: Option<serde_json::Value>,
}

fn event_from_row(r: &sqlx::sqlite::SqliteRow) -> DbResult<EventRecord> {
    let kind = match r.try_get::<&str, _>("kind")? {
        "log" => EventKind::Log,
        "step" => EventKind::Step,
        "run" => EventKind::Run,
        other => return Err(DbError::Corrupt(format!("event kind {other:?}"))),
    };
    let step: Option<String> = r.try_get("step")?;
    let data: Option<String> = r.try_get("data")?;
    Ok(EventRecord {
        seq: r.try_get("seq")?,
        run_id: r.try_get("run_id")?,
        at: r.try_get("at")?,
        kind,
        step: step.map(|s| s.parse().map_err(DbError::Corrupt)).transpose()?,
        level: r.try_get("level")?,
        message: r.try_get("message")?,
        data: data
            .map(|d| serde_json::from_str(&d).map_err(|e| DbError::Corrupt(e.to_string())))
            .transpose()?,
    })
}

/// Appends an event on `conn` (a transaction or a pooled connection) and returns it with its
/// sequence number.
pub(super) async fn insert_event(
    conn: &mut sqlx::SqliteConnection,
    run_id: &str,
    kind: EventKind,
    step: Option<StepName>,
    level: &str,
    message: &str,
    data: Option<&serde_json::Value>,
) -> DbResult<EventRecord> {
    let at = Utc::now();
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO events (run_id, at, kind, step, level, message, data) VALUES (?, ?, ?, ?, ?, ?, ?) \
         RETURNING seq",
    )
    .bind(run_id)
    .bind(at)
    .bind(kind.as_str())
    .bind(step.map(|s| s.as_str()))
    .bind(level)
    .bind(message)
    .bind(data.map(|d| d.to_string()))
    .fetch_one(&mut *conn)
    .await?;
    Ok(EventRecord {
        seq,
        run_id: run_id.to_string(),
        at,
        kind,
        step,
        level: level.to_string(),
        message: message.to_string(),
        data: data.cloned(),
    })
}

impl Db {
    /// Appends an event and returns it with its sequence number.
    pub async fn append_event(
        &self,
        run_id: &str,
        kind: EventKind,
        step: Option<StepName>,
        level: &str,
        message: &str,
        data: Option<&serde_json::Value>,
    ) -> DbResult<EventRecord> {
        let mut conn = self.pool.acquire().await?;
        insert_event(&mut conn, run_id, kind, step, level, message, data).await
    }

    /// Appends many log lines of one step in one transaction (one fsync for the lot), in order.
    pub async fn append_lines(
        &self,
        run_id: &str,
        step: Option<StepName>,
        lines: &[(&str, &str)],
    ) -> DbResult<Vec<EventRecord>> {
        let mut tx = self.pool.begin().await?;
        let mut out = Vec::with_capacity(lines.len());
        for (level, message) in lines {
            out.push(insert_event(&mut tx, run_id, EventKind::Log, step, level, message, None).await?);
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Events of a run with `seq > after`, oldest first, at most `limit`; `only_logs` leaves out
    /// step and run events.
    pub async fn events(
        &self,
        run_id: &str,
        after: i64,
        limit: i64,
        only_logs: bool,
    ) -> DbResult<Vec<EventRecord>> {
        let sql = if only_logs {
            "SELECT * FROM events WHERE run_id = ? AND seq > ? AND kind = 'log' ORDER BY seq LIMIT ?"
        } else {
            "SELECT * FROM events WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?"
        };
        let rows = sqlx::query(sql)
            .bind(run_id)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(event_from_row).collect()
    }

    /// The last `limit` log lines of a run, oldest first, and how many log lines it has in all
    /// (a page shows the tail of a long log, not its beginning).
    pub async fn log_tail(&self, run_id: &str, limit: i64) -> DbResult<(Vec<EventRecord>, i64)> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "SELECT * FROM (SELECT * FROM events WHERE run_id = ? AND kind = 'log' ORDER BY seq DESC LIMIT ?) \
             ORDER BY seq",
        )
        .bind(run_id)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE run_id = ? AND kind = 'log'")
            .bind(run_id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((rows.iter().map(event_from_row).collect::<DbResult<_>>()?, total))
    }
}
