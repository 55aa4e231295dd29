//! The simulated LINSTOR REST API: answers come from the database the Running controller pod
//! started with (its etcd, the shared `k8s` backend, or an empty H2); with no Ready controller
//! pod every call is refused, as with `replicas=0` (REFERENCE.md §2, §5).

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::SimCluster;
use super::faults::Fault;
use super::rest_views::{nodes, resources, rows, s, storage_pools};
use super::state::{Origin, State, key};
use crate::linstor::export::{ExportDocument, Row};
use crate::linstor::rest::{
    ControllerVersion, ErrorReport, LinstorApi, Node, Resource, RestError, StoragePool,
};
use crate::linstor::toml::Backend;

/// Table name -> rows.
pub(crate) type Tables = BTreeMap<String, Vec<Row>>;

pub(crate) fn doc_tables(doc: &ExportDocument) -> Tables {
    doc.tables
        .iter()
        .map(|t| (t.name.clone(), t.data.clone()))
        .collect()
}

/// The rows of the database behind `url` for a controller in namespace `ns`.
pub(crate) fn tables_of(st: &State, ns: &str, url: &str) -> Tables {
    match Backend::classify(url) {
        Backend::Etcd => st
            .etcd_for(url, ns)
            .map(|e| doc_tables(&e.data))
            .unwrap_or_default(),
        // what the controller loads: the exported tables whose CRDs exist
        Backend::K8s => linstor_fake::schema::exported_tables()
            .filter(|t| st.k8s.crds.contains_key(&t.crd_name))
            .map(|t| (t.name.clone(), st.k8s.rows(t)))
            .collect(),
        _ => Tables::new(),
    }
}

/// Why LINSTOR cannot load the `k8s` backend completely (linstor-server#415), if it cannot.
pub(crate) fn load_problem(st: &State, ns: &str, url: &str) -> Option<String> {
    if Backend::classify(url) != Backend::K8s {
        return None;
    }
    let t = tables_of(st, ns, url);
    if t.values().all(Vec::is_empty) {
        return Some("The database could not be restored: the k8s backend holds no LINSTOR data".into());
    }
    let set = |table: &str, cols: &[&str]| -> std::collections::BTreeSet<String> {
        rows(&t, table)
            .iter()
            .map(|r| cols.iter().map(|c| s(r, c)).collect::<Vec<_>>().join(":"))
            .collect()
    };
    let nodes = set("NODES", &["node_name"]);
    let rds = set("RESOURCE_DEFINITIONS", &["resource_name"]);
    let rscs = set("RESOURCES", &["node_name", "resource_name"]);
    let checks: [(&str, &[&str], &std::collections::BTreeSet<String>); 4] = [
        ("RESOURCES", &["node_name"], &nodes),
        ("RESOURCES", &["resource_name"], &rds),
        ("VOLUMES", &["node_name", "resource_name"], &rscs),
        ("LAYER_RESOURCE_IDS", &["node_name", "resource_name"], &rscs),
    ];
    if rows(&t, "SEC_ROLES").is_empty() {
        return Some("The database could not be restored: table SEC_ROLES is empty".into());
    }
    for (table, cols, known) in checks {
        for r in rows(&t, table) {
            let k = cols.iter().map(|c| s(r, c)).collect::<Vec<_>>().join(":");
            if !known.contains(&k) {
                return Some(format!(
                    "The database could not be restored: {table} entry {k:?} refers to a missing object"
                ));
            }
        }
    }
    None
}

/// An error report as the controller writes it.
pub(crate) fn error_report(pod: &str, message: &str) -> ErrorReport {
    let now = chrono::Utc::now().timestamp_millis();
    ErrorReport {
        error_time: now,
        node_name: pod.into(),
        filename: format!("ErrorReport-{:08X}-00000-000000.log", (now / 1000) as u32),
        module: "CONTROLLER".into(),
        exception: "LinStorDBRuntimeException".into(),
        exception_message: message.into(),
    }
}

/// A client of one controller's REST API in the simulated cluster.
pub(crate) struct SimLinstorApi {
    pub sim: SimCluster,
    pub namespace: String,
    pub service: String,
    pub https: bool,
}

/// What the controller behind the Service answers from.
struct Backing {
    tables: Tables,
    version: String,
    deployment: String,
}

impl SimLinstorApi {
    fn url(&self) -> String {
        let (scheme, port) = if self.https {
            ("https", 3371)
        } else {
            ("http", 3370)
        };
        format!("{scheme}://{}.{}.svc:{port}", self.service, self.namespace)
    }

    fn unreachable(&self, message: &str) -> RestError {
        RestError::Unreachable {
            url: self.url(),
            message: message.into(),
        }
    }

    /// Finds the Ready controller behind the Service; `step_call` says whether an injected
    /// Snapshot/VerifyCluster fault may fire on this call.
    fn backing(&self, step_call: bool) -> Result<Backing, RestError> {
        let mut st = self.sim.lock();
        if step_call
            && let Some(step) = st.faults.rest_step()
            && st.faults.take(step, &[Fault::Error]).is_some()
        {
            return Err(self.unreachable("error sending request: operation timed out (simulated fault)"));
        }
        if !st.services.contains_key(&key(&self.namespace, &self.service)) {
            return Err(self
                .unreachable("dns error: failed to lookup address information: Name or service not known"));
        }
        // the Service of a LinstorController is `<cr>`, its Deployment `<cr>-controller`
        let deployment = st
            .deployments
            .iter()
            .find(|((ns, name), d)| {
                *ns == self.namespace
                    && (*name == self.service
                        || d.metadata
                            .owner_references
                            .iter()
                            .flatten()
                            .any(|o| o.kind == "LinstorController" && o.name == self.service))
            })
            .map(|((_, name), _)| name.clone())
            .ok_or_else(|| self.unreachable("Connection refused (os error 111)"))?;
        let pod = st
            .controller_pods(&self.namespace, &deployment)
            .next()
            .ok_or_else(|| self.unreachable("Connection refused (os error 111)"))?;
        debug_assert!(matches!(pod.origin, Origin::Deployment(_)));
        let url = pod.started_with.clone().unwrap_or_default();
        let image = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.containers.first())
            .and_then(|c| c.image.clone())
            .unwrap_or_default();
        let version = super::fs::image_version(&image)
            .map(|(a, b, c)| format!("{a}.{b}.{c}"))
            .unwrap_or_else(|| "1.33.3".into());
        let tables = tables_of(&st, &self.namespace, &url);
        Ok(Backing {
            tables,
            version,
            deployment,
        })
    }
}

#[async_trait]
impl LinstorApi for SimLinstorApi {
    fn base_url(&self) -> String {
        self.url()
    }

    async fn version(&self) -> Result<ControllerVersion, RestError> {
        let b = self.backing(false)?;
        Ok(ControllerVersion {
            version: b.version,
            git_hash: "4e3f1c0a5b7d9e2f6a8c1b3d5e7f9a0b2c4d6e8f".into(),
            build_time: "2025-10-02T08:41:27+00:00".into(),
            rest_api_version: "1.26.0".into(),
        })
    }

    async fn nodes(&self) -> Result<Vec<Node>, RestError> {
        Ok(nodes(&self.backing(true)?.tables))
    }

    async fn storage_pools(&self) -> Result<Vec<StoragePool>, RestError> {
        Ok(storage_pools(&self.backing(true)?.tables))
    }

    async fn resources(&self) -> Result<Vec<Resource>, RestError> {
        Ok(resources(&self.backing(true)?.tables))
    }

    async fn error_reports(&self, since_ms: i64) -> Result<Vec<ErrorReport>, RestError> {
        let b = self.backing(true)?;
        let st = self.sim.lock();
        let dep = key(&self.namespace, &b.deployment);
        Ok(st
            .error_reports
            .iter()
            .filter(|(k, r)| *k == dep && r.error_time >= since_ms)
            .map(|(_, r)| r.clone())
            .collect())
    }
}
