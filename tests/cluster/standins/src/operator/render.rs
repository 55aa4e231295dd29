//! What Piraeus Operator v1.10.8 renders for a `LinstorController` (REFERENCE.md §2): the
//! Deployment `<cr>-controller`, the ConfigMap `<cr>-controller-config` and the selector-less
//! Service `<cr>`, each with a controller ownerReference to the CR. The pod takes the CR's
//! image, pull policy, resources, tolerations, affinity, priority class, pull secret and LUKS
//! Secret; the chart renders unset ones as `""`, `{}`, `[]` or null, which mean "not set". Pure
//! functions, so that the shapes are unit-tested without an API server.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use linstor_migrator::cluster::LinstorController;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The controller image when the CR names none: the v1.10.8 chart's default
/// (`tests/fixtures/piraeus-v1.10.8/rendered/default.yaml`).
pub const DEFAULT_IMAGE: &str = "quay.io/piraeusdatastore/piraeus-server:v1.25.1";
/// The chart's default `dbConnectionURL` is `etcd://<release>-etcd:2379`; without a release
/// the operator falls back to this.
pub const DEFAULT_DB_URL: &str = "etcd://piraeus-op-etcd:2379";
/// The ServiceAccount when `spec.serviceAccountName` is empty.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "linstor-controller";
/// Pod-template annotation carrying the hash of the mounted `linstor.toml`: a changed
/// ConfigMap changes the template, which restarts the rollout.
pub const CONFIG_HASH_ANNOTATION: &str = "piraeus.linbit.com/config-hash";
/// The controller container's name (the service looks for it).
pub const CONTAINER: &str = "linstor-controller";

/// Names of what one CR owns.
pub struct Owned {
    pub deployment: String,
    pub config_map: String,
    pub service: String,
}

impl Owned {
    pub fn of(cr: &str) -> Self {
        Self {
            deployment: format!("{cr}-controller"),
            config_map: format!("{cr}-controller-config"),
            service: cr.into(),
        }
    }
}

/// `linstor.toml` for a `dbConnectionURL`. For `k8s` the operator writes only `connection_url`
/// in `[db]` (no etcd prefix, no certificates).
pub fn linstor_toml(url: &str) -> String {
    format!(
        "[db]\n  connection_url = \"{url}\"\n\n[http]\n  listen_addr = \"0.0.0.0\"\n  port = 3370\n\n[logging]\n  level = \"info\"\n"
    )
}

/// `linstor-client.conf`: the controller's in-cluster REST address.
pub fn client_conf(ns: &str, service: &str) -> String {
    format!("[global]\ncontrollers = http://{service}.{ns}.svc:3370\n")
}

/// Hex SHA-256 of a `linstor.toml` (the pod-template annotation).
pub fn config_hash(toml: &str) -> String {
    hex::encode(Sha256::digest(toml.as_bytes()))
}

/// The labels of everything the CR owns and the Deployment's selector.
pub fn labels(cr: &str) -> Value {
    json!({"app.kubernetes.io/name": "piraeus-controller", "app.kubernetes.io/instance": cr})
}

fn spec_str<'a>(cr: &'a LinstorController, key: &str) -> Option<&'a str> {
    cr.spec
        .extra
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// A spec field that says something: not missing, null, `""`, `{}` or `[]` (the chart renders
/// unset values as those).
fn spec_value<'a>(cr: &'a LinstorController, key: &str) -> Option<&'a Value> {
    cr.spec.extra.get(key).filter(|v| match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Object(m) => !m.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => true,
    })
}

fn meta(cr: &LinstorController, name: &str, owner: &OwnerReference) -> Value {
    json!({
        "name": name,
        "namespace": cr.metadata.namespace,
        "labels": labels(cr.metadata.name.as_deref().unwrap_or_default()),
        "ownerReferences": [owner],
    })
}

/// The desired ConfigMap.
pub fn config_map(cr: &LinstorController, owner: &OwnerReference) -> ConfigMap {
    let name = cr.metadata.name.clone().unwrap_or_default();
    let ns = cr.metadata.namespace.clone().unwrap_or_default();
    let url = cr
        .spec
        .db_connection_url
        .as_deref()
        .filter(|u| !u.is_empty())
        .unwrap_or(DEFAULT_DB_URL);
    let o = Owned::of(&name);
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": meta(cr, &o.config_map, owner),
        "data": {"linstor.toml": linstor_toml(url), "linstor-client.conf": client_conf(&ns, &o.service)},
    }))
    .expect("a well-formed ConfigMap")
}

/// The desired Service: no selector, the elected controller pod writes its Endpoints.
pub fn service(cr: &LinstorController, owner: &OwnerReference) -> Service {
    let o = Owned::of(cr.metadata.name.as_deref().unwrap_or_default());
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": meta(cr, &o.service, owner),
        "spec": {"type": "ClusterIP",
                 "ports": [{"name": "rest-api", "port": 3370, "targetPort": 3370, "protocol": "TCP"}]},
    }))
    .expect("a well-formed Service")
}

/// The desired Deployment; `config_hash` is the hash of the ConfigMap as it is now.
pub fn deployment(cr: &LinstorController, owner: &OwnerReference, config_hash: &str) -> Deployment {
    let name = cr.metadata.name.clone().unwrap_or_default();
    let o = Owned::of(&name);
    let image = cr
        .spec
        .controller_image
        .as_deref()
        .filter(|i| !i.is_empty())
        .unwrap_or(DEFAULT_IMAGE);
    let service_account = cr
        .spec
        .service_account_name
        .as_deref()
        .filter(|s| !s.is_empty())
        .unwrap_or(DEFAULT_SERVICE_ACCOUNT);
    let field = |path: &str| json!({"fieldRef": {"apiVersion": "v1", "fieldPath": path}});
    let mut env = vec![
        json!({"name": "JAVA_OPTS", "value": "-Djdk.tls.acknowledgeCloseNotify=true"}),
        json!({"name": "K8S_AWAIT_ELECTION_ENABLED", "value": "1"}),
        json!({"name": "K8S_AWAIT_ELECTION_NAME", "value": "linstor-controller"}),
        json!({"name": "K8S_AWAIT_ELECTION_LOCK_NAME", "value": name}),
        json!({"name": "K8S_AWAIT_ELECTION_LOCK_NAMESPACE", "valueFrom": field("metadata.namespace")}),
        json!({"name": "K8S_AWAIT_ELECTION_IDENTITY", "valueFrom": field("metadata.name")}),
        json!({"name": "K8S_AWAIT_ELECTION_POD_IP", "valueFrom": field("status.podIP")}),
        json!({"name": "K8S_AWAIT_ELECTION_SERVICE_NAME", "value": o.service}),
        json!({"name": "K8S_AWAIT_ELECTION_SERVICE_NAMESPACE", "valueFrom": field("metadata.namespace")}),
        json!({"name": "K8S_AWAIT_ELECTION_SERVICE_PORTS_JSON", "value": "[{\"name\":\"rest-api\",\"port\":3370}]"}),
        json!({"name": "K8S_AWAIT_ELECTION_STATUS_ENDPOINT", "value": ":9999"}),
    ];
    if let Some(secret) = spec_str(cr, "luksSecret") {
        env.push(json!({"name": "MASTER_PASSPHRASE",
                        "valueFrom": {"secretKeyRef": {"name": secret, "key": "MASTER_PASSPHRASE"}}}));
    }
    let mut pod_spec = json!({
        "serviceAccountName": service_account,
        "containers": [{
            "name": CONTAINER,
            "image": image,
            "imagePullPolicy": spec_str(cr, "imagePullPolicy").unwrap_or("IfNotPresent"),
            "args": ["startController"],
            "env": env,
            "ports": [{"name": "rest-api", "containerPort": 3370, "protocol": "TCP"}],
            "volumeMounts": [{"name": "linstor-conf", "mountPath": "/etc/linstor"}],
            "livenessProbe": {"httpGet": {"path": "/", "port": 9999, "scheme": "HTTP"}},
            "readinessProbe": {"httpGet": {"path": "/", "port": 3370, "scheme": "HTTP"},
                               "initialDelaySeconds": 5, "periodSeconds": 5, "failureThreshold": 10},
            "securityContext": {"allowPrivilegeEscalation": false},
        }],
        "volumes": [{"name": "linstor-conf", "configMap": {"name": o.config_map, "defaultMode": 420}}],
    });
    if let Some(resources) = spec_value(cr, "resources") {
        pod_spec["containers"][0]["resources"] = resources.clone();
    }
    for key in ["tolerations", "affinity"] {
        if let Some(v) = spec_value(cr, key) {
            pod_spec[key] = v.clone();
        }
    }
    if let Some(pc) = spec_str(cr, "priorityClassName") {
        pod_spec["priorityClassName"] = json!(pc);
    }
    if let Some(cred) = spec_str(cr, "drbdRepoCred") {
        pod_spec["imagePullSecrets"] = json!([{"name": cred}]);
    }
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": meta(cr, &o.deployment, owner),
        "spec": {
            "replicas": cr.spec.replicas.unwrap_or(1),
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": labels(&name)},
            "template": {
                "metadata": {"labels": labels(&name),
                             "annotations": {"kubectl.kubernetes.io/default-container": CONTAINER,
                                             CONFIG_HASH_ANNOTATION: config_hash}},
                "spec": pod_spec,
            },
        },
    }))
    .expect("a well-formed Deployment")
}

#[cfg(test)]
mod tests {
    use kube::Resource;

    use super::*;

    fn cr(spec: Value) -> LinstorController {
        serde_json::from_value(json!({
            "apiVersion": "piraeus.linbit.com/v1", "kind": "LinstorController",
            "metadata": {"name": "piraeus-op-cs", "namespace": "piraeus-datastore", "uid": "u-1"},
            "spec": spec,
        }))
        .unwrap()
    }

    #[test]
    fn owned_objects_have_the_operator_names_labels_and_owner() {
        let c = cr(
            json!({"replicas": 2, "dbConnectionURL": "etcd://piraeus-op-etcd:2379",
                           "luksSecret": "piraeus-op-passphrase", "priorityClassName": "", "drbdRepoCred": ""}),
        );
        let owner = c.controller_owner_ref(&()).unwrap();
        let d = deployment(&c, &owner, "abc");
        assert_eq!(d.metadata.name.as_deref(), Some("piraeus-op-cs-controller"));
        let owners = d.metadata.owner_references.as_ref().unwrap();
        assert_eq!(
            (owners[0].kind.as_str(), owners[0].controller),
            ("LinstorController", Some(true))
        );
        let spec = d.spec.as_ref().unwrap();
        assert_eq!(spec.replicas, Some(2));
        assert_eq!(spec.strategy.as_ref().unwrap().type_.as_deref(), Some("Recreate"));
        let pod = spec.template.spec.as_ref().unwrap();
        assert_eq!(pod.service_account_name.as_deref(), Some("linstor-controller"));
        assert!(pod.priority_class_name.is_none() && pod.image_pull_secrets.is_none());
        let c0 = &pod.containers[0];
        assert_eq!(
            (c0.name.as_str(), c0.image.as_deref()),
            (CONTAINER, Some(DEFAULT_IMAGE))
        );
        let env = c0.env.as_ref().unwrap();
        assert!(env.iter().any(|e| e.name == "MASTER_PASSPHRASE"));
        assert!(
            env.iter()
                .any(|e| e.name == "K8S_AWAIT_ELECTION_LOCK_NAME"
                    && e.value.as_deref() == Some("piraeus-op-cs"))
        );
        assert_eq!(c0.volume_mounts.as_ref().unwrap()[0].mount_path, "/etc/linstor");
        let annotations = spec
            .template
            .metadata
            .as_ref()
            .unwrap()
            .annotations
            .as_ref()
            .unwrap();
        assert_eq!(annotations[CONFIG_HASH_ANNOTATION], "abc");

        let cm = config_map(&c, &owner);
        assert_eq!(
            cm.metadata.name.as_deref(),
            Some("piraeus-op-cs-controller-config")
        );
        let data = cm.data.unwrap();
        assert!(data["linstor.toml"].contains("connection_url = \"etcd://piraeus-op-etcd:2379\""));
        assert!(data["linstor-client.conf"].contains("http://piraeus-op-cs.piraeus-datastore.svc:3370"));
        let svc = service(&c, &owner);
        assert_eq!(svc.metadata.name.as_deref(), Some("piraeus-op-cs"));
        assert!(svc.spec.unwrap().selector.is_none());
    }

    #[test]
    fn k8s_backend_has_only_the_connection_url_in_db() {
        let toml = linstor_toml("k8s");
        let cfg = linstor_migrator::linstor::toml::LinstorConfig::parse(&toml).unwrap();
        assert_eq!(cfg.connection_url.as_deref(), Some("k8s"));
        let db = toml.split("[http]").next().unwrap();
        assert_eq!(db.trim(), "[db]\n  connection_url = \"k8s\"");
        assert_ne!(config_hash(&toml), config_hash(&linstor_toml("etcd://x:2379")));
    }

    /// The LinstorController as chart 1.10.8 renders it with default values.
    fn recorded_cr() -> LinstorController {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/piraeus-v1.10.8/rendered/default.yaml"
        );
        let docs: Vec<Value> = serde_saphyr::from_multiple(&std::fs::read_to_string(path).unwrap()).unwrap();
        let mut cr = docs
            .into_iter()
            .find(|d| d["kind"] == "LinstorController")
            .expect("the chart renders a LinstorController");
        cr["metadata"]["uid"] = json!("u-1");
        serde_json::from_value(cr).unwrap()
    }

    #[test]
    fn the_recorded_charts_cr_renders_with_its_unset_fields_left_out() {
        let c = recorded_cr();
        assert_eq!(c.spec.linstor_https_client_secret, None, "\"\" is not set");
        let owner = c.controller_owner_ref(&()).unwrap();
        let d = deployment(&c, &owner, "h");
        let pod = d.spec.unwrap().template.spec.unwrap();
        assert_eq!(
            pod.containers[0].image.as_deref(),
            Some("quay.io/piraeusdatastore/piraeus-server:v1.25.1")
        );
        assert_eq!(pod.service_account_name.as_deref(), Some(DEFAULT_SERVICE_ACCOUNT));
        // `priorityClassName: ""`, `drbdRepoCred: ""`, `resources: {}`: not set
        assert!(pod.priority_class_name.is_none() && pod.image_pull_secrets.is_none());
        assert!(pod.containers[0].resources.is_none());
        let tolerations = pod.tolerations.unwrap();
        let keys: Vec<_> = tolerations.iter().filter_map(|t| t.key.as_deref()).collect();
        assert_eq!(
            keys,
            [
                "node-role.kubernetes.io/master",
                "node-role.kubernetes.io/control-plane"
            ]
        );
        let env = pod.containers[0].env.as_ref().unwrap();
        let luks = env.iter().find(|e| e.name == "MASTER_PASSPHRASE").unwrap();
        let secret = luks.value_from.as_ref().unwrap().secret_key_ref.as_ref().unwrap();
        assert_eq!(secret.name, "piraeus-op-passphrase");
        let cm = config_map(&c, &owner);
        assert!(
            cm.data.unwrap()["linstor.toml"].contains("connection_url = \"etcd://piraeus-op-etcd:2379\"")
        );
    }

    #[test]
    fn replicas_default_to_one_and_spec_fields_are_used() {
        let c = cr(
            json!({"controllerImage": "img:v1", "serviceAccountName": "sa", "priorityClassName": "pc",
                           "drbdRepoCred": "cred", "imagePullPolicy": "Always",
                           "resources": {"limits": {"memory": "1Gi"}}}),
        );
        let owner = c.controller_owner_ref(&()).unwrap();
        let d = deployment(&c, &owner, "h");
        let spec = d.spec.unwrap();
        assert_eq!(spec.replicas, Some(1));
        let pod = spec.template.spec.unwrap();
        assert_eq!(pod.service_account_name.as_deref(), Some("sa"));
        assert_eq!(pod.priority_class_name.as_deref(), Some("pc"));
        assert_eq!(pod.containers[0].image.as_deref(), Some("img:v1"));
        assert_eq!(pod.containers[0].image_pull_policy.as_deref(), Some("Always"));
        let limits = pod.containers[0]
            .resources
            .as_ref()
            .unwrap()
            .limits
            .as_ref()
            .unwrap();
        assert_eq!(limits["memory"].0, "1Gi");
        assert!(
            !pod.containers[0]
                .env
                .as_ref()
                .unwrap()
                .iter()
                .any(|e| e.name == "MASTER_PASSPHRASE")
        );
    }
}
