//! Changes of a run that belong together, applied in one SQLite transaction whose precondition
//! is in the `UPDATE` itself: a change whose precondition no longer holds (another request won
//! the race) changes nothing and comes back as [`DbError::Conflict`]. The engine's state machine
//! (`engine::lifecycle`) decides what a change contains; this file only writes it.

use chrono::Utc;

use super::events::{EventKind, EventRecord, insert_event};
use super::{Db, DbError, DbResult, conflict_or};
use crate::model::{Actor, Phase, RunState, StepName, StepState};

/// A condition beyond the run's `(state, phase)` that must hold for the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Require {
    /// Nobody asked to cancel the run yet.
    NoCancelRequested,
    /// The controller was stopped at some point (there is something to roll back).
    DowntimeStarted,
    /// The run is not of a read-only kind (preflight, upgrade-plan): only those stop the
    /// controller, wait for an approval or roll back.
    NotReadOnly,
}

impl Require {
    fn sql(self) -> &'static str {
        match self {
            Require::NoCancelRequested => "cancel_requested = 0",
            Require::DowntimeStarted => "downtime_started_at IS NOT NULL",
            Require::NotReadOnly => "kind NOT IN ('preflight', 'upgrade-plan')",
        }
    }
}

/// What happens to the run's error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ErrorChange {
    #[default]
    Keep,
    Clear,
    Set(String),
}

/// An event to append with the change (published by the caller after the commit).
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub kind: EventKind,
    pub step: Option<StepName>,
    pub level: String,
    pub message: String,
}

/// One change of a run: from one of `from` to `to`, with everything that goes with it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunChange {
    pub run_id: String,
    /// The `(state, phase)` pairs the run may be in for the change to apply.
    pub from: Vec<(RunState, Phase)>,
    pub to: (RunState, Phase),
    pub require: Vec<Require>,
    pub cancel_requested: Option<bool>,
    pub error: ErrorChange,
    /// Set only when the run has no rollback cause yet: the first cause wins.
    pub rollback_cause: Option<String>,
    pub approved_by: Option<String>,
    pub context: Option<serde_json::Value>,
    /// Step states to set (in this order).
    pub steps: Vec<(StepName, StepState, Option<String>)>,
    pub audit: Option<(Actor, String, Option<String>)>,
    pub events: Vec<NewEvent>,
}

impl RunChange {
    pub fn new(run_id: &str, from: Vec<(RunState, Phase)>, to: (RunState, Phase)) -> Self {
        Self {
            run_id: run_id.to_string(),
            from,
            to,
            require: Vec::new(),
            cancel_requested: None,
            error: ErrorChange::Keep,
            rollback_cause: None,
            approved_by: None,
            context: None,
            steps: Vec::new(),
            audit: None,
            events: Vec::new(),
        }
    }
}

impl Db {
    /// Applies `change` in one transaction and returns the events it appended, in order.
    /// `Conflict` when the run is not in one of `from` (or a requirement fails), or when the
    /// new state would give the controller a second active run.
    pub async fn apply(&self, change: &RunChange) -> DbResult<Vec<EventRecord>> {
        let now = Utc::now();
        let mut tx = self.pool.begin().await?;
        let allowed = change
            .from
            .iter()
            .map(|_| "(state = ? AND phase = ?)")
            .collect::<Vec<_>>()
            .join(" OR ");
        let mut sql = format!(
            "UPDATE runs SET state = ?, phase = ?, \
             cancel_requested = COALESCE(?, cancel_requested), \
             error = CASE ? WHEN 'keep' THEN error WHEN 'clear' THEN NULL ELSE ? END, \
             rollback_cause = COALESCE(rollback_cause, ?), \
             approved_by = COALESCE(?, approved_by), \
             context = COALESCE(?, context), \
             started_at = CASE WHEN ? = 'running' AND started_at IS NULL THEN ? ELSE started_at END, \
             finished_at = CASE WHEN ? THEN ? ELSE NULL END \
             WHERE id = ? AND ({allowed})"
        );
        for r in &change.require {
            sql.push_str(" AND ");
            sql.push_str(r.sql());
        }
        let (error_mode, error_text) = match &change.error {
            ErrorChange::Keep => ("keep", None),
            ErrorChange::Clear => ("clear", None),
            ErrorChange::Set(e) => ("set", Some(e.as_str())),
        };
        let (state, phase) = change.to;
        // built only from this file's fixed fragments; every value is bound
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(state.as_str())
            .bind(phase.as_str())
            .bind(change.cancel_requested)
            .bind(error_mode)
            .bind(error_text)
            .bind(change.rollback_cause.as_deref())
            .bind(change.approved_by.as_deref())
            .bind(change.context.as_ref().map(|c| c.to_string()))
            .bind(state.as_str())
            .bind(now)
            .bind(state.is_final())
            .bind(now)
            .bind(&change.run_id);
        for (s, p) in &change.from {
            q = q.bind(s.as_str()).bind(p.as_str());
        }
        let done = q
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict_or(e, "the controller already has another active run"))?;
        if done.rows_affected() != 1 {
            return Err(DbError::Conflict(format!(
                "run {} is no longer in a state that allows this",
                change.run_id
            )));
        }
        for (step, st, message) in &change.steps {
            set_step(&mut tx, &change.run_id, *step, *st, message.as_deref()).await?;
        }
        if let Some((actor, action, detail)) = &change.audit {
            sqlx::query("INSERT INTO audit (run_id, at, actor, action, detail) VALUES (?, ?, ?, ?, ?)")
                .bind(&change.run_id)
                .bind(now)
                .bind(actor.as_str())
                .bind(action)
                .bind(detail)
                .execute(&mut *tx)
                .await?;
        }
        let mut events = Vec::with_capacity(change.events.len());
        for e in &change.events {
            events.push(
                insert_event(
                    &mut tx,
                    &change.run_id,
                    e.kind,
                    e.step,
                    &e.level,
                    &e.message,
                    None,
                )
                .await?,
            );
        }
        tx.commit().await?;
        Ok(events)
    }

    /// Sets one step's state and appends its event, in one transaction.
    pub async fn step_event(
        &self,
        run_id: &str,
        step: StepName,
        state: StepState,
        message: Option<&str>,
        event_text: &str,
    ) -> DbResult<EventRecord> {
        let mut tx = self.pool.begin().await?;
        set_step(&mut tx, run_id, step, state, message).await?;
        let ev = insert_event(
            &mut tx,
            run_id,
            EventKind::Step,
            Some(step),
            state.as_str(),
            event_text,
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(ev)
    }
}

/// Sets a step's state; `running` stamps started_at (and clears the end), final states stamp
/// finished_at, `pending` clears both. A step a rollback undid keeps the times it ran at (its
/// duration is what it took, not how long until the rollback).
async fn set_step(
    tx: &mut sqlx::SqliteConnection,
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
         finished_at = CASE WHEN ? = 'rolled_back' THEN COALESCE(finished_at, ?) ELSE ? END \
         WHERE run_id = ? AND name = ?",
    )
    .bind(state.as_str())
    .bind(message)
    .bind(state.as_str())
    .bind(started)
    .bind(state.as_str())
    .bind(finished)
    .bind(finished)
    .bind(run_id)
    .bind(step.as_str())
    .execute(&mut *tx)
    .await?;
    Ok(())
}
