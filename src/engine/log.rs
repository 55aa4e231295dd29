//! The log of one run: every line, step change and run transition is stored, then published,
//! under one lock per run so that subscribers see events in sequence order.

use std::sync::Arc;

use super::bus::{EventBus, OrderLock};
use crate::db::{Db, DbResult, EventKind, EventRecord, RunChange};
use crate::model::{StepName, StepState};

/// Writes events of one run. Cheap to clone.
#[derive(Clone)]
pub struct RunLog {
    run_id: Arc<str>,
    db: Db,
    bus: Arc<EventBus>,
    order: OrderLock,
}

impl RunLog {
    pub fn new(run_id: &str, db: Db, bus: Arc<EventBus>) -> Self {
        let order = bus.order_lock(run_id);
        Self {
            run_id: run_id.into(),
            db,
            bus,
            order,
        }
    }

    /// Stores and publishes one event.
    pub async fn event(
        &self,
        kind: EventKind,
        step: Option<StepName>,
        level: &str,
        message: &str,
        data: Option<&serde_json::Value>,
    ) -> DbResult<EventRecord> {
        let _order = self.order.lock().await;
        let ev = self
            .db
            .append_event(&self.run_id, kind, step, level, message, data)
            .await?;
        self.bus.publish(ev.clone());
        Ok(ev)
    }

    pub async fn line(&self, step: Option<StepName>, level: &str, message: &str) -> DbResult<()> {
        tracing::debug!(run = %self.run_id, step = ?step, level, "{message}");
        self.event(EventKind::Log, step, level, message, None)
            .await
            .map(|_| ())
    }

    /// A line that must not stop what is being done when the database cannot take it (a
    /// rollback keeps restoring the cluster): it then goes to stderr, with the run's id.
    pub async fn say(&self, step: Option<StepName>, level: &str, message: &str) {
        if let Err(e) = self.line(step, level, message).await {
            tracing::error!(run = %self.run_id, "could not store a log line ({e}): {level}: {message}");
        }
    }

    /// Stores a batch of lines of one step in one transaction (group commit: one fsync for the
    /// batch instead of one per line), then publishes them; on a database error they go to
    /// stderr, like [`RunLog::say`].
    pub async fn say_batch(&self, step: Option<StepName>, lines: &[(&str, &str)]) {
        let _order = self.order.lock().await;
        match self.db.append_lines(&self.run_id, step, lines).await {
            Ok(events) => {
                for ev in events {
                    self.bus.publish(ev);
                }
            }
            Err(e) => {
                for (level, message) in lines {
                    tracing::error!(run = %self.run_id, "could not store a log line ({e}): {level}: {message}");
                }
            }
        }
    }

    /// Applies a run change (state, steps, audit, its events) in one transaction, then
    /// publishes its events.
    pub async fn commit(&self, change: &RunChange) -> DbResult<()> {
        let _order = self.order.lock().await;
        let events = self.db.apply(change).await?;
        for ev in events {
            self.bus.publish(ev);
        }
        Ok(())
    }

    /// Sets a step's state with its event, in one transaction.
    pub async fn step(&self, step: StepName, state: StepState, message: Option<&str>) -> DbResult<()> {
        let text = match message {
            Some(m) => format!("{}: {state}: {m}", step.title()),
            None => format!("{}: {state}", step.title()),
        };
        let _order = self.order.lock().await;
        let ev = self
            .db
            .step_event(&self.run_id, step, state, message, &text)
            .await?;
        self.bus.publish(ev);
        Ok(())
    }
}
