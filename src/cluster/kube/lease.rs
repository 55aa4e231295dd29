//! A `coordination.k8s.io/v1` Lease per controller, so that two processes of this service (two
//! replicas, a CLI beside the service) never run on the same controller at once. Every write
//! carries the `resourceVersion` it read: when two race, the API server accepts one write and
//! answers 409 to the other.
//!
//! Whether another holder's Lease has expired is judged by this process's own clock, the way
//! client-go's leader election does: the Lease as last read and the moment it was first read so;
//! it has expired when it stayed the same for its whole duration since. The holder's `renewTime`
//! is the holder's clock, which may run ahead of or behind ours.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};

use super::FIELD_MANAGER;
use super::errors::{is_conflict, is_not_found, map_kube_error};
use super::reads::get_optional;
use crate::cluster::ClusterResult;

/// Attempts at read-then-write before giving up on a contended Lease.
const ATTEMPTS: usize = 3;

/// Who has a Lease at a moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Claim {
    /// Nobody: no holder, or the holder stopped renewing it.
    Free,
    /// The asking holder.
    Ours,
    /// Somebody else, unexpired.
    Theirs(String),
}

/// A Lease as this process last read it, and since when (by this process's clock).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Observed {
    pub spec: LeaseSpec,
    pub since: Instant,
}

/// What this process has seen of each Lease, by namespace and name.
#[derive(Debug, Default)]
pub(super) struct Observations(Mutex<HashMap<(String, String), Observed>>);

impl Observations {
    /// Notes `spec` as read at `now`; returns the observation it belongs to (the earlier one
    /// when nothing changed since).
    fn note(&self, ns: &str, name: &str, spec: &LeaseSpec, now: Instant) -> Observed {
        let mut seen = self.0.lock().expect("lease observations");
        let entry = seen
            .entry((ns.to_string(), name.to_string()))
            .or_insert_with(|| Observed {
                spec: spec.clone(),
                since: now,
            });
        if entry.spec != *spec {
            *entry = Observed {
                spec: spec.clone(),
                since: now,
            };
        }
        entry.clone()
    }

    /// Since when the Lease was last seen unchanged, when another holder than `holder` had it.
    pub(super) fn unchanged_since(&self, ns: &str, name: &str, holder: &str) -> Option<Instant> {
        let seen = self.0.lock().expect("lease observations");
        let o = seen.get(&(ns.to_string(), name.to_string()))?;
        match o.spec.holder_identity.as_deref() {
            None | Some("") => None,
            Some(h) if h == holder => None,
            Some(_) => Some(o.since),
        }
    }
}

/// Who holds the Lease `seen`, from the asking `holder`'s view at `now`: another holder's Lease
/// has expired when it stayed unchanged for `leaseDurationSeconds` since this process first
/// read it so.
pub(super) fn claim(seen: &Observed, holder: &str, now: Instant) -> Claim {
    let spec = &seen.spec;
    let current = match spec.holder_identity.as_deref() {
        None | Some("") => return Claim::Free,
        Some(h) if h == holder => return Claim::Ours,
        Some(h) => h,
    };
    let duration = Duration::from_secs(u64::try_from(spec.lease_duration_seconds.unwrap_or(0)).unwrap_or(0));
    if now.saturating_duration_since(seen.since) > duration {
        // nobody renewed it for its whole duration: whoever held it is gone
        Claim::Free
    } else {
        Claim::Theirs(current.to_string())
    }
}

/// The spec after `holder` takes or renews the Lease at `now`.
pub(super) fn claimed(
    previous: Option<&LeaseSpec>,
    holder: &str,
    ttl: Duration,
    now: Timestamp,
) -> LeaseSpec {
    let previous = previous.cloned().unwrap_or_default();
    let renewing = previous.holder_identity.as_deref() == Some(holder);
    let was_held = previous.holder_identity.as_deref().is_some_and(|h| !h.is_empty());
    let transitions = previous.lease_transitions.unwrap_or(0);
    LeaseSpec {
        holder_identity: Some(holder.to_string()),
        lease_duration_seconds: Some(i32::try_from(ttl.as_secs().max(1)).unwrap_or(i32::MAX)),
        acquire_time: if renewing {
            previous.acquire_time.clone()
        } else {
            Some(MicroTime(now))
        },
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(if was_held && !renewing {
            transitions + 1
        } else {
            transitions
        }),
        ..previous
    }
}

/// Takes or renews the Lease; false when another holder has it unexpired or wins the race.
pub(super) async fn acquire(
    client: &kube::Client,
    observations: &Observations,
    ns: &str,
    name: &str,
    holder: &str,
    ttl: Duration,
) -> ClusterResult<bool> {
    let api: Api<Lease> = Api::namespaced(client.clone(), ns);
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PostParams::default()
    };
    for _ in 0..ATTEMPTS {
        let now = Timestamp::now();
        let current = get_optional(&api, name)
            .await
            .map_err(|e| map_kube_error("get", "Lease", ns, name, e))?;
        let written = match current {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(name.to_string()),
                        namespace: Some(ns.to_string()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(claimed(None, holder, ttl, now)),
                };
                api.create(&params, &lease).await
            }
            Some(mut lease) => match claim(
                &observations.note(ns, name, &lease.spec.clone().unwrap_or_default(), Instant::now()),
                holder,
                Instant::now(),
            ) {
                Claim::Theirs(other) => {
                    tracing::debug!(lease = name, holder = other, "lease held by another replica");
                    return Ok(false);
                }
                Claim::Free | Claim::Ours => {
                    lease.spec = Some(claimed(lease.spec.as_ref(), holder, ttl, now));
                    // `lease.metadata.resource_version` is the one just read.
                    api.replace(name, &params, &lease).await
                }
            },
        };
        match written {
            Ok(_) => return Ok(true),
            // Someone wrote in between: read again and decide again.
            Err(e) if is_conflict(&e) => continue,
            Err(e) => return Err(map_kube_error("write", "Lease", ns, name, e)),
        }
    }
    Ok(false)
}

/// Deletes the Lease when `holder` has it; someone else's Lease is left alone.
pub(super) async fn release(client: &kube::Client, ns: &str, name: &str, holder: &str) -> ClusterResult<()> {
    let api: Api<Lease> = Api::namespaced(client.clone(), ns);
    let Some(lease) = get_optional(&api, name)
        .await
        .map_err(|e| map_kube_error("get", "Lease", ns, name, e))?
    else {
        return Ok(());
    };
    if lease.spec.as_ref().and_then(|s| s.holder_identity.as_deref()) != Some(holder) {
        return Ok(());
    }
    // The precondition makes the delete fail (409) if another replica took the Lease after
    // our read, instead of deleting its Lease.
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            resource_version: lease.metadata.resource_version.clone(),
            uid: lease.metadata.uid.clone(),
        }),
        ..DeleteParams::default()
    };
    match api.delete(name, &params).await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) || is_conflict(&e) => Ok(()),
        Err(e) => Err(map_kube_error("delete", "Lease", ns, name, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).expect("valid time")
    }

    fn held_by(holder: &str, renewed: i64, duration: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            renew_time: Some(MicroTime(at(renewed))),
            lease_duration_seconds: Some(duration),
            lease_transitions: Some(2),
            ..LeaseSpec::default()
        }
    }

    fn seen(spec: &LeaseSpec, since: Instant) -> Observed {
        Observed {
            spec: spec.clone(),
            since,
        }
    }

    #[test]
    fn unheld_leases_are_free_and_our_own_is_ours_even_when_long_unrenewed() {
        let t0 = Instant::now();
        assert_eq!(claim(&seen(&LeaseSpec::default(), t0), "me", t0), Claim::Free);
        let ours = held_by("me", 0, 30);
        assert_eq!(
            claim(&seen(&ours, t0), "me", t0 + Duration::from_secs(100)),
            Claim::Ours
        );
    }

    #[test]
    fn someone_elses_lease_expires_by_our_clock_from_when_we_first_saw_it_so() {
        let obs = Observations::default();
        let t0 = Instant::now();
        let secs = Duration::from_secs;
        // its renewTime is 1,000 s in the past by the holder's clock: that clock may be behind
        // ours, so it counts from our first read
        let spec = held_by("other", -1000, 30);
        let first = obs.note("ns", "l", &spec, t0);
        assert_eq!(claim(&first, "me", t0), Claim::Theirs("other".into()));
        let later = obs.note("ns", "l", &spec, t0 + secs(30));
        assert_eq!(later.since, t0, "unchanged: the first sighting counts");
        assert_eq!(claim(&later, "me", t0 + secs(30)), Claim::Theirs("other".into()));
        assert_eq!(claim(&later, "me", t0 + secs(31)), Claim::Free);

        // renewed meanwhile (even with a renewTime far in the future): the count starts again
        let renewed = held_by("other", 5000, 30);
        let again = obs.note("ns", "l", &renewed, t0 + secs(31));
        assert_eq!(again.since, t0 + secs(31));
        assert_eq!(claim(&again, "me", t0 + secs(31)), Claim::Theirs("other".into()));
        assert_eq!(claim(&again, "me", t0 + secs(62)), Claim::Free);

        // another Lease is another observation
        assert_eq!(
            obs.note("ns", "other-lease", &renewed, t0 + secs(62)).since,
            t0 + secs(62)
        );
        // what a taker asks while it watches: since when another holder's Lease stood still
        assert_eq!(obs.unchanged_since("ns", "l", "me"), Some(t0 + secs(31)));
        assert_eq!(obs.unchanged_since("ns", "l", "other"), None, "one's own");
        assert_eq!(obs.unchanged_since("ns", "never-seen", "me"), None);
    }

    #[test]
    fn a_lease_without_a_duration_expires_once_it_was_seen_unchanged() {
        let t0 = Instant::now();
        let no_duration = LeaseSpec {
            holder_identity: Some("other".into()),
            ..LeaseSpec::default()
        };
        assert_eq!(
            claim(&seen(&no_duration, t0), "me", t0),
            Claim::Theirs("other".into())
        );
        assert_eq!(
            claim(&seen(&no_duration, t0), "me", t0 + Duration::from_millis(1)),
            Claim::Free
        );
    }

    #[test]
    fn taking_over_counts_a_transition_and_renewing_does_not() {
        let ttl = Duration::from_secs(60);
        let taken = claimed(Some(&held_by("other", 0, 30)), "me", ttl, at(100));
        assert_eq!(taken.holder_identity.as_deref(), Some("me"));
        assert_eq!(taken.lease_transitions, Some(3));
        assert_eq!(taken.lease_duration_seconds, Some(60));
        assert_eq!(taken.acquire_time, Some(MicroTime(at(100))));

        let renewed = claimed(Some(&taken), "me", ttl, at(130));
        assert_eq!(renewed.lease_transitions, Some(3));
        assert_eq!(renewed.acquire_time, Some(MicroTime(at(100))));
        assert_eq!(renewed.renew_time, Some(MicroTime(at(130))));

        let fresh = claimed(None, "me", ttl, at(0));
        assert_eq!(fresh.lease_transitions, Some(0));
    }
}
