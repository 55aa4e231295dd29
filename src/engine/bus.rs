//! Publishes events to live subscribers (SSE) after they are stored. One broadcast channel per
//! run, created on demand; a subscriber that falls behind is told it lagged and must resume from
//! the database, so a slow client never slows the engine nor grows a buffer without bound.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use crate::db::EventRecord;

/// Events buffered per run for live subscribers before a slow one lags.
const CAPACITY: usize = 1024;

#[derive(Default)]
pub struct EventBus {
    channels: Mutex<HashMap<String, broadcast::Sender<EventRecord>>>,
    /// One lock per run, held from storing an event to publishing it, by every writer of that
    /// run (runner, cancel, approve...), so live events go out in sequence order.
    order: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl EventBus {
    pub fn order_lock(&self, run_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.order
            .lock()
            .expect("event bus lock")
            .entry(run_id.to_string())
            .or_default()
            .clone()
    }

    fn sender(&self, run_id: &str) -> broadcast::Sender<EventRecord> {
        let mut map = self.channels.lock().expect("event bus lock");
        map.entry(run_id.to_string())
            .or_insert_with(|| broadcast::channel(CAPACITY).0)
            .clone()
    }

    pub fn subscribe(&self, run_id: &str) -> broadcast::Receiver<EventRecord> {
        self.sender(run_id).subscribe()
    }

    pub fn publish(&self, event: EventRecord) {
        let map = self.channels.lock().expect("event bus lock");
        if let Some(tx) = map.get(&event.run_id) {
            // no receivers is fine
            let _ = tx.send(event);
        }
    }

    /// Number of live subscribers over all runs (metrics); drops channels nobody listens to.
    pub fn subscribers(&self) -> usize {
        let mut map = self.channels.lock().expect("event bus lock");
        map.retain(|_, s| s.receiver_count() > 0);
        map.values().map(|s| s.receiver_count()).sum()
    }
}
