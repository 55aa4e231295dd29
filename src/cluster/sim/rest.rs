//! The simulated LINSTOR REST API: answers come from the database the Running controller pod
//! started with (its etcd, the shared `k8s` backend read as the pod's LINSTOR release reads it,
//! or an empty H2), in the release's shapes; with no Ready controller pod every call is refused,
//! as with `replicas=0` (REFERENCE.md §2, §5).

use std::collections::BTreeMap;

use async_trait::async_trait;
use linstor_fake::Release;

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

/// The rows of the database behind `url` for a controller of `release` in namespace `ns`.
pub(crate) fn tables_of(st: &State, ns: &str, url: &str, release: Release) -> Tables {
    match Backend::classify(url) {
        Backend::Etcd => st
            .etcd_for(url, ns)
            .map(|e| doc_tables(&e.data))
            .unwrap_or_default(),
        // what the controller loads: its exported tables, at its data version, where served
        Backend::K8s => release
            .exported_tables()
            .iter()
            .filter(|t| st.k8s.serves(t.plural(), release.data_version()))
            .map(|t| (t.name.clone(), st.k8s.rows(t.plural(), release.data_version())))
            .collect(),
        _ => Tables::new(),
    }
}

/// Why a controller of `release` cannot load the `k8s` backend completely (linstor-server#415),
/// if it cannot.
pub(crate) fn load_problem(st: &State, ns: &str, url: &str, release: Release) -> Option<String> {
    if Backend::classify(url) != Backend::K8s {
        return None;
    }
    let own = release.recorded().k8s_schema_version;
    if let Some(found) = st.k8s.schema_version().filter(|v| *v > own) {
        return Some(format!(
            "The database was created with a newer version of Linstor than currently installed (LinstorVersion {found}, LINSTOR {release} knows {own})"
        ));
    }
    let t = tables_of(st, ns, url, release);
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
    release: Release,
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
        let version = super::fs::linstor_version(&image);
        let release = Release::modelling(&version);
        let tables = tables_of(&st, &self.namespace, &url, release);
        Ok(Backing {
            tables,
            version,
            release,
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
        let answer = linstor_fake::rest::controller_version(b.release, &b.version);
        serde_json::from_value(answer).map_err(|e| self.unreachable(&e.to_string()))
    }

    async fn nodes(&self) -> Result<Vec<Node>, RestError> {
        let b = self.backing(true)?;
        Ok(nodes(b.release, &b.tables))
    }

    async fn storage_pools(&self) -> Result<Vec<StoragePool>, RestError> {
        let b = self.backing(true)?;
        Ok(storage_pools(b.release, &b.tables))
    }

    async fn resources(&self) -> Result<Vec<Resource>, RestError> {
        let b = self.backing(true)?;
        Ok(resources(b.release, &b.tables))
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
