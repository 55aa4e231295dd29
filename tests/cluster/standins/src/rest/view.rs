//! What LINSTOR's REST API shows of a database: nodes, storage pools and resources with their
//! volumes, derived from the tables (NODES, NODE_NET_INTERFACES, NODE_STOR_POOL,
//! STOR_POOL_DEFINITIONS, RESOURCE_DEFINITIONS, RESOURCES, VOLUMES, VOLUME_DEFINITIONS, the layer
//! tables and PROPS_CONTAINERS), with the same conventions as the simulated cluster's REST view.
//! Rows that refer to missing objects are left out and reported as problems: what a controller
//! loading a partial database logs as "could not be restored" (linstor-server#415).

use std::collections::BTreeMap;

use linstor_migrator::linstor::export::{ExportDocument, Row};
use linstor_migrator::linstor::rest::{Node, Resource, StoragePool, Volume, VolumeState};
use serde_json::{Value, json};

use crate::backend::BackendContent;

/// Table name -> rows.
pub type Tables = BTreeMap<String, Vec<Row>>;

/// The tables of an export.
pub fn doc_tables(doc: &ExportDocument) -> Tables {
    doc.tables
        .iter()
        .map(|t| (t.name.clone(), t.data.clone()))
        .collect()
}

/// The REST API's view of a database and what did not load.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DatabaseView {
    pub nodes: Vec<Node>,
    pub storage_pools: Vec<StoragePool>,
    pub resources: Vec<Resource>,
    /// One message per object that could not be restored (empty: the database is whole).
    pub problems: Vec<String>,
}

/// KiB in a GiB.
const GIB_KIB: i64 = 1024 * 1024;
/// At most this many problems are listed; a partial import can leave thousands.
const MAX_PROBLEMS: usize = 50;

fn rows<'a>(t: &'a Tables, table: &str) -> &'a [Row] {
    t.get(table).map(Vec::as_slice).unwrap_or_default()
}

fn s(row: &Row, col: &str) -> String {
    match row.get(col) {
        Some(Value::String(v)) => v.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn n(row: &Row, col: &str) -> i64 {
    row.get(col).and_then(Value::as_i64).unwrap_or_default()
}

/// Derives the view; `problems` lists what refers to missing objects.
pub fn derive(t: &Tables) -> DatabaseView {
    let mut d = Deriver {
        t,
        problems: Vec::new(),
        props: props_index(t),
    };
    let node_dsp: BTreeMap<String, String> = rows(t, "NODES")
        .iter()
        .map(|r| (s(r, "node_name"), s(r, "node_dsp_name")))
        .collect();
    let pool_dsp: BTreeMap<String, String> = rows(t, "STOR_POOL_DEFINITIONS")
        .iter()
        .map(|r| (s(r, "pool_name"), s(r, "pool_dsp_name")))
        .collect();
    // first: the most telling problem must survive the truncation below
    if rows(t, "SEC_ROLES").is_empty() {
        d.problem("The database could not be restored: table SEC_ROLES is empty".into());
    }
    let nodes = d.nodes(&node_dsp);
    let storage_pools = d.storage_pools(&node_dsp, &pool_dsp);
    let resources = d.resources(&node_dsp, &pool_dsp);
    let mut problems = d.problems;
    if problems.len() > MAX_PROBLEMS {
        let more = problems.len() - MAX_PROBLEMS;
        problems.truncate(MAX_PROBLEMS);
        problems.push(format!("... and {more} more objects could not be restored"));
    }
    DatabaseView {
        nodes,
        storage_pools,
        resources,
        problems,
    }
}

/// The view of the `k8s` backend: an empty backend loads as nothing, with a problem.
pub fn derive_k8s(content: &BackendContent) -> DatabaseView {
    if content.tables.values().all(Vec::is_empty) {
        return DatabaseView {
            problems: vec![
                "The database could not be restored: the k8s backend holds no LINSTOR data".into(),
            ],
            ..DatabaseView::default()
        };
    }
    derive(&content.tables)
}

fn props_index(t: &Tables) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for r in rows(t, "PROPS_CONTAINERS") {
        out.entry(s(r, "props_instance"))
            .or_default()
            .insert(s(r, "prop_key"), s(r, "prop_value"));
    }
    out
}

struct Deriver<'a> {
    t: &'a Tables,
    problems: Vec<String>,
    props: BTreeMap<String, BTreeMap<String, String>>,
}

impl Deriver<'_> {
    fn problem(&mut self, message: String) {
        self.problems.push(message);
    }

    fn missing(&mut self, what: &str, key: &str, refers: &str) {
        self.problem(format!(
            "{what} {key:?} could not be restored: it refers to the missing {refers}"
        ));
    }

    fn props(&self, instance: &str) -> BTreeMap<String, String> {
        self.props.get(instance).cloned().unwrap_or_default()
    }

    fn nodes(&mut self, node_dsp: &BTreeMap<String, String>) -> Vec<Node> {
        let mut interfaces: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for i in rows(self.t, "NODE_NET_INTERFACES") {
            let node = s(i, "node_name");
            if !node_dsp.contains_key(&node) {
                self.missing(
                    "Network interface",
                    &format!("{node}:{}", s(i, "node_net_name")),
                    &format!("node {node}"),
                );
                continue;
            }
            interfaces.entry(node).or_default().push(json!({
                "name": s(i, "node_net_dsp_name"),
                "address": s(i, "inet_address"),
                "satellite_port": n(i, "stlt_conn_port"),
                "satellite_encryption_type": s(i, "stlt_conn_encr_type"),
                "is_active": true,
                "uuid": s(i, "uuid"),
            }));
        }
        rows(self.t, "NODES")
            .iter()
            .map(|r| {
                let name = s(r, "node_name");
                Node {
                    name: s(r, "node_dsp_name"),
                    node_type: node_type(n(r, "node_type")).into(),
                    flags: Vec::new(),
                    props: self.props(&format!("/NODES/{name}")),
                    net_interfaces: interfaces.remove(&name).unwrap_or_default(),
                    connection_status: "ONLINE".into(),
                    uuid: s(r, "uuid"),
                }
            })
            .collect()
    }

    fn storage_pools(
        &mut self,
        node_dsp: &BTreeMap<String, String>,
        pool_dsp: &BTreeMap<String, String>,
    ) -> Vec<StoragePool> {
        let mut out = Vec::new();
        for r in rows(self.t, "NODE_STOR_POOL") {
            let (node, pool) = (s(r, "node_name"), s(r, "pool_name"));
            let key = format!("{node}:{pool}");
            let Some(node_name) = node_dsp.get(&node) else {
                self.missing("Storage pool", &key, &format!("node {node}"));
                continue;
            };
            let Some(pool_name) = pool_dsp.get(&pool) else {
                self.missing("Storage pool", &key, &format!("storage pool definition {pool}"));
                continue;
            };
            let kind = s(r, "driver_name");
            let (free, total) = if kind == "DISKLESS" {
                (i64::MAX, i64::MAX)
            } else {
                let total = 100 * GIB_KIB;
                (total - 9 * GIB_KIB, total)
            };
            out.push(StoragePool {
                storage_pool_name: pool_name.clone(),
                node_name: node_name.clone(),
                provider_kind: kind,
                free_capacity: Some(free),
                total_capacity: Some(total),
                props: self.props(&format!("/STOR_POOLS/{node}/{pool}")),
                uuid: s(r, "uuid"),
            });
        }
        out
    }

    fn resources(
        &mut self,
        node_dsp: &BTreeMap<String, String>,
        pool_dsp: &BTreeMap<String, String>,
    ) -> Vec<Resource> {
        let t = self.t;
        let rd_dsp: BTreeMap<String, String> = rows(t, "RESOURCE_DEFINITIONS")
            .iter()
            .filter(|r| s(r, "snapshot_name").is_empty())
            .map(|r| (s(r, "resource_name"), s(r, "resource_dsp_name")))
            .collect();
        let vd_size: BTreeMap<(String, i64), i64> = rows(t, "VOLUME_DEFINITIONS")
            .iter()
            .filter(|r| s(r, "snapshot_name").is_empty())
            .map(|r| ((s(r, "resource_name"), n(r, "vlm_nr")), n(r, "vlm_size")))
            .collect();
        let minors: BTreeMap<(String, i64), i64> = rows(t, "LAYER_DRBD_VOLUME_DEFINITIONS")
            .iter()
            .filter(|r| s(r, "snapshot_name").is_empty())
            .map(|r| ((s(r, "resource_name"), n(r, "vlm_nr")), n(r, "vlm_minor_nr")))
            .collect();
        let storage_layer: BTreeMap<(String, String), i64> = rows(t, "LAYER_RESOURCE_IDS")
            .iter()
            .filter(|l| s(l, "snapshot_name").is_empty() && s(l, "layer_resource_kind") == "STORAGE")
            .map(|l| {
                (
                    (s(l, "node_name"), s(l, "resource_name")),
                    n(l, "layer_resource_id"),
                )
            })
            .collect();
        let storage_vlm: BTreeMap<(i64, i64), &Row> = rows(t, "LAYER_STORAGE_VOLUMES")
            .iter()
            .map(|l| ((n(l, "layer_resource_id"), n(l, "vlm_nr")), l))
            .collect();

        let mut index: BTreeMap<(String, String), usize> = BTreeMap::new();
        let mut out: Vec<Resource> = Vec::new();
        for r in rows(t, "RESOURCES")
            .iter()
            .filter(|r| s(r, "snapshot_name").is_empty())
        {
            let (node, rsc) = (s(r, "node_name"), s(r, "resource_name"));
            let key = format!("{node}:{rsc}");
            let Some(node_name) = node_dsp.get(&node) else {
                self.missing("Resource", &key, &format!("node {node}"));
                continue;
            };
            let Some(rsc_name) = rd_dsp.get(&rsc) else {
                self.missing("Resource", &key, &format!("resource definition {rsc}"));
                continue;
            };
            let diskless = n(r, "resource_flags") & 4 != 0;
            index.insert((node.clone(), rsc.clone()), out.len());
            out.push(Resource {
                name: rsc_name.clone(),
                node_name: node_name.clone(),
                flags: if diskless {
                    vec!["DRBD_DISKLESS".into(), "TIE_BREAKER".into()]
                } else {
                    Vec::new()
                },
                props: self.props(&format!("/RSCS/{node}/{rsc}")),
                uuid: s(r, "uuid"),
                volumes: Vec::new(),
            });
        }
        for v in rows(t, "VOLUMES")
            .iter()
            .filter(|v| s(v, "snapshot_name").is_empty())
        {
            let (node, rsc, nr) = (s(v, "node_name"), s(v, "resource_name"), n(v, "vlm_nr"));
            let key = format!("{node}:{rsc}:{nr}");
            let Some(&at) = index.get(&(node.clone(), rsc.clone())) else {
                self.missing("Volume", &key, &format!("resource {rsc} on node {node}"));
                continue;
            };
            let Some(&size) = vd_size.get(&(rsc.clone(), nr)) else {
                self.missing("Volume", &key, &format!("volume definition {rsc}/{nr}"));
                continue;
            };
            let storage = storage_layer
                .get(&(node.clone(), rsc.clone()))
                .and_then(|id| storage_vlm.get(&(*id, nr)));
            let pool = storage.map(|l| s(l, "stor_pool_name")).unwrap_or_default();
            let resource = &mut out[at];
            let diskless = resource.flags.iter().any(|f| f == "DRBD_DISKLESS");
            resource.volumes.push(Volume {
                volume_number: nr as i32,
                storage_pool_name: pool_dsp.get(&pool).cloned().unwrap_or(pool),
                provider_kind: storage.map(|l| s(l, "provider_kind")).unwrap_or_default(),
                device_path: minors.get(&(rsc.clone(), nr)).map(|m| format!("/dev/drbd{m}")),
                allocated_size_kib: Some(if diskless { 0 } else { size / 3 }),
                usable_size_kib: Some(size),
                state: VolumeState {
                    disk_state: Some(if diskless { "Diskless" } else { "UpToDate" }.into()),
                },
            });
        }
        out
    }
}

fn node_type(code: i64) -> &'static str {
    match code {
        1 => "CONTROLLER",
        2 => "SATELLITE",
        3 => "COMBINED",
        4 => "AUXILIARY",
        5 => "REMOTE_SPDK",
        6 => "EBS_TARGET",
        _ => "UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{Preset, generate};

    #[test]
    fn a_whole_database_gives_a_whole_view() {
        let view = derive(&doc_tables(&generate(Preset::Piraeus)));
        assert!(view.problems.is_empty(), "{:?}", view.problems);
        assert_eq!(view.nodes.len(), 4);
        assert_eq!(view.nodes[0].node_type, "SATELLITE");
        assert_eq!(view.nodes[0].net_interfaces.len(), 1);
        assert!(
            view.nodes
                .iter()
                .all(|n| n.name.starts_with("k8s-worker-") && !n.props.is_empty())
        );
        assert_eq!(view.storage_pools.len(), 8);
        assert!(
            view.storage_pools
                .iter()
                .any(|p| p.storage_pool_name == "lvm-thin" && p.provider_kind == "LVM_THIN")
        );
        assert_eq!(view.resources.len(), 18 * 3);
        for r in &view.resources {
            assert!(r.name.starts_with("pvc-"), "{}", r.name);
            assert_eq!(r.volumes.len(), 1, "{}", r.name);
            let v = &r.volumes[0];
            assert!(v.usable_size_kib.unwrap_or_default() > 0);
            assert!(
                v.device_path
                    .as_deref()
                    .is_some_and(|d| d.starts_with("/dev/drbd"))
            );
            let diskless = r.flags.iter().any(|f| f == "DRBD_DISKLESS");
            assert_eq!(
                v.storage_pool_name,
                if diskless {
                    "DfltDisklessStorPool"
                } else {
                    "lvm-thin"
                }
            );
        }
    }

    #[test]
    fn a_partial_database_reports_what_could_not_be_restored() {
        let mut tables = doc_tables(&generate(Preset::Piraeus));
        tables.remove("RESOURCE_DEFINITIONS");
        tables.remove("SEC_ROLES");
        let view = derive(&tables);
        assert_eq!(view.nodes.len(), 4);
        assert!(view.resources.is_empty());
        assert!(
            view.problems
                .iter()
                .any(|p| p.starts_with("Resource") && p.contains("could not be restored"))
        );
        assert!(view.problems.iter().any(|p| p.contains("SEC_ROLES")));
        assert!(view.problems.len() <= MAX_PROBLEMS + 1);
        assert!(view.problems.last().unwrap().contains("more objects"));
    }

    #[test]
    fn an_empty_k8s_backend_is_one_problem() {
        let view = derive_k8s(&BackendContent::default());
        assert!(view.nodes.is_empty());
        assert_eq!(view.problems.len(), 1);
        assert!(view.problems[0].contains("could not be restored"));
    }
}
