//! The snapshot of the cluster's state that LINSTOR's REST API shows (nodes, storage pools,
//! resources with volumes), taken before and after a migration and compared on identity fields
//! only: what must not change when only the database's backend does.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::rest::{LinstorApi, Node, Resource, RestError, StoragePool};

/// Nodes, storage pools and resources with volumes at one moment (step 3 and step 11).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct ClusterSnapshot {
    pub taken_at_ms: i64,
    pub controller_version: Option<String>,
    pub nodes: Vec<Node>,
    pub storage_pools: Vec<StoragePool>,
    pub resources: Vec<Resource>,
}

/// Takes a [`ClusterSnapshot`] through `api`.
pub async fn take_snapshot(api: &dyn LinstorApi) -> Result<ClusterSnapshot, RestError> {
    let version = api.version().await?;
    let (nodes, storage_pools, resources) =
        tokio::try_join!(api.nodes(), api.storage_pools(), api.resources())?;
    Ok(ClusterSnapshot {
        taken_at_ms: chrono::Utc::now().timestamp_millis(),
        controller_version: Some(version.version),
        nodes,
        storage_pools,
        resources,
    })
}

/// The result of comparing two snapshots on identity fields.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct SnapshotComparison {
    pub nodes: usize,
    pub storage_pools: usize,
    pub resources: usize,
    pub volumes: usize,
    /// Human-readable differences; empty when equal.
    pub differences: Vec<String>,
    /// Changes that are expected and not differences: the Piraeus operator registers every
    /// controller pod as a node of type `CONTROLLER` named after the pod and deletes the node of a
    /// pod that is gone (about every 10 s), so a restarted controller swaps these nodes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expected_changes: Vec<String>,
}

impl SnapshotComparison {
    pub fn is_equal(&self) -> bool {
        self.differences.is_empty()
    }
}

/// The LINSTOR node type Piraeus Operator v1 registers its controller pods as.
pub const CONTROLLER_NODE_TYPE: &str = "CONTROLLER";

/// The CONTROLLER nodes of a snapshot, by name.
fn controller_nodes(s: &ClusterSnapshot) -> std::collections::BTreeSet<String> {
    s.nodes
        .iter()
        .filter(|n| n.node_type.eq_ignore_ascii_case(CONTROLLER_NODE_TYPE))
        .map(|n| n.name.clone())
        .collect()
}

/// Compares identity fields (names, types, nodes, pools, volume numbers, sizes); ignores live
/// fields (connection status, free capacity, disk state, device paths). The operator's
/// CONTROLLER nodes (one per controller pod, named after it) are not compared: that the old pod's
/// node went and the new pod's came is expected after a restart and listed in `expected_changes`.
pub fn compare_snapshots(before: &ClusterSnapshot, after: &ClusterSnapshot) -> SnapshotComparison {
    let (gone_ctl, new_ctl) = (controller_nodes(before), controller_nodes(after));
    let mut expected_changes = Vec::new();
    let went: Vec<&String> = gone_ctl.difference(&new_ctl).collect();
    let came: Vec<&String> = new_ctl.difference(&gone_ctl).collect();
    if !went.is_empty() || !came.is_empty() {
        expected_changes.push(format!(
            "the operator's CONTROLLER nodes changed with the controller pods: {} gone, {} new \
             (Piraeus registers each controller pod as a node and removes the node of a pod that is gone)",
            if went.is_empty() {
                "none".to_string()
            } else {
                format!("{went:?}")
            },
            if came.is_empty() {
                "none".to_string()
            } else {
                format!("{came:?}")
            },
        ));
    }
    let skip: std::collections::BTreeSet<String> = gone_ctl.union(&new_ctl).cloned().collect();
    let mut cmp = compare_identities(before, after, &skip);
    cmp.expected_changes = expected_changes;
    cmp
}

/// Compares `before` and `after` without the CONTROLLER nodes in `skip` (and anything placed on
/// them).
fn compare_identities(
    before: &ClusterSnapshot,
    after: &ClusterSnapshot,
    skip: &std::collections::BTreeSet<String>,
) -> SnapshotComparison {
    fn diff<K: Ord + std::fmt::Debug + Clone, V: PartialEq + std::fmt::Debug>(
        what: &str,
        a: BTreeMap<K, V>,
        b: BTreeMap<K, V>,
        out: &mut Vec<String>,
    ) {
        for (k, va) in &a {
            match b.get(k) {
                None => out.push(format!("{what} {k:?} is missing after the migration")),
                Some(vb) if vb != va => out.push(format!("{what} {k:?} changed: {va:?} -> {vb:?}")),
                _ => {}
            }
        }
        for k in b.keys().filter(|k| !a.contains_key(*k)) {
            out.push(format!("{what} {k:?} appeared after the migration"));
        }
    }
    let nodes = |s: &ClusterSnapshot| {
        s.nodes
            .iter()
            .filter(|n| !skip.contains(&n.name))
            .map(|n| (n.name.clone(), n.node_type.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    let pools = |s: &ClusterSnapshot| {
        s.storage_pools
            .iter()
            .filter(|p| !skip.contains(&p.node_name))
            .map(|p| {
                (
                    (p.node_name.clone(), p.storage_pool_name.clone()),
                    (p.provider_kind.clone(), p.total_capacity),
                )
            })
            .collect::<BTreeMap<_, _>>()
    };
    let resources = |s: &ClusterSnapshot| {
        s.resources
            .iter()
            .filter(|r| !skip.contains(&r.node_name))
            .map(|r| ((r.name.clone(), r.node_name.clone()), r.volumes.len()))
            .collect::<BTreeMap<_, _>>()
    };
    let volumes = |s: &ClusterSnapshot| {
        s.resources
            .iter()
            .filter(|r| !skip.contains(&r.node_name))
            .flat_map(|r| {
                r.volumes.iter().map(|v| {
                    (
                        (r.name.clone(), r.node_name.clone(), v.volume_number),
                        (
                            v.storage_pool_name.clone(),
                            v.provider_kind.clone(),
                            v.usable_size_kib,
                        ),
                    )
                })
            })
            .collect::<BTreeMap<_, _>>()
    };
    let mut differences = Vec::new();
    let (nb, pb, rb, vb) = (nodes(before), pools(before), resources(before), volumes(before));
    let counts = (nb.len(), pb.len(), rb.len(), vb.len());
    diff("node", nb, nodes(after), &mut differences);
    diff("storage pool", pb, pools(after), &mut differences);
    diff("resource", rb, resources(after), &mut differences);
    diff("volume", vb, volumes(after), &mut differences);
    SnapshotComparison {
        nodes: counts.0,
        storage_pools: counts.1,
        resources: counts.2,
        volumes: counts.3,
        differences,
        expected_changes: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linstor::rest::{Volume, VolumeState};

    fn snap() -> ClusterSnapshot {
        ClusterSnapshot {
            taken_at_ms: 1,
            controller_version: Some("1.33.3".into()),
            nodes: vec![Node {
                name: "n1".into(),
                node_type: "SATELLITE".into(),
                flags: vec![],
                props: BTreeMap::new(),
                net_interfaces: vec![],
                connection_status: "ONLINE".into(),
                uuid: "u".into(),
            }],
            storage_pools: vec![StoragePool {
                storage_pool_name: "lvm-thin".into(),
                node_name: "n1".into(),
                provider_kind: "LVM_THIN".into(),
                free_capacity: Some(10),
                total_capacity: Some(100),
                props: BTreeMap::new(),
                uuid: "p".into(),
            }],
            resources: vec![Resource {
                name: "pvc-1".into(),
                node_name: "n1".into(),
                flags: vec![],
                uuid: "r".into(),
                volumes: vec![Volume {
                    volume_number: 0,
                    storage_pool_name: "lvm-thin".into(),
                    provider_kind: "LVM_THIN".into(),
                    device_path: Some("/dev/drbd1000".into()),
                    allocated_size_kib: Some(5),
                    usable_size_kib: Some(1048576),
                    state: VolumeState {
                        disk_state: Some("UpToDate".into()),
                    },
                }],
            }],
        }
    }

    #[test]
    fn live_fields_are_ignored() {
        let before = snap();
        let mut after = snap();
        after.nodes[0].connection_status = "OFFLINE".into();
        after.storage_pools[0].free_capacity = Some(1);
        after.resources[0].volumes[0].state.disk_state = Some("Outdated".into());
        after.resources[0].volumes[0].allocated_size_kib = Some(7);
        let cmp = compare_snapshots(&before, &after);
        assert!(cmp.is_equal(), "{:?}", cmp.differences);
        assert_eq!(
            (cmp.nodes, cmp.storage_pools, cmp.resources, cmp.volumes),
            (1, 1, 1, 1)
        );
    }

    #[test]
    fn the_operators_controller_node_swap_is_expected() {
        let mut before = snap();
        let satellite = before.nodes[0].clone();
        let ctl = |name: &str| Node {
            name: name.into(),
            node_type: "CONTROLLER".into(),
            ..satellite.clone()
        };
        before.nodes.push(ctl("piraeus-op-cs-controller-7d9f8-aaaaa"));
        let mut after = snap();
        after.nodes.push(ctl("piraeus-op-cs-controller-6c4b2-bbbbb"));
        let cmp = compare_snapshots(&before, &after);
        assert!(cmp.is_equal(), "{:?}", cmp.differences);
        assert_eq!(cmp.nodes, 1, "satellites compared, controller nodes not");
        assert_eq!(cmp.expected_changes.len(), 1);
        assert!(
            cmp.expected_changes[0].contains("7d9f8-aaaaa")
                && cmp.expected_changes[0].contains("6c4b2-bbbbb")
        );
        // the old node not deleted yet, the new one not registered yet: still expected
        let cmp = compare_snapshots(&before, &snap());
        assert!(cmp.is_equal() && cmp.expected_changes.len() == 1);
        // a satellite that disappears is still a difference
        let mut after = snap();
        after.nodes.clear();
        after.nodes.push(ctl("piraeus-op-cs-controller-6c4b2-bbbbb"));
        let cmp = compare_snapshots(&before, &after);
        assert!(
            cmp.differences.iter().any(|d| d.contains("\"n1\" is missing")),
            "{:?}",
            cmp.differences
        );
    }

    #[test]
    fn identity_changes_are_reported() {
        let before = snap();
        let mut after = snap();
        after.resources[0].volumes[0].usable_size_kib = Some(1);
        after.nodes.push(Node {
            name: "n2".into(),
            ..before.nodes[0].clone()
        });
        after.storage_pools.clear();
        let cmp = compare_snapshots(&before, &after);
        assert_eq!(cmp.differences.len(), 3, "{:?}", cmp.differences);
        assert!(
            cmp.differences
                .iter()
                .any(|d| d.contains("n2") && d.contains("appeared"))
        );
        assert!(
            cmp.differences
                .iter()
                .any(|d| d.starts_with("storage pool") && d.contains("missing"))
        );
        assert!(
            cmp.differences
                .iter()
                .any(|d| d.starts_with("volume") && d.contains("changed"))
        );
    }
}
