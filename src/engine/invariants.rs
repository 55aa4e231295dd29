//! What must still hold when a run is picked up again inside its downtime (after a crash, a
//! restart, a resume of a failed step): the controller is still stopped, and its database URL is
//! still the one the run left. Someone may have scaled the controller up by hand, or a
//! `helm upgrade` may have rendered other values meanwhile; going on would then run the import
//! under a live controller or switch a controller nobody stopped. A broken invariant rolls the
//! run back and says why.

use super::Inner;
use super::steps::control::{controller_pods, current_replicas, current_url};
use crate::db::{RunRecord, StepRecord};
use crate::linstor::toml::redact_url;
use crate::model::{StepName, StepState};

fn state_of(steps: &[StepRecord], name: StepName) -> StepState {
    steps
        .iter()
        .find(|s| s.name == name)
        .map_or(StepState::Pending, |s| s.state)
}

/// `None` when everything holds (or the run is not inside its downtime); otherwise what broke.
pub(super) async fn check(inner: &Inner, run: &RunRecord, steps: &[StepRecord]) -> Option<String> {
    if run.kind.is_read_only()
        || state_of(steps, StepName::StopController) != StepState::Succeeded
        || state_of(steps, StepName::StartController) == StepState::Succeeded
    {
        return None;
    }
    let originals = run.originals.as_ref()?;
    let info = &originals.target;
    let cluster = inner.cluster.as_ref();
    // an interrupted start may have begun scaling up: then pods are expected
    let starting = state_of(steps, StepName::StartController) != StepState::Pending;
    if !starting {
        match current_replicas(cluster, info).await {
            Ok(Some(r)) if r != 0 => {
                return Some(format!(
                    "the controller was scaled to {r} replica(s) while the run kept it at 0"
                ));
            }
            Ok(_) => {}
            Err(e) => return Some(format!("the controller cannot be read: {e}")),
        }
        match controller_pods(cluster, info).await {
            Ok(0) => {}
            Ok(n) => {
                return Some(format!(
                    "{n} controller pod(s) exist while the run kept the controller stopped"
                ));
            }
            Err(e) => return Some(format!("the controller's pods cannot be listed: {e}")),
        }
    }
    let url = match current_url(cluster, info).await {
        Ok(u) => u,
        Err(e) => return Some(format!("the controller's database URL cannot be read: {e}")),
    };
    let expected_original = url.is_some() && url == originals.connection_url;
    let expected_k8s = run.switch_requested && url.as_deref() == Some("k8s");
    if !expected_original && !expected_k8s {
        return Some(format!(
            "the controller's database URL is {} where the run expects {}{}",
            url.as_deref().map_or("(none)".into(), redact_url),
            originals
                .connection_url
                .as_deref()
                .map_or("(none)".into(), redact_url),
            if run.switch_requested { " or k8s" } else { "" }
        ));
    }
    None
}

/// For a failure with automatic rollback off: what the stopped controller is configured with, what
/// the `k8s` backend holds, and what starting the controller by hand would do.
pub(super) async fn stopped_controller_state(inner: &Inner, run: &RunRecord) -> String {
    let Some(o) = run.originals.as_ref() else {
        return "The controller is stopped.".into();
    };
    let info = &o.target;
    let cluster = inner.cluster.as_ref();
    let url = current_url(cluster, info)
        .await
        .ok()
        .flatten()
        .map_or_else(|| "(unknown)".into(), |u| redact_url(&u));
    let objects = match cluster.k8s_backend_inventory().await {
        Ok(inv) => format!(
            "the k8s backend holds {} objects (an incomplete import)",
            inv.total_objects()
        ),
        Err(e) => format!("the k8s backend could not be listed ({e})"),
    };
    let start = match info.kind {
        crate::cluster::controller::ControllerKind::LinstorController => format!(
            "kubectl -n {} patch linstorcontroller {} --type merge -p '{{\"spec\":{{\"replicas\":{}}}}}'",
            info.namespace, info.name, o.replicas
        ),
        crate::cluster::controller::ControllerKind::Deployment => format!(
            "kubectl -n {} scale deployment {} --replicas={}",
            info.namespace, info.deployment, o.replicas
        ),
    };
    let on = if url == "k8s" {
        "k8s, whose data is NOT verified: do not start it before the run is resumed or rolled back"
            .to_string()
    } else {
        format!("{url}, the database as it was before the run (the etcd data was never changed)")
    };
    format!(
        "The controller is stopped (0 replicas) and configured for {url}; {objects}. Starting it now ({start}) would \
         run it on {on}. Resume the run to retry from the failed step, or roll it back."
    )
}
