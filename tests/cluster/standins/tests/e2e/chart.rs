//! The Piraeus v1 installation as the real chart makes it: the recorded `helm template piraeus-op
//! --namespace piraeus-datastore` of chart 1.10.8 with default values
//! (`tests/fixtures/piraeus-v1.10.8/rendered/default.yaml`), moved into a test's namespace and
//! created as `helm install` would: the pre-install hook (the passphrase Secret) first, then the
//! release's objects in Helm's order, each with the ownership metadata Helm adds. A test varies
//! it by patching the parsed objects ([`Chart::get_mut`]), never by a hand-written copy.
//!
//! Left out: the Helm test Jobs (`helm.sh/hook: test`, run only by `helm test`); the operator
//! Deployment (the operator stand-in runs as a process on this machine, with the admin's
//! kubeconfig); and the cluster-scoped ClusterRoles and ClusterRoleBindings. Those are shared by
//! every test's namespace, and what they grant (the CSI sidecars', the satellites' and the
//! operator's cluster-wide rights) is used by nothing that runs here: the k8s-backend rights of
//! the controller's ServiceAccount come from the project's own chart (suite.rs).

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
    PostParams,
};
use serde_json::{Value, json};

/// The recorded release's name and the namespace it was rendered for.
pub const RELEASE: &str = "piraeus-op";
const RENDERED_NS: &str = "piraeus-datastore";
/// The recording, relative to the repository.
pub const DEFAULT_YAML: &str = "tests/fixtures/piraeus-v1.10.8/rendered/default.yaml";
/// Label of the PersistentVolumes made for one namespace's etcd claims.
const PV_NAMESPACE_LABEL: &str = "e2e.linstor-migrator.io/namespace";

/// The chart's rendered objects, in the order of the recording.
pub struct Chart {
    pub objects: Vec<Value>,
}

fn hook(o: &Value) -> Option<&str> {
    o["metadata"]["annotations"]["helm.sh/hook"].as_str()
}

/// The ApiResource of an object (all kinds here have regular plurals).
pub fn api_resource(o: &Value) -> ApiResource {
    let api_version = o["apiVersion"].as_str().expect("an apiVersion");
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let kind = o["kind"].as_str().expect("a kind");
    ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind))
}

impl Chart {
    /// The default rendering, every namespaced object moved to `ns`: its `metadata.namespace`,
    /// the namespaces of RoleBinding subjects, and in-cluster DNS names (`*.piraeus-datastore.svc`).
    pub fn default_values(repo: &Path, ns: &str) -> Chart {
        let text = std::fs::read_to_string(repo.join(DEFAULT_YAML)).unwrap();
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text).expect("the rendered chart parses");
        let objects = docs
            .into_iter()
            .filter(Value::is_object)
            .map(|mut o| {
                move_to(&mut o, ns);
                o
            })
            .collect();
        Chart { objects }
    }

    /// The one object of `kind` named `name`.
    pub fn get(&self, kind: &str, name: &str) -> &Value {
        self.objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("the chart has no {kind} {name}"))
    }

    pub fn get_mut(&mut self, kind: &str, name: &str) -> &mut Value {
        self.objects
            .iter_mut()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("the chart has no {kind} {name}"))
    }

    /// What a test's installation creates (see the module comment), in `helm install`'s order:
    /// pre-install hooks, then the rest as rendered.
    pub fn installed(&self) -> Vec<&Value> {
        let wanted = |o: &&Value| {
            let kind = o["kind"].as_str().unwrap_or_default();
            hook(o) != Some("test")
                && !matches!(kind, "ClusterRole" | "ClusterRoleBinding")
                && !(kind == "Deployment" && o["metadata"]["name"] == format!("{RELEASE}-operator"))
        };
        let (hooks, rest): (Vec<&Value>, Vec<&Value>) = self
            .objects
            .iter()
            .filter(wanted)
            .partition(|o| hook(o).is_some());
        hooks.into_iter().chain(rest).collect()
    }

    /// Creates [`Chart::installed`] in `ns`, the release's objects with Helm's ownership
    /// metadata (`helm template` does not print it), and PersistentVolumes for the etcd
    /// StatefulSet's claims.
    pub async fn install(&self, client: &kube::Client, ns: &str, work: &Path) {
        for o in self.installed() {
            let mut o = o.clone();
            if hook(&o).is_none() {
                let meta = &mut o["metadata"];
                meta["labels"]["app.kubernetes.io/managed-by"] = json!("Helm");
                meta["annotations"]["meta.helm.sh/release-name"] = json!(RELEASE);
                meta["annotations"]["meta.helm.sh/release-namespace"] = json!(ns);
            }
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &api_resource(&o));
            let object: DynamicObject = serde_json::from_value(o.clone()).expect("a well-formed object");
            api.create(&PostParams::default(), &object)
                .await
                .unwrap_or_else(|e| panic!("creating {} {}: {e}", o["kind"], o["metadata"]["name"]));
        }
        let etcd = self.get("StatefulSet", &format!("{RELEASE}-etcd"));
        etcd_volumes(client, ns, etcd, work).await;
    }
}

fn move_to(o: &mut Value, ns: &str) {
    if o["metadata"]["namespace"].is_string() {
        o["metadata"]["namespace"] = json!(ns);
    }
    if o["kind"] == "RoleBinding"
        && let Some(subjects) = o["subjects"].as_array_mut()
    {
        for s in subjects.iter_mut().filter(|s| s["namespace"].is_string()) {
            s["namespace"] = json!(ns);
        }
    }
    rename_dns(o, &format!(".{RENDERED_NS}.svc"), &format!(".{ns}.svc"));
}

fn rename_dns(v: &mut Value, from: &str, to: &str) {
    match v {
        Value::String(s) if s.contains(from) => *s = s.replace(from, to),
        Value::Array(items) => items.iter_mut().for_each(|i| rename_dns(i, from, to)),
        Value::Object(map) => map.values_mut().for_each(|i| rename_dns(i, from, to)),
        _ => {}
    }
}

/// What a storage provisioner would do for the etcd StatefulSet's `volumeClaimTemplates`
/// (the control plane has none, and a pod with an unbound claim is never scheduled): one
/// PersistentVolume per replica, bound in advance to its claim `<template>-<set>-<i>`. KWOK
/// mounts nothing, so the hostPath is never used. The volumes of an earlier installation in
/// `ns` (released: their claims went with the namespace) are deleted first; a new one has a new
/// name, so nothing waits for that deletion.
async fn etcd_volumes(client: &kube::Client, ns: &str, set: &Value, work: &Path) {
    let pvs: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &api_resource(&json!({"apiVersion": "v1", "kind": "PersistentVolume"})),
    );
    let selector = format!("{PV_NAMESPACE_LABEL}={ns}");
    for old in pvs.list(&ListParams::default().labels(&selector)).await.unwrap() {
        let name = old.metadata.name.unwrap_or_default();
        let _ = pvs.delete(&name, &DeleteParams::default()).await;
    }
    let stamp = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis();
    let set_name = set["metadata"]["name"].as_str().unwrap();
    for template in set["spec"]["volumeClaimTemplates"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let claim = template["metadata"]["name"].as_str().unwrap();
        for i in 0..set["spec"]["replicas"].as_i64().unwrap_or(1) {
            let claim = format!("{claim}-{set_name}-{i}");
            let pv = json!({
                "apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": {"name": format!("e2e-{ns}-{claim}-{stamp}"), "labels": {PV_NAMESPACE_LABEL: ns}},
                "spec": {"capacity": {"storage": template["spec"]["resources"]["requests"]["storage"]},
                         "accessModes": template["spec"]["accessModes"],
                         "persistentVolumeReclaimPolicy": "Retain",
                         "claimRef": {"namespace": ns, "name": claim},
                         "hostPath": {"path": work.join(&claim)}},
            });
            let pv: DynamicObject = serde_json::from_value(pv).unwrap();
            pvs.create(&PostParams::default(), &pv).await.unwrap();
        }
    }
}

/// Removes the finalizers the chart and a v1 operator put on objects in `ns`, as a user must
/// before the namespace can go: the passphrase Secret's
/// `piraeus.linbit.com/protect-master-passphrase` (the chart's guard against losing the LUKS
/// key), and a v1 resource's operator finalizer (no operator runs once a test is over).
pub async fn release_finalizers(client: &kube::Client, ns: &str) {
    let kinds = [
        json!({"apiVersion": "v1", "kind": "Secret"}),
        json!({"apiVersion": "piraeus.linbit.com/v1", "kind": "LinstorController"}),
        json!({"apiVersion": "piraeus.linbit.com/v1", "kind": "LinstorSatelliteSet"}),
        json!({"apiVersion": "piraeus.linbit.com/v1", "kind": "LinstorCSIDriver"}),
    ];
    for kind in &kinds {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &api_resource(kind));
        let Ok(list) = api.list(&ListParams::default()).await else {
            continue;
        };
        for o in list.items.iter().filter(|o| o.metadata.finalizers.is_some()) {
            let _ = api
                .patch(
                    o.metadata.name.as_deref().unwrap_or_default(),
                    &PatchParams::default(),
                    &Patch::Merge(json!({"metadata": {"finalizers": null}})),
                )
                .await;
        }
    }
}
