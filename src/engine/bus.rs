//! Publishes events to live subscribers (SSE) after they are stored. One broadcast channel per
//! run while somebody listens: created by the first subscriber, freed when the last one goes (a
//! run nobody watches has none); a subscriber that falls behind is told it lagged and must resume
//! from the database, so a slow client never slows the engine nor grows a buffer without bound.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use crate::db::EventRecord;

/// Events buffered per run for live subscribers before a slow one lags.
const CAPACITY: usize = 1024;

#[derive(Default)]
pub struct EventBus {
    channels: Mutex<HashMap<String, broadcast::Sender<EventRecord>>>,
    /// One lock per run, held from storing an event to publishing it, by every writer of that
    /// run (runner, cancel, approve...), so live events go out in sequence order. Present while a
    /// writer of the run exists ([`OrderLock`]).
    order: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// A live subscription to a run's events; dropping the last one of a run frees its channel.
pub struct Subscription {
    rx: Option<broadcast::Receiver<EventRecord>>,
    bus: Arc<EventBus>,
    run_id: String,
}

impl Deref for Subscription {
    type Target = broadcast::Receiver<EventRecord>;
    fn deref(&self) -> &Self::Target {
        self.rx.as_ref().expect("a receiver until dropped")
    }
}

impl DerefMut for Subscription {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.rx.as_mut().expect("a receiver until dropped")
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut map = self.bus.channels.lock().expect("event bus lock");
        drop(self.rx.take());
        if map.get(&self.run_id).is_some_and(|tx| tx.receiver_count() == 0) {
            map.remove(&self.run_id);
        }
    }
}

/// The order lock of one run for one writer; the last writer's drop frees it.
pub struct OrderLock {
    lock: Option<Arc<tokio::sync::Mutex<()>>>,
    bus: Arc<EventBus>,
    run_id: Arc<str>,
}

impl Deref for OrderLock {
    type Target = tokio::sync::Mutex<()>;
    fn deref(&self) -> &Self::Target {
        self.lock.as_ref().expect("a lock until dropped")
    }
}

impl Clone for OrderLock {
    fn clone(&self) -> Self {
        Self {
            lock: self.lock.clone(),
            bus: self.bus.clone(),
            run_id: self.run_id.clone(),
        }
    }
}

impl Drop for OrderLock {
    fn drop(&mut self) {
        let mut map = self.bus.order.lock().expect("event bus lock");
        drop(self.lock.take());
        // only the map's own reference left: no writer of this run exists
        if map.get(&*self.run_id).is_some_and(|l| Arc::strong_count(l) == 1) {
            map.remove(&*self.run_id);
        }
    }
}

impl EventBus {
    pub fn order_lock(self: &Arc<Self>, run_id: &str) -> OrderLock {
        let lock = self
            .order
            .lock()
            .expect("event bus lock")
            .entry(run_id.to_string())
            .or_default()
            .clone();
        OrderLock {
            lock: Some(lock),
            bus: self.clone(),
            run_id: run_id.into(),
        }
    }

    pub fn subscribe(self: &Arc<Self>, run_id: &str) -> Subscription {
        let rx = self
            .channels
            .lock()
            .expect("event bus lock")
            .entry(run_id.to_string())
            .or_insert_with(|| broadcast::channel(CAPACITY).0)
            .subscribe();
        Subscription {
            rx: Some(rx),
            bus: self.clone(),
            run_id: run_id.to_string(),
        }
    }

    pub fn publish(&self, event: EventRecord) {
        let map = self.channels.lock().expect("event bus lock");
        if let Some(tx) = map.get(&event.run_id) {
            // a subscriber that goes away meanwhile is fine
            let _ = tx.send(event);
        }
    }

    /// Number of live subscribers over all runs (metrics).
    pub fn subscribers(&self) -> usize {
        let map = self.channels.lock().expect("event bus lock");
        map.values().map(|s| s.receiver_count()).sum()
    }

    /// Runs with a channel, and runs with an order lock, now.
    pub fn live(&self) -> (usize, usize) {
        let channels = self.channels.lock().expect("event bus lock").len();
        (channels, self.order.lock().expect("event bus lock").len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_lives_while_someone_listens_and_an_order_lock_while_someone_writes() {
        let bus = Arc::new(EventBus::default());
        let (a, b) = (bus.subscribe("r1"), bus.subscribe("r1"));
        let other = bus.subscribe("r2");
        let (w1, w2) = (bus.order_lock("r1"), bus.order_lock("r1"));
        let w3 = w2.clone();
        assert_eq!(bus.live(), (2, 1));
        assert_eq!(bus.subscribers(), 3);
        drop(a);
        assert_eq!(bus.live(), (2, 1), "r1 has a listener left");
        drop((b, other));
        assert_eq!(bus.live().0, 0);
        drop((w1, w2));
        assert_eq!(bus.live().1, 1, "a clone of a writer's lock is a writer");
        drop(w3);
        assert_eq!(bus.live(), (0, 0));
        // a new listener gets a new channel
        let mut again = bus.subscribe("r1");
        assert!(again.try_recv().is_err());
        assert_eq!(bus.live(), (1, 0));
    }
}
