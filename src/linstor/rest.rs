//! The LINSTOR REST API (REFERENCE.md §5): a narrow trait, a reqwest client, and the snapshot of
//! cluster state taken before and after a migration, compared on identity fields only.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `GET /v1/controller/version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ControllerVersion {
    pub version: String,
    #[serde(default)]
    pub git_hash: String,
    #[serde(default)]
    pub build_time: String,
    #[serde(default)]
    pub rest_api_version: String,
}

/// An element of `GET /v1/nodes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Node {
    pub name: String,
    #[serde(rename = "type")]
    pub node_type: String,
    #[serde(default)]
    pub flags: Vec<String>,
    #[serde(default)]
    pub props: BTreeMap<String, String>,
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub net_interfaces: Vec<serde_json::Value>,
    #[serde(default)]
    pub connection_status: String,
    #[serde(default)]
    pub uuid: String,
}

/// An element of `GET /v1/view/storage-pools`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StoragePool {
    pub storage_pool_name: String,
    pub node_name: String,
    pub provider_kind: String,
    #[serde(default)]
    pub free_capacity: Option<i64>,
    #[serde(default)]
    pub total_capacity: Option<i64>,
    #[serde(default)]
    pub props: BTreeMap<String, String>,
    #[serde(default)]
    pub uuid: String,
}

/// `state` of a volume.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct VolumeState {
    #[serde(default)]
    pub disk_state: Option<String>,
}

/// A volume of a resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Volume {
    pub volume_number: i32,
    #[serde(default)]
    pub storage_pool_name: String,
    #[serde(default)]
    pub provider_kind: String,
    #[serde(default)]
    pub device_path: Option<String>,
    #[serde(default)]
    pub allocated_size_kib: Option<i64>,
    #[serde(default)]
    pub usable_size_kib: Option<i64>,
    #[serde(default)]
    pub state: VolumeState,
}

/// An element of `GET /v1/view/resources`. Its `props` are not read: nothing compares them (the
/// data verification compares every property row), and at 100k rows they were most of a
/// snapshot's memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Resource {
    pub name: String,
    pub node_name: String,
    #[serde(default)]
    pub flags: Vec<String>,
    #[serde(default)]
    pub uuid: String,
    #[serde(default)]
    pub volumes: Vec<Volume>,
}

/// An element of `GET /v1/error-reports`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorReport {
    pub error_time: i64,
    #[serde(default)]
    pub node_name: String,
    #[serde(default)]
    pub filename: String,
    #[serde(default)]
    pub module: String,
    #[serde(default)]
    pub exception: String,
    #[serde(default)]
    pub exception_message: String,
}

/// Errors of the REST client.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    #[error("LINSTOR REST API at {url} is unreachable: {message}")]
    Unreachable { url: String, message: String },
    #[error("LINSTOR REST API {url} answered {status}: {body}")]
    Status { url: String, status: u16, body: String },
    #[error("LINSTOR REST API {url} answered something unreadable: {message}")]
    Decode { url: String, message: String },
}

/// The calls the engine makes.
#[async_trait]
pub trait LinstorApi: Send + Sync {
    /// Where the API is (for messages).
    fn base_url(&self) -> String;
    async fn version(&self) -> Result<ControllerVersion, RestError>;
    async fn nodes(&self) -> Result<Vec<Node>, RestError>;
    async fn storage_pools(&self) -> Result<Vec<StoragePool>, RestError>;
    async fn resources(&self) -> Result<Vec<Resource>, RestError>;
    /// Error reports since `since_ms` (Unix milliseconds).
    async fn error_reports(&self, since_ms: i64) -> Result<Vec<ErrorReport>, RestError>;
}

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

/// Where and how to reach a REST API.
#[derive(Debug, Clone)]
pub struct RestEndpoint {
    pub base_url: String,
    /// PEM client certificate + key, and the CA, for https.
    pub client_identity_pem: Option<Vec<u8>>,
    pub ca_pem: Option<Vec<u8>>,
}

/// The real client over HTTP(S).
pub struct HttpLinstorApi {
    base: String,
    http: reqwest::Client,
}

impl HttpLinstorApi {
    pub fn new(endpoint: RestEndpoint) -> Result<Self, RestError> {
        let base = endpoint.base_url.trim_end_matches('/').to_string();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30));
        let bad = |message: String| RestError::Unreachable {
            url: base.clone(),
            message,
        };
        if let Some(pem) = &endpoint.client_identity_pem {
            let identity =
                reqwest::Identity::from_pem(pem).map_err(|e| bad(format!("client certificate: {e}")))?;
            builder = builder.identity(identity);
        }
        if let Some(ca) = &endpoint.ca_pem {
            for cert in reqwest::Certificate::from_pem_bundle(ca).map_err(|e| bad(format!("CA: {e}")))? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| bad(e.to_string()))?;
        Ok(Self { base, http })
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, RestError> {
        let url = format!("{}{}", self.base, path);
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| RestError::Unreachable {
                url: url.clone(),
                message: error_chain(&e),
            })?;
        let status = resp.status();
        if !status.is_success() {
            let body: String = resp.text().await.unwrap_or_default().chars().take(500).collect();
            return Err(RestError::Status {
                url,
                status: status.as_u16(),
                body,
            });
        }
        resp.json().await.map_err(|e| RestError::Decode {
            url,
            message: e.to_string(),
        })
    }

    /// Pages through a list endpoint with `offset`/`limit`.
    async fn get_all<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<Vec<T>, RestError> {
        const PAGE: usize = 500;
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut all = Vec::new();
        loop {
            let page: Vec<T> = self
                .get(&format!("{path}{sep}offset={}&limit={PAGE}", all.len()))
                .await?;
            let n = page.len();
            all.extend(page);
            if n < PAGE {
                return Ok(all);
            }
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[async_trait]
impl LinstorApi for HttpLinstorApi {
    fn base_url(&self) -> String {
        self.base.clone()
    }
    async fn version(&self) -> Result<ControllerVersion, RestError> {
        self.get("/v1/controller/version").await
    }
    async fn nodes(&self) -> Result<Vec<Node>, RestError> {
        self.get_all("/v1/nodes").await
    }
    async fn storage_pools(&self) -> Result<Vec<StoragePool>, RestError> {
        self.get_all("/v1/view/storage-pools").await
    }
    async fn resources(&self) -> Result<Vec<Resource>, RestError> {
        self.get_all("/v1/view/resources").await
    }
    async fn error_reports(&self, since_ms: i64) -> Result<Vec<ErrorReport>, RestError> {
        self.get_all(&format!("/v1/error-reports?since={since_ms}")).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
