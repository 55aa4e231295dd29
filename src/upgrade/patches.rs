//! Kustomize patches of the objects Piraeus Operator v2 creates (`spec.patches` of LinstorCluster
//! and LinstorSatelliteConfiguration): the v2 object names, v2.6's default tolerations (a patch of
//! a list replaces the list, so v1's tolerations are added to v2's own), and the patch entries.

use serde_json::{Value, json};

/// An object the v2 operator creates, as a patch target.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub name: &'static str,
    /// Its tolerations as v2.6 renders them (`pkg/resources/...` of piraeus-operator v2.6).
    default_tolerations: fn() -> Vec<Value>,
}

fn drbd_taints() -> Vec<Value> {
    vec![
        json!({"effect": "NoSchedule", "key": "drbd.linbit.com/lost-quorum"}),
        json!({"effect": "NoSchedule", "key": "drbd.linbit.com/force-io-error"}),
    ]
}

pub const CONTROLLER: Target = Target {
    api_version: "apps/v1",
    kind: "Deployment",
    name: "linstor-controller",
    default_tolerations: || {
        let mut t = vec![
            json!({"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists", "tolerationSeconds": 30}),
            json!({"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists", "tolerationSeconds": 30}),
        ];
        t.extend(drbd_taints());
        t
    },
};

pub const CONTROLLER_CONFIG: Target = Target {
    api_version: "v1",
    kind: "ConfigMap",
    name: "linstor-controller-config",
    default_tolerations: Vec::new,
};

pub const CSI_CONTROLLER: Target = Target {
    api_version: "apps/v1",
    kind: "Deployment",
    name: "linstor-csi-controller",
    default_tolerations: drbd_taints,
};

pub const CSI_NODE: Target = Target {
    api_version: "apps/v1",
    kind: "DaemonSet",
    name: "linstor-csi-node",
    default_tolerations: Vec::new,
};

pub const SATELLITE: Target = Target {
    api_version: "apps/v1",
    kind: "DaemonSet",
    name: "linstor-satellite",
    default_tolerations: || {
        let mut t = vec![
            json!({"effect": "NoSchedule", "key": "node-role.kubernetes.io/master"}),
            json!({"effect": "NoSchedule", "key": "node-role.kubernetes.io/control-plane"}),
        ];
        t.extend(drbd_taints());
        t
    },
};

/// The main container of each pod v2 runs.
pub const CONTROLLER_CONTAINER: &str = "linstor-controller";
pub const SATELLITE_CONTAINER: &str = "linstor-satellite";
pub const MODULE_LOADER: &str = "drbd-module-loader";
pub const CSI_CONTAINER: &str = "linstor-csi";
pub const CSI_REGISTRAR: &str = "csi-node-driver-registrar";

/// A strategic merge patch of `target` whose body is `fields` (`spec`, `data`, ...) next to the
/// object's identity, as kustomize wants it.
pub fn strategic(target: Target, fields: Value) -> Value {
    let mut object = json!({
        "apiVersion": target.api_version,
        "kind": target.kind,
        "metadata": {"name": target.name},
    });
    if let (Some(o), Some(f)) = (object.as_object_mut(), fields.as_object()) {
        for (k, v) in f {
            o.insert(k.clone(), v.clone());
        }
    }
    entry(target, &object)
}

/// A patch of the pod template's spec.
pub fn pod_spec(target: Target, pod_spec: Value) -> Value {
    strategic(target, json!({"spec": {"template": {"spec": pod_spec}}}))
}

/// A patch of one container (merged by name; `init` for an init container).
pub fn container(target: Target, name: &str, init: bool, fields: Value) -> Value {
    let mut c = json!({"name": name});
    if let (Some(o), Some(f)) = (c.as_object_mut(), fields.as_object()) {
        for (k, v) in f {
            o.insert(k.clone(), v.clone());
        }
    }
    let list = if init { "initContainers" } else { "containers" };
    pod_spec(target, json!({ list: [c] }))
}

/// The tolerations of `target` after adding `extra` to v2's own (a strategic merge patch replaces
/// the whole list: v2's tolerations must be in it).
pub fn tolerations(target: Target, extra: &[Value]) -> Value {
    let mut all = (target.default_tolerations)();
    for t in extra {
        if !all.contains(t) {
            all.push(t.clone());
        }
    }
    pod_spec(target, json!({"tolerations": all}))
}

/// `{target: {kind, name}, patch: <YAML>}`.
fn entry(target: Target, object: &Value) -> Value {
    json!({
        "target": {"kind": target.kind, "name": target.name},
        "patch": super::render::yaml(object),
    })
}
