//! The migration pod, built from the controller Deployment's own pod template (REFERENCE.md §1,
//! §2): the image, ServiceAccount, config and cert volumes, `MASTER_PASSPHRASE` and the rest of
//! the environment, securityContext, imagePullSecrets, resources and node placement are copied;
//! the command becomes `sleep`, and probes, ports, lifecycle hooks and the leader-election
//! environment are dropped so that nothing of the controller itself starts in it. A ConfigMap
//! made by the service with the target `linstor.toml` is mounted at a second path, and emptyDirs
//! hold the exports and the tool's logs.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, EmptyDirVolumeSource, Pod, PodSpec, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::controller::CONTROLLER_CONTAINER;

/// Label that marks objects made by this service.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "linstor-migrator";
/// Label carrying the run id.
pub const RUN_LABEL: &str = "linstor-migrator.piraeus.io/run";
/// Name of the container in the migration pod.
pub const CONTAINER: &str = "migration";

/// Where the controller Deployment mounts its config (REFERENCE.md §2).
pub const CONTROLLER_CONFIG_DIR: &str = "/etc/linstor";

const TARGET_VOLUME: &str = "linstor-target-config";
const BACKUP_VOLUME: &str = "backup";
const LOGS_VOLUME: &str = "logs";
const TMP_VOLUME: &str = "tmp";

/// Where the tool and the configurations are inside the migration pod.
#[derive(Debug, Clone)]
pub struct PodPaths {
    /// The `linstor-database` binary.
    pub tool: String,
    /// Where the migration pod mounts the controller's own config (the Deployment mounts it at
    /// `/etc/linstor`; its mounts under that path move along).
    pub source_config_dir: String,
    /// Where the target (`k8s`) `linstor.toml` is mounted.
    pub target_config_dir: String,
    /// The emptyDir for export files (and the tool guard's pid file).
    pub backup_dir: String,
    /// The emptyDir the tool writes its logs into (its working directory's `logs`).
    pub logs_dir: String,
}

impl Default for PodPaths {
    fn default() -> Self {
        Self {
            tool: "/usr/share/linstor-server/bin/linstor-database".into(),
            source_config_dir: "/etc/linstor".into(),
            target_config_dir: "/etc/linstor-target".into(),
            backup_dir: "/backup".into(),
            logs_dir: "/logs".into(),
        }
    }
}

/// Names of the objects a run creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationObjects {
    pub pod: String,
    pub target_config_map: String,
}

impl MigrationObjects {
    /// Names derived from the controller and the run id, stable across restarts of the run.
    pub fn for_run(controller: &str, run_id: &str) -> Self {
        let short: String = run_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .rev()
            .take(8)
            .collect::<String>();
        let short: String = short.chars().rev().collect();
        let base: String = controller.chars().take(40).collect();
        let pod = format!("{}-migration-{short}", base.trim_end_matches('-'));
        Self {
            target_config_map: format!("{pod}-target"),
            pod,
        }
    }
}

fn labels(run_id: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string()),
        (RUN_LABEL.to_string(), run_id.to_string()),
        (
            "app.kubernetes.io/component".to_string(),
            "database-migration".to_string(),
        ),
    ])
}

/// The ConfigMap holding the target `linstor.toml`.
pub fn target_config_map(namespace: &str, names: &MigrationObjects, run_id: &str, toml: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(names.target_config_map.clone()),
            namespace: Some(namespace.to_string()),
            labels: Some(labels(run_id)),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("linstor.toml".to_string(), toml.to_string())])),
        ..Default::default()
    }
}

/// Builds the migration pod from the controller Deployment; errors when the Deployment has no
/// `linstor-controller` container.
pub fn migration_pod(
    deployment: &Deployment,
    names: &MigrationObjects,
    run_id: &str,
    paths: &PodPaths,
) -> Result<Pod, String> {
    let namespace = deployment
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let template = deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .ok_or("the Deployment has no pod template")?;
    let source = template
        .containers
        .iter()
        .find(|c| c.name == CONTROLLER_CONTAINER)
        .ok_or_else(|| format!("the Deployment has no {CONTROLLER_CONTAINER:?} container"))?;

    let env = source.env.as_ref().map(|env| {
        env.iter()
            .filter(|e| !e.name.starts_with("K8S_AWAIT_ELECTION"))
            .cloned()
            .collect::<Vec<_>>()
    });
    let ours = [
        paths.target_config_dir.as_str(),
        &paths.backup_dir,
        &paths.logs_dir,
        "/tmp",
    ];
    let mut mounts: Vec<VolumeMount> = source
        .volume_mounts
        .iter()
        .flatten()
        .filter(|m| !ours.contains(&m.mount_path.as_str()))
        .cloned()
        .map(|mut m| {
            // the config (and the certs under it) move to where the tool is told to look
            if let Some(rest) = m.mount_path.strip_prefix(CONTROLLER_CONFIG_DIR)
                && (rest.is_empty() || rest.starts_with('/'))
            {
                m.mount_path = format!("{}{rest}", paths.source_config_dir);
            }
            m
        })
        .collect();
    let kept_volumes: Vec<String> = mounts.iter().map(|m| m.name.clone()).collect();
    let mount = |name: &str, path: &str, read_only: bool| VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: read_only.then_some(true),
        ..Default::default()
    };
    mounts.push(mount(TARGET_VOLUME, &paths.target_config_dir, true));
    mounts.push(mount(BACKUP_VOLUME, &paths.backup_dir, false));
    mounts.push(mount(LOGS_VOLUME, &paths.logs_dir, false));
    mounts.push(mount(TMP_VOLUME, "/tmp", false));

    let mut volumes: Vec<Volume> = template
        .volumes
        .iter()
        .flatten()
        .filter(|v| {
            kept_volumes.contains(&v.name)
                && ![TARGET_VOLUME, BACKUP_VOLUME, LOGS_VOLUME, TMP_VOLUME].contains(&v.name.as_str())
        })
        .cloned()
        .collect();
    volumes.push(Volume {
        name: TARGET_VOLUME.into(),
        config_map: Some(ConfigMapVolumeSource {
            name: names.target_config_map.clone(),
            ..Default::default()
        }),
        ..Default::default()
    });
    for name in [BACKUP_VOLUME, LOGS_VOLUME, TMP_VOLUME] {
        volumes.push(Volume {
            name: name.into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        });
    }

    let container = Container {
        name: CONTAINER.into(),
        image: source.image.clone(),
        image_pull_policy: source.image_pull_policy.clone(),
        command: Some(vec!["sleep".into(), "infinity".into()]),
        args: None,
        env,
        env_from: source.env_from.clone(),
        resources: source.resources.clone(),
        security_context: source.security_context.clone(),
        volume_mounts: Some(mounts),
        // the image sets no WORKDIR; the tool writes ./logs, so run it from / with /logs writable
        working_dir: Some("/".into()),
        ..Default::default()
    };

    let spec = PodSpec {
        containers: vec![container],
        volumes: Some(volumes),
        service_account_name: template.service_account_name.clone(),
        automount_service_account_token: template.automount_service_account_token,
        security_context: template.security_context.clone(),
        image_pull_secrets: template.image_pull_secrets.clone(),
        node_selector: template.node_selector.clone(),
        affinity: template.affinity.clone(),
        tolerations: template.tolerations.clone(),
        priority_class_name: template.priority_class_name.clone(),
        host_network: template.host_network,
        dns_policy: template.dns_policy.clone(),
        restart_policy: Some("Never".into()),
        termination_grace_period_seconds: Some(5),
        ..Default::default()
    };
    Ok(Pod {
        metadata: ObjectMeta {
            name: Some(names.pod.clone()),
            namespace: Some(namespace),
            labels: Some(labels(run_id)),
            ..Default::default()
        },
        spec: Some(spec),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Deployment shaped like the one Piraeus Operator v1.10 renders.
    fn operator_deployment() -> Deployment {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "piraeus-op-cs-controller", "namespace": "piraeus-datastore",
                "ownerReferences": [{"apiVersion": "piraeus.linbit.com/v1", "kind": "LinstorController",
                    "name": "piraeus-op-cs", "uid": "1", "controller": true}]},
            "spec": {"replicas": 1, "strategy": {"type": "Recreate"},
              "selector": {"matchLabels": {"app.kubernetes.io/instance": "piraeus-op-cs", "app.kubernetes.io/name": "piraeus-controller"}},
              "template": {
                "metadata": {"labels": {"app.kubernetes.io/instance": "piraeus-op-cs", "app.kubernetes.io/name": "piraeus-controller"}},
                "spec": {
                  "serviceAccountName": "linstor-controller",
                  "priorityClassName": "system-node-critical",
                  "securityContext": {"supplementalGroups": [1000]},
                  "imagePullSecrets": [{"name": "drbdiocred"}],
                  "nodeSelector": {"kubernetes.io/os": "linux"},
                  "tolerations": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}],
                  "containers": [{
                    "name": "linstor-controller",
                    "image": "quay.io/piraeusdatastore/piraeus-server:v1.33.3",
                    "imagePullPolicy": "IfNotPresent",
                    "args": ["startController"],
                    "env": [
                      {"name": "K8S_AWAIT_ELECTION_ENABLED", "value": "1"},
                      {"name": "K8S_AWAIT_ELECTION_NAME", "value": "linstor-controller"},
                      {"name": "MASTER_PASSPHRASE", "valueFrom": {"secretKeyRef": {"name": "piraeus-op-passphrase", "key": "MASTER_PASSPHRASE"}}}
                    ],
                    "ports": [{"containerPort": 3370, "name": "rest-api"}],
                    "readinessProbe": {"httpGet": {"path": "/", "port": 3370}},
                    "livenessProbe": {"httpGet": {"path": "/health", "port": 3370}},
                    "resources": {"limits": {"memory": "1Gi"}},
                    "securityContext": {"readOnlyRootFilesystem": true},
                    "volumeMounts": [
                      {"name": "linstor-conf", "mountPath": "/etc/linstor", "readOnly": true},
                      {"name": "linstor-certs", "mountPath": "/etc/linstor/certs", "readOnly": true},
                      {"name": "logs", "mountPath": "/logs"}
                    ]
                  }],
                  "volumes": [
                    {"name": "linstor-conf", "configMap": {"name": "piraeus-op-cs-controller-config"}},
                    {"name": "linstor-certs", "secret": {"secretName": "piraeus-op-etcd-client"}},
                    {"name": "logs", "emptyDir": {}},
                    {"name": "unused", "emptyDir": {}}
                  ]
                }
              }
            }
        }))
        .unwrap()
    }

    #[test]
    fn copies_what_the_tool_needs_and_drops_the_controller() {
        let names = MigrationObjects::for_run("piraeus-op-cs", "0192f3c2-7e1a-7000-8000-0123456789ab");
        assert_eq!(names.pod, "piraeus-op-cs-migration-456789ab");
        let pod = migration_pod(&operator_deployment(), &names, "run-1", &PodPaths::default()).unwrap();
        assert_eq!(pod.metadata.namespace.as_deref(), Some("piraeus-datastore"));
        assert_eq!(pod.metadata.labels.as_ref().unwrap()[RUN_LABEL], "run-1");
        let spec = pod.spec.unwrap();
        assert_eq!(spec.service_account_name.as_deref(), Some("linstor-controller"));
        assert_eq!(spec.image_pull_secrets.unwrap()[0].name, "drbdiocred");
        assert_eq!(
            spec.security_context.unwrap().supplemental_groups,
            Some(vec![1000])
        );
        assert_eq!(spec.node_selector.unwrap()["kubernetes.io/os"], "linux");
        assert_eq!(spec.tolerations.unwrap().len(), 1);
        assert_eq!(spec.restart_policy.as_deref(), Some("Never"));

        let c = &spec.containers[0];
        assert_eq!(
            c.image.as_deref(),
            Some("quay.io/piraeusdatastore/piraeus-server:v1.33.3")
        );
        assert_eq!(
            c.command.as_deref(),
            Some(&["sleep".to_string(), "infinity".to_string()][..])
        );
        assert!(
            c.args.is_none()
                && c.ports.is_none()
                && c.readiness_probe.is_none()
                && c.liveness_probe.is_none()
        );
        let env: Vec<&str> = c.env.as_ref().unwrap().iter().map(|e| e.name.as_str()).collect();
        assert_eq!(env, ["MASTER_PASSPHRASE"]);
        assert_eq!(
            c.security_context.as_ref().unwrap().read_only_root_filesystem,
            Some(true)
        );
        assert_eq!(
            c.resources.as_ref().unwrap().limits.as_ref().unwrap()["memory"].0,
            "1Gi"
        );

        let mounts: Vec<(&str, &str)> = c
            .volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .map(|m| (m.name.as_str(), m.mount_path.as_str()))
            .collect();
        assert_eq!(
            mounts,
            [
                ("linstor-conf", "/etc/linstor"),
                ("linstor-certs", "/etc/linstor/certs"),
                (TARGET_VOLUME, "/etc/linstor-target"),
                (BACKUP_VOLUME, "/backup"),
                (LOGS_VOLUME, "/logs"),
                (TMP_VOLUME, "/tmp"),
            ]
        );
        let volumes: Vec<&str> = spec
            .volumes
            .as_ref()
            .unwrap()
            .iter()
            .map(|v| v.name.as_str())
            .collect();
        assert_eq!(
            volumes,
            [
                "linstor-conf",
                "linstor-certs",
                TARGET_VOLUME,
                BACKUP_VOLUME,
                LOGS_VOLUME,
                TMP_VOLUME
            ]
        );
        let target = spec
            .volumes
            .as_ref()
            .unwrap()
            .iter()
            .find(|v| v.name == TARGET_VOLUME)
            .unwrap();
        assert_eq!(target.config_map.as_ref().unwrap().name, names.target_config_map);
    }

    #[test]
    fn config_mounts_move_to_the_configured_source_dir() {
        let paths = PodPaths {
            source_config_dir: "/srv/e2e/etc/linstor".into(),
            ..PodPaths::default()
        };
        let names = MigrationObjects::for_run("x", "run");
        let pod = migration_pod(&operator_deployment(), &names, "run", &paths).unwrap();
        let mounts: Vec<String> = pod.spec.unwrap().containers[0]
            .volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .map(|m| m.mount_path.clone())
            .collect();
        assert_eq!(
            mounts[..2],
            ["/srv/e2e/etc/linstor", "/srv/e2e/etc/linstor/certs"]
        );
    }

    #[test]
    fn a_deployment_without_the_controller_container_is_refused() {
        let mut d = operator_deployment();
        d.spec
            .as_mut()
            .unwrap()
            .template
            .spec
            .as_mut()
            .unwrap()
            .containers[0]
            .name = "other".into();
        let names = MigrationObjects::for_run("x", "run");
        assert!(
            migration_pod(&d, &names, "run", &PodPaths::default())
                .unwrap_err()
                .contains("linstor-controller")
        );
    }
}
