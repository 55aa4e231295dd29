//! The controller's Lease: at most one linstor-migrator process acts on a controller at a time
//! (a second replica of the service, a CLI on a laptop). It lives in the controller's namespace
//! and is held for as long as a run of this process holds the controller (running, waiting at
//! the approval gate, failed inside the downtime, `rollback_failed`: what the database's
//! `run_holding` says), and for as long as a task or a starting run uses it; then it is given up.
//!
//! One keeper task per controller takes and renews it, the way client-go's leader election does:
//! renewed every third of its duration, each renewal bounded by what is left until two thirds
//! of the duration have passed since the last success; past that point the holder stops acting
//! (the token handed to the run's task is cancelled: its step stops at the next await) and the
//! keeper goes on trying, so that the run continues when the Lease is its own again. Another
//! process takes the Lease only after it saw it unrenewed for its whole duration by its own clock
//! (`cluster::kube::lease`), which leaves the last third as the margin.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Inner;
use super::log::RunLog;
use crate::cluster::Cluster;
use crate::model::ControllerRef;

/// The Lease's name for a controller (stable, a valid object name whatever the controller's).
pub fn lease_name(controller: &ControllerRef) -> String {
    let digest = hex::encode(Sha256::digest(controller.to_string()));
    format!("linstor-migrator-{}", &digest[..16])
}

/// What the keeper of a controller's Lease knows.
#[derive(Debug, Clone)]
pub(super) enum Holding {
    /// No attempt has answered yet.
    Trying,
    /// Ours; the token is cancelled the moment it stops being ours.
    Held(CancellationToken),
    /// Another process holds it unexpired.
    Theirs,
    /// The last attempt failed (the API server's error, or no answer in time).
    Failing(String),
}

struct Keeper {
    state: watch::Receiver<Holding>,
    users: Arc<AtomicUsize>,
    /// Cancelled when the Lease is no longer needed: the keeper gives it up and ends.
    stop: CancellationToken,
    /// Cancelled by the keeper when it has ended (after giving the Lease up).
    done: CancellationToken,
    task: JoinHandle<()>,
}

/// The keepers of this process, one per controller whose Lease it needs.
#[derive(Default)]
pub(super) struct Leases {
    keepers: Mutex<HashMap<ControllerRef, Keeper>>,
    /// Keepers giving their Lease up (their `done`): the next keeper of that controller waits
    /// for them, so that their release never deletes what the next one took.
    retiring: Mutex<HashMap<ControllerRef, CancellationToken>>,
}

/// A use of a controller's Lease (a task driving a run, a run being created): while one exists
/// the Lease is kept even when no run holds the controller. Give it back with [`LeaseUse::done`].
pub(super) struct LeaseUse {
    controller: ControllerRef,
    users: Option<Arc<AtomicUsize>>,
}

impl LeaseUse {
    /// Gives the use back and gives the Lease up if nothing needs it any more.
    pub async fn done(mut self, inner: &Inner) {
        if let Some(users) = self.users.take() {
            users.fetch_sub(1, Ordering::SeqCst);
            inner.leases.settle(inner, &self.controller).await;
        }
    }
}

impl Drop for LeaseUse {
    fn drop(&mut self) {
        // a task aborted at an await: the next settle gives the Lease up if nothing needs it
        if let Some(users) = self.users.take() {
            users.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

fn timing(ttl: Duration) -> (Duration, Duration, Duration) {
    // renew every third, stop acting after two thirds, try again quickly after a failure
    (ttl / 3, ttl * 2 / 3, (ttl / 15).max(Duration::from_millis(100)))
}

impl Leases {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ControllerRef, Keeper>> {
        self.keepers.lock().expect("lease keepers")
    }

    /// The keeper of `controller` (started when there is none) with one more use.
    fn use_of(&self, inner: &Inner, controller: &ControllerRef) -> (LeaseUse, watch::Receiver<Holding>) {
        let mut keepers = self.lock();
        let keeper = keepers
            .entry(controller.clone())
            .or_insert_with(|| self.start(inner, controller));
        keeper.users.fetch_add(1, Ordering::SeqCst);
        let use_ = LeaseUse {
            controller: controller.clone(),
            users: Some(keeper.users.clone()),
        };
        (use_, keeper.state.clone())
    }

    /// Keeps `controller`'s Lease for a run of this process that holds it without a task (one
    /// waiting at the gate, failed inside the downtime, `rollback_failed`), e.g. after a restart.
    pub fn keep(&self, inner: &Inner, controller: &ControllerRef) {
        if inner.settings.leases {
            let mut keepers = self.lock();
            keepers
                .entry(controller.clone())
                .or_insert_with(|| self.start(inner, controller));
        }
    }

    fn start(&self, inner: &Inner, controller: &ControllerRef) -> Keeper {
        let (tx, rx) = watch::channel(Holding::Trying);
        let (stop, done) = (CancellationToken::new(), CancellationToken::new());
        let previous = self.retiring.lock().expect("lease keepers").remove(controller);
        let lease = LeaseRef {
            cluster: inner.cluster.clone(),
            ns: controller.namespace.clone(),
            name: lease_name(controller),
            holder: inner.settings.instance_id.clone(),
            ttl: inner.settings.lease_ttl,
        };
        let task = tokio::spawn(keep(lease, tx, stop.clone(), done.clone(), previous));
        Keeper {
            state: rx,
            users: Arc::new(AtomicUsize::new(0)),
            stop,
            done,
            task,
        }
    }

    /// For a run about to be created: the Lease when this process has it or gets it; otherwise
    /// what stands in the way (another process holds it, or the cluster's error). Another
    /// holder's Lease is looked at until it changes (a live holder renews it: refused) or has
    /// stayed the same for its duration (an abandoned one, taken), as a fresh process cannot tell
    /// the two apart at first sight: at most about a Lease duration.
    pub async fn take(&self, inner: &Inner, controller: &ControllerRef) -> Result<LeaseUse, Holding> {
        if !inner.settings.leases {
            return Ok(LeaseUse {
                controller: controller.clone(),
                users: None,
            });
        }
        let (use_, mut state) = self.use_of(inner, controller);
        let (ns, name) = (&controller.namespace, lease_name(controller));
        let holder = &inner.settings.instance_id;
        let (_, _, retry) = timing(inner.settings.lease_ttl);
        // the first sight of someone else's Lease, and when our watch of it ends
        let mut watching: Option<(std::time::Instant, Instant)> = None;
        let refusal = loop {
            let now = state.borrow_and_update().clone();
            match now {
                Holding::Held(token) if !token.is_cancelled() => return Ok(use_),
                Holding::Theirs => {
                    let since = inner.cluster.lease_unchanged_since(ns, &name, holder);
                    match (since, watching) {
                        // the cluster cannot tell an abandoned Lease from a live one
                        (None, _) => break Holding::Theirs,
                        (Some(since), None) => {
                            let until = Instant::now() + inner.settings.lease_ttl + retry * 2;
                            watching = Some((since, until));
                        }
                        (Some(since), Some((first, _))) if since != first => break Holding::Theirs,
                        (Some(_), Some(_)) => {}
                    }
                }
                Holding::Failing(e) => break Holding::Failing(e),
                Holding::Trying | Holding::Held(_) => {}
            }
            let until = watching.map_or_else(|| Instant::now() + inner.settings.lease_ttl, |(_, u)| u);
            tokio::select! {
                changed = state.changed() => if changed.is_err() {
                    break Holding::Failing("the Lease keeper stopped".into());
                },
                () = tokio::time::sleep_until(until) => break Holding::Theirs,
            }
        };
        use_.done(inner).await;
        Err(refusal)
    }

    /// For a task about to drive a run: waits until the Lease is this process's (saying once in
    /// the run's log why it waits); the token is cancelled when it is lost. `None` when `stop`
    /// ends the wait.
    pub async fn hold(
        &self,
        inner: &Inner,
        controller: &ControllerRef,
        log: &RunLog,
        stop: &CancellationToken,
    ) -> Option<(LeaseUse, CancellationToken)> {
        if !inner.settings.leases {
            let use_ = LeaseUse {
                controller: controller.clone(),
                users: None,
            };
            return Some((use_, CancellationToken::new()));
        }
        let (use_, mut state) = self.use_of(inner, controller);
        let name = format!("{}/{}", controller.namespace, lease_name(controller));
        let mut told = false;
        loop {
            let now = state.borrow_and_update().clone();
            match now {
                Holding::Held(token) if !token.is_cancelled() => {
                    if told {
                        log.say(None, "info", &format!("took Lease {name}")).await;
                    }
                    return Some((use_, token));
                }
                Holding::Theirs if !told => {
                    told = true;
                    log.say(
                        None,
                        "warn",
                        &format!(
                            "Lease {name} is held by another linstor-migrator process; waiting until it is released or \
                             expires ({} s after it was last seen renewed)",
                            inner.settings.lease_ttl.as_secs()
                        ),
                    )
                    .await;
                }
                Holding::Failing(e) if !told => {
                    told = true;
                    log.say(None, "warn", &format!("cannot take Lease {name}: {e}; retrying"))
                        .await;
                }
                _ => {}
            }
            tokio::select! {
                () = stop.cancelled() => {
                    use_.done(inner).await;
                    return None;
                }
                changed = state.changed() => if changed.is_err() {
                    use_.done(inner).await;
                    return None;
                },
            }
        }
    }

    /// Gives `controller`'s Lease up when nothing needs it: no use, and no run of this process
    /// holding the controller (a database that cannot be read keeps it).
    pub async fn settle(&self, inner: &Inner, controller: &ControllerRef) {
        let in_use = |keepers: &HashMap<ControllerRef, Keeper>| {
            keepers
                .get(controller)
                .is_none_or(|k| k.users.load(Ordering::SeqCst) > 0)
        };
        if in_use(&self.lock()) {
            return;
        }
        if !matches!(inner.db.run_holding(controller).await, Ok(None)) {
            return;
        }
        let keeper = {
            let mut keepers = self.lock();
            // a use taken meanwhile (a new run) keeps it; a new run always takes one first
            if in_use(&keepers) {
                return;
            }
            keepers.remove(controller)
        };
        let Some(keeper) = keeper else { return };
        keeper.stop.cancel();
        self.retiring
            .lock()
            .expect("lease keepers")
            .insert(controller.clone(), keeper.done.clone());
        // given up before the pass (and a CLI with it) ends: a process that exits right after
        // must not leave it to expire. Bounded by the keeper's own bound on the release.
        keeper.done.cancelled().await;
    }

    /// Stops every keeper without giving its Lease up (a shutdown, a kill): a Lease of a run
    /// left resumable expires, unless this process (its pod) comes back first.
    pub fn abandon_all(&self) {
        for (_, keeper) in self.lock().drain() {
            keeper.task.abort();
        }
    }
}

/// The Lease a keeper keeps, and for whom.
struct LeaseRef {
    cluster: Arc<dyn Cluster>,
    ns: String,
    name: String,
    holder: String,
    ttl: Duration,
}

/// Takes and renews one Lease until `stop`, then gives it up and cancels `done`. Publishes what
/// it knows in `state`.
async fn keep(
    lease: LeaseRef,
    state: watch::Sender<Holding>,
    stop: CancellationToken,
    done: CancellationToken,
    previous: Option<CancellationToken>,
) {
    let _done = done.drop_guard();
    let LeaseRef {
        cluster,
        ns,
        name,
        holder,
        ttl,
    } = lease;
    if let Some(previous) = previous {
        // the keeper before this one gives the same Lease up: after it, not during it
        let _ = tokio::time::timeout(ttl, previous.cancelled()).await;
    }
    let (renew_every, act_until, retry) = timing(ttl);
    // the token handed out and when the Lease was last renewed
    let mut held: Option<(CancellationToken, Instant)> = None;
    loop {
        let bound = match &held {
            Some((_, renewed)) => (*renewed + act_until).saturating_duration_since(Instant::now()),
            None => renew_every,
        };
        let attempt = tokio::time::timeout(
            bound.max(Duration::from_millis(1)),
            cluster.acquire_lease(&ns, &name, &holder, ttl),
        );
        let outcome = tokio::select! {
            () = stop.cancelled() => break,
            outcome = attempt => outcome,
        };
        let failure = match outcome {
            Ok(Ok(true)) => {
                let now = Instant::now();
                match &mut held {
                    Some((_, renewed)) => *renewed = now,
                    None => {
                        let token = CancellationToken::new();
                        state.send_replace(Holding::Held(token.clone()));
                        held = Some((token, now));
                    }
                }
                None
            }
            Ok(Ok(false)) => {
                if let Some((token, _)) = held.take() {
                    tracing::error!("Lease {ns}/{name} was taken by another process; stopping");
                    token.cancel();
                }
                state.send_replace(Holding::Theirs);
                None
            }
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some(format!("no answer within {:.1} s", bound.as_secs_f64())),
        };
        if let Some(failure) = &failure {
            match &held {
                Some((token, renewed)) if renewed.elapsed() >= act_until => {
                    tracing::error!(
                        "Lease {ns}/{name} could not be renewed for {} s ({failure}); stopping before another \
                         process may take it",
                        act_until.as_secs()
                    );
                    token.cancel();
                    held = None;
                    state.send_replace(Holding::Failing(failure.clone()));
                }
                Some(_) => tracing::warn!("failed to renew Lease {ns}/{name}: {failure}"),
                None => {
                    state.send_replace(Holding::Failing(failure.clone()));
                }
            }
        }
        let pause = if held.is_some() && failure.is_none() {
            renew_every
        } else {
            retry
        };
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(pause) => {}
        }
    }
    if let Some((token, _)) = held.take() {
        token.cancel();
    }
    // best effort (only a Lease this holder has is deleted; an expired one is taken over anyway)
    match tokio::time::timeout(renew_every, cluster.release_lease(&ns, &name, &holder)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!("failed to release Lease {ns}/{name}: {e}"),
        Err(_) => tracing::warn!("failed to release Lease {ns}/{name}: no answer"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_holder_stops_acting_a_third_of_the_duration_before_others_may_take_over() {
        let (renew, act_until, retry) = timing(Duration::from_secs(30));
        assert_eq!(renew, Duration::from_secs(10));
        assert_eq!(act_until, Duration::from_secs(20));
        assert_eq!(retry, Duration::from_secs(2));
    }
}
