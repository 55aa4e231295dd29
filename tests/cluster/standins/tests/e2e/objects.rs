//! The hand-written objects of the plain installation (a controller Deployment nobody owns, its
//! ServiceAccount, passphrase Secret and etcd), the names both shapes share, and the KWOK
//! ClusterExec that runs the migration pod's commands on this machine. The Piraeus shape is the
//! recorded chart's (chart.rs).

use std::path::Path;

use serde_json::{Value, json};

/// The recorded chart's LinstorController and its `dbConnectionURL`.
pub const CR: &str = "piraeus-op-cs";
pub const CR_ETCD_URL: &str = "etcd://piraeus-op-etcd:2379";
pub const PLAIN: &str = "linstor-controller";
pub const PLAIN_ETCD_URL: &str = "etcd://etcd.storage.svc:2379";
/// Pod annotations that tests/cluster/start.sh's KWOK stages read: how long after its creation
/// a pod becomes Ready, and how long after its deletion it is gone (Go durations: `1500ms`).
pub const START_DELAY_ANNOTATION: &str = "kwok.e2e.linstor-migrator.io/start-delay";
pub const STOP_DELAY_ANNOTATION: &str = "kwok.e2e.linstor-migrator.io/stop-delay";

/// The controller image of a LINSTOR version.
pub fn image(version: &str) -> String {
    format!("quay.io/piraeusdatastore/piraeus-server:v{version}")
}

pub fn service_account() -> Value {
    json!({"metadata": {"name": "linstor-controller"}})
}

/// The LUKS passphrase Secret the controller's `MASTER_PASSPHRASE` comes from.
pub fn passphrase_secret() -> Value {
    json!({"metadata": {"name": "piraeus-op-passphrase"}, "type": "Opaque",
           "stringData": {"MASTER_PASSPHRASE": "not-a-real-passphrase"}})
}

fn etcd_labels(name: &str) -> Value {
    json!({"app.kubernetes.io/name": "etcd", "app.kubernetes.io/instance": name})
}

/// etcd's headless Service.
pub fn etcd_service(name: &str) -> Value {
    json!({"metadata": {"name": name, "labels": etcd_labels(name)},
           "spec": {"clusterIP": "None", "selector": etcd_labels(name),
                    "ports": [{"name": "client", "port": 2379}, {"name": "peer", "port": 2380}]}})
}

/// etcd's StatefulSet (its pod does nothing under KWOK; the data is a file).
pub fn etcd_stateful_set(name: &str) -> Value {
    json!({"metadata": {"name": name, "labels": etcd_labels(name)},
           "spec": {"replicas": 1, "serviceName": name, "selector": {"matchLabels": etcd_labels(name)},
                    "template": {"metadata": {"labels": etcd_labels(name)},
                                 "spec": {"containers": [{"name": "etcd", "image": "quay.io/coreos/etcd:v3.4.15",
                                                          "ports": [{"containerPort": 2379}, {"containerPort": 2380}]}]}}}})
}

pub fn plain_config_map(ns: &str, name: &str) -> Value {
    json!({"metadata": {"name": name},
           "data": {"linstor.toml": format!("[db]\nconnection_url = \"{PLAIN_ETCD_URL}\"\n\n[http]\nport = 3370\n"),
                    "linstor-client.conf": format!("[global]\ncontrollers = http://{PLAIN}.{ns}.svc:3370\n")}})
}

pub fn plain_service() -> Value {
    json!({"metadata": {"name": PLAIN},
           "spec": {"selector": {"app": PLAIN}, "ports": [{"name": "rest-api", "port": 3370, "targetPort": 3370}]}})
}

/// A controller Deployment nobody owns.
pub fn plain_deployment(replicas: i32, config_map: &str, version: &str) -> Value {
    let labels = json!({"app": PLAIN});
    json!({"metadata": {"name": PLAIN, "labels": labels},
           "spec": {"replicas": replicas, "strategy": {"type": "Recreate"}, "selector": {"matchLabels": labels},
                    "template": {"metadata": {"labels": labels},
                                 "spec": {"serviceAccountName": "linstor-controller",
                                          "containers": [{"name": "linstor-controller", "image": image(version),
                                                          "args": ["startController"],
                                                          "env": [{"name": "MASTER_PASSPHRASE", "valueFrom": {"secretKeyRef": {"name": "piraeus-op-passphrase", "key": "MASTER_PASSPHRASE"}}}],
                                                          "volumeMounts": [{"name": "linstor-conf", "mountPath": "/etc/linstor"}]}],
                                          "volumes": [{"name": "linstor-conf", "configMap": {"name": config_map}}]}}}})
}

/// Runs the commands of container `migration` in `ns` as local processes in `work_dir`.
pub fn cluster_exec(ns: &str, work_dir: &Path, envs: &[(&str, &str)]) -> Value {
    let envs: Vec<Value> = envs.iter().map(|(k, v)| json!({"name": k, "value": v})).collect();
    json!({
        "apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "ClusterExec",
        "metadata": {"name": format!("e2e-{ns}")},
        "spec": {"selector": {"matchNamespaces": [ns]},
                 "execs": [{"containers": ["migration"], "local": {"workDir": work_dir, "envs": envs}}]}
    })
}

/// A wrapper of the `linstor-database` stand-in that appends `SUBCOMMAND START_NS END_NS EXIT PID`
/// to `runs` (the tool's own wall time, for the downtime split; PID is the stand-in's). The tool
/// runs as a child, so that its end is recorded even when it is killed; a SIGTERM to the wrapper
/// (the service's tool guard stopping a run an interrupted exec left behind: the wrapper is what
/// the guard execs) is passed on to it, and the wrapper ends with it.
pub fn timed_tool(real: &Path, runs: &Path) -> String {
    format!(
        r#"#!/bin/bash
# linstor-database stand-in, timed for the downtime report
start=$(date +%s%N)
"{real}" "$@" <&0 &
tool=$!
trap 'kill -TERM "$tool" 2>/dev/null' TERM
wait "$tool"
rc=$?
# a trapped signal interrupts wait: wait on until the tool itself has ended
while kill -0 "$tool" 2>/dev/null; do
  wait "$tool"
  rc=$?
done
echo "$1 $start $(date +%s%N) $rc $tool" >>"{runs}"
exit $rc
"#,
        real = real.display(),
        runs = runs.display()
    )
}
