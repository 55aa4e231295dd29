//! Preflight checks about the data and its access that the recordings and the known reports call
//! for: stale `Rollback` objects in the `k8s` backend (a controller started on them crash-loops,
//! linstor-server#357, piraeus-operator#534), and an etcd with TLS whose certificate files the
//! migration pod (a copy of the controller's pod template) must be able to read. Pure functions
//! of what preflight has read, so that each rule is tested on its own.

use k8s_openapi::api::apps::v1::Deployment;

use crate::cluster::K8sBackendInventory;
use crate::cluster::controller::CONTROLLER_CONTAINER;
use crate::engine::{Check, CheckLevel};
use crate::linstor::toml::{Backend, LinstorConfig};

fn check(name: &str, level: CheckLevel, message: String) -> Check {
    Check {
        name: name.into(),
        level,
        message,
    }
}

/// Stale `Rollback` objects: the import replaces the tables but not them, and the controller
/// refuses to start on a `k8s` backend with a transaction left to roll back.
pub(super) fn rollback_objects(inv: &K8sBackendInventory) -> Option<Check> {
    (inv.rollback_objects > 0).then(|| {
        check(
            "k8s-backend",
            CheckLevel::Error,
            format!(
                "the k8s backend holds {} Rollback object(s) of an interrupted LINSTOR transaction; a controller \
                 started on it crash-loops (\"Cannot perform Migration ... while a rollback has to be done\", \
                 linstor-server#357, piraeus-operator#534). If no controller uses the k8s backend, delete them: \
                 kubectl delete rollback.internal.linstor.linbit.com --all",
                inv.rollback_objects
            ),
        )
    })
}

/// The files `[db]` names for etcd's TLS must be under a volume of the controller's container
/// other than the config itself, or the migration pod cannot read them.
pub(super) fn etcd_tls(config: &LinstorConfig, deployment: &Deployment) -> Option<Check> {
    if config.backend() != Backend::Etcd || config.db_cert_files.is_empty() {
        return None;
    }
    let mounts: Vec<(String, String)> = deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| s.containers.iter().find(|c| c.name == CONTROLLER_CONTAINER))
        .and_then(|c| c.volume_mounts.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|m| (m.mount_path.trim_end_matches('/').to_string(), m.name))
        .collect();
    let mounted_by = |file: &str| {
        mounts
            .iter()
            .filter(|(path, _)| file.starts_with(&format!("{path}/")))
            .max_by_key(|(path, _)| path.len())
            .map(|(path, name)| (path.clone(), name.clone()))
    };
    let mut unmounted = Vec::new();
    let mut volumes = Vec::new();
    for file in &config.db_cert_files {
        match mounted_by(file) {
            // the config's own mount (`/etc/linstor`) holds only linstor.toml: a certificate
            // there would have to be a key of the ConfigMap, which the operator never writes
            Some((path, _)) if path == "/etc/linstor" => unmounted.push(file.clone()),
            Some((_, name)) => volumes.push(name),
            None => unmounted.push(file.clone()),
        }
    }
    volumes.sort();
    volumes.dedup();
    Some(if unmounted.is_empty() {
        check(
            "etcd-tls",
            CheckLevel::Ok,
            format!(
                "etcd uses TLS; its certificate files come from volume(s) {} of the controller's pod, which the \
                 migration pod mounts too",
                volumes.join(", ")
            ),
        )
    } else {
        check(
            "etcd-tls",
            CheckLevel::Error,
            format!(
                "linstor.toml names etcd TLS file(s) {} that no volume of the controller's pod template provides: \
                 the migration pod (a copy of that template) could not read them (mount the etcd client \
                 certificate Secret, as the chart does with dbCertSecret)",
                unmounted.join(", ")
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(mounts: serde_json::Value) -> Deployment {
        serde_json::from_value(
            json!({"metadata": {"name": "c"}, "spec": {"selector": {}, "template": {"spec": {
            "containers": [{"name": "linstor-controller", "image": "x", "volumeMounts": mounts}]}}}}),
        )
        .unwrap()
    }

    const TLS: &str = "[db]\nconnection_url = \"etcd://piraeus-op-etcd:2379\"\nca_certificate = \"/etc/linstor/certs/ca.crt\"\n\
                       client_certificate = \"/etc/linstor/certs/tls.crt\"\nclient_key_pkcs8_pem = \"/etc/linstor/certs/tls.key\"\n";

    #[test]
    fn etcd_certificates_must_come_from_a_volume() {
        let cfg = LinstorConfig::parse(TLS).unwrap();
        let ok = deployment(json!([{"name": "linstor-conf", "mountPath": "/etc/linstor"},
                                   {"name": "linstor-certs", "mountPath": "/etc/linstor/certs"}]));
        let c = etcd_tls(&cfg, &ok).unwrap();
        assert_eq!(c.level, CheckLevel::Ok, "{}", c.message);
        assert!(c.message.contains("linstor-certs"));
        let missing = deployment(json!([{"name": "linstor-conf", "mountPath": "/etc/linstor"}]));
        let c = etcd_tls(&cfg, &missing).unwrap();
        assert_eq!(c.level, CheckLevel::Error);
        assert!(c.message.contains("/etc/linstor/certs/ca.crt"), "{}", c.message);
        let plain = LinstorConfig::parse("[db]\nconnection_url = \"etcd://e:2379\"\n").unwrap();
        assert!(etcd_tls(&plain, &missing).is_none());
    }

    #[test]
    fn rollback_objects_fail_preflight() {
        let mut inv = K8sBackendInventory::default();
        assert!(rollback_objects(&inv).is_none());
        inv.rollback_objects = 2;
        let c = rollback_objects(&inv).unwrap();
        assert_eq!(c.level, CheckLevel::Error);
        assert!(c.message.contains("linstor-server#357"));
    }
}
