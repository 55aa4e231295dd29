//! [`Cluster`] for [`SimCluster`]: reads, authorization, Leases and the REST client here; writes
//! are in `writes.rs`, waits in `waits.rs`, exec and copy in `exec.rs`. Each operation first lets
//! an injected fault of its step fire (see [`super::Fault`]).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use tokio::io::AsyncWrite;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::rest::SimLinstorApi;
use super::state::{Lease, key, selector_matches};
use super::writes::not_found;
use super::{SimCluster, access};
use crate::cluster::{
    AccessDecision, AccessQuestion, BackendCrd, Cluster, ClusterResult, ExecLine, ExecOutcome,
    K8sBackendInventory, K8sBackendObject, K8sBackendPage, LinstorController, LinstorCsiDriver,
    LinstorSatelliteSet, UserInfo,
};
use crate::linstor::rest::LinstorApi;

#[async_trait]
impl Cluster for SimCluster {
    fn describe(&self) -> String {
        "simulated cluster (Piraeus Operator v1 on etcd, in memory)".into()
    }

    fn is_simulated(&self) -> bool {
        true
    }

    fn arm_demo_scenario(
        &self,
        run_id: &str,
        controller: &crate::model::ControllerRef,
        scenario: crate::model::DemoScenario,
    ) -> ClusterResult<()> {
        self.arm_scenario(run_id, controller, scenario)
    }

    fn end_demo_scenario(&self, run_id: &str) {
        self.end_scenario(run_id);
    }

    async fn list_linstor_controllers(&self) -> ClusterResult<Vec<LinstorController>> {
        self.read_gate("list linstorcontrollers.piraeus.linbit.com")
            .await?;
        Ok(self.lock().crs.values().cloned().collect())
    }

    async fn get_linstor_controller(&self, ns: &str, name: &str) -> ClusterResult<Option<LinstorController>> {
        self.read_gate("get linstorcontroller").await?;
        Ok(self.lock().crs.get(&key(ns, name)).cloned())
    }

    async fn list_deployments(&self) -> ClusterResult<Vec<Deployment>> {
        self.read_gate("list deployments.apps").await?;
        Ok(self.lock().deployments.values().cloned().collect())
    }

    async fn get_deployment(&self, ns: &str, name: &str) -> ClusterResult<Option<Deployment>> {
        self.read_gate("get deployment").await?;
        Ok(self.lock().deployments.get(&key(ns, name)).cloned())
    }

    async fn get_stateful_set(&self, ns: &str, name: &str) -> ClusterResult<Option<StatefulSet>> {
        Ok(self.lock().stateful_sets.get(&key(ns, name)).cloned())
    }

    async fn get_config_map(&self, ns: &str, name: &str) -> ClusterResult<Option<ConfigMap>> {
        self.read_gate("get configmap").await?;
        Ok(self.lock().config_maps.get(&key(ns, name)).cloned())
    }

    async fn get_secret(&self, ns: &str, name: &str) -> ClusterResult<Option<Secret>> {
        Ok(self.lock().secrets.get(&key(ns, name)).cloned())
    }

    async fn get_pod(&self, ns: &str, name: &str) -> ClusterResult<Option<Pod>> {
        Ok(self.lock().pods.get(&key(ns, name)).map(|p| p.pod.clone()))
    }

    async fn list_pods(&self, ns: &str, label_selector: &str) -> ClusterResult<Vec<Pod>> {
        let st = self.lock();
        Ok(st
            .pods
            .iter()
            .filter(|((pns, _), p)| {
                pns == ns && selector_matches(label_selector, p.pod.metadata.labels.as_ref())
            })
            .map(|(_, p)| p.pod.clone())
            .collect())
    }

    async fn list_helm_release_secrets(&self, ns: &str) -> ClusterResult<Vec<Secret>> {
        let st = self.lock();
        Ok(st
            .secrets
            .iter()
            .filter(|((sns, _), s)| sns == ns && s.type_.as_deref() == Some("helm.sh/release.v1"))
            .map(|(_, s)| s.clone())
            .collect())
    }

    async fn k8s_backend_inventory(&self) -> ClusterResult<K8sBackendInventory> {
        // what the real implementation lists: the group's CRDs (at their storage version) and
        // the objects of each
        let st = self.lock();
        let k8s = &st.k8s;
        let crds: Vec<BackendCrd> = k8s
            .crds
            .iter()
            .map(|(name, crd)| {
                let plural = name.split('.').next().unwrap_or_default().to_string();
                let versions = crd["spec"]["versions"].as_array().cloned().unwrap_or_default();
                let storage = versions
                    .iter()
                    .find(|v| v["storage"] == true)
                    .and_then(|v| v["name"].as_str())
                    .unwrap_or_default()
                    .to_string();
                BackendCrd {
                    name: name.clone(),
                    kind: crd["spec"]["names"]["kind"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    storage_version: storage,
                    served_versions: versions
                        .iter()
                        .filter(|v| v["served"].as_bool().unwrap_or(true))
                        .filter_map(|v| v["name"].as_str().map(String::from))
                        .collect(),
                    objects: k8s.objects.get(&plural).map_or(0, |m| m.len() as u64),
                    plural,
                }
            })
            .collect();
        Ok(K8sBackendInventory {
            crds,
            schema_version: k8s.schema_version(),
            rollback_objects: k8s.rollback_objects() as u64,
        })
    }

    async fn k8s_backend_rollback_objects(&self) -> ClusterResult<u64> {
        Ok(self.lock().k8s.rollback_objects() as u64)
    }

    async fn list_k8s_backend_page(
        &self,
        plural: &str,
        version: &str,
        limit: u32,
        continue_token: Option<&str>,
    ) -> ClusterResult<K8sBackendPage> {
        self.list_k8s_backend_page_impl(plural, version, limit, continue_token)
    }

    async fn create_k8s_backend_object(
        &self,
        plural: &str,
        version: &str,
        _kind: &str,
        object: &K8sBackendObject,
    ) -> ClusterResult<()> {
        self.create_k8s_backend_object_impl(plural, version, object)
    }

    async fn replace_k8s_backend_spec(
        &self,
        plural: &str,
        version: &str,
        object: &K8sBackendObject,
    ) -> ClusterResult<()> {
        self.replace_k8s_backend_spec_impl(plural, version, object)
    }

    async fn delete_k8s_backend_object(&self, plural: &str, version: &str, name: &str) -> ClusterResult<()> {
        self.delete_k8s_backend_object_impl(plural, version, name)
    }

    async fn patch_linstor_controller(
        &self,
        ns: &str,
        name: &str,
        patch: serde_json::Value,
    ) -> ClusterResult<()> {
        self.patch_linstor_controller_impl(ns, name, patch).await
    }

    async fn scale_deployment(&self, ns: &str, name: &str, replicas: i32) -> ClusterResult<()> {
        self.scale_deployment_impl(ns, name, replicas).await
    }

    async fn scale_stateful_set(&self, ns: &str, name: &str, replicas: i32) -> ClusterResult<()> {
        self.scale_stateful_set_impl(ns, name, replicas).await
    }

    async fn set_config_map_key(&self, ns: &str, name: &str, key: &str, value: &str) -> ClusterResult<()> {
        self.set_config_map_key_impl(ns, name, key, value).await
    }

    async fn apply_config_map(&self, cm: &ConfigMap) -> ClusterResult<()> {
        self.apply_config_map_impl(cm).await
    }

    async fn delete_config_map(&self, ns: &str, name: &str) -> ClusterResult<()> {
        self.delete_config_map_impl(ns, name).await
    }

    async fn create_pod(&self, pod: &Pod) -> ClusterResult<()> {
        self.create_pod_impl(pod).await
    }

    async fn delete_pod(&self, ns: &str, name: &str, timeout: Duration) -> ClusterResult<()> {
        self.delete_pod_impl(ns, name, timeout).await
    }

    async fn wait_pods_gone(&self, ns: &str, label_selector: &str, timeout: Duration) -> ClusterResult<()> {
        self.wait_pods_gone_impl(ns, label_selector, timeout).await
    }

    async fn wait_deployment_ready(
        &self,
        ns: &str,
        name: &str,
        replicas: i32,
        timeout: Duration,
    ) -> ClusterResult<()> {
        self.wait_deployment_ready_impl(ns, name, replicas, timeout).await
    }

    async fn wait_stateful_set_ready(
        &self,
        ns: &str,
        name: &str,
        replicas: i32,
        timeout: Duration,
    ) -> ClusterResult<()> {
        self.wait_stateful_set_ready_impl(ns, name, replicas, timeout)
            .await
    }

    async fn wait_pod_running(&self, ns: &str, name: &str, timeout: Duration) -> ClusterResult<()> {
        self.wait_pod_running_impl(ns, name, timeout).await
    }

    async fn wait_config_map_key(
        &self,
        ns: &str,
        name: &str,
        key: &str,
        accept: &(dyn for<'v> Fn(Option<&'v str>) -> bool + Send + Sync),
        timeout: Duration,
    ) -> ClusterResult<()> {
        self.wait_config_map_key_impl(ns, name, key, accept, timeout)
            .await
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
        self.exec_impl(ns, pod, container, command, lines, cancel).await
    }

    async fn copy_from_pod(
        &self,
        ns: &str,
        pod: &str,
        container: &str,
        path: &str,
        dest: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> ClusterResult<u64> {
        self.copy_from_pod_impl(ns, pod, container, path, dest).await
    }

    async fn review_self_access(&self, questions: &[AccessQuestion]) -> ClusterResult<Vec<AccessDecision>> {
        let st = self.lock();
        Ok(questions
            .iter()
            .map(|q| st.access.decide(&[access::SELF], q))
            .collect())
    }

    async fn review_subject_access(
        &self,
        user: &str,
        groups: &[String],
        questions: &[AccessQuestion],
    ) -> ClusterResult<Vec<AccessDecision>> {
        let st = self.lock();
        let subjects: Vec<&str> = std::iter::once(user)
            .chain(groups.iter().map(String::as_str))
            .collect();
        Ok(questions.iter().map(|q| st.access.decide(&subjects, q)).collect())
    }

    async fn review_token(&self, token: &str) -> ClusterResult<Option<UserInfo>> {
        Ok(self.lock().access.tokens.get(token).cloned())
    }

    async fn acquire_lease(&self, ns: &str, name: &str, holder: &str, ttl: Duration) -> ClusterResult<bool> {
        self.lease_trouble_of(holder, ns, name).await?;
        let mut st = self.lock();
        let now = st.now;
        let k = key(ns, name);
        let free = st
            .leases
            .get(&k)
            .is_none_or(|l| l.holder == holder || l.expires <= now);
        if free {
            st.leases.insert(
                k,
                Lease {
                    holder: holder.into(),
                    expires: now + ttl,
                },
            );
            st.touch();
        }
        Ok(free)
    }

    async fn release_lease(&self, ns: &str, name: &str, holder: &str) -> ClusterResult<()> {
        self.lease_trouble_of(holder, ns, name).await?;
        let mut st = self.lock();
        let k = key(ns, name);
        if st.leases.get(&k).is_some_and(|l| l.holder == holder) {
            st.leases.remove(&k);
            st.touch();
        }
        Ok(())
    }

    async fn linstor_api(
        &self,
        ns: &str,
        service: &str,
        https_client_secret: Option<&str>,
    ) -> ClusterResult<Arc<dyn LinstorApi>> {
        if let Some(secret) = https_client_secret
            && !self.lock().secrets.contains_key(&key(ns, secret))
        {
            return Err(not_found("Secret", ns, secret));
        }
        Ok(Arc::new(SimLinstorApi {
            sim: self.clone(),
            namespace: ns.into(),
            service: service.into(),
            https: https_client_secret.is_some(),
        }))
    }

    async fn list_linstor_satellite_sets(&self, ns: &str) -> ClusterResult<Vec<LinstorSatelliteSet>> {
        self.read_gate("list linstorsatellitesets.piraeus.linbit.com")
            .await?;
        let st = self.lock();
        Ok(st
            .v1
            .satellite_sets
            .iter()
            .filter(|((n, _), _)| n == ns)
            .map(|(_, s)| s.clone())
            .collect())
    }

    async fn list_linstor_csi_drivers(&self, ns: &str) -> ClusterResult<Vec<LinstorCsiDriver>> {
        self.read_gate("list linstorcsidrivers.piraeus.linbit.com")
            .await?;
        let st = self.lock();
        Ok(st
            .v1
            .csi_drivers
            .iter()
            .filter(|((n, _), _)| n == ns)
            .map(|(_, s)| s.clone())
            .collect())
    }

    async fn crd_names(&self, group: &str) -> ClusterResult<Vec<String>> {
        let suffix = format!(".{group}");
        Ok(self
            .lock()
            .v1
            .crds
            .iter()
            .filter(|n| n.ends_with(&suffix))
            .cloned()
            .collect())
    }
}

impl SimCluster {
    /// The trouble `holder`'s Lease calls have, if any: an error, or no answer at all.
    async fn lease_trouble_of(&self, holder: &str, ns: &str, name: &str) -> ClusterResult<()> {
        let trouble = self.lock().lease_trouble.get(holder).copied();
        match trouble {
            Some(super::faults::LeaseTrouble::Hang) => super::faults::hang().await,
            Some(super::faults::LeaseTrouble::Error) => Err(crate::cluster::ClusterError::Api(format!(
                "failed to get Lease {ns}/{name}: connection refused (simulated)"
            ))),
            None => Ok(()),
        }
    }
}
