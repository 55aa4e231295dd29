//! The LINSTOR REST views (`/v1/nodes`, `/v1/view/storage-pools`, `/v1/view/resources`)
//! derived from the database tables, with display names, layer data and live-looking fields.

use std::collections::BTreeMap;

use super::rest::Tables;
use crate::linstor::export::Row;
use crate::linstor::rest::{Node, Resource, StoragePool, Volume, VolumeState};

pub(crate) fn rows<'a>(t: &'a Tables, table: &str) -> &'a [Row] {
    t.get(table).map(Vec::as_slice).unwrap_or_default()
}

pub(crate) fn s(row: &Row, col: &str) -> String {
    row.get(col)
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string()
}

pub(crate) fn n(row: &Row, col: &str) -> i64 {
    row.get(col)
        .and_then(serde_json::Value::as_i64)
        .unwrap_or_default()
}

pub(crate) fn props(t: &Tables, instance: &str) -> BTreeMap<String, String> {
    rows(t, "PROPS_CONTAINERS")
        .iter()
        .filter(|r| s(r, "props_instance") == instance)
        .map(|r| (s(r, "prop_key"), s(r, "prop_value")))
        .collect()
}

pub(crate) fn nodes(t: &Tables) -> Vec<Node> {
    rows(t, "NODES")
        .iter()
        .map(|r| {
            let name = s(r, "node_name");
            let net_interfaces = rows(t, "NODE_NET_INTERFACES")
                .iter()
                .filter(|i| s(i, "node_name") == name)
                .map(|i| {
                    serde_json::json!({"name": s(i, "node_net_dsp_name"), "address": s(i, "inet_address"),
                        "satellite_port": n(i, "stlt_conn_port"), "satellite_encryption_type": s(i, "stlt_conn_encr_type"),
                        "is_active": true, "uuid": s(i, "uuid")})
                })
                .collect();
            Node {
                name: s(r, "node_dsp_name"),
                node_type: ["UNKNOWN", "CONTROLLER", "SATELLITE", "COMBINED", "AUXILIARY"]
                    .get(n(r, "node_type") as usize)
                    .unwrap_or(&"UNKNOWN")
                    .to_string(),
                flags: Vec::new(),
                props: props(t, &format!("/NODES/{name}")),
                net_interfaces,
                connection_status: "ONLINE".into(),
                uuid: s(r, "uuid"),
            }
        })
        .collect()
}

fn dsp_of(t: &Tables, table: &str, key_col: &str, dsp_col: &str, value: &str) -> Option<String> {
    rows(t, table)
        .iter()
        .find(|r| s(r, key_col) == value)
        .map(|r| s(r, dsp_col))
}

pub(crate) fn storage_pools(t: &Tables) -> Vec<StoragePool> {
    let live = (chrono::Utc::now().timestamp() % 97) * 1024;
    rows(t, "NODE_STOR_POOL")
        .iter()
        .filter_map(|r| {
            let node = dsp_of(t, "NODES", "node_name", "node_dsp_name", &s(r, "node_name"))?;
            let pool = s(r, "pool_name");
            let name = dsp_of(t, "STOR_POOL_DEFINITIONS", "pool_name", "pool_dsp_name", &pool)?;
            let kind = s(r, "driver_name");
            let (free, total) = if kind == "DISKLESS" {
                (Some(i64::MAX), Some(i64::MAX))
            } else {
                let total = 100 * 1024 * 1024;
                (Some(total - 9 * 1024 * 1024 - live), Some(total))
            };
            Some(StoragePool {
                storage_pool_name: name,
                node_name: node,
                provider_kind: kind,
                free_capacity: free,
                total_capacity: total,
                props: props(t, &format!("/STOR_POOLS/{}/{pool}", s(r, "node_name"))),
                uuid: s(r, "uuid"),
            })
        })
        .collect()
}

pub(crate) fn resources(t: &Tables) -> Vec<Resource> {
    rows(t, "RESOURCES")
        .iter()
        .filter(|r| s(r, "snapshot_name").is_empty())
        .filter_map(|r| {
            let (node, rsc) = (s(r, "node_name"), s(r, "resource_name"));
            let node_dsp = dsp_of(t, "NODES", "node_name", "node_dsp_name", &node)?;
            let rsc_dsp = dsp_of(
                t,
                "RESOURCE_DEFINITIONS",
                "resource_name",
                "resource_dsp_name",
                &rsc,
            )?;
            let flags_bits = n(r, "resource_flags");
            let diskless = flags_bits & 4 != 0;
            let storage_id = rows(t, "LAYER_RESOURCE_IDS")
                .iter()
                .find(|l| {
                    s(l, "node_name") == node
                        && s(l, "resource_name") == rsc
                        && s(l, "layer_resource_kind") == "STORAGE"
                })
                .map(|l| n(l, "layer_resource_id"));
            let volumes = rows(t, "VOLUMES")
                .iter()
                .filter(|v| {
                    s(v, "node_name") == node
                        && s(v, "resource_name") == rsc
                        && s(v, "snapshot_name").is_empty()
                })
                .map(|v| {
                    let nr = n(v, "vlm_nr");
                    let storage = rows(t, "LAYER_STORAGE_VOLUMES")
                        .iter()
                        .find(|l| Some(n(l, "layer_resource_id")) == storage_id && n(l, "vlm_nr") == nr);
                    let pool = storage.map(|l| s(l, "stor_pool_name")).unwrap_or_default();
                    let size = rows(t, "VOLUME_DEFINITIONS")
                        .iter()
                        .find(|d| s(d, "resource_name") == rsc && n(d, "vlm_nr") == nr)
                        .map(|d| n(d, "vlm_size"));
                    let minor = rows(t, "LAYER_DRBD_VOLUME_DEFINITIONS")
                        .iter()
                        .find(|d| s(d, "resource_name") == rsc && n(d, "vlm_nr") == nr)
                        .map(|d| n(d, "vlm_minor_nr"));
                    Volume {
                        volume_number: nr as i32,
                        storage_pool_name: dsp_of(
                            t,
                            "STOR_POOL_DEFINITIONS",
                            "pool_name",
                            "pool_dsp_name",
                            &pool,
                        )
                        .unwrap_or(pool),
                        provider_kind: storage.map(|l| s(l, "provider_kind")).unwrap_or_default(),
                        device_path: minor.map(|m| format!("/dev/drbd{m}")),
                        allocated_size_kib: size.map(|sz| if diskless { 0 } else { sz / 3 }),
                        usable_size_kib: size,
                        state: VolumeState {
                            disk_state: Some(if diskless { "Diskless" } else { "UpToDate" }.into()),
                        },
                    }
                })
                .collect();
            let mut flags = Vec::new();
            if diskless {
                flags.extend(["DRBD_DISKLESS".to_string(), "TIE_BREAKER".to_string()]);
            }
            Some(Resource {
                name: rsc_dsp,
                node_name: node_dsp,
                flags,
                props: props(t, &format!("/RSCS/{node}/{rsc}")),
                uuid: s(r, "uuid"),
                volumes,
            })
        })
        .collect()
}
