//! The standard installation (REFERENCE.md §2): Helm release `piraeus-op` of Piraeus Operator
//! v1 on etcd in `piraeus-datastore`, and a plain `linstor-controller` Deployment on its own
//! etcd in `storage`. Objects are written as the API server would return them.

use std::io::Write;

use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use linstor_fake::Release;

use super::operator::render_operator_toml;
use super::state::{EtcdCluster, Origin, State, key};
use crate::linstor::export::ExportDocument;

/// The image of the Piraeus-managed controller users moved to the last LINSTOR with etcd.
pub(crate) const CR_IMAGE: &str = "quay.io/piraeusdatastore/piraeus-server:v1.33.3";
/// The Piraeus v1.10.8 chart's default controller image
/// (`tests/fixtures/piraeus-v1.10.8/rendered/default.yaml`).
pub(crate) const CHART_DEFAULT_IMAGE: &str = "quay.io/piraeusdatastore/piraeus-server:v1.25.1";
/// The image of the plain controller.
pub(crate) const PLAIN_IMAGE: &str = "quay.io/piraeusdatastore/piraeus-server:v1.32.3";
pub(crate) const CR_ETCD_URL: &str = "etcd://piraeus-op-etcd:2379";
pub(crate) const PLAIN_ETCD_URL: &str = "etcd://etcd.storage.svc:2379";
const NS: &str = "piraeus-datastore";
/// The namespace of the installation on the chart's default image.
pub(crate) const CHART_DEFAULT_NS: &str = "piraeus";
const PLAIN_NS: &str = "storage";

/// Deserializes a literal object; the literals below are tested to deserialize.
fn obj<T: DeserializeOwned + Default>(v: Value) -> T {
    serde_json::from_value(v).unwrap_or_default()
}

fn meta(ns: &str, name: &str, uid: &str) -> Value {
    json!({"namespace": ns, "name": name, "uid": uid, "resourceVersion": "1", "generation": 1,
           "creationTimestamp": "2024-05-14T09:12:31Z"})
}

fn with(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    base
}

fn helm_labels() -> Value {
    json!({"app.kubernetes.io/managed-by": "Helm", "helm.sh/chart": "piraeus-1.10.8", "release": "piraeus-op"})
}

fn owner(cr: &str, uid: &str) -> Value {
    json!([{"apiVersion": "piraeus.linbit.com/v1", "kind": "LinstorController", "name": cr, "uid": uid,
            "controller": true, "blockOwnerDeletion": true}])
}

/// The controller container and pod spec as Piraeus Operator v1.10.8 renders them.
fn controller_pod_spec(image: &str, config_map: &str, election_lock: &str, service: &str) -> Value {
    let field = |path: &str| json!({"fieldRef": {"apiVersion": "v1", "fieldPath": path}});
    json!({
        "serviceAccountName": "linstor-controller",
        "priorityClassName": "system-cluster-critical",
        "securityContext": {"supplementalGroups": [1000], "fsGroup": 1000},
        "imagePullSecrets": [{"name": "piraeus-regcred"}],
        "tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}],
        "containers": [{
            "name": "linstor-controller",
            "image": image,
            "imagePullPolicy": "IfNotPresent",
            "args": ["startController"],
            "env": [
                {"name": "JAVA_OPTS", "value": "-Djdk.tls.acknowledgeCloseNotify=true"},
                {"name": "K8S_AWAIT_ELECTION_ENABLED", "value": "1"},
                {"name": "K8S_AWAIT_ELECTION_NAME", "value": "linstor-controller"},
                {"name": "K8S_AWAIT_ELECTION_LOCK_NAME", "value": election_lock},
                {"name": "K8S_AWAIT_ELECTION_LOCK_NAMESPACE", "valueFrom": field("metadata.namespace")},
                {"name": "K8S_AWAIT_ELECTION_IDENTITY", "valueFrom": field("metadata.name")},
                {"name": "K8S_AWAIT_ELECTION_POD_IP", "valueFrom": field("status.podIP")},
                {"name": "K8S_AWAIT_ELECTION_SERVICE_NAME", "value": service},
                {"name": "K8S_AWAIT_ELECTION_SERVICE_NAMESPACE", "valueFrom": field("metadata.namespace")},
                {"name": "K8S_AWAIT_ELECTION_SERVICE_PORTS_JSON", "value": "[{\"name\":\"rest-api\",\"port\":3370}]"},
                {"name": "K8S_AWAIT_ELECTION_STATUS_ENDPOINT", "value": ":9999"},
                {"name": "MASTER_PASSPHRASE", "valueFrom": {"secretKeyRef": {"name": "piraeus-op-passphrase", "key": "MASTER_PASSPHRASE"}}}
            ],
            "ports": [{"name": "rest-api", "containerPort": 3370, "protocol": "TCP"}],
            "volumeMounts": [{"name": "linstor-conf", "mountPath": "/etc/linstor"}],
            "livenessProbe": {"httpGet": {"path": "/", "port": 9999, "scheme": "HTTP"}},
            "readinessProbe": {"httpGet": {"path": "/", "port": 3370, "scheme": "HTTP"},
                               "initialDelaySeconds": 5, "periodSeconds": 5, "failureThreshold": 10},
            "resources": {"requests": {"cpu": "50m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
            "securityContext": {"allowPrivilegeEscalation": false}
        }],
        "volumes": [{"name": "linstor-conf", "configMap": {"name": config_map, "defaultMode": 420}}]
    })
}

fn client_conf(ns: &str, service: &str) -> String {
    format!("[global]\ncontrollers = http://{service}.{ns}.svc:3370\n")
}

/// The Helm release Secret: data `release` is base64 text of gzip of the release JSON.
fn helm_release_secret(ns: &str) -> Value {
    let release = json!({
        "name": "piraeus-op", "namespace": ns, "version": 1,
        "info": {"status": "deployed", "first_deployed": "2024-05-14T09:12:30Z",
                 "last_deployed": "2024-05-14T09:12:30Z", "description": "Install complete"},
        "chart": {"metadata": {"name": "piraeus", "version": "1.10.8", "appVersion": "1.10.8", "apiVersion": "v2",
                               "description": "LINSTOR Kubernetes Operator"}},
        "config": {"operator": {"controller": {"dbConnectionURL": CR_ETCD_URL}}, "etcd": {"enabled": true}},
        "manifest": "---\n# Source: piraeus/templates/operator-controller.yaml\napiVersion: piraeus.linbit.com/v1\nkind: LinstorController\n"
    });
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let compressed = gz
        .write_all(release.to_string().as_bytes())
        .and_then(|()| gz.finish())
        .unwrap_or_default();
    let b64 = base64::engine::general_purpose::STANDARD;
    // the Secret's own data encoding on top of Helm's base64 text
    let release_text = b64.encode(compressed);
    json!({
        "metadata": with(meta(ns, "sh.helm.release.v1.piraeus-op.v1", &uid(ns, "sh.helm.release.v1.piraeus-op.v1")),
                         json!({"labels": {"owner": "helm", "name": "piraeus-op", "version": "1", "status": "deployed"}})),
        "type": "helm.sh/release.v1",
        "data": {"release": b64.encode(release_text)}
    })
}

fn stateful_set(ns: &str, name: &str, uid: &str) -> Value {
    json!({
        "metadata": with(meta(ns, name, uid), json!({"labels": {"app.kubernetes.io/name": "etcd"}})),
        "spec": {"replicas": 1, "serviceName": name,
                 "selector": {"matchLabels": {"app.kubernetes.io/name": "etcd", "app.kubernetes.io/instance": name}},
                 "template": {"metadata": {"labels": {"app.kubernetes.io/name": "etcd", "app.kubernetes.io/instance": name}},
                              "spec": {"containers": [{"name": "etcd", "image": "quay.io/coreos/etcd:v3.4.15",
                                                       "ports": [{"containerPort": 2379}, {"containerPort": 2380}]}]}}}
    })
}

/// A uid for an object of the installation, the same every time.
fn uid(ns: &str, name: &str) -> String {
    use sha2::Digest;
    let h = sha2::Sha256::digest(format!("{ns}/{name}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    uuid::Builder::from_random_bytes(b).into_uuid().to_string()
}

/// One Helm release `piraeus-op` of Piraeus Operator v1.10.8 on etcd in `ns`, its controller on
/// `image` and its etcd holding `data`.
fn piraeus_release(st: &mut State, ns: &str, image: &str, data: ExportDocument) {
    let cr_uid = uid(ns, "piraeus-op-cs");
    let cr = json!({
        "apiVersion": "piraeus.linbit.com/v1", "kind": "LinstorController",
        "metadata": with(meta(ns, "piraeus-op-cs", &cr_uid),
                         json!({"labels": helm_labels(), "annotations": {"meta.helm.sh/release-name": "piraeus-op",
                                                                        "meta.helm.sh/release-namespace": ns}})),
        // the spec as the v1.10.8 chart renders it (rendered/default.yaml): unset strings are
        // `""`, `dbCertSecret` is null; the image is the chart's default or the one users set
        "spec": {"priorityClassName": "", "dbConnectionURL": CR_ETCD_URL, "luksSecret": "piraeus-op-passphrase",
                 "sslSecret": "", "dbCertSecret": null, "dbUseClientCert": false, "drbdRepoCred": "",
                 "controllerImage": image, "imagePullPolicy": "IfNotPresent",
                 "linstorHttpsControllerSecret": "", "linstorHttpsClientSecret": "",
                 "tolerations": [{"effect": "NoSchedule", "key": "node-role.kubernetes.io/master", "operator": "Exists"},
                                 {"effect": "NoSchedule", "key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}],
                 "resources": {}, "replicas": 1},
        "status": {"errors": [], "ControllerStatus": {"nodeName": "k8s-control-1", "registeredOnController": true}}
    });
    if let Ok(cr) = serde_json::from_value(cr) {
        st.crs.insert(key(ns, "piraeus-op-cs"), cr);
    }

    let labels = json!({"app.kubernetes.io/name": "piraeus-controller", "app.kubernetes.io/instance": "piraeus-op-cs"});
    let deployment = json!({
        "metadata": with(meta(ns, "piraeus-op-cs-controller", &uid(ns, "piraeus-op-cs-controller")),
                         json!({"labels": labels, "ownerReferences": owner("piraeus-op-cs", &cr_uid)})),
        "spec": {"replicas": 1, "strategy": {"type": "Recreate"}, "revisionHistoryLimit": 10,
                 "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels,
                                           "annotations": {"kubectl.kubernetes.io/default-container": "linstor-controller"}},
                              "spec": controller_pod_spec(image, "piraeus-op-cs-controller-config", "piraeus-op-cs", "piraeus-op-cs")}}
    });
    st.deployments
        .insert(key(ns, "piraeus-op-cs-controller"), obj(deployment));
    let operator = json!({
        "metadata": with(meta(ns, "piraeus-op-operator", &uid(ns, "piraeus-op-operator")), json!({"labels": helm_labels()})),
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": "piraeus-op-operator"}},
                 "template": {"metadata": {"labels": {"app.kubernetes.io/name": "piraeus-op-operator"}},
                              "spec": {"serviceAccountName": "piraeus-op",
                                       "containers": [{"name": "piraeus-operator",
                                                       "image": "quay.io/piraeusdatastore/piraeus-operator:v1.10.8"}]}}}
    });
    st.deployments
        .insert(key(ns, "piraeus-op-operator"), obj(operator));

    let cm = json!({
        "metadata": with(meta(ns, "piraeus-op-cs-controller-config", &uid(ns, "piraeus-op-cs-controller-config")),
                         json!({"labels": labels, "ownerReferences": owner("piraeus-op-cs", &cr_uid)})),
        "data": {"linstor.toml": render_operator_toml(CR_ETCD_URL), "linstor-client.conf": client_conf(ns, "piraeus-op-cs")}
    });
    st.config_maps
        .insert(key(ns, "piraeus-op-cs-controller-config"), obj(cm));
    st.installed_config_maps
        .insert(key(ns, "piraeus-op-cs-controller-config"));
    let svc = json!({
        "metadata": with(meta(ns, "piraeus-op-cs", &uid(ns, "svc/piraeus-op-cs")),
                         json!({"labels": labels, "ownerReferences": owner("piraeus-op-cs", &cr_uid)})),
        "spec": {"type": "ClusterIP", "clusterIP": "10.96.112.41",
                 "ports": [{"name": "rest-api", "port": 3370, "targetPort": 3370, "protocol": "TCP"}]}
    });
    st.services.insert(key(ns, "piraeus-op-cs"), obj(svc));
    st.stateful_sets.insert(
        key(ns, "piraeus-op-etcd"),
        obj(stateful_set(ns, "piraeus-op-etcd", &uid(ns, "piraeus-op-etcd"))),
    );
    let passphrase = base64::engine::general_purpose::STANDARD.encode("not-a-real-passphrase-3f9a");
    st.secrets.insert(
        key(ns, "piraeus-op-passphrase"),
        obj(
            json!({"metadata": meta(ns, "piraeus-op-passphrase", &uid(ns, "piraeus-op-passphrase")),
                   "type": "Opaque", "data": {"MASTER_PASSPHRASE": passphrase}}),
        ),
    );
    st.secrets.insert(
        key(ns, "sh.helm.release.v1.piraeus-op.v1"),
        obj(helm_release_secret(ns)),
    );
    for node in super::names::CR_NODES {
        let name = format!("piraeus-op-ns-node-{}", &super::names::short_hash(node)[..5]);
        st.add_static_pod(
            ns,
            &name,
            json!({"app.kubernetes.io/name": "piraeus-node", "app.kubernetes.io/instance": "piraeus-op-ns"}),
            node,
            image,
        );
    }
    st.etcd.insert(
        format!("{CR_ETCD_URL}#{ns}"),
        EtcdCluster {
            namespace: ns.into(),
            stateful_set: "piraeus-op-etcd".into(),
            controllers: vec!["piraeus-op-cs".into()],
            data,
        },
    );
}

/// Adds the standard installation to `st`; pods are created by the simulated controllers.
pub(crate) fn standard(st: &mut State) {
    piraeus_release(st, NS, CR_IMAGE, linstor_fake::dataset::piraeus(Release::V1_33_3));
    piraeus_release(
        st,
        CHART_DEFAULT_NS,
        CHART_DEFAULT_IMAGE,
        linstor_fake::dataset::piraeus(Release::CHART_DEFAULT),
    );
    let passphrase = base64::engine::general_purpose::STANDARD.encode("not-a-real-passphrase-3f9a");

    // the plain controller: a Deployment nobody owns, with its own ConfigMap and etcd
    let plain_labels = json!({"app": "linstor-controller"});
    let plain = json!({
        "metadata": with(meta(PLAIN_NS, "linstor-controller", "2d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f6a"), json!({"labels": plain_labels})),
        "spec": {"replicas": 1, "strategy": {"type": "Recreate"}, "selector": {"matchLabels": plain_labels},
                 "template": {"metadata": {"labels": plain_labels},
                              "spec": controller_pod_spec(PLAIN_IMAGE, "linstor-controller-config", "linstor-controller", "linstor-controller")}}
    });
    st.deployments
        .insert(key(PLAIN_NS, "linstor-controller"), obj(plain));
    let plain_cm = json!({
        "metadata": meta(PLAIN_NS, "linstor-controller-config", "4f5a6b7c-8d9e-4f0a-8b1c-2d3e4f5a6b7c"),
        "data": {"linstor.toml": format!("[db]\nconnection_url = \"{PLAIN_ETCD_URL}\"\n\n[http]\nport = 3370\n"),
                 "linstor-client.conf": client_conf(PLAIN_NS, "linstor-controller")}
    });
    st.config_maps
        .insert(key(PLAIN_NS, "linstor-controller-config"), obj(plain_cm));
    st.installed_config_maps
        .insert(key(PLAIN_NS, "linstor-controller-config"));
    let plain_svc = json!({
        "metadata": meta(PLAIN_NS, "linstor-controller", "7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d"),
        "spec": {"selector": plain_labels, "ports": [{"name": "rest-api", "port": 3370, "targetPort": 3370}]}
    });
    st.services
        .insert(key(PLAIN_NS, "linstor-controller"), obj(plain_svc));
    st.stateful_sets.insert(
        key(PLAIN_NS, "etcd"),
        obj(stateful_set(
            PLAIN_NS,
            "etcd",
            "1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e",
        )),
    );
    st.secrets.insert(
        key(PLAIN_NS, "piraeus-op-passphrase"),
        obj(json!({"metadata": meta(PLAIN_NS, "piraeus-op-passphrase", "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f"),
                   "type": "Opaque", "data": {"MASTER_PASSPHRASE": passphrase}})),
    );
    st.etcd.insert(
        PLAIN_ETCD_URL.into(),
        EtcdCluster {
            namespace: PLAIN_NS.into(),
            stateful_set: "etcd".into(),
            controllers: vec!["linstor-controller".into()],
            data: linstor_fake::dataset::plain(),
        },
    );
    st.reconcile_workloads();
}

impl State {
    fn add_static_pod(&mut self, ns: &str, name: &str, labels: Value, node: &str, image: &str) {
        let pod = json!({
            "metadata": with(meta(ns, name, &format!("00000000-0000-4000-8000-{:012x}", self.next_seq())), json!({"labels": labels})),
            "spec": {"nodeName": node, "containers": [{"name": "linstor-satellite", "image": image}]},
        });
        let uid = self.next_seq();
        self.insert_pod(obj(pod), uid, Origin::Static);
        let k = key(ns, name);
        if let Some(p) = self.pods.get_mut(&k) {
            super::operator::mark_running(p);
        }
    }
}
