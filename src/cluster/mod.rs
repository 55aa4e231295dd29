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
pub mod k8s_backend;
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

use crate::linstor::schema::Table;

pub use crd::{LinstorController, LinstorCsiDriver, LinstorSatelliteSet};
pub use k8s_backend::{
    BackendCrd, K8sBackendInventory, K8sBackendObject, K8sBackendPage, K8sBackendRow, K8sBackendRowPage,
};

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
