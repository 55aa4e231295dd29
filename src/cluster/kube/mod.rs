//! [`KubeCluster`]: the [`Cluster`] trait on a real Kubernetes API server through kube-rs.
//!
//! This file holds the struct and the trait impl, which only delegates; the verbs live in one
//! file per concern (reads, writes, waits, exec, authz, leases, LINSTOR REST) and their pure
//! parts (error mapping, readiness predicates, lease expiry, line splitting) are unit-tested
//! without a server.

mod authz;
mod backend_objects;
mod calls;
mod errors;
mod exec;
mod inventory;
mod lease;
mod lines;
mod linstor;
#[cfg(test)]
mod live_tests;
mod reads;
mod status;
mod upgrade_reads;
mod waits;
mod writes;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use tokio::io::AsyncWrite;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{
    AccessDecision, AccessQuestion, Cluster, ClusterResult, ExecLine, ExecOutcome, K8sBackendInventory,
    K8sBackendObject, K8sBackendPage, K8sBackendRowPage, LinstorController, LinstorCsiDriver,
    LinstorSatelliteSet, UserInfo,
};
use crate::linstor::rest::LinstorApi;
use crate::linstor::schema::Table;

pub use calls::{CallFailed, CallPolicy};
pub use status::{PodStartState, RolloutState, deployment_rollout, pod_start_state};

/// The field manager recorded on every object this service writes.
const FIELD_MANAGER: &str = "linstor-migrator";

/// How a [`KubeCluster`] reaches things outside the API server.
#[derive(Debug, Clone, Default)]
pub struct KubeOptions {
    /// Base URL of the LINSTOR REST API to use instead of the controller's in-cluster Service
    /// (`http://<service>.<ns>.svc:3370`), for runs from outside the cluster and for tests.
    pub linstor_url_override: Option<String>,
    /// The namespaces whose controllers to discover, each listed on its own; empty: all
    /// namespaces in one cluster-wide list. Scoped, the service needs no cluster-wide read of
    /// LinstorControllers and Deployments.
    pub namespaces: Vec<String>,
    /// The deadline and the retries of every call to the API server.
    pub calls: CallPolicy,
}

/// Selects rustls' crypto provider for the process; call it before building any kube client.
///
/// kube is built with `ring` and reqwest with `aws-lc-rs`: with both compiled in, rustls cannot
/// pick one by itself and panics when the first TLS client is built. Idempotent.
pub fn install_crypto_provider() {
    // Err only means a provider is installed already, which is all this wants.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The [`Cluster`] of a real API server.
#[derive(Clone)]
pub struct KubeCluster {
    client: kube::Client,
    options: KubeOptions,
    /// Where the API server is, for [`Cluster::describe`]; unknown when built from a bare client.
    api_url: Option<String>,
    /// What this process has seen of Leases, to judge their expiry by its own clock.
    leases: Arc<lease::Observations>,
}

impl KubeCluster {
    /// Wraps a ready client (built after [`install_crypto_provider`]).
    pub fn new(client: kube::Client, options: KubeOptions) -> Self {
        Self {
            client,
            options,
            api_url: None,
            leases: Arc::default(),
        }
    }

    /// Builds the client from a kube-rs [`kube::Config`], remembering its URL for messages; every
    /// call it makes has the deadline and the retries of `options.calls`.
    pub fn from_config(mut config: kube::Config, options: KubeOptions) -> anyhow::Result<Self> {
        install_crypto_provider();
        let api_url = config.cluster_url.to_string();
        // kube-rs' own retries (429, 503, 504 only, no deadline) give way to `calls`
        config.default_retry = false;
        let inner = kube::Client::try_from(config).context("failed to build the Kubernetes client")?;
        let client = calls::client(inner, options.calls.clone());
        Ok(Self {
            client,
            options,
            api_url: Some(api_url.trim_end_matches('/').to_string()),
            leases: Arc::default(),
        })
    }

    /// Builds the client from `$KUBECONFIG`/`~/.kube/config`, or the in-cluster ServiceAccount.
    pub async fn from_default_config(options: KubeOptions) -> anyhow::Result<Self> {
        let config = kube::Config::infer()
            .await
            .context("failed to find a Kubernetes configuration (kubeconfig or in-cluster ServiceAccount)")?;
        Self::from_config(config, options)
    }

    /// The underlying client, for callers that need a verb the trait does not have.
    pub fn client(&self) -> &kube::Client {
        &self.client
    }
}

#[async_trait]
impl Cluster for KubeCluster {
    fn describe(&self) -> String {
        let api = match &self.api_url {
            Some(url) => format!("Kubernetes API at {url}"),
            None => format!(
                "Kubernetes API (default namespace {})",
                self.client.default_namespace()
            ),
        };
        match self.options.namespaces.as_slice() {
            [] => api,
            scoped => format!("{api}, namespaces {}", scoped.join(", ")),
        }
    }

    async fn list_linstor_controllers(&self) -> ClusterResult<Vec<LinstorController>> {
        reads::list_linstor_controllers(&self.client, &self.options.namespaces).await
    }

    async fn get_linstor_controller(&self, ns: &str, name: &str) -> ClusterResult<Option<LinstorController>> {
        reads::get_opt::<LinstorController>(&self.client, "LinstorController", ns, name).await
    }

    async fn list_deployments(&self) -> ClusterResult<Vec<Deployment>> {
        reads::list_deployments(&self.client, &self.options.namespaces).await
    }

    async fn get_deployment(&self, ns: &str, name: &str) -> ClusterResult<Option<Deployment>> {
        reads::get_opt::<Deployment>(&self.client, "Deployment", ns, name).await
    }

    async fn get_stateful_set(&self, ns: &str, name: &str) -> ClusterResult<Option<StatefulSet>> {
        reads::get_opt::<StatefulSet>(&self.client, "StatefulSet", ns, name).await
    }

    async fn get_config_map(&self, ns: &str, name: &str) -> ClusterResult<Option<ConfigMap>> {
        reads::get_opt::<ConfigMap>(&self.client, "ConfigMap", ns, name).await
    }

    async fn get_secret(&self, ns: &str, name: &str) -> ClusterResult<Option<Secret>> {
        reads::get_opt::<Secret>(&self.client, "Secret", ns, name).await
    }

    async fn get_pod(&self, ns: &str, name: &str) -> ClusterResult<Option<Pod>> {
        reads::get_opt::<Pod>(&self.client, "Pod", ns, name).await
    }

    async fn list_pods(&self, ns: &str, label_selector: &str) -> ClusterResult<Vec<Pod>> {
        reads::list_pods(&self.client, ns, label_selector).await
    }

    async fn list_helm_release_secrets(&self, ns: &str) -> ClusterResult<Vec<Secret>> {
        reads::list_helm_release_secrets(&self.client, ns).await
    }

    async fn k8s_backend_inventory(&self) -> ClusterResult<K8sBackendInventory> {
        inventory::k8s_backend_inventory(&self.client).await
    }

    async fn k8s_backend_rollback_objects(&self) -> ClusterResult<u64> {
        inventory::k8s_backend_rollback_objects(&self.client).await
    }

    async fn list_k8s_backend_page(
        &self,
        plural: &str,
        version: &str,
        limit: u32,
        continue_token: Option<&str>,
    ) -> ClusterResult<K8sBackendPage> {
        backend_objects::list_page(&self.client, plural, version, limit, continue_token).await
    }

    async fn list_k8s_backend_rows(
        &self,
        table: &Table,
        version: &str,
        limit: u32,
        continue_token: Option<&str>,
    ) -> ClusterResult<K8sBackendRowPage> {
        backend_objects::list_rows(&self.client, table, version, limit, continue_token).await
    }

    async fn create_k8s_backend_object(
        &self,
        plural: &str,
        version: &str,
        kind: &str,
        object: &K8sBackendObject,
    ) -> ClusterResult<()> {
        backend_objects::create(&self.client, plural, version, kind, object).await
    }

    async fn replace_k8s_backend_spec(
        &self,
        plural: &str,
        version: &str,
        object: &K8sBackendObject,
    ) -> ClusterResult<()> {
        backend_objects::replace_spec(&self.client, plural, version, object).await
    }

    async fn delete_k8s_backend_object(&self, plural: &str, version: &str, name: &str) -> ClusterResult<()> {
        backend_objects::delete(&self.client, plural, version, name).await
    }

    async fn patch_linstor_controller(
        &self,
        ns: &str,
        name: &str,
        patch: serde_json::Value,
    ) -> ClusterResult<()> {
        writes::patch_linstor_controller(&self.client, ns, name, patch).await
    }

    async fn scale_deployment(&self, ns: &str, name: &str, replicas: i32) -> ClusterResult<()> {
        writes::scale::<Deployment>(&self.client, "Deployment", ns, name, replicas).await
    }

    async fn scale_stateful_set(&self, ns: &str, name: &str, replicas: i32) -> ClusterResult<()> {
        writes::scale::<StatefulSet>(&self.client, "StatefulSet", ns, name, replicas).await
    }

    async fn set_config_map_key(&self, ns: &str, name: &str, key: &str, value: &str) -> ClusterResult<()> {
        writes::set_config_map_key(&self.client, ns, name, key, value).await
    }

    async fn apply_config_map(&self, cm: &ConfigMap) -> ClusterResult<()> {
        writes::apply_config_map(&self.client, cm).await
    }

    async fn delete_config_map(&self, ns: &str, name: &str) -> ClusterResult<()> {
        writes::delete_config_map(&self.client, ns, name).await
    }

    async fn create_pod(&self, pod: &Pod) -> ClusterResult<()> {
        writes::create_pod(&self.client, pod).await
    }

    async fn delete_pod(&self, ns: &str, name: &str, timeout: Duration) -> ClusterResult<()> {
        writes::delete_pod(&self.client, ns, name, timeout).await
    }

    async fn wait_pods_gone(&self, ns: &str, label_selector: &str, timeout: Duration) -> ClusterResult<()> {
        waits::wait_pods_gone(&self.client, ns, label_selector, timeout).await
    }

    async fn wait_deployment_ready(
        &self,
        ns: &str,
        name: &str,
        replicas: i32,
        timeout: Duration,
    ) -> ClusterResult<()> {
        waits::wait_deployment_ready(&self.client, ns, name, replicas, timeout).await
    }

    async fn wait_stateful_set_ready(
        &self,
        ns: &str,
        name: &str,
        replicas: i32,
        timeout: Duration,
    ) -> ClusterResult<()> {
        waits::wait_stateful_set_ready(&self.client, ns, name, replicas, timeout).await
    }

    async fn wait_pod_running(&self, ns: &str, name: &str, timeout: Duration) -> ClusterResult<()> {
        waits::wait_pod_running(&self.client, ns, name, timeout).await
    }

    async fn wait_config_map_key(
        &self,
        ns: &str,
        name: &str,
        key: &str,
        accept: &(dyn for<'v> Fn(Option<&'v str>) -> bool + Send + Sync),
        timeout: Duration,
    ) -> ClusterResult<()> {
        waits::wait_config_map_key(&self.client, ns, name, key, accept, timeout).await
    }

    async fn exec(
        &self,
        ns: &str,
        pod: &str,
        container: &str,
        command: &[String],
        lines: mpsc::Sender<ExecLine>,
        cancel: CancellationToken,
    ) -> ClusterResult<ExecOutcome> {
        exec::exec(&self.client, ns, pod, container, command, lines, cancel).await
    }

    async fn copy_from_pod(
        &self,
        ns: &str,
        pod: &str,
        container: &str,
        path: &str,
        dest: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> ClusterResult<u64> {
        exec::copy_from_pod(&self.client, ns, pod, container, path, dest).await
    }

    async fn review_self_access(&self, questions: &[AccessQuestion]) -> ClusterResult<Vec<AccessDecision>> {
        authz::review_self_access(&self.client, questions).await
    }

    async fn review_subject_access(
        &self,
        user: &str,
        groups: &[String],
        questions: &[AccessQuestion],
    ) -> ClusterResult<Vec<AccessDecision>> {
        authz::review_subject_access(&self.client, user, groups, questions).await
    }

    async fn review_token(&self, token: &str) -> ClusterResult<Option<UserInfo>> {
        authz::review_token(&self.client, token).await
    }

    async fn acquire_lease(&self, ns: &str, name: &str, holder: &str, ttl: Duration) -> ClusterResult<bool> {
        lease::acquire(&self.client, &self.leases, ns, name, holder, ttl).await
    }

    async fn release_lease(&self, ns: &str, name: &str, holder: &str) -> ClusterResult<()> {
        lease::release(&self.client, ns, name, holder).await
    }

    fn lease_unchanged_since(&self, ns: &str, name: &str, holder: &str) -> Option<std::time::Instant> {
        self.leases.unchanged_since(ns, name, holder)
    }

    async fn linstor_api(
        &self,
        ns: &str,
        service: &str,
        https_client_secret: Option<&str>,
    ) -> ClusterResult<Arc<dyn LinstorApi>> {
        linstor::linstor_api(&self.client, &self.options, ns, service, https_client_secret).await
    }

    async fn list_linstor_satellite_sets(&self, ns: &str) -> ClusterResult<Vec<LinstorSatelliteSet>> {
        upgrade_reads::list_satellite_sets(&self.client, ns).await
    }

    async fn list_linstor_csi_drivers(&self, ns: &str) -> ClusterResult<Vec<LinstorCsiDriver>> {
        upgrade_reads::list_csi_drivers(&self.client, ns).await
    }

    async fn crd_names(&self, group: &str) -> ClusterResult<Vec<String>> {
        upgrade_reads::crd_names(&self.client, group).await
    }
}
