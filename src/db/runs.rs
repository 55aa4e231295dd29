//! Runs, their steps and their audit trail.

use chrono::{DateTime, Utc};
use sqlx::Row as _;

use super::{Db, DbError, DbResult, conflict_or, parse};
use crate::cluster::controller::ControllerInfo;
use crate::model::{Actor, ControllerRef, Phase, RunKind, RunOptions, RunState, StepName, StepState};

/// The condition of a run that holds its controller: no other run may start on it, and this process keeps the
/// controller's Lease. Exactly the condition of the unique index `runs_one_active_per_controller`
/// (migrations/0004): active, a rollback that gave up, or failed inside the downtime (stopped
/// and not started again: a failure with automatic rollback off).
macro_rules! holding {
    () => {
        "(state IN ('queued', 'running', 'waiting', 'rollback_failed') \
         OR (state = 'failed' AND downtime_started_at IS NOT NULL AND downtime_ended_at IS NULL))"
    };
}

/// What a rollback restores, recorded by preflight in columns of their own and frozen once the
/// downtime begins: a rollback never depends on the run's JSON context.

#[derive(Debug, Clone, PartialEq)]
pub struct Originals {
    /// `dbConnectionURL` of the CR, or the ConfigMap's `connection_url`.
    pub connection_url: Option<String>,
    pub replicas: i32,
    /// The original `linstor.toml` (restored verbatim on an unowned controller's ConfigMap).
    pub config_toml: Option<String>,
    /// The etcd StatefulSet the URL names, and its replicas (scale_down_etcd is undone).
    pub etcd_stateful_set: Option<String>,
    pub etcd_replicas: Option<i32>,
    /// The controller as found: which object is patched, its pods, its REST service.
    pub target: ControllerInfo,
}

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
    pub phase: Phase,
    pub cancel_requested: bool,
    pub context: serde_json::Value,
    pub downtime_started_at: Option<DateTime<Utc>>,
    pub downtime_ended_at: Option<DateTime<Utc>>,
    /// When the rollback began (the first time, when it was resumed).
    pub rollback_started_at: Option<DateTime<Utc>>,
    /// The controller's downtime of a rollback that began after the run's own downtime ended.
    pub rollback_downtime_started_at: Option<DateTime<Utc>>,
    pub rollback_downtime_ended_at: Option<DateTime<Utc>>,
    /// The first reason a rollback began.
    pub rollback_cause: Option<String>,
    pub approved_by: Option<String>,
    /// The switch to `k8s` was asked for: the controller's URL may say `k8s` from then on.
    pub switch_requested: bool,
    pub originals: Option<Originals>,
}

impl RunRecord {
    pub fn rolling_back(&self) -> bool {
        self.phase == Phase::RollingBack
    }

    /// The rollback began after the run's downtime had ended (a manual rollback after the
    /// controller was started again): a phase with its own duration and downtime.
    pub fn rollback_after_downtime(&self) -> bool {
        matches!(
            (self.downtime_ended_at, self.rollback_started_at),
            (Some(ended), Some(rollback)) if ended <= rollback
        )
    }
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

fn originals_from_row(r: &sqlx::sqlite::SqliteRow) -> DbResult<Option<Originals>> {
    let recorded: Option<DateTime<Utc>> = r.try_get("orig_recorded_at")?;
    if recorded.is_none() {
        return Ok(None);
    }
    let target: String = r.try_get("orig_target")?;
    Ok(Some(Originals {
        connection_url: r.try_get("orig_connection_url")?,
        replicas: r.try_get("orig_replicas")?,
        config_toml: r.try_get("orig_config_toml")?,
        etcd_stateful_set: r.try_get("orig_etcd_stateful_set")?,
        etcd_replicas: r.try_get("orig_etcd_replicas")?,
        target: serde_json::from_str(&target).map_err(|e| DbError::Corrupt(format!("orig_target: {e}")))?,
    }))
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
        phase: parse(r.try_get::<&str, _>("phase")?)?,
        cancel_requested: r.try_get("cancel_requested")?,
        // kept as stored: a context that does not parse is the engine's to report, not a reason
        // to hide the run
        context: serde_json::from_str(&context).unwrap_or(serde_json::Value::String(context)),
        downtime_started_at: r.try_get("downtime_started_at")?,
        downtime_ended_at: r.try_get("downtime_ended_at")?,
        rollback_started_at: r.try_get("rollback_started_at")?,
        rollback_downtime_started_at: r.try_get("rollback_downtime_started_at")?,
        rollback_downtime_ended_at: r.try_get("rollback_downtime_ended_at")?,
        rollback_cause: r.try_get("rollback_cause")?,
        approved_by: r.try_get("approved_by")?,
        switch_requested: r.try_get("switch_requested")?,
        originals: originals_from_row(r)?,
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

    /// The run that holds a controller, if any: an active one, one whose rollback has not
    /// finished, or one that failed inside the downtime (the controller still stopped by it).
    pub async fn run_holding(&self, controller: &ControllerRef) -> DbResult<Option<RunRecord>> {
        let row = sqlx::query(concat!(
            "SELECT * FROM runs WHERE controller = ? AND ",
            holding!()
        ))
        .bind(controller.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(run_from_row).transpose()
    }

    /// Every run that holds its controller (see [`Db::run_holding`]).
    pub async fn holding_runs(&self) -> DbResult<Vec<RunRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT * FROM runs WHERE ",
            holding!(),
            " ORDER BY created_at"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(run_from_row).collect()
    }

    /// Stores the context a step has built up.
    pub async fn set_context(&self, id: &str, context: &serde_json::Value) -> DbResult<()> {
        sqlx::query("UPDATE runs SET context = ? WHERE id = ?")
            .bind(context.to_string())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records what a rollback restores. Allowed until the downtime begins (a resumed preflight
    /// of a run that changed nothing yet may record the controller as it is now); frozen after.
    pub async fn record_originals(&self, id: &str, o: &Originals) -> DbResult<bool> {
        let target = serde_json::to_string(&o.target).expect("controller info serializes");
        let done = sqlx::query(
            "UPDATE runs SET orig_recorded_at = ?, orig_connection_url = ?, orig_replicas = ?, orig_config_toml = ?, \
             orig_etcd_stateful_set = ?, orig_etcd_replicas = ?, orig_target = ? \
             WHERE id = ? AND downtime_started_at IS NULL",
        )
        .bind(Utc::now())
        .bind(&o.connection_url)
        .bind(o.replicas)
        .bind(&o.config_toml)
        .bind(&o.etcd_stateful_set)
        .bind(o.etcd_replicas)
        .bind(target)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Notes that the switch to `k8s` is about to be asked for (before asking).
    pub async fn mark_switch_requested(&self, id: &str) -> DbResult<()> {
        sqlx::query("UPDATE runs SET switch_requested = 1 WHERE id = ?")
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

    /// Records that the rollback began (once); returns when it began.
    pub async fn mark_rollback_started(&self, id: &str) -> DbResult<DateTime<Utc>> {
        sqlx::query("UPDATE runs SET rollback_started_at = COALESCE(rollback_started_at, ?) WHERE id = ?")
            .bind(Utc::now())
            .bind(id)
            .execute(&self.pool)
            .await?;
        let at: Option<DateTime<Utc>> =
            sqlx::query_scalar("SELECT rollback_started_at FROM runs WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .flatten();
        at.ok_or_else(|| DbError::Corrupt(format!("run {id} vanished")))
    }

    /// Records the start (once) or the end of the downtime of a rollback that began after the
    /// run's own downtime ended; an end without a start is not recorded.
    pub async fn mark_rollback_downtime(&self, id: &str, started: bool) -> DbResult<()> {
        let sql = if started {
            "UPDATE runs SET rollback_downtime_started_at = COALESCE(rollback_downtime_started_at, ?), \
             rollback_downtime_ended_at = NULL WHERE id = ?"
        } else {
            "UPDATE runs SET rollback_downtime_ended_at = ? WHERE id = ? AND rollback_downtime_started_at IS NOT NULL"
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
