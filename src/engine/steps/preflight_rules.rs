//! The Kubernetes rights step 1 asks about: this service's own (for the kind of run it checks
//! for) and the controller ServiceAccount's for the `k8s` backend, and the hint that says how to
//! grant a missing one.

use crate::cluster::AccessQuestion;
use crate::cluster::controller::{ControllerInfo, ControllerKind};
use crate::model::RunKind;

/// The rights the `k8s` backend needs (REFERENCE.md §2; `deletecollection` and `watch` were
/// missing before chart 1.10.6, piraeus-operator#521).
pub fn k8s_backend_rules() -> Vec<AccessQuestion> {
    let mut q = Vec::new();
    for verb in ["get", "list", "watch", "create", "update", "patch", "delete"] {
        q.push(AccessQuestion::new(
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            verb,
            "",
        ));
    }
    for verb in [
        "get",
        "list",
        "watch",
        "create",
        "update",
        "patch",
        "delete",
        "deletecollection",
    ] {
        q.push(AccessQuestion::new("internal.linstor.linbit.com", "*", verb, ""));
    }
    q
}

/// The rights this service needs in the controller's namespace for a run of `kind`.
pub fn own_rules(kind: RunKind, c: &ControllerInfo) -> Vec<AccessQuestion> {
    let ns = c.namespace.as_str();
    let mut q = vec![
        AccessQuestion::new("apps", "deployments", "get", ns),
        AccessQuestion::new("", "configmaps", "get", ns),
        AccessQuestion::new("", "pods", "list", ns),
    ];
    if kind == RunKind::Preflight {
        return q;
    }
    for verb in ["create", "delete", "get", "watch"] {
        q.push(AccessQuestion::new("", "pods", verb, ns));
    }
    // before Kubernetes 1.35 a websocket exec is authorized as `get` (kubernetes#134577), from
    // 1.35 on as `create`: ask for both
    q.push(AccessQuestion::new("", "pods/exec", "get", ns));
    q.push(AccessQuestion::new("", "pods/exec", "create", ns));
    for verb in ["create", "update", "patch", "delete"] {
        q.push(AccessQuestion::new("", "configmaps", verb, ns));
    }
    // the k8s backend's objects: read by the verification, deleted when a backend holds data
    // before an import, written by the delta import (cluster-scoped)
    if kind == RunKind::Migrate {
        for verb in ["list", "create", "patch", "delete"] {
            q.push(AccessQuestion::new(
                crate::linstor::schema::K8S_GROUP,
                "*",
                verb,
                "",
            ));
        }
    }
    // the etcd StatefulSet's replicas (recorded, and restored before a rollback starts the controller)
    for verb in ["get", "list", "watch"] {
        q.push(AccessQuestion::new("apps", "statefulsets", verb, ns));
    }
    // the per-controller Lease that keeps a second linstor-migrator (a CLI, another replica) off
    for verb in ["get", "create", "update", "delete"] {
        q.push(AccessQuestion::new("coordination.k8s.io", "leases", verb, ns));
    }
    match c.kind {
        ControllerKind::LinstorController => {
            q.push(AccessQuestion::new(
                "piraeus.linbit.com",
                "linstorcontrollers",
                "patch",
                ns,
            ));
        }
        ControllerKind::Deployment => {
            q.push(AccessQuestion::new("apps", "deployments/scale", "patch", ns));
        }
    }
    q
}

pub(super) fn grant_hint(q: &AccessQuestion, subject: &str) -> String {
    let group = if q.group.is_empty() {
        "core".to_string()
    } else {
        q.group.clone()
    };
    let scope = if q.namespace.is_empty() {
        "cluster-wide".to_string()
    } else {
        format!("in namespace {}", q.namespace)
    };
    format!(
        "{subject} may not {} {} ({group}) {scope}; grant it with a (Cluster)Role rule \
         {{apiGroups: [\"{}\"], resources: [\"{}\"], verbs: [\"{}\"]}} bound to {subject}",
        q.verb, q.resource, q.group, q.resource, q.verb
    )
}
