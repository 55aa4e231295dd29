//! What the REST stand-in serves of a database: LINSTOR's views of it are `linstor_fake::rest`
//! (replayed against the recorded answers), in the shapes of the controller's LINSTOR release,
//! with the satellites connected, read into the service's REST types. What is the controller's and not a view stays here: rows that refer to
//! missing objects are left out of the views and reported as problems, what a controller loading
//! a partial database logs as "could not be restored" (linstor-server#415).

use std::collections::BTreeSet;

use linstor_fake::Release;
use linstor_fake::rest::{Tables, rows, s};
use linstor_migrator::linstor::export::ExportDocument;
use linstor_migrator::linstor::rest::{Node, Resource, StoragePool};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::backend::BackendContent;

/// The tables of an export.
pub fn doc_tables(doc: &ExportDocument) -> Tables {
    linstor_fake::rest::tables_of(doc)
}

/// The REST API's view of a database and what did not load.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DatabaseView {
    /// The LINSTOR version of the controller that loaded it (its image's).
    pub version: String,
    pub nodes: Vec<Node>,
    pub storage_pools: Vec<StoragePool>,
    pub resources: Vec<Resource>,
    /// One message per object that could not be restored (empty: the database is whole).
    pub problems: Vec<String>,
}

/// At most this many problems are listed; a partial import can leave thousands.
const MAX_PROBLEMS: usize = 50;

/// The fake's JSON answers as the service's client reads them.
fn read<T: DeserializeOwned>(answers: Vec<Value>) -> Vec<T> {
    answers
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect()
}

/// Derives the view a controller of LINSTOR `version` gives; `problems` lists what refers to
/// missing objects.
pub fn derive(version: &str, t: &Tables) -> DatabaseView {
    let release = Release::modelling(version);
    let now = chrono::Utc::now().to_rfc3339();
    DatabaseView {
        version: version.into(),
        nodes: read(linstor_fake::rest::nodes(release, t, true)),
        storage_pools: read(linstor_fake::rest::storage_pools(release, t, true, &now)),
        resources: read(linstor_fake::rest::resources(release, t, true)),
        problems: problems(t),
    }
}

/// The view of the `k8s` backend: an empty backend loads as nothing, with a problem.
pub fn derive_k8s(version: &str, content: &BackendContent) -> DatabaseView {
    if content.tables.values().all(Vec::is_empty) {
        return DatabaseView {
            version: version.into(),
            problems: vec![
                "The database could not be restored: the k8s backend holds no LINSTOR data".into(),
            ],
            ..DatabaseView::default()
        };
    }
    derive(version, &content.tables)
}

/// The values of `cols` of every row of `table` that is not a snapshot's.
fn keys(t: &Tables, table: &str, cols: &[&str]) -> BTreeSet<Vec<String>> {
    rows(t, table)
        .iter()
        .filter(|r| s(r, "snapshot_name").is_empty())
        .map(|r| cols.iter().map(|c| s(r, c)).collect())
        .collect()
}

/// What a controller could not restore: rows whose parent is missing.
fn problems(t: &Tables) -> Vec<String> {
    let mut out = Vec::new();
    // first: the most telling problem must survive the truncation below
    if rows(t, "SEC_ROLES").is_empty() {
        out.push("The database could not be restored: table SEC_ROLES is empty".to_string());
    }
    let nodes = keys(t, "NODES", &["node_name"]);
    let pool_defs = keys(t, "STOR_POOL_DEFINITIONS", &["pool_name"]);
    let rsc_defs = keys(t, "RESOURCE_DEFINITIONS", &["resource_name"]);
    let vlm_defs = keys(t, "VOLUME_DEFINITIONS", &["resource_name", "vlm_nr"]);
    let mut missing = |what: &str, key: String, refers: String| {
        out.push(format!(
            "{what} {key:?} could not be restored: it refers to the missing {refers}"
        ))
    };
    for i in rows(t, "NODE_NET_INTERFACES") {
        let node = s(i, "node_name");
        if !nodes.contains(&vec![node.clone()]) {
            let key = format!("{node}:{}", s(i, "node_net_name"));
            missing("Network interface", key, format!("node {node}"));
        }
    }
    for r in rows(t, "NODE_STOR_POOL") {
        let (node, pool) = (s(r, "node_name"), s(r, "pool_name"));
        let key = format!("{node}:{pool}");
        if !nodes.contains(&vec![node.clone()]) {
            missing("Storage pool", key, format!("node {node}"));
        } else if !pool_defs.contains(&vec![pool.clone()]) {
            missing("Storage pool", key, format!("storage pool definition {pool}"));
        }
    }
    let mut resources = BTreeSet::new();
    for r in rows(t, "RESOURCES")
        .iter()
        .filter(|r| s(r, "snapshot_name").is_empty())
    {
        let (node, rsc) = (s(r, "node_name"), s(r, "resource_name"));
        let key = format!("{node}:{rsc}");
        if !nodes.contains(&vec![node.clone()]) {
            missing("Resource", key, format!("node {node}"));
        } else if !rsc_defs.contains(&vec![rsc.clone()]) {
            missing("Resource", key, format!("resource definition {rsc}"));
        } else {
            resources.insert((node, rsc));
        }
    }
    for v in rows(t, "VOLUMES")
        .iter()
        .filter(|v| s(v, "snapshot_name").is_empty())
    {
        let (node, rsc, nr) = (s(v, "node_name"), s(v, "resource_name"), s(v, "vlm_nr"));
        let key = format!("{node}:{rsc}:{nr}");
        if !resources.contains(&(node.clone(), rsc.clone())) {
            missing("Volume", key, format!("resource {rsc} on node {node}"));
        } else if !vlm_defs.contains(&vec![rsc.clone(), nr.clone()]) {
            missing("Volume", key, format!("volume definition {rsc}/{nr}"));
        }
    }
    if out.len() > MAX_PROBLEMS {
        let more = out.len() - MAX_PROBLEMS;
        out.truncate(MAX_PROBLEMS);
        out.push(format!("... and {more} more objects could not be restored"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{Preset, generate};

    #[test]
    fn a_whole_database_gives_a_whole_view() {
        let view = derive(
            "1.33.3",
            &doc_tables(&generate(Preset::Piraeus, linstor_fake::Release::V1_33_3)),
        );
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
        let mut tables = doc_tables(&generate(Preset::Piraeus, linstor_fake::Release::V1_33_3));
        tables.remove("RESOURCE_DEFINITIONS");
        tables.remove("SEC_ROLES");
        let view = derive("1.33.3", &tables);
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
        let view = derive_k8s("1.25.1", &BackendContent::default());
        assert_eq!(view.version, "1.25.1");
        assert!(view.nodes.is_empty());
        assert_eq!(view.problems.len(), 1);
        assert!(view.problems[0].contains("could not be restored"));
    }
}
