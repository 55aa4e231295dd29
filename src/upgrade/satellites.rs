//! The LinstorSatelliteConfigurations: `host-networking` (v1 satellites ran in the host network),
//! `node-labels` (v1 copied every node label into LINSTOR), and one per LinstorSatelliteSet with
//! its node affinity, TLS Secret, storage pools and pod patches.

use serde_json::{Map, Value, json};

use super::catalogue::Kind::SatelliteSet as LSS;
use super::ledger::Ledger;
use super::linstor_cluster::expected_endpoint;
use super::patches::{self, MODULE_LOADER, SATELLITE, SATELLITE_CONTAINER};
use super::v1::{V1Installation, V1Resource, is_set};

/// The chart's default `additionalEnv` of a satellite set, for the v1 kernel module injector;
/// v2's drbd-module-loader sets it itself.
fn chart_default_env() -> Value {
    json!({"name": "LB_SELINUX_AS", "value": "modules_object_t"})
}

/// v2 rejects shorter storage pool names (`minLength: 3` in the CRD).
const MIN_POOL_NAME: usize = 3;

fn configuration(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "piraeus.io/v1",
        "kind": "LinstorSatelliteConfiguration",
        "metadata": {"name": name},
        "spec": spec,
    })
}

pub(super) fn configurations(inst: &V1Installation, ledger: &mut Ledger) -> Vec<Value> {
    let mut out = vec![
        configuration(
            "host-networking",
            json!({"podTemplate": {"spec": {"hostNetwork": true}}}),
        ),
        // v1 set Aux/<label> = <value> for every label of a satellite's node
        configuration(
            "node-labels",
            json!({"properties": [{
                "name": "Aux/",
                "expandFrom": {"nodeFieldRef": "metadata.labels", "nameTemplate": "$1", "valueTemplate": "$2"},
            }]}),
        ),
    ];
    for set in &inst.satellite_sets {
        out.push(satellite_set(inst, set, ledger));
    }
    out
}

fn with_prefix(v: &Value, prefix: &str) -> bool {
    v.as_str().is_some_and(|s| s.starts_with(prefix))
}

fn satellite_set(inst: &V1Installation, set: &V1Resource, ledger: &mut Ledger) -> Value {
    let name = set.name.as_str();
    let mut spec = Map::new();
    let mut patches = Vec::new();
    let mut pools = Vec::new();
    let lc_client_secret = inst.controller.field("linstorHttpsClientSecret");
    for (field, v) in set.spec.iter().filter(|(_, v)| is_set(v)) {
        let f = field.as_str();
        match f {
            "affinity" => {
                affinity(name, v, ledger, &mut spec);
                continue;
            }
            "storagePools" => {
                storage_pools(name, v, ledger, &mut pools);
                continue;
            }
            "additionalEnv" => {
                let env: Vec<Value> = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|e| **e != chart_default_env())
                    .cloned()
                    .collect();
                if env.is_empty() {
                    ledger.v2_default(
                        LSS,
                        name,
                        f,
                        v,
                        "the chart's default; v2's drbd-module-loader sets it itself",
                    );
                    continue;
                }
                // v1 gave the variables to the satellite and to the kernel module injector
                patches.push(patches::container(
                    SATELLITE,
                    SATELLITE_CONTAINER,
                    false,
                    json!({"env": env}),
                ));
                patches.push(patches::container(
                    SATELLITE,
                    MODULE_LOADER,
                    true,
                    json!({"env": env}),
                ));
            }
            "dnsPolicy" => patches.push(patches::pod_spec(SATELLITE, json!({"dnsPolicy": v}))),
            "extraVolumes" => patches.push(patches::pod_spec(SATELLITE, json!({"volumes": v}))),
            "sidecars" => patches.push(patches::pod_spec(SATELLITE, json!({"containers": v}))),
            "tolerations" => patches.push(patches::tolerations(
                SATELLITE,
                v.as_array().map(Vec::as_slice).unwrap_or_default(),
            )),
            "mountDrbdResourceDirectoriesFromHost" => patches.push(drbd_host_paths()),
            "sslSecret" => {
                spec.insert("internalTLS".into(), json!({"secretName": v}));
            }
            "automaticStorageType" if v == "None" => {
                ledger.v2_default(LSS, name, f, v, "no automatic pools: v2 has none either");
                continue;
            }
            "controllerEndpoint" if v == expected_endpoint(inst).as_str() => {
                ledger.v2_default(
                    LSS,
                    name,
                    f,
                    v,
                    "this installation's controller, which v2 replaces",
                );
                continue;
            }
            "imagePullPolicy" if v == "IfNotPresent" => {
                ledger.v2_default(LSS, name, f, v, "the default pull policy for tagged images");
                continue;
            }
            "satelliteImage" if with_prefix(v, "quay.io/piraeusdatastore/piraeus-server:") => {
                ledger.v2_default(LSS, name, f, v, "v2 runs the piraeus-server image of its release");
                continue;
            }
            "monitoringImage" if with_prefix(v, "quay.io/piraeusdatastore/drbd-reactor:") => {
                ledger.v2_default(LSS, name, f, v, "v2 runs drbd-reactor in every satellite pod");
                continue;
            }
            "kernelModuleInjectionImage" if with_prefix(v, "quay.io/piraeusdatastore/drbd9-") => {
                ledger.v2_default(
                    LSS,
                    name,
                    f,
                    v,
                    "v2 picks the loader image for each node's distribution",
                );
                continue;
            }
            "kernelModuleInjectionMode" if v != "None" => {
                ledger.v2_default(
                    LSS,
                    name,
                    f,
                    v,
                    "v2's drbd-module-loader loads an installed DRBD module or builds one",
                );
                continue;
            }
            "linstorHttpsClientSecret" if Some(v) == lc_client_secret => {
                ledger.v2_default(
                    LSS,
                    name,
                    f,
                    v,
                    "the same Secret as LinstorCluster spec.apiTLS.clientSecretName",
                );
                continue;
            }
            "logLevel" if v == "info" => {
                ledger.v2_default(LSS, name, f, v, "LINSTOR's default log level");
                continue;
            }
            _ => {
                ledger.not_converted(LSS, name, f, v);
                continue;
            }
        }
        ledger.converted(LSS, name, f, v);
    }
    if !patches.is_empty() {
        spec.insert("patches".into(), Value::Array(patches));
    }
    if !pools.is_empty() {
        spec.insert("storagePools".into(), Value::Array(pools));
    }
    configuration(name, Value::Object(spec))
}

fn affinity(name: &str, v: &Value, ledger: &mut Ledger, spec: &mut Map<String, Value>) {
    for (key, part) in v.as_object().into_iter().flatten().filter(|(_, p)| is_set(p)) {
        let path = format!("affinity.{key}");
        if key != "nodeAffinity" {
            ledger.not_converted(LSS, name, &path, part);
            continue;
        }
        for (inner, value) in part.as_object().into_iter().flatten().filter(|(_, p)| is_set(p)) {
            let path = format!("affinity.nodeAffinity.{inner}");
            if inner == "requiredDuringSchedulingIgnoredDuringExecution" {
                spec.insert("nodeAffinity".into(), value.clone());
                ledger.converted(LSS, name, &path, value);
            } else {
                ledger.not_converted(LSS, name, &path, value);
            }
        }
    }
}

/// `/etc/drbd.conf` and `/etc/drbd.d` from the host, read-only (v1's
/// `mountDrbdResourceDirectoriesFromHost`; v2 already shares `/var/lib/drbd`).
fn drbd_host_paths() -> Value {
    patches::pod_spec(
        SATELLITE,
        json!({
            "volumes": [
                {"name": "etc-drbd-conf", "hostPath": {"path": "/etc/drbd.conf", "type": "File"}},
                {"name": "etc-drbd-d", "hostPath": {"path": "/etc/drbd.d", "type": "Directory"}},
            ],
            "containers": [{"name": SATELLITE_CONTAINER, "volumeMounts": [
                {"name": "etc-drbd-conf", "mountPath": "/etc/drbd.conf", "readOnly": true},
                {"name": "etc-drbd-d", "mountPath": "/etc/drbd.d", "readOnly": true},
            ]}],
        }),
    )
}

/// v1 `storagePools.{lvmPools,lvmThinPools,zfsPools}` -> v2 `storagePools[]`.
fn storage_pools(name: &str, v: &Value, ledger: &mut Ledger, pools: &mut Vec<Value>) {
    for (list, entries) in v.as_object().into_iter().flatten().filter(|(_, p)| is_set(p)) {
        let known = matches!(list.as_str(), "lvmPools" | "lvmThinPools" | "zfsPools");
        for (i, pool) in entries.as_array().into_iter().flatten().enumerate() {
            let at = |field: &str| format!("storagePools.{list}[{i}].{field}");
            if !known {
                ledger.not_converted(LSS, name, &format!("storagePools.{list}[{i}]"), pool);
                continue;
            }
            let pool_name = pool.get("name").and_then(Value::as_str).unwrap_or_default();
            if pool_name.chars().count() < MIN_POOL_NAME {
                // the pool stays in LINSTOR's database; only v2's management of it is lost
                let why = format!(
                    "v2 needs storage pool names of at least {MIN_POOL_NAME} characters: pool {pool_name:?} stays in \
                     LINSTOR as it is, but v2 does not manage it (left out of the YAML)"
                );
                for (field, value) in pool.as_object().into_iter().flatten().filter(|(_, p)| is_set(p)) {
                    ledger.not_converted_because(LSS, name, &at(field), value, why.clone());
                }
                continue;
            }
            let mut out = json!({"name": pool_name});
            for (field, value) in pool.as_object().into_iter().flatten().filter(|(_, p)| is_set(p)) {
                let path = at(field);
                match (list.as_str(), field.as_str()) {
                    (_, "name") => ledger.converted(LSS, name, &path, value),
                    ("lvmPools", "volumeGroup") => {
                        out["lvmPool"] = json!({"volumeGroup": value});
                        ledger.converted(LSS, name, &path, value);
                    }
                    ("lvmThinPools", "volumeGroup") => {
                        out["lvmThinPool"]["volumeGroup"] = value.clone();
                        ledger.converted(LSS, name, &path, value);
                    }
                    ("lvmThinPools", "thinVolume") => {
                        out["lvmThinPool"]["thinPool"] = value.clone();
                        ledger.converted(LSS, name, &path, value);
                    }
                    ("zfsPools", "zPool") => {
                        let kind = if pool.get("thin") == Some(&Value::Bool(true)) {
                            "zfsThinPool"
                        } else {
                            "zfsPool"
                        };
                        out[kind] = json!({"zPool": value});
                        ledger.converted(LSS, name, &path, value);
                    }
                    ("zfsPools", "thin") => ledger.converted(LSS, name, &path, value),
                    ("lvmPools" | "lvmThinPools", "devicePaths") => {
                        out["source"] = json!({"hostDevices": value});
                        ledger.converted(LSS, name, &path, value);
                    }
                    _ => ledger.not_converted(LSS, name, &path, value),
                }
            }
            // the schema requires a volume group or zpool; without one v2 could do nothing with it
            if ["lvmPool", "lvmThinPool", "zfsPool", "zfsThinPool"]
                .iter()
                .any(|k| out.get(k).is_some())
            {
                pools.push(out);
            }
        }
    }
}
