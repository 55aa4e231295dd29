//! Leaving the approval gate: a run may wait there for minutes or days between its preflight and
//! its downtime, and the controller may change meanwhile (another process migrated it, someone
//! scaled it, a second LINSTOR took the `k8s` backend). Before the controller is stopped, what
//! preflight saw is looked at again; when it changed, the run refuses to go on: stopping the
//! controller then, and rolling back to what preflight recorded, would undo the other change and
//! lose whatever was written since.

use super::Inner;
use super::steps::control::current_url;
use crate::cluster::controller::{self, ControllerInfo};
use crate::db::RunRecord;
use crate::linstor::toml::{Backend, redact_url};
use crate::model::RunKind;

/// `None` when the controller is as preflight saw it; otherwise what changed, in words.
pub(super) async fn changed_since_preflight(inner: &Inner, run: &RunRecord) -> Option<String> {
    let original = run.originals.as_ref()?;
    let cluster = inner.cluster.as_ref();
    let now = match controller::find(cluster, &run.controller).await {
        Ok(info) => info,
        Err(e) => return Some(format!("the controller cannot be read ({e})")),
    };
    let mut changes = Vec::new();
    if now.replicas != original.replicas {
        changes.push(format!(
            "it asks for {} replica(s) where preflight saw {}",
            now.replicas, original.replicas
        ));
    }
    match current_url(cluster, &original.target).await {
        Ok(url) if url != original.connection_url => changes.push(format!(
            "its database URL is {} where preflight saw {}",
            url.as_deref().map_or("(none)".into(), redact_url),
            original
                .connection_url
                .as_deref()
                .map_or("(none)".into(), redact_url)
        )),
        Ok(_) => {}
        Err(e) => return Some(format!("the controller's database URL cannot be read ({e})")),
    }
    if run.kind == RunKind::Migrate {
        match others_on_k8s(inner, &now).await {
            Ok(others) if !others.is_empty() => changes.push(format!(
                "{} now use(s) the k8s backend of this Kubernetes cluster",
                others.join(", ")
            )),
            Ok(_) => {}
            Err(e) => return Some(format!("the other controllers cannot be listed ({e})")),
        }
    }
    (!changes.is_empty()).then(|| changes.join("; "))
}

/// Other controllers that run on the `k8s` backend (there is one per Kubernetes cluster).
async fn others_on_k8s(
    inner: &Inner,
    this: &ControllerInfo,
) -> Result<Vec<String>, crate::cluster::ClusterError> {
    Ok(controller::discover(inner.cluster.as_ref())
        .await?
        .into_iter()
        .filter(|o| o.backend == Backend::K8s && (o.namespace != this.namespace || o.name != this.name))
        .map(|o| format!("{}/{}", o.namespace, o.name))
        .collect())
}
