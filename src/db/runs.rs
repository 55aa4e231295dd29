//! Runs, their steps and their audit trail.

use chrono::{DateTime, Utc};
use sqlx::Row as _;

use super::{Db, DbError, DbResult, conflict_or, parse};
use crate::model::{Actor, ControllerRef, RunKind, RunOptions, RunState, StepName, StepState};

/// A run as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub id: String,
    pub kind: RunKind,
    pub controller: ControllerRef,
    pub state: RunState,
    pub options: RunOptions,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    pub idempotency_key: Option<String>,
    pub request_digest: Option<String>,
    pub rolling_back: bool,
    pub cancel_requested: bool,
    pub context: serde_json::Value,
    pub downtime_started_at: Option<DateTime<Utc>>,
    pub downtime_ended_at: Option<DateTime<Utc>>,
}

/// One step of a run as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRecord {
    pub idx: i64,
    pub name: StepName,
    pub state: StepState,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub message: Option<String>,
}

/// Who did what to a run, and when.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub detail: Option<String>,
}

/// What is needed to create a run.
#[derive(Debug, Clone)]
pub struct NewRunRecord {
    pub id: String,
    pub kind: RunKind,
    pub controller: ControllerRef,
    pub options: RunOptions,
    pub actor: Actor,
    pub idempotency_key: Option<String>,
    pub request_digest: Option<String>,
}

fn run_from_row(r: &sqlx::sqlite::SqliteRow) -> DbResult<RunRecord> {
    let options: String = r.try_get("options")?;
    let context: String = r.try_get("context")?;
    Ok(RunRecord {
        id: r.try_get("id")?,
        kind: parse(r.try_get::<&str, _>("kind")?)?,
        controller: parse(r.try_get::<&str, _>("controller")?)?,
        state: parse(r.try_get::<&str, _>("state")?)?,
        options: serde_json::from_str(&options).map_err(|e| DbError::Corrupt(format!("options: {e}")))?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        error: r.try_get("error")?,
        idempotency_key: r.try_get("idempotency_key")?,
        request_digest: r.try_get("request_digest")?,
        rolling_back: r.try_get::<&str, _>("phase")? == "rolling_back",
        cancel_requested: r.try_get("cancel_requested")?,
        context: serde_json::from_str(&context).map_err(|e| DbError::Corrupt(format!("context: {e}")))?,
        downtime_started_at: r.try_get("downtime_started_at")?,
        downtime_ended_at: r.try_get("downtime_ended_at")?,
    })
}

impl Db {
    /// Creates a queued run with its pending steps and the `start` audit entry, in one
    /// transaction. `Conflict` when the controller already has an active run (or the key is reused).
    pub async fn insert_run(&self, new: &NewRunRecord) -> DbResult<RunRecord> {
        let now = Utc::now();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO runs (id, kind, controller, state, options, created_by, created_at, idempotency_key, \
             request_digest) VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?)",
        )
        .bind(&new.id)
        .bind(new.kind.as_str())
        .bind(new.controller.to_string())
        .bind(serde_json::to_string(&new.options).expect("options serialize"))
        .bind(new.actor.as_str())
        .bind(now)
        .bind(&new.idempotency_key)
        .bind(&new.request_digest)
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_or(e, &format!("controller {} already has an active run", new.controller)))?;
        for (idx, step) in new.kind.steps().iter().enumerate() {
            sqlx::query("INSERT INTO steps (run_id, idx, name, state) VALUES (?, ?, ?, 'pending')")
                .bind(&new.id)
                .bind(idx as i64)
                .bind(step.as_str())
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("INSERT INTO audit (run_id, at, actor, action, detail) VALUES (?, ?, ?, 'start', ?)")
            .bind(&new.id)
            .bind(now)
            .bind(new.actor.as_str())
            .bind(format!("{} {}", new.kind, new.controller))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.run(&new.id)
            .await?
            .ok_or_else(|| DbError::Corrupt("inserted run vanished".into()))
    }

    pub async fn run(&self, id: &str) -> DbResult<Option<RunRecord>> {
        let row = sqlx::query("SELECT * FROM runs WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(run_from_row).transpose()
    }

    pub async fn run_by_idempotency_key(&self, key: &str) -> DbResult<Option<RunRecord>> {
        let row = sqlx::query("SELECT * FROM runs WHERE idempotency_key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(run_from_row).transpose()
    }

    /// Runs, newest first.
    pub async fn runs(&self, limit: i64) -> DbResult<Vec<RunRecord>> {
        let rows = sqlx::query("SELECT * FROM runs ORDER BY created_at DESC, id DESC LIMIT ?")
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(run_from_row).collect()
    }

    /// Runs in an active state (to resume after a restart).
    pub async fn active_runs(&self) -> DbResult<Vec<RunRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM runs WHERE state IN ('queued', 'running', 'waiting') ORDER BY created_at",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(run_from_row).collect()
    }

    /// The active run of a controller, if any.
    pub async fn active_run_for(&self, controller: &ControllerRef) -> DbResult<Option<RunRecord>> {
        let row = sqlx::query(
            "SELECT * FROM runs WHERE controller = ? AND state IN ('queued', 'running', 'waiting')",
        )
        .bind(controller.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(run_from_row).transpose()
    }

    /// Moves a run to `state`; sets started_at on the first start and finished_at on a final
    /// state. `Conflict` when another run of the controller became active meanwhile.
    pub async fn set_run_state(&self, id: &str, state: RunState, error: Option<&str>) -> DbResult<()> {
        let now = Utc::now();
        sqlx::query(
            "UPDATE runs SET state = ?, error = COALESCE(?, error), \
             started_at = CASE WHEN ? = 'running' AND started_at IS NULL THEN ? ELSE started_at END, \
             finished_at = CASE WHEN ? THEN ? ELSE NULL END WHERE id = ?",
        )
        .bind(state.as_str())
        .bind(error)
        .bind(state.as_str())
        .bind(now)
        .bind(state.is_final())
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(|e| conflict_or(e, "the controller already has an active run"))?;
        Ok(())
    }

    /// Clears the error and the rollback/cancel flags before a resume.
    pub async fn reset_for_resume(&self, id: &str) -> DbResult<()> {
        sqlx::query("UPDATE runs SET error = NULL, phase = 'forward', cancel_requested = 0 WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn set_rolling_back(&self, id: &str, rolling_back: bool) -> DbResult<()> {
        sqlx::query("UPDATE runs SET phase = ? WHERE id = ?")
            .bind(if rolling_back { "rolling_back" } else { "forward" })
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn set_cancel_requested(&self, id: &str) -> DbResult<()> {
        sqlx::query("UPDATE runs SET cancel_requested = 1 WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn set_context(&self, id: &str, context: &serde_json::Value) -> DbResult<()> {
        sqlx::query("UPDATE runs SET context = ? WHERE id = ?")
            .bind(context.to_string())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records the start (once) or the end of the controller's downtime.
    pub async fn mark_downtime(&self, id: &str, started: bool) -> DbResult<()> {
        let sql = if started {
            "UPDATE runs SET downtime_started_at = COALESCE(downtime_started_at, ?), downtime_ended_at = NULL WHERE id = ?"
        } else {
            "UPDATE runs SET downtime_ended_at = ? WHERE id = ?"
        };
        sqlx::query(sql)
            .bind(Utc::now())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn steps(&self, run_id: &str) -> DbResult<Vec<StepRecord>> {
        let rows = sqlx::query(
            "SELECT idx, name, state, started_at, finished_at, message FROM steps WHERE run_id = ? ORDER BY idx",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StepRecord {
                    idx: r.try_get("idx")?,
                    name: r.try_get::<&str, _>("name")?.parse().map_err(DbError::Corrupt)?,
                    state: parse(r.try_get::<&str, _>("state")?)?,
                    started_at: r.try_get("started_at")?,
                    finished_at: r.try_get("finished_at")?,
                    message: r.try_get("message")?,
                })
            })
            .collect()
    }

    /// Sets a step's state; `running` stamps started_at (and clears the end), final states stamp
    /// finished_at, `pending` clears both.
    pub async fn set_step_state(
        &self,
        run_id: &str,
        step: StepName,
        state: StepState,
        message: Option<&str>,
    ) -> DbResult<()> {
        let now = Some(Utc::now());
        let (started, finished) = match state {
            StepState::Pending => (None, None),
            StepState::Running => (now, None),
            _ => (None, now),
        };
        sqlx::query(
            "UPDATE steps SET state = ?, message = ?, \
             started_at = CASE WHEN ? = 'pending' THEN NULL ELSE COALESCE(?, started_at) END, \
             finished_at = ? WHERE run_id = ? AND name = ?",
        )
        .bind(state.as_str())
        .bind(message)
        .bind(state.as_str())
        .bind(started)
        .bind(finished)
        .bind(run_id)
        .bind(step.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn add_audit(
        &self,
        run_id: &str,
        actor: &Actor,
        action: &str,
        detail: Option<&str>,
    ) -> DbResult<()> {
        sqlx::query("INSERT INTO audit (run_id, at, actor, action, detail) VALUES (?, ?, ?, ?, ?)")
            .bind(run_id)
            .bind(Utc::now())
            .bind(actor.as_str())
            .bind(action)
            .bind(detail)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn audit(&self, run_id: &str) -> DbResult<Vec<AuditEntry>> {
        let rows = sqlx::query("SELECT at, actor, action, detail FROM audit WHERE run_id = ? ORDER BY id")
            .bind(run_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    at: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }

    /// Number of runs per state (for metrics).
    pub async fn run_counts(&self) -> DbResult<Vec<(RunState, i64)>> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM runs GROUP BY state")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((parse(r.try_get::<&str, _>("state")?)?, r.try_get("n")?)))
            .collect()
    }
}
