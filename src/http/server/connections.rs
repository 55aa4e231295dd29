//! The open HTTP connections and their limit. Each connection is either *busy* (a request is
//! being handled or its response, e.g. an event stream, is still being sent) or *idle* (a
//! keep-alive connection between requests, or one whose request head has not fully arrived).
//!
//! At the limit a new connection is not refused: the connection idle the longest is closed to
//! make room for it, as nginx reuses its keep-alive connections when it runs out
//! (`ngx_drain_connections`). So idle or half-sent connections, which hold nothing but a file
//! descriptor, can never lock out a real request such as the kubelet's `/livez`. Only when every
//! connection is busy is the new one closed at once (after accepting it, so that it neither
//! waits in the kernel's backlog nor makes the accept loop spin).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio_util::sync::CancellationToken;

/// Sockets beyond the limit that may exist while evicted connections close.
pub const EVICTION_HEADROOM: usize = 16;

/// The connections of one server.
pub struct Connections {
    limit: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    open: HashMap<u64, Entry>,
    /// Connections told to close that have not closed yet.
    evicting: usize,
}

struct Entry {
    /// Requests being handled, or whose response body is still being sent.
    busy: u32,
    /// Requests this connection has begun.
    served: u64,
    /// Since when `busy` is 0.
    idle_since: Instant,
    /// Cancelled to close this connection.
    close: CancellationToken,
    evicted: bool,
}

/// What became of a new connection.
pub enum Admission {
    /// Serve it; the slot tracks it until dropped.
    Admitted(Slot),
    /// Every connection is busy: close this one.
    Full,
}

impl Connections {
    /// A registry admitting `limit` connections (at least 1).
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit: limit.max(1),
            inner: Mutex::new(Inner::default()),
        })
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Connections open now (evicted ones included until they have closed).
    pub fn open(&self) -> usize {
        self.lock().open.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("connections lock")
    }

    /// Admits a new connection whose closing follows `parent` (the server's shutdown), evicting
    /// the longest-idle connection when the limit is reached.
    pub fn admit(self: &Arc<Self>, parent: &CancellationToken) -> Admission {
        let mut inner = self.lock();
        if inner.open.len() - inner.evicting >= self.limit {
            let victim = inner
                .open
                .iter()
                .filter(|(_, e)| e.busy == 0 && !e.evicted)
                .min_by_key(|(_, e)| e.idle_since)
                .map(|(id, _)| *id);
            match victim {
                Some(id) if inner.open.len() < self.limit + EVICTION_HEADROOM => {
                    let entry = inner.open.get_mut(&id).expect("victim is open");
                    entry.evicted = true;
                    entry.close.cancel();
                    inner.evicting += 1;
                }
                _ => return Admission::Full,
            }
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let close = parent.child_token();
        inner.open.insert(
            id,
            Entry {
                busy: 0,
                served: 0,
                idle_since: Instant::now(),
                close: close.clone(),
                evicted: false,
            },
        );
        Admission::Admitted(Slot {
            connections: self.clone(),
            id,
            close,
        })
    }
}

/// One admitted connection; it leaves the registry when this is dropped.
pub struct Slot {
    connections: Arc<Connections>,
    id: u64,
    close: CancellationToken,
}

impl Slot {
    /// Cancelled when the connection must close (evicted, or the server stops).
    pub fn close_signal(&self) -> &CancellationToken {
        &self.close
    }

    /// True when nothing was ever asked on this connection and nothing is in flight: it may be
    /// dropped outright, as there is no response to finish.
    pub fn never_used(&self) -> bool {
        self.connections
            .lock()
            .open
            .get(&self.id)
            .is_some_and(|e| e.served == 0 && e.busy == 0)
    }

    /// Marks a request as begun; the connection is busy until the guard is dropped (after the
    /// response body has been sent, or the connection is gone).
    pub fn begin_request(&self) -> Busy {
        if let Some(e) = self.connections.lock().open.get_mut(&self.id) {
            e.busy += 1;
            e.served += 1;
        }
        Busy {
            connections: self.connections.clone(),
            id: self.id,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut inner = self.connections.lock();
        if let Some(e) = inner.open.remove(&self.id)
            && e.evicted
        {
            inner.evicting -= 1;
        }
    }
}

/// A request in flight on a connection.
pub struct Busy {
    connections: Arc<Connections>,
    id: u64,
}

impl Drop for Busy {
    fn drop(&mut self) {
        if let Some(e) = self.connections.lock().open.get_mut(&self.id) {
            e.busy = e.busy.saturating_sub(1);
            if e.busy == 0 {
                e.idle_since = Instant::now();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admitted(a: Admission) -> Slot {
        match a {
            Admission::Admitted(s) => s,
            Admission::Full => panic!("refused"),
        }
    }

    #[test]
    fn at_the_limit_the_longest_idle_connection_makes_room() {
        let server = CancellationToken::new();
        let conns = Connections::new(2);
        let first = admitted(conns.admit(&server));
        let second = admitted(conns.admit(&server));
        let _req = second.begin_request();

        let third = admitted(conns.admit(&server));

        assert!(
            first.close_signal().is_cancelled(),
            "the idle one is told to close"
        );
        assert!(!second.close_signal().is_cancelled(), "the busy one stays");
        assert_eq!(conns.open(), 3, "until the evicted one has closed");
        drop(first);
        assert_eq!(conns.open(), 2);
        drop(third);
    }

    #[test]
    fn when_every_connection_is_busy_a_new_one_is_refused() {
        let server = CancellationToken::new();
        let conns = Connections::new(2);
        let a = admitted(conns.admit(&server));
        let b = admitted(conns.admit(&server));
        let (_ra, rb) = (a.begin_request(), b.begin_request());
        assert!(matches!(conns.admit(&server), Admission::Full));

        // a response that ends makes its connection idle again, and so evictable
        drop(rb);
        assert!(matches!(conns.admit(&server), Admission::Admitted(_)));
        assert!(b.close_signal().is_cancelled());
        assert!(!b.never_used(), "it served a request: finish gracefully");
    }

    #[test]
    fn evictions_in_progress_are_bounded() {
        let server = CancellationToken::new();
        let conns = Connections::new(1);
        // evicted connections that never close (their task is slow) hold the headroom
        let mut kept = vec![admitted(conns.admit(&server))];
        for _ in 0..EVICTION_HEADROOM {
            kept.push(admitted(conns.admit(&server)));
        }
        assert_eq!(conns.open(), 1 + EVICTION_HEADROOM);
        assert!(matches!(conns.admit(&server), Admission::Full));
        kept.clear();
        assert_eq!(conns.open(), 0);
    }

    #[test]
    fn the_server_stopping_closes_every_connection() {
        let server = CancellationToken::new();
        let conns = Connections::new(4);
        let a = admitted(conns.admit(&server));
        assert!(a.never_used());
        server.cancel();
        assert!(a.close_signal().is_cancelled());
    }
}
