//! The controller's Lease: at most one linstor-migrator process acts on a controller at a time
//! (a second replica of the service, a CLI on a laptop). It lives in the controller's namespace,
//! is renewed at a third of its duration, and is held for as long as a task drives a run of
//! that controller. A holder that cannot renew it before it expires, or finds it taken, stops
//! acting at the next await (`lost`); a Lease left by a dead holder expires and is taken over,
//! and the run continues.

use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::Inner;
use super::log::RunLog;
use crate::cluster::Cluster;
use crate::model::ControllerRef;

/// How often a task that waits for someone else's Lease looks again.
const POLL: Duration = Duration::from_secs(2);

/// The Lease's name for a controller (stable, a valid object name whatever the controller's).
pub fn lease_name(controller: &ControllerRef) -> String {
    let digest = hex::encode(Sha256::digest(controller.to_string()));
    format!("linstor-migrator-{}", &digest[..16])
}

/// A Lease this process holds, renewed in the background until released.
pub(super) struct HeldLease {
    /// Cancelled when the Lease is lost: whoever acts for it must stop.
    pub lost: CancellationToken,
    renew: tokio::task::JoinHandle<()>,
    namespace: String,
    name: String,
    holder: String,
}

impl HeldLease {
    /// Stops renewing and gives the Lease up (best effort: it expires anyway).
    pub async fn release(self, cluster: &dyn Cluster) {
        self.renew.abort();
        if let Err(e) = cluster
            .release_lease(&self.namespace, &self.name, &self.holder)
            .await
        {
            tracing::warn!("failed to release Lease {}/{}: {e}", self.namespace, self.name);
        }
    }
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        self.renew.abort();
    }
}

/// Takes the Lease of `controller`, waiting while another live holder has it; `None` when
/// `stop` ends the wait. Says once in the run's log that it waits, and why.
pub(super) async fn hold(
    inner: &Inner,
    controller: &ControllerRef,
    log: &RunLog,
    stop: &CancellationToken,
) -> Option<HeldLease> {
    let ns = controller.namespace.clone();
    let name = lease_name(controller);
    let holder = inner.settings.instance_id.clone();
    let ttl = inner.settings.lease_ttl;
    let mut told = false;
    loop {
        match inner.cluster.acquire_lease(&ns, &name, &holder, ttl).await {
            Ok(true) => break,
            Ok(false) if !told => {
                log.say(
                    None,
                    "warn",
                    &format!(
                        "Lease {ns}/{name} is held by another linstor-migrator process; waiting until it is \
                         released or expires ({} s after its holder's last renewal)",
                        ttl.as_secs()
                    ),
                )
                .await;
                told = true;
            }
            Ok(false) => {}
            Err(e) => {
                if !told {
                    log.say(
                        None,
                        "warn",
                        &format!("cannot take Lease {ns}/{name}: {e}; retrying"),
                    )
                    .await;
                    told = true;
                }
            }
        }
        tokio::select! {
            () = stop.cancelled() => return None,
            () = tokio::time::sleep(POLL.min(ttl)) => {}
        }
    }
    if told {
        log.say(None, "info", &format!("took Lease {ns}/{name}")).await;
    }
    let lost = CancellationToken::new();
    let renew = {
        let (cluster, lost) = (inner.cluster.clone(), lost.clone());
        let (ns, name, holder) = (ns.clone(), name.clone(), holder.clone());
        tokio::spawn(async move {
            let mut renewed = tokio::time::Instant::now();
            loop {
                tokio::time::sleep(ttl / 3).await;
                match cluster.acquire_lease(&ns, &name, &holder, ttl).await {
                    Ok(true) => renewed = tokio::time::Instant::now(),
                    Ok(false) => {
                        tracing::error!("Lease {ns}/{name} was taken by another process; stopping");
                        lost.cancel();
                        return;
                    }
                    Err(e) => {
                        tracing::warn!("failed to renew Lease {ns}/{name}: {e}");
                        // past its expiry another process may take it: stop acting before that
                        if renewed.elapsed() >= ttl - ttl / 6 {
                            tracing::error!(
                                "Lease {ns}/{name} could not be renewed before it expires; stopping"
                            );
                            lost.cancel();
                            return;
                        }
                    }
                }
            }
        })
    };
    Some(HeldLease {
        lost,
        renew,
        namespace: ns,
        name,
        holder,
    })
}
