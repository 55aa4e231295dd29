//! A [`Cluster`] that crashes the engine at a chosen point: it wraps the simulated cluster and
//! counts the points it passes (before and after every operation, and once while an exec'd
//! command runs). At the chosen point it stops answering (the engine is then killed there, as a
//! SIGKILL would): before an operation's effect, after it but before the engine learned of it,
//! or while `linstor-database` runs in the pod. The simulated cluster underneath goes on (its
//! processes included), as a real one would.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use linstor_migrator::cluster::sim::SimCluster;
use linstor_migrator::cluster::{
    AccessDecision, AccessQuestion, Cluster, ClusterResult, ExecLine, ExecOutcome, K8sBackendInventory,
    K8sBackendObject, K8sBackendPage, LinstorController, LinstorCsiDriver, LinstorSatelliteSet, UserInfo,
};
use linstor_migrator::linstor::rest::LinstorApi;
use tokio::io::AsyncWrite;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Where to crash: at the `target`-th point (1-based); 0 never.
#[derive(Default)]
pub struct CrashPoint {
    target: u64,
    passed: AtomicU64,
    fired: AtomicBool,
    /// What the point was, for the report.
    at: std::sync::Mutex<String>,
}

impl CrashPoint {
    pub fn at(target: u64) -> Arc<Self> {
        Arc::new(Self {
            target,
            ..Self::default()
        })
    }

    pub fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }

    pub fn passed(&self) -> u64 {
        self.passed.load(Ordering::SeqCst)
    }

    pub fn description(&self) -> String {
        self.at.lock().unwrap().clone()
    }

    /// Passes a point; at the target it never returns (the engine is killed while it waits).
    async fn pass(&self, what: &str) {
        let n = self.passed.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.target {
            *self.at.lock().unwrap() = format!("point {n}: {what}");
            self.fired.store(true, Ordering::SeqCst);
            std::future::pending::<()>().await;
        }
    }
}

/// The simulated cluster with crash points.
pub struct CrashingCluster {
    pub sim: SimCluster,
    pub point: Arc<CrashPoint>,
}

macro_rules! around {
    ($self:ident, $what:expr, $call:expr) => {{
        $self.point.pass(concat!("before ", $what)).await;
        let r = $call.await;
        $self.point.pass(concat!("after ", $what)).await;
        r
    }};
}

#[async_trait]
impl Cluster for CrashingCluster {
    fn describe(&self) -> String {
        self.sim.describe()
    }

    fn is_simulated(&self) -> bool {
        true
    }

    async fn list_linstor_controllers(&self) -> ClusterResult<Vec<LinstorController>> {
        around!(
            self,
            "list_linstor_controllers",
            self.sim.list_linstor_controllers()
        )
    }

    async fn get_linstor_controller(&self, ns: &str, name: &str) -> ClusterResult<Option<LinstorController>> {
        around!(
            self,
            "get_linstor_controller",
            self.sim.get_linstor_controller(ns, name)
        )
    }

    async fn list_deployments(&self) -> ClusterResult<Vec<Deployment>> {
        around!(self, "list_deployments", self.sim.list_deployments())
    }

    async fn get_deployment(&self, ns: &str, name: &str) -> ClusterResult<Option<Deployment>> {
        around!(self, "get_deployment", self.sim.get_deployment(ns, name))
    }

    async fn get_stateful_set(&self, ns: &str, name: &str) -> ClusterResult<Option<StatefulSet>> {
        around!(self, "get_stateful_set", self.sim.get_stateful_set(ns, name))
    }

    async fn get_config_map(&self, ns: &str, name: &str) -> ClusterResult<Option<ConfigMap>> {
        around!(self, "get_config_map", self.sim.get_config_map(ns, name))
    }

    async fn get_secret(&self, ns: &str, name: &str) -> ClusterResult<Option<Secret>> {
        around!(self, "get_secret", self.sim.get_secret(ns, name))
    }

    async fn get_pod(&self, ns: &str, name: &str) -> ClusterResult<Option<Pod>> {
        around!(self, "get_pod", self.sim.get_pod(ns, name))
    }

    async fn list_pods(&self, ns: &str, label_selector: &str) -> ClusterResult<Vec<Pod>> {
        around!(self, "list_pods", self.sim.list_pods(ns, label_selector))
    }

    async fn list_helm_release_secrets(&self, ns: &str) -> ClusterResult<Vec<Secret>> {
        around!(
            self,
            "list_helm_release_secrets",
            self.sim.list_helm_release_secrets(ns)
        )
    }

    async fn k8s_backend_inventory(&self) -> ClusterResult<K8sBackendInventory> {
        around!(self, "k8s_backend_inventory", self.sim.k8s_backend_inventory())
    }

    async fn k8s_backend_rollback_objects(&self) -> ClusterResult<u64> {
        around!(
            self,
            "k8s_backend_rollback_objects",
            self.sim.k8s_backend_rollback_objects()
        )
    }

    async fn list_k8s_backend_page(
        &self,
        plural: &str,
        version: &str,
        limit: u32,
        continue_token: Option<&str>,
    ) -> ClusterResult<K8sBackendPage> {
        around!(
            self,
            "list_k8s_backend_page",
            self.sim
                .list_k8s_backend_page(plural, version, limit, continue_token)
        )
    }

    async fn create_k8s_backend_object(
        &self,
        plural: &str,
        version: &str,
        kind: &str,
        object: &K8sBackendObject,
    ) -> ClusterResult<()> {
        around!(
            self,
            "create_k8s_backend_object",
            self.sim.create_k8s_backend_object(plural, version, kind, object)
        )
    }

    async fn replace_k8s_backend_spec(
        &self,
        plural: &str,
        version: &str,
        object: &K8sBackendObject,
    ) -> ClusterResult<()> {
        around!(
            self,
            "replace_k8s_backend_spec",
            self.sim.replace_k8s_backend_spec(plural, version, object)
        )
    }

    async fn delete_k8s_backend_object(&self, plural: &str, version: &str, name: &str) -> ClusterResult<()> {
        around!(
            self,
            "delete_k8s_backend_object",
            self.sim.delete_k8s_backend_object(plural, version, name)
        )
    }

    async fn patch_linstor_controller(
        &self,
        ns: &str,
        name: &str,
        patch: serde_json::Value,
    ) -> ClusterResult<()> {
        around!(
            self,
            "patch_linstor_controller",
            self.sim.patch_linstor_controller(ns, name, patch)
        )
    }

    async fn scale_deployment(&self, ns: &str, name: &str, replicas: i32) -> ClusterResult<()> {
        around!(
            self,
            "scale_deployment",
            self.sim.scale_deployment(ns, name, replicas)
        )
    }

    async fn scale_stateful_set(&self, ns: &str, name: &str, replicas: i32) -> ClusterResult<()> {
        around!(
            self,
            "scale_stateful_set",
            self.sim.scale_stateful_set(ns, name, replicas)
        )
    }

    async fn set_config_map_key(&self, ns: &str, name: &str, key: &str, value: &str) -> ClusterResult<()> {
        around!(
            self,
            "set_config_map_key",
            self.sim.set_config_map_key(ns, name, key, value)
        )
    }

    async fn apply_config_map(&self, cm: &ConfigMap) -> ClusterResult<()> {
        around!(self, "apply_config_map", self.sim.apply_config_map(cm))
    }

    async fn delete_config_map(&self, ns: &str, name: &str) -> ClusterResult<()> {
        around!(self, "delete_config_map", self.sim.delete_config_map(ns, name))
    }

    async fn create_pod(&self, pod: &Pod) -> ClusterResult<()> {
        around!(self, "create_pod", self.sim.create_pod(pod))
    }

    async fn delete_pod(&self, ns: &str, name: &str, timeout: Duration) -> ClusterResult<()> {
        around!(self, "delete_pod", self.sim.delete_pod(ns, name, timeout))
    }

    async fn wait_pods_gone(&self, ns: &str, label_selector: &str, timeout: Duration) -> ClusterResult<()> {
        around!(
            self,
            "wait_pods_gone",
            self.sim.wait_pods_gone(ns, label_selector, timeout)
        )
    }

    async fn wait_deployment_ready(
        &self,
        ns: &str,
        name: &str,
        replicas: i32,
        timeout: Duration,
    ) -> ClusterResult<()> {
        around!(
            self,
            "wait_deployment_ready",
            self.sim.wait_deployment_ready(ns, name, replicas, timeout)
        )
    }

    async fn wait_stateful_set_ready(
        &self,
        ns: &str,
        name: &str,
        replicas: i32,
        timeout: Duration,
    ) -> ClusterResult<()> {
        around!(
            self,
            "wait_stateful_set_ready",
            self.sim.wait_stateful_set_ready(ns, name, replicas, timeout)
        )
    }

    async fn wait_pod_running(&self, ns: &str, name: &str, timeout: Duration) -> ClusterResult<()> {
        around!(
            self,
            "wait_pod_running",
            self.sim.wait_pod_running(ns, name, timeout)
        )
    }

    async fn wait_config_map_key(
        &self,
        ns: &str,
        name: &str,
        key: &str,
        accept: &(dyn for<'v> Fn(Option<&'v str>) -> bool + Send + Sync),
        timeout: Duration,
    ) -> ClusterResult<()> {
        around!(
            self,
            "wait_config_map_key",
            self.sim.wait_config_map_key(ns, name, key, accept, timeout)
        )
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
        self.point.pass("before exec").await;
        let exec = self.sim.exec(ns, pod, container, command, lines, cancel);
        let mut exec = std::pin::pin!(exec);
        // one point while the command runs: a crash there leaves it running in the pod
        let r = tokio::select! {
            r = &mut exec => r,
            () = tokio::time::sleep(Duration::from_millis(2)) => {
                self.point.pass("while the exec'd command runs").await;
                exec.await
            }
        };
        self.point.pass("after exec").await;
        r
    }

    async fn copy_from_pod(
        &self,
        ns: &str,
        pod: &str,
        container: &str,
        path: &str,
        dest: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> ClusterResult<u64> {
        around!(
            self,
            "copy_from_pod",
            self.sim.copy_from_pod(ns, pod, container, path, dest)
        )
    }

    async fn review_self_access(&self, questions: &[AccessQuestion]) -> ClusterResult<Vec<AccessDecision>> {
        around!(self, "review_self_access", self.sim.review_self_access(questions))
    }

    async fn review_subject_access(
        &self,
        user: &str,
        groups: &[String],
        questions: &[AccessQuestion],
    ) -> ClusterResult<Vec<AccessDecision>> {
        around!(
            self,
            "review_subject_access",
            self.sim.review_subject_access(user, groups, questions)
        )
    }

    async fn review_token(&self, token: &str) -> ClusterResult<Option<UserInfo>> {
        self.sim.review_token(token).await
    }

    async fn acquire_lease(&self, ns: &str, name: &str, holder: &str, ttl: Duration) -> ClusterResult<bool> {
        around!(
            self,
            "acquire_lease",
            self.sim.acquire_lease(ns, name, holder, ttl)
        )
    }

    async fn release_lease(&self, ns: &str, name: &str, holder: &str) -> ClusterResult<()> {
        around!(self, "release_lease", self.sim.release_lease(ns, name, holder))
    }

    async fn linstor_api(
        &self,
        ns: &str,
        service: &str,
        https_client_secret: Option<&str>,
    ) -> ClusterResult<Arc<dyn LinstorApi>> {
        around!(
            self,
            "linstor_api",
            self.sim.linstor_api(ns, service, https_client_secret)
        )
    }

    async fn list_linstor_satellite_sets(&self, ns: &str) -> ClusterResult<Vec<LinstorSatelliteSet>> {
        around!(
            self,
            "list_linstor_satellite_sets",
            self.sim.list_linstor_satellite_sets(ns)
        )
    }

    async fn list_linstor_csi_drivers(&self, ns: &str) -> ClusterResult<Vec<LinstorCsiDriver>> {
        around!(
            self,
            "list_linstor_csi_drivers",
            self.sim.list_linstor_csi_drivers(ns)
        )
    }

    async fn crd_names(&self, group: &str) -> ClusterResult<Vec<String>> {
        around!(self, "crd_names", self.sim.crd_names(group))
    }
}
