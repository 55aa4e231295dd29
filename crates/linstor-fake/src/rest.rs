//! The LINSTOR REST API's views of a database, in the shapes each release answers with
//! (recorded: `tests/fixtures/linstor-<version>/rest`): `/v1/controller/version`, `/v1/nodes`,
//! `/v1/view/storage-pools`, `/v1/view/resources`, as JSON. Display names come from the `*_DSP_*`
//! columns, properties from `PROPS_CONTAINERS` under the release's instance names (`/NODES/<N>`,
//! `/STOR_POOLS/<N>/<P>` or 1.25.1's `/STORPOOLCONF/<N>/<P>`, ...), node types from their codes.
//! Whether the satellites are connected is the caller's (`online`): offline satellites show what
//! the recording shows (OFFLINE, the providers a controller knows without a satellite, which the
//! release's facts list, a "No active connection" report on every pool).

use std::collections::{BTreeMap, HashMap};

use linstor_model::export::Row;
use serde_json::{Value, json};

use crate::Release;

/// Table name -> rows.
pub type Tables = BTreeMap<String, Vec<Row>>;

/// `/v1/controller/version` of a controller of LINSTOR `version`, built as `release`'s recorded
/// build.
pub fn controller_version(release: Release, version: &str) -> Value {
    let f = release.facts().rest;
    json!({"version": version, "git_hash": f.git_hash, "build_time": f.build_time,
           "rest_api_version": f.rest_api_version})
}

/// The rows of `table` (none when it is missing).
pub fn rows<'a>(t: &'a Tables, table: &str) -> &'a [Row] {
    t.get(table).map(Vec::as_slice).unwrap_or_default()
}

/// A column of a row as text (empty when null or missing).
pub fn s(row: &Row, col: &str) -> String {
    match row.get(col) {
        Some(Value::String(v)) => v.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn n(row: &Row, col: &str) -> i64 {
    row.get(col).and_then(Value::as_i64).unwrap_or_default()
}

/// Properties of one props instance.
pub fn props(t: &Tables, instance: &str) -> BTreeMap<String, String> {
    rows(t, "PROPS_CONTAINERS")
        .iter()
        .filter(|r| s(r, "props_instance") == instance)
        .map(|r| (s(r, "prop_key"), s(r, "prop_value")))
        .collect()
}

/// LINSTOR's node type names by code.
pub fn node_type(code: i64) -> &'static str {
    match code {
        1 => "CONTROLLER",
        2 => "SATELLITE",
        3 => "COMBINED",
        4 => "AUXILIARY",
        5 => "OPENFLEX_TARGET",
        6 => "REMOTE_SPDK",
        7 => "EBS_TARGET",
        _ => "UNKNOWN",
    }
}

fn not_yet(entries: &[(&str, usize)]) -> Value {
    entries
        .iter()
        .map(|(name, n)| {
            (
                name.to_string(),
                json!(vec!["No information from satellite yet"; *n]),
            )
        })
        .collect::<serde_json::Map<String, Value>>()
        .into()
}

/// `/v1/nodes`.
pub fn nodes(release: Release, t: &Tables, online: bool) -> Vec<Value> {
    let facts = release.facts();
    rows(t, "NODES")
        .iter()
        .map(|r| {
            let name = s(r, "node_name");
            let interfaces: Vec<Value> = rows(t, "NODE_NET_INTERFACES")
                .iter()
                .filter(|i| s(i, "node_name") == name)
                .map(|i| {
                    let mut o = json!({"name": s(i, "node_net_dsp_name"), "address": s(i, "inet_address")});
                    // the satellite connection's interface carries port and encryption, and is
                    // the active one
                    let active = i.contains_key("stlt_conn_port");
                    if active {
                        o["satellite_port"] = json!(n(i, "stlt_conn_port"));
                        o["satellite_encryption_type"] = json!(s(i, "stlt_conn_encr_type"));
                    }
                    o["is_active"] = json!(active);
                    o["uuid"] = json!(s(i, "uuid"));
                    o
                })
                .collect();
            let mut node = json!({
                "name": s(r, "node_dsp_name"),
                "type": node_type(n(r, "node_type")),
                "props": props(t, &format!("{}{name}", facts.props.nodes)),
                "net_interfaces": interfaces,
                "connection_status": if online { "ONLINE" } else { "OFFLINE" },
                "uuid": s(r, "uuid"),
            });
            if online {
                node["storage_providers"] = json!([
                    "DISKLESS",
                    "LVM",
                    "LVM_THIN",
                    "FILE",
                    "FILE_THIN",
                    "ZFS",
                    "ZFS_THIN"
                ]);
                node["resource_layers"] =
                    json!(["DRBD", "LUKS", "NVME", "WRITECACHE", "CACHE", "BCACHE", "STORAGE"]);
            } else {
                node["storage_providers"] = json!(facts.rest.offline_providers);
                node["resource_layers"] = json!(["STORAGE"]);
                node["unsupported_providers"] = not_yet(facts.rest.offline_unsupported_providers);
                node["unsupported_layers"] = not_yet(facts.rest.offline_unsupported_layers);
            }
            node
        })
        .collect()
}

fn dsp(t: &Tables, table: &str, key: &str, dsp: &str, value: &str) -> Option<String> {
    rows(t, table)
        .iter()
        .find(|r| s(r, key) == value)
        .map(|r| s(r, dsp))
}

/// `/v1/view/storage-pools` (by pool, then node); `at` is the time of the offline reports
/// (RFC 3339).
pub fn storage_pools(release: Release, t: &Tables, online: bool, at: &str) -> Vec<Value> {
    let stor_pools = release.facts().props.stor_pools;
    // the controller lists pools by pool, then node
    let mut pools: Vec<&Row> = rows(t, "NODE_STOR_POOL").iter().collect();
    pools.sort_by_key(|r| (s(r, "pool_name"), s(r, "node_name")));
    pools
        .into_iter()
        .filter_map(|r| {
            let node = dsp(t, "NODES", "node_name", "node_dsp_name", &s(r, "node_name"))?;
            let pool = s(r, "pool_name");
            let name = dsp(t, "STOR_POOL_DEFINITIONS", "pool_name", "pool_dsp_name", &pool)?;
            let kind = s(r, "driver_name");
            let diskless = kind == "DISKLESS";
            let mut p = json!({"storage_pool_name": name, "node_name": node, "provider_kind": kind});
            let props = props(t, &format!("{stor_pools}{}/{pool}", s(r, "node_name")));
            if !props.is_empty() {
                p["props"] = json!(props);
            }
            p["static_traits"] = json!({"SupportsSnapshots": if diskless { "false" } else { "true" }});
            // a diskless pool has no capacities at all; others get them from their satellite
            if !diskless && online {
                p["free_capacity"] = json!(96_636_764_i64);
                p["total_capacity"] = json!(104_857_600_i64);
            }
            p["free_space_mgr_name"] = json!(s(r, "free_space_mgr_dsp_name"));
            p["uuid"] = json!(s(r, "uuid"));
            if !online {
                p["reports"] = json!([{
                    "ret_code": -9223372036854774806_i64,
                    "message": format!("No active connection to satellite '{node}'"),
                    "details": "The controller is trying to (re-) establish a connection to the satellite. The controller stored the changes and as soon the satellite is connected, it will receive this update.",
                    "created_at": at,
                }]);
            }
            p["supports_snapshots"] = json!(!diskless);
            p["external_locking"] = r.get("external_locking").cloned().unwrap_or(json!(false));
            Some(p)
        })
        .collect()
}

/// The first row of `table` for each key `key(row)` (a lookup built once: the views are asked for
/// at 100k rows, where a scan per resource took minutes).
fn first_by<'a, K: std::hash::Hash + Eq>(
    t: &'a Tables,
    table: &str,
    key: impl Fn(&Row) -> Option<K>,
) -> HashMap<K, &'a Row> {
    let mut out = HashMap::new();
    for r in rows(t, table) {
        if let Some(k) = key(r) {
            out.entry(k).or_insert(r);
        }
    }
    out
}

/// `/v1/view/resources`: resources with their volumes (identity fields and plausible live ones).
pub fn resources(release: Release, t: &Tables, online: bool) -> Vec<Value> {
    let rscs = release.facts().props.rscs;
    let node_dsp = first_by(t, "NODES", |r| Some(s(r, "node_name")));
    let rsc_dsp = first_by(t, "RESOURCE_DEFINITIONS", |r| Some(s(r, "resource_name")));
    let pool_dsp = first_by(t, "STOR_POOL_DEFINITIONS", |r| Some(s(r, "pool_name")));
    let storage_ids = first_by(t, "LAYER_RESOURCE_IDS", |l| {
        (s(l, "layer_resource_kind") == "STORAGE").then(|| (s(l, "node_name"), s(l, "resource_name")))
    });
    let storage_volumes = first_by(t, "LAYER_STORAGE_VOLUMES", |l| {
        Some((n(l, "layer_resource_id"), n(l, "vlm_nr")))
    });
    let definitions = first_by(t, "VOLUME_DEFINITIONS", |d| {
        Some((s(d, "resource_name"), n(d, "vlm_nr")))
    });
    let drbd_definitions = first_by(t, "LAYER_DRBD_VOLUME_DEFINITIONS", |d| {
        Some((s(d, "resource_name"), n(d, "vlm_nr")))
    });
    let mut volumes_of: HashMap<(String, String), Vec<&Row>> = HashMap::new();
    for v in rows(t, "VOLUMES")
        .iter()
        .filter(|v| s(v, "snapshot_name").is_empty())
    {
        volumes_of
            .entry((s(v, "node_name"), s(v, "resource_name")))
            .or_default()
            .push(v);
    }
    let mut props_of: HashMap<String, BTreeMap<String, String>> = HashMap::new();
    for r in rows(t, "PROPS_CONTAINERS") {
        props_of
            .entry(s(r, "props_instance"))
            .or_default()
            .insert(s(r, "prop_key"), s(r, "prop_value"));
    }
    rows(t, "RESOURCES")
        .iter()
        .filter(|r| s(r, "snapshot_name").is_empty())
        .filter_map(|r| {
            let (node, rsc) = (s(r, "node_name"), s(r, "resource_name"));
            let node_dsp = s(node_dsp.get(&node)?, "node_dsp_name");
            let rsc_dsp = s(rsc_dsp.get(&rsc)?, "resource_dsp_name");
            let diskless = n(r, "resource_flags") & 4 != 0;
            let storage_id = storage_ids
                .get(&(node.clone(), rsc.clone()))
                .map(|l| n(l, "layer_resource_id"));
            let volumes: Vec<Value> = volumes_of
                .get(&(node.clone(), rsc.clone()))
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|v| {
                    let nr = n(v, "vlm_nr");
                    let storage = storage_id.and_then(|id| storage_volumes.get(&(id, nr)));
                    let pool = storage.map(|l| s(l, "stor_pool_name")).unwrap_or_default();
                    let size = definitions
                        .get(&(rsc.clone(), nr))
                        .map(|d| n(d, "vlm_size"))
                        .unwrap_or_default();
                    let minor = drbd_definitions.get(&(rsc.clone(), nr)).map(|d| n(d, "vlm_minor_nr"));
                    let state = match (online, diskless) {
                        (false, _) => "Unknown",
                        (true, true) => "Diskless",
                        (true, false) => "UpToDate",
                    };
                    json!({
                        "volume_number": nr,
                        "storage_pool_name": pool_dsp.get(&pool).map(|p| s(p, "pool_dsp_name")).unwrap_or(pool),
                        "provider_kind": storage.map(|l| s(l, "provider_kind")).unwrap_or_default(),
                        "device_path": minor.map(|m| format!("/dev/drbd{m}")),
                        "allocated_size_kib": if diskless { 0 } else { size / 3 },
                        "usable_size_kib": size,
                        "state": {"disk_state": state},
                        "uuid": s(v, "uuid"),
                    })
                })
                .collect();
            let flags: Vec<&str> = if diskless { vec!["DRBD_DISKLESS", "TIE_BREAKER"] } else { vec![] };
            Some(json!({
                "name": rsc_dsp, "node_name": node_dsp, "flags": flags,
                "props": props_of.remove(&format!("{rscs}{node}/{rsc}")).unwrap_or_default(),
                "uuid": s(r, "uuid"), "volumes": volumes,
            }))
        })
        .collect()
}

/// The tables of an export document.
pub fn tables_of(doc: &linstor_model::export::ExportDocument) -> Tables {
    doc.tables
        .iter()
        .map(|t| (t.name.clone(), t.data.clone()))
        .collect()
}
