//! The `LinstorCluster` from the LinstorController and the LinstorCSIDriver (REFERENCE.md §8):
//! properties, TLS and passphrase Secrets, a kept database URL, and patches of the controller and
//! CSI objects v2 creates. Every set value is recorded in the ledger.

use serde_json::{Map, Value, json};

use super::catalogue::Kind::{Controller as LC, CsiDriver as CSI};
use super::ledger::Ledger;
use super::patches::{self, CONTROLLER, CONTROLLER_CONFIG, CSI_CONTROLLER, CSI_NODE};
use super::v1::{V1Installation, V1Resource, is_set};
use crate::linstor::toml::Backend;

const DEFAULT_KUBELET: &str = "/var/lib/kubelet";
const CSI_PLUGIN_DIR: &str = "plugins/linstor.csi.linbit.com";

/// `http://<cr>.<ns>.svc:3370`, or the https one when the controller serves https: where v1's
/// satellites and CSI driver reach this installation's controller.
pub(super) fn expected_endpoint(inst: &V1Installation) -> String {
    let lc = &inst.controller;
    if lc.text("linstorHttpsControllerSecret").is_some() || lc.text("linstorHttpsClientSecret").is_some() {
        format!("https://{}.{}.svc:3371", lc.name, inst.namespace)
    } else {
        format!("http://{}.{}.svc:3370", lc.name, inst.namespace)
    }
}

/// The fields of `r` that say something, sorted by name. `enableTopology: false` says something
/// too: it turns off a default.
fn set_fields(r: &V1Resource) -> Vec<(&String, &Value)> {
    r.spec
        .iter()
        .filter(|(k, v)| is_set(v) || (k.as_str() == "enableTopology" && v == &&Value::Bool(false)))
        .collect()
}

fn with_prefix(v: &Value, prefixes: &[&str]) -> bool {
    v.as_str()
        .is_some_and(|s| prefixes.iter().any(|p| s.starts_with(p)))
}

pub(super) fn linstor_cluster(inst: &V1Installation, ledger: &mut Ledger) -> Value {
    let mut spec = Map::new();
    let mut patches = Vec::new();
    let mut api_tls = Map::new();
    controller(inst, ledger, &mut spec, &mut patches, &mut api_tls);
    match inst.csi_drivers.first() {
        Some(csi) => csi_driver(inst, csi, ledger, &mut patches, &mut api_tls),
        None => {
            // no LinstorCSIDriver: the chart ran with csi.enabled=false, so v2's CSI stays off too
            spec.insert("csiController".into(), json!({"enabled": false}));
            spec.insert("csiNode".into(), json!({"enabled": false}));
        }
    }
    if !api_tls.is_empty() {
        spec.insert("apiTLS".into(), Value::Object(api_tls));
    }
    if let Some(affinity) = satellite_nodes(inst) {
        spec.insert("nodeAffinity".into(), affinity);
    }
    if !patches.is_empty() {
        spec.insert("patches".into(), Value::Array(patches));
    }
    json!({
        "apiVersion": "piraeus.io/v1",
        "kind": "LinstorCluster",
        "metadata": {"name": "linstorcluster"},
        "spec": spec,
    })
}

fn controller(
    inst: &V1Installation,
    ledger: &mut Ledger,
    spec: &mut Map<String, Value>,
    patches: &mut Vec<Value>,
    api_tls: &mut Map<String, Value>,
) {
    let lc = &inst.controller;
    let name = lc.name.as_str();
    let on_k8s = lc.text("dbConnectionURL") == Some("k8s") || inst.backend == Backend::K8s;
    for (field, v) in set_fields(lc) {
        let f = field.as_str();
        match f {
            "additionalEnv" => patches.push(patches::container(
                CONTROLLER,
                patches::CONTROLLER_CONTAINER,
                false,
                json!({"env": v}),
            )),
            "additionalProperties" => {
                let props: Vec<Value> = v
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, val)| {
                        let text = val.as_str().map_or_else(|| val.to_string(), str::to_string);
                        json!({"name": k, "value": text})
                    })
                    .collect();
                spec.insert("properties".into(), Value::Array(props));
            }
            "affinity" => patches.push(patches::pod_spec(CONTROLLER, json!({"affinity": v}))),
            "extraVolumes" => patches.push(patches::pod_spec(CONTROLLER, json!({"volumes": v}))),
            "sidecars" => patches.push(patches::pod_spec(CONTROLLER, json!({"containers": v}))),
            "tolerations" => patches.push(patches::tolerations(
                CONTROLLER,
                v.as_array().map(Vec::as_slice).unwrap_or_default(),
            )),
            "linstorHttpsClientSecret" => {
                api_tls.insert("clientSecretName".into(), v.clone());
            }
            "linstorHttpsControllerSecret" => {
                api_tls.insert("apiSecretName".into(), v.clone());
            }
            "luksSecret" => {
                spec.insert("linstorPassphraseSecret".into(), v.clone());
            }
            "sslSecret" => {
                spec.insert("internalTLS".into(), json!({"secretName": v}));
            }
            "dbConnectionURL" if v == "k8s" => {
                ledger.v2_default(LC, name, f, v, "k8s is v2's database backend");
                continue;
            }
            "dbConnectionURL" => {
                let toml = format!("[db]\n  connection_url = {v}\n");
                patches.push(patches::strategic(
                    CONTROLLER_CONFIG,
                    json!({"data": {"linstor.toml": toml}}),
                ));
                ledger.converted_as(
                    LC,
                    name,
                    f,
                    v,
                    "LinstorCluster spec.patches: ConfigMap linstor-controller-config keeps this URL, because the \
                     database is not on k8s yet (migrate it first: then this patch goes away)"
                        .into(),
                );
                continue;
            }
            "dbCertSecret" | "dbUseClientCert" if on_k8s => {
                ledger.v2_default(
                    LC,
                    name,
                    f,
                    v,
                    "unused: the k8s backend has no database certificates",
                );
                continue;
            }
            "controllerImage" if with_prefix(v, &["quay.io/piraeusdatastore/piraeus-server:"]) => {
                ledger.v2_default(
                    LC,
                    name,
                    f,
                    v,
                    "v2 runs the piraeus-server image of its release (see the LINSTOR version check)",
                );
                continue;
            }
            "imagePullPolicy" if v == "IfNotPresent" => {
                ledger.v2_default(LC, name, f, v, "the default pull policy for tagged images");
                continue;
            }
            "logLevel" if v == "info" => {
                ledger.v2_default(LC, name, f, v, "LINSTOR's default log level");
                continue;
            }
            "replicas" if v == 1 => {
                ledger.v2_default(LC, name, f, v, "v2 runs one controller");
                continue;
            }
            _ => {
                ledger.not_converted(LC, name, f, v);
                continue;
            }
        }
        ledger.converted(LC, name, f, v);
    }
}

fn csi_driver(
    inst: &V1Installation,
    csi: &V1Resource,
    ledger: &mut Ledger,
    patches: &mut Vec<Value>,
    api_tls: &mut Map<String, Value>,
) {
    let name = csi.name.as_str();
    let images = ["registry.k8s.io/sig-storage/", "k8s.gcr.io/sig-storage/"];
    for (field, v) in set_fields(csi) {
        let f = field.as_str();
        match f {
            "controllerAffinity" => patches.push(patches::pod_spec(CSI_CONTROLLER, json!({"affinity": v}))),
            "controllerStrategy" => patches.push(patches::strategic(
                CSI_CONTROLLER,
                json!({"spec": {"strategy": v}}),
            )),
            "controllerTolerations" => patches.push(patches::tolerations(
                CSI_CONTROLLER,
                v.as_array().map(Vec::as_slice).unwrap_or_default(),
            )),
            "extraVolumes" => patches.push(patches::pod_spec(CSI_CONTROLLER, json!({"volumes": v}))),
            "sidecars" => patches.push(patches::pod_spec(CSI_CONTROLLER, json!({"containers": v}))),
            "nodeAffinity" => patches.push(patches::pod_spec(CSI_NODE, json!({"affinity": v}))),
            "nodeExtraVolumes" => patches.push(patches::pod_spec(CSI_NODE, json!({"volumes": v}))),
            "nodeSidecars" => patches.push(patches::pod_spec(CSI_NODE, json!({"containers": v}))),
            "nodeTolerations" => patches.push(patches::tolerations(
                CSI_NODE,
                v.as_array().map(Vec::as_slice).unwrap_or_default(),
            )),
            "linstorHttpsClientSecret" => {
                api_tls.insert("csiControllerSecretName".into(), v.clone());
                api_tls.insert("csiNodeSecretName".into(), v.clone());
            }
            "controllerReplicas" if v == 1 => {
                ledger.v2_default(CSI, name, f, v, "v2 runs one CSI controller replica");
                continue;
            }
            "controllerReplicas" => patches.push(patches::strategic(
                CSI_CONTROLLER,
                json!({"spec": {"replicas": v}}),
            )),
            "kubeletPath" if v == DEFAULT_KUBELET => {
                ledger.v2_default(CSI, name, f, v, "v2's CSI node plugin uses /var/lib/kubelet");
                continue;
            }
            "kubeletPath" => patches.push(kubelet_path(v.as_str().unwrap_or(DEFAULT_KUBELET))),
            "controllerEndpoint" if v == expected_endpoint(inst).as_str() => {
                ledger.v2_default(
                    CSI,
                    name,
                    f,
                    v,
                    "this installation's controller, which v2 replaces",
                );
                continue;
            }
            "csiAttacherImage"
            | "csiLivenessProbeImage"
            | "csiNodeDriverRegistrarImage"
            | "csiProvisionerImage"
            | "csiResizerImage"
            | "csiSnapshotterImage"
                if with_prefix(v, &images) =>
            {
                ledger.v2_default(CSI, name, f, v, "v2 runs the CSI sidecar images of its release");
                continue;
            }
            "linstorPluginImage" if with_prefix(v, &["quay.io/piraeusdatastore/piraeus-csi:"]) => {
                ledger.v2_default(CSI, name, f, v, "v2 runs the LINSTOR CSI image of its release");
                continue;
            }
            "csiAttacherWorkerThreads"
            | "csiProvisionerWorkerThreads"
            | "csiResizerWorkerThreads"
            | "csiSnapshotterWorkerThreads"
                if v == 10 =>
            {
                ledger.v2_default(CSI, name, f, v, "the sidecars' default");
                continue;
            }
            "csiControllerServiceAccountName" if v == "csi-controller" => {
                ledger.v2_default(CSI, name, f, v, "v2 creates its own ServiceAccounts");
                continue;
            }
            "csiNodeServiceAccountName" if v == "csi-node" => {
                ledger.v2_default(CSI, name, f, v, "v2 creates its own ServiceAccounts");
                continue;
            }
            "enableTopology" if v == true => {
                ledger.v2_default(CSI, name, f, v, "v2 always reports topology");
                continue;
            }
            "imagePullPolicy" if v == "IfNotPresent" => {
                ledger.v2_default(CSI, name, f, v, "the default pull policy for tagged images");
                continue;
            }
            "logLevel" if v == "info" => {
                ledger.v2_default(CSI, name, f, v, "the CSI driver's default log level");
                continue;
            }
            _ => {
                ledger.not_converted(CSI, name, f, v);
                continue;
            }
        }
        ledger.converted(CSI, name, f, v);
    }
}

/// The CSI node plugin with another kubelet directory: its host paths, the mount of the publish
/// directory (mount propagation needs the same path inside and outside), and the registration
/// path the kubelet is told (an argument of the registrar in v2.6).
fn kubelet_path(path: &str) -> Value {
    let path = path.trim_end_matches('/');
    let registration = format!("{path}/{CSI_PLUGIN_DIR}/csi.sock");
    patches::pod_spec(
        CSI_NODE,
        json!({
            "volumes": [
                {"name": "publish-dir", "hostPath": {"path": path, "type": "Directory"}},
                {"name": "registration-dir", "hostPath": {"path": format!("{path}/plugins_registry"), "type": "Directory"}},
                {"name": "plugin-dir", "hostPath": {"path": format!("{path}/{CSI_PLUGIN_DIR}"), "type": "DirectoryOrCreate"}},
            ],
            "containers": [
                {"name": patches::CSI_CONTAINER, "volumeMounts": [
                    {"$patch": "delete", "mountPath": DEFAULT_KUBELET},
                    {"name": "publish-dir", "mountPath": path, "mountPropagation": "Bidirectional"},
                ]},
                {"name": patches::CSI_REGISTRAR, "args": [
                    "--v=5",
                    "--csi-address=/csi/csi.sock",
                    format!("--kubelet-registration-path={registration}"),
                    "--health-port=9809",
                ]},
            ],
        }),
    )
}

/// Where v1 ran satellites, as LinstorCluster `spec.nodeAffinity`: the union of the sets' required
/// node affinities, when every set has one (one set without runs satellites everywhere).
fn satellite_nodes(inst: &V1Installation) -> Option<Value> {
    let mut terms = Vec::new();
    for set in &inst.satellite_sets {
        let required = set
            .field("affinity")?
            .pointer("/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms")?
            .as_array()
            .filter(|t| !t.is_empty())?;
        terms.extend(required.iter().cloned());
    }
    (!terms.is_empty()).then(|| json!({"nodeSelectorTerms": terms}))
}
