//! Access to the Kubernetes cluster behind one narrow trait, [`Cluster`], with two
//! implementations: [`kube::KubeCluster`] (the real API server through kube-rs) and
//! [`sim::SimCluster`] (an in-memory Piraeus-v1-shaped installation for tests and `--demo`).
//!
//! The trait speaks in Kubernetes objects (k8s-openapi types) and low-level verbs; the logic that
//! interprets them (discovery, the migration pod, scaling rules) lives once, in [`controller`] and
//! [`pod`], so that the simulated cluster exercises the same code as the real one.

pub mod controller;
pub mod crd;
pub mod helm;
pub mod kube;
pub mod pod;
pub mod pod_write;
pub mod sim;
pub mod tool_guard;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use serde::Serialize;
use tokio::io::AsyncWrite;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use crate::linstor::export::row_digest;
use crate::linstor::row_index::key_text;
use crate::linstor::schema::Table;

pub use crd::{LinstorController, LinstorCsiDriver, LinstorSatelliteSet};

use crate::linstor::rest::LinstorApi;

/// Errors of cluster operations that callers tell apart; everything else is `Api`.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("{kind} {namespace}/{name} not found")]
    NotFound {
        kind: &'static str,
        namespace: String,
        name: String,
    },
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("timed out after {seconds} s waiting for {what}")]
    Timeout { what: String, seconds: u64 },
    /// The migration pod cannot start (image pull error, unschedulable, failed).
    #[error("pod {pod} cannot start: {reason}")]
    PodStart { pod: String, reason: String },
    #[error("cancelled")]
    Cancelled,
    #[error("{0}")]
    Api(String),
}

pub type ClusterResult<T> = Result<T, ClusterError>;

/// Which output stream an exec'd line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One line printed by an exec'd command, delivered as it arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecLine {
    pub stream: Stream,
    pub line: String,
}

/// How an exec'd command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecOutcome {
    pub exit_code: i32,
}

/// One `ResourceAttributes` question for an access review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AccessQuestion {
    pub group: String,
    pub resource: String,
    pub verb: String,
    /// Empty for cluster-scoped resources or "all namespaces".
    pub namespace: String,
}

impl AccessQuestion {
    pub fn new(group: &str, resource: &str, verb: &str, namespace: &str) -> Self {
        Self {
            group: group.into(),
            resource: resource.into(),
            verb: verb.into(),
            namespace: namespace.into(),
        }
    }
}

/// The answer to an [`AccessQuestion`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AccessDecision {
    pub question: AccessQuestion,
    pub allowed: bool,
    pub reason: String,
}

/// One CRD of the `k8s` backend's group, as the cluster has it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
pub struct BackendCrd {
    /// `nodes.internal.linstor.linbit.com`.
    pub name: String,
    /// `nodes`.
    pub plural: String,
    /// `Nodes`.
    #[serde(default)]
    pub kind: String,
    /// The version its objects are stored in (`v1-19-1` for LINSTOR 1.25.1, `v1-31-1` for 1.33.3):
    /// the version LINSTOR writes and reads, and the one every direct read and write uses.
    #[serde(default)]
    pub storage_version: String,
    /// Every version it serves.
    #[serde(default)]
    pub served_versions: Vec<String>,
    /// How many objects it holds.
    pub objects: u64,
}

impl BackendCrd {
    /// Whether it holds rows of an export table (not the schema version, Rollback entries or
    /// tables LINSTOR never exports), of whichever LINSTOR version.
    pub fn holds_export_rows(&self) -> bool {
        crate::linstor::schema::holds_export_rows(&self.plural)
    }
}

/// A stored inventory of an earlier release listed CRDs as `[name, objects]` pairs.
fn crds_of_any_release<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<BackendCrd>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Entry {
        Crd(BackendCrd),
        Pair(String, u64),
    }
    let entries: Vec<Entry> = serde::Deserialize::deserialize(d)?;
    Ok(entries
        .into_iter()
        .map(|e| match e {
            Entry::Crd(c) => c,
            Entry::Pair(name, objects) => BackendCrd {
                plural: name.split('.').next().unwrap_or_default().to_string(),
                name,
                objects,
                ..BackendCrd::default()
            },
        })
        .collect())
}

/// What the `k8s` database backend already holds in the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
pub struct K8sBackendInventory {
    /// The `*.internal.linstor.linbit.com` CRDs, by name.
    #[serde(deserialize_with = "crds_of_any_release")]
    pub crds: Vec<BackendCrd>,
    /// `spec.version` of the `LinstorVersion` object, when present.
    pub schema_version: Option<i64>,
    /// Number of `Rollback` objects (stale ones break controller start-up, linstor-server#357).
    pub rollback_objects: u64,
}

impl K8sBackendInventory {
    /// The rows of export tables the backend holds, of whichever LINSTOR version: not the schema
    /// version object, the Rollback entries, nor the rows of tables LINSTOR never exports (the four
    /// `SEC_ACCESS_TYPES` rows the schema migrations create: the tool's truncate leaves them, and
    /// LINSTOR needs them).
    pub fn total_objects(&self) -> u64 {
        self.crds
            .iter()
            .filter(|c| c.holds_export_rows())
            .map(|c| c.objects)
            .sum()
    }

    /// The CRD of `plural`.
    pub fn crd(&self, plural: &str) -> Option<&BackendCrd> {
        self.crds.iter().find(|c| c.plural == plural)
    }

    /// The storage versions of the CRDs that hold export rows, each once, sorted.
    pub fn storage_versions(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .crds
            .iter()
            .filter(|c| c.holds_export_rows() && !c.storage_version.is_empty())
            .map(|c| c.storage_version.clone())
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

/// One object of the `k8s` backend: a row of a LINSTOR table (REFERENCE.md §3).
#[derive(Debug, Clone, PartialEq)]
pub struct K8sBackendObject {
    /// Lower-case hex SHA-256 of the row's primary key.
    pub name: String,
    /// The row: lower-case column names, null columns left out.
    pub spec: serde_json::Map<String, serde_json::Value>,
}

/// One object of the `k8s` backend as the data verification needs it: what names it and what
/// digests its row, not the row.
#[derive(Debug, Clone, PartialEq)]
pub struct K8sBackendRow {
    /// The object's name.
    pub name: String,
    /// The primary-key text of its row ([`crate::linstor::row_index::key_text`]); `None` for a
    /// table without a primary key.
    pub key_text: Option<String>,
    /// [`crate::linstor::export::row_digest`] of its `spec`.
    pub digest: [u8; 32],
}

impl K8sBackendRow {
    /// The row of `object`, an object of `table`.
    pub fn of(table: &Table, object: &K8sBackendObject) -> Self {
        Self {
            name: object.name.clone(),
            key_text: key_text(table, &object.spec),
            digest: row_digest(&object.spec),
        }
    }
}

/// A page of a `k8s`-backend table's rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct K8sBackendRowPage {
    pub rows: Vec<K8sBackendRow>,
    /// Where the next page starts; `None` after the last one.
    pub continue_token: Option<String>,
}

/// A page of a `k8s`-backend table's objects.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct K8sBackendPage {
    pub objects: Vec<K8sBackendObject>,
    /// Where the next page starts; `None` after the last one.
    pub continue_token: Option<String>,
}

/// An authenticated user, from a TokenReview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub username: String,
    pub groups: Vec<String>,
}

/// The Kubernetes verbs the engine needs. Implementations must be idempotent where noted and
/// must never log secrets.
#[async_trait]
pub trait Cluster: Send + Sync + 'static {
    /// A short description for logs and pages ("kubeconfig context kind-x", "simulated cluster").
    fn describe(&self) -> String;
    /// True for the simulated cluster (pages show a banner).
    fn is_simulated(&self) -> bool {
        false
    }
    /// The simulated cluster only: plays `scenario` for run `run_id` on `controller`, and only for
    /// it (its faults fire on that controller's objects and that run's pod). Arming a run a second
    /// time does nothing, so that a run resumed in the same process does not meet its faults twice.
    fn arm_demo_scenario(
        &self,
        run_id: &str,
        controller: &crate::model::ControllerRef,
        scenario: crate::model::DemoScenario,
    ) -> ClusterResult<()> {
        let _ = (run_id, controller, scenario);
        Err(ClusterError::Api(
            "demo scenarios need the simulated cluster (--demo)".into(),
        ))
    }
    /// The simulated cluster only: the run ended; what is left of its scenario (faults that did
    /// not fire, refusals) goes.
    fn end_demo_scenario(&self, run_id: &str) {
        let _ = run_id;
    }

    // --- reads -----------------------------------------------------------------------------
    /// `LinstorController` CRs in all namespaces; an absent CRD is an empty list.
    async fn list_linstor_controllers(&self) -> ClusterResult<Vec<LinstorController>>;
    async fn get_linstor_controller(&self, ns: &str, name: &str) -> ClusterResult<Option<LinstorController>>;
    /// Deployments in all namespaces.
    async fn list_deployments(&self) -> ClusterResult<Vec<Deployment>>;
    async fn get_deployment(&self, ns: &str, name: &str) -> ClusterResult<Option<Deployment>>;
    /// A StatefulSet (etcd's), or `None`.
    async fn get_stateful_set(&self, ns: &str, name: &str) -> ClusterResult<Option<StatefulSet>>;
    async fn get_config_map(&self, ns: &str, name: &str) -> ClusterResult<Option<ConfigMap>>;
    async fn get_secret(&self, ns: &str, name: &str) -> ClusterResult<Option<Secret>>;
    async fn get_pod(&self, ns: &str, name: &str) -> ClusterResult<Option<Pod>>;
    async fn list_pods(&self, ns: &str, label_selector: &str) -> ClusterResult<Vec<Pod>>;
    /// Secrets of type `helm.sh/release.v1` in `ns`.
    async fn list_helm_release_secrets(&self, ns: &str) -> ClusterResult<Vec<Secret>>;
    /// What the `k8s` backend holds (CRDs of group `internal.linstor.linbit.com`).
    async fn k8s_backend_inventory(&self) -> ClusterResult<K8sBackendInventory>;
    /// How many `Rollback` objects the `k8s` backend holds (0 without its CRD): what a
    /// controller refuses to start on. Two requests, whatever the backend's size.
    async fn k8s_backend_rollback_objects(&self) -> ClusterResult<u64>;
    /// A page of the objects of one backend table (`plural`, e.g. `nodes`, in CRD `version`,
    /// e.g. `v1-19-1`); `NotFound` when the CRD does not exist or does not serve that version.
    async fn list_k8s_backend_page(
        &self,
        plural: &str,
        version: &str,
        limit: u32,
        continue_token: Option<&str>,
    ) -> ClusterResult<K8sBackendPage>;
    /// A page of `table`'s objects in CRD `version` as rows (name, key text, digest), as
    /// [`Cluster::list_k8s_backend_page`] would give them. The API server's implementation parses
    /// a LIST answer without building the objects (the direct read of a large backend).
    async fn list_k8s_backend_rows(
        &self,
        table: &Table,
        version: &str,
        limit: u32,
        continue_token: Option<&str>,
    ) -> ClusterResult<K8sBackendRowPage> {
        let page = self
            .list_k8s_backend_page(table.plural(), version, limit, continue_token)
            .await?;
        Ok(K8sBackendRowPage {
            rows: page.objects.iter().map(|o| K8sBackendRow::of(table, o)).collect(),
            continue_token: page.continue_token,
        })
    }
    /// Creates a backend object (a row): `AlreadyExists` when one of that name exists.
    async fn create_k8s_backend_object(
        &self,
        plural: &str,
        version: &str,
        kind: &str,
        object: &K8sBackendObject,
    ) -> ClusterResult<()>;
    /// Replaces a backend object's whole `spec` (columns that became null disappear);
    /// `NotFound` when it does not exist.
    async fn replace_k8s_backend_spec(
        &self,
        plural: &str,
        version: &str,
        object: &K8sBackendObject,
    ) -> ClusterResult<()>;
    /// Deletes a backend object; absent is fine.
    async fn delete_k8s_backend_object(&self, plural: &str, version: &str, name: &str) -> ClusterResult<()>;

    // --- writes ----------------------------------------------------------------------------
    /// JSON merge patch on a `LinstorController` (CRs take no strategic merge patches).
    async fn patch_linstor_controller(
        &self,
        ns: &str,
        name: &str,
        patch: serde_json::Value,
    ) -> ClusterResult<()>;
    /// Set `spec.replicas` of a Deployment through its scale subresource.
    async fn scale_deployment(&self, ns: &str, name: &str, replicas: i32) -> ClusterResult<()>;
    /// Set `spec.replicas` of a StatefulSet (etcd) through its scale subresource.
    async fn scale_stateful_set(&self, ns: &str, name: &str, replicas: i32) -> ClusterResult<()>;
    /// Set one key of a ConfigMap's `data` (merge patch).
    async fn set_config_map_key(&self, ns: &str, name: &str, key: &str, value: &str) -> ClusterResult<()>;
    /// Create the ConfigMap, or replace its data when it exists.
    async fn apply_config_map(&self, cm: &ConfigMap) -> ClusterResult<()>;
    /// Delete a ConfigMap; absent is fine.
    async fn delete_config_map(&self, ns: &str, name: &str) -> ClusterResult<()>;
    /// Create a pod; `AlreadyExists` when a pod of that name exists.
    async fn create_pod(&self, pod: &Pod) -> ClusterResult<()>;
    /// Delete a pod (grace period 0) and wait until it is gone; absent is fine.
    async fn delete_pod(&self, ns: &str, name: &str, timeout: Duration) -> ClusterResult<()>;

    // --- waits (the real implementation watches) ---------------------------------------------
    /// Wait until no pod matches `label_selector` in `ns`.
    async fn wait_pods_gone(&self, ns: &str, label_selector: &str, timeout: Duration) -> ClusterResult<()>;
    /// Wait until the Deployment asks for `replicas` (an operator may not have scaled it yet:
    /// 0 of 0 ready is not "started") and its rollout is complete with that many ready.
    async fn wait_deployment_ready(
        &self,
        ns: &str,
        name: &str,
        replicas: i32,
        timeout: Duration,
    ) -> ClusterResult<()>;
    /// Wait until the StatefulSet asks for `replicas` and that many of its pods are ready.
    async fn wait_stateful_set_ready(
        &self,
        ns: &str,
        name: &str,
        replicas: i32,
        timeout: Duration,
    ) -> ClusterResult<()>;
    /// Wait until the pod is Running with all containers ready; image pull errors, unschedulable
    /// and failed pods end the wait early with [`ClusterError::PodStart`].
    async fn wait_pod_running(&self, ns: &str, name: &str, timeout: Duration) -> ClusterResult<()>;
    /// Wait until `key` of the ConfigMap satisfies `accept`. (The explicit `for<'v>` matters:
    /// async_trait would otherwise tie the `&str` to one caller lifetime, uncallable on a local.)
    async fn wait_config_map_key(
        &self,
        ns: &str,
        name: &str,
        key: &str,
        accept: &(dyn for<'v> Fn(Option<&'v str>) -> bool + Send + Sync),
        timeout: Duration,
    ) -> ClusterResult<()>;

    // --- exec and copy -----------------------------------------------------------------------
    /// Run `command` in a container; every output line goes to `lines` as it arrives (stdout and
    /// stderr drained concurrently). Returns the exit status. `cancel` aborts the wait.
    async fn exec(
        &self,
        ns: &str,
        pod: &str,
        container: &str,
        command: &[String],
        lines: mpsc::Sender<ExecLine>,
        cancel: CancellationToken,
    ) -> ClusterResult<ExecOutcome>;
    /// Stream the file at `path` in the container into `dest`; returns the bytes written.
    /// Never holds the whole file in memory.
    async fn copy_from_pod(
        &self,
        ns: &str,
        pod: &str,
        container: &str,
        path: &str,
        dest: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> ClusterResult<u64>;

    // --- authorization -----------------------------------------------------------------------
    /// SelfSubjectAccessReview for each question.
    async fn review_self_access(&self, questions: &[AccessQuestion]) -> ClusterResult<Vec<AccessDecision>>;
    /// SubjectAccessReview for a user (e.g. `system:serviceaccount:ns:name`) and its groups.
    async fn review_subject_access(
        &self,
        user: &str,
        groups: &[String],
        questions: &[AccessQuestion],
    ) -> ClusterResult<Vec<AccessDecision>>;
    /// TokenReview; `None` when the token is not authenticated.
    async fn review_token(&self, token: &str) -> ClusterResult<Option<UserInfo>>;

    // --- coordination ------------------------------------------------------------------------
    /// Take or renew the Lease `ns/name` for `holder`; false when someone else holds it unexpired.
    async fn acquire_lease(&self, ns: &str, name: &str, holder: &str, ttl: Duration) -> ClusterResult<bool>;
    /// Give up the Lease when `holder` has it.
    async fn release_lease(&self, ns: &str, name: &str, holder: &str) -> ClusterResult<()>;
    /// Since when (this process's clock) `acquire_lease` has seen another holder's Lease
    /// unchanged: its expiry counts from then. `None` when the last look found it free or
    /// `holder`'s, or when this cluster does not judge expiry that way (then a Lease that is not
    /// free is simply someone else's).
    fn lease_unchanged_since(&self, _ns: &str, _name: &str, _holder: &str) -> Option<std::time::Instant> {
        None
    }

    // --- LINSTOR -----------------------------------------------------------------------------
    /// A client for the LINSTOR REST API of a controller (`service` in `ns`, `https` with the
    /// client certificate Secret when given).
    async fn linstor_api(
        &self,
        ns: &str,
        service: &str,
        https_client_secret: Option<&str>,
    ) -> ClusterResult<Arc<dyn LinstorApi>>;

    // --- Piraeus Operator v1 -> v2 (the upgrade plan; read-only) ------------------------------
    /// `LinstorSatelliteSet` CRs in `ns`; an absent CRD is an empty list.
    async fn list_linstor_satellite_sets(&self, ns: &str) -> ClusterResult<Vec<LinstorSatelliteSet>>;
    /// `LinstorCSIDriver` CRs in `ns`; an absent CRD is an empty list.
    async fn list_linstor_csi_drivers(&self, ns: &str) -> ClusterResult<Vec<LinstorCsiDriver>>;
    /// Names of the CustomResourceDefinitions of API group `group` (`piraeus.linbit.com`), sorted.
    async fn crd_names(&self, group: &str) -> ClusterResult<Vec<String>>;
}
