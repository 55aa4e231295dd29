//! A `coordination.k8s.io/v1` Lease per controller, so that two replicas of this service never
//! run on the same controller at once. Every write carries the `resourceVersion` it read: when
//! two replicas race, the API server accepts one write and answers 409 to the other.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
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

/// Who holds `spec` at `now`, from the asking `holder`'s view. A Lease expires when
/// `renewTime` (or `acquireTime`) plus `leaseDurationSeconds` lies before `now`.
pub(super) fn claim(spec: Option<&LeaseSpec>, holder: &str, now: Timestamp) -> Claim {
    let Some(spec) = spec else { return Claim::Free };
    let current = match spec.holder_identity.as_deref() {
        None | Some("") => return Claim::Free,
        Some(h) if h == holder => return Claim::Ours,
        Some(h) => h,
    };
    let renewed = spec
        .renew_time
        .as_ref()
        .or(spec.acquire_time.as_ref())
        .map(|t| t.0);
    let duration = SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(0)));
    match renewed.and_then(|r| r.checked_add(duration).ok()) {
        Some(expiry) if expiry >= now => Claim::Theirs(current.to_string()),
        // Never renewed, no duration or expired: whoever held it is gone.
        _ => Claim::Free,
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
            Some(mut lease) => match claim(lease.spec.as_ref(), holder, now) {
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

    #[test]
    fn absent_or_unheld_leases_are_free() {
        assert_eq!(claim(None, "me", at(0)), Claim::Free);
        assert_eq!(claim(Some(&LeaseSpec::default()), "me", at(0)), Claim::Free);
    }

    #[test]
    fn someone_elses_lease_is_theirs_until_it_expires() {
        let spec = held_by("other", 0, 30);
        assert_eq!(claim(Some(&spec), "me", at(29)), Claim::Theirs("other".into()));
        assert_eq!(claim(Some(&spec), "me", at(30)), Claim::Theirs("other".into()));
        assert_eq!(claim(Some(&spec), "me", at(31)), Claim::Free);
        let never_renewed = LeaseSpec {
            holder_identity: Some("other".into()),
            ..LeaseSpec::default()
        };
        assert_eq!(claim(Some(&never_renewed), "me", at(0)), Claim::Free);
    }

    #[test]
    fn our_lease_is_ours_even_when_expired() {
        assert_eq!(claim(Some(&held_by("me", 0, 30)), "me", at(100)), Claim::Ours);
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
