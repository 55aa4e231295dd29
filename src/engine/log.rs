//! The log of one run: every line and transition is stored, then published, under one lock so
//! that subscribers see events in sequence order.

use std::sync::Arc;

use tokio::sync::Mutex;

use super::bus::EventBus;
use crate::db::{Db, DbResult, EventKind, EventRecord};
use crate::model::StepName;

/// Writes events of one run. Cheap to clone.
#[derive(Clone)]
pub struct RunLog {
    run_id: Arc<str>,
    db: Db,
    bus: Arc<EventBus>,
    order: Arc<Mutex<()>>,
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
}
