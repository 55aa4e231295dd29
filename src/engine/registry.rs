//! At most one task drives a run in this process. Whoever wants a run driven (a new run, an
//! approve, a resume, a cancel, start-up recovery) asks the registry; if a task already drives
//! the run, it is told to look again when it would otherwise stop, instead of a second task
//! being started beside it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;

struct Entry {
    /// Cancels the current pass (a user's cancel: the steps' waits end at once).
    cancel: CancellationToken,
    /// Someone asked for the run while the task was driving it: drive it once more.
    again: bool,
    abort: Option<AbortHandle>,
}

/// The tasks of this process, one per run.
#[derive(Default)]
pub struct Registry {
    tasks: Mutex<HashMap<String, Entry>>,
    started: AtomicU64,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.tasks.lock().expect("registry lock")
    }

    /// Claims the run for a new task: `Some(token)` when the caller must start it, `None` when a
    /// task drives the run already (which will then look at it again before it stops).
    pub fn claim(&self, id: &str) -> Option<CancellationToken> {
        let mut map = self.lock();
        if let Some(e) = map.get_mut(id) {
            e.again = true;
            return None;
        }
        let token = CancellationToken::new();
        map.insert(
            id.to_string(),
            Entry {
                cancel: token.clone(),
                again: false,
                abort: None,
            },
        );
        self.started.fetch_add(1, Ordering::SeqCst);
        Some(token)
    }

    /// Remembers how to abort the task of `id` (a hard stop, see `Engine::kill`).
    pub fn set_abort(&self, id: &str, abort: AbortHandle) {
        if let Some(e) = self.lock().get_mut(id) {
            e.abort = Some(abort);
        }
    }

    /// Called by the task when a pass ends: `Some(token)` to drive the run once more (someone
    /// asked meanwhile), `None` when the task ends and the run is released.
    pub fn pass_done(&self, id: &str, stopping: bool) -> Option<CancellationToken> {
        let mut map = self.lock();
        let e = map.get_mut(id)?;
        if e.again && !stopping {
            e.again = false;
            if e.cancel.is_cancelled() {
                // the cancel is stored with the run; the next pass reads it from there
                e.cancel = CancellationToken::new();
            }
            return Some(e.cancel.clone());
        }
        map.remove(id);
        None
    }

    /// Cancels the current pass of `id`'s task; false when no task drives it.
    pub fn cancel(&self, id: &str) -> bool {
        let mut map = self.lock();
        match map.get_mut(id) {
            Some(e) => {
                e.again = true;
                e.cancel.cancel();
                true
            }
            None => false,
        }
    }

    pub fn is_driving(&self, id: &str) -> bool {
        self.lock().contains_key(id)
    }

    /// Aborts every task at its next await and forgets them.
    pub fn abort_all(&self) {
        for (_, e) in self.lock().drain() {
            if let Some(a) = e.abort {
                a.abort();
            }
        }
    }

    /// Tasks started since the process began (a metric, and evidence for tests).
    pub fn tasks_started(&self) -> u64 {
        self.started.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_claim_asks_the_running_task_to_look_again() {
        let r = Registry::default();
        let first = r.claim("a").expect("first claim starts a task");
        assert!(r.claim("a").is_none(), "no second task");
        let again = r.pass_done("a", false).expect("asked again");
        assert!(!again.is_cancelled());
        assert!(r.pass_done("a", false).is_none(), "released");
        assert!(!r.is_driving("a"));
        drop(first);
        assert!(r.claim("a").is_some());
        assert_eq!(r.tasks_started(), 2);
    }

    #[test]
    fn a_cancel_cancels_the_pass_and_the_next_pass_gets_a_fresh_token() {
        let r = Registry::default();
        let token = r.claim("a").unwrap();
        assert!(r.cancel("a"));
        assert!(token.is_cancelled());
        let next = r
            .pass_done("a", false)
            .expect("the cancel is handled by another pass");
        assert!(!next.is_cancelled());
        assert!(!r.cancel("b"));
    }

    #[test]
    fn stopping_releases_even_when_asked_again() {
        let r = Registry::default();
        r.claim("a").unwrap();
        r.claim("a");
        assert!(r.pass_done("a", true).is_none());
        assert!(!r.is_driving("a"));
    }
}
