//! Creating and deleting pods in the simulated cluster: the migration pod starts after
//! `pod_start`, or never (unschedulable, image pull error) when a fault says so.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;

use super::faults::Fault;
use super::state::{Event, Origin, StartBlock, key};
use super::{SimCluster, status};
use crate::cluster::{ClusterError, ClusterResult};
use crate::model::StepName;

impl SimCluster {
    pub(crate) async fn create_pod_impl(&self, pod: &Pod) -> ClusterResult<()> {
        let possible = [
            Fault::Error,
            Fault::Hang,
            Fault::PodNeverRunning,
            Fault::ImagePullError,
        ];
        let fault = self.gate(StepName::PreparePod, &possible, "create pod").await?;
        let mut st = self.lock();
        let ns = pod
            .metadata
            .namespace
            .clone()
            .ok_or_else(|| ClusterError::Api("pod has no namespace".into()))?;
        let name = match (&pod.metadata.name, &pod.metadata.generate_name) {
            (Some(n), _) => n.clone(),
            (None, Some(prefix)) => format!(
                "{prefix}{}",
                &super::names::short_hash(&st.next_seq().to_string())[..5]
            ),
            (None, None) => return Err(ClusterError::Api("pod has neither name nor generateName".into())),
        };
        if pod.spec.as_ref().is_none_or(|s| s.containers.is_empty()) {
            return Err(ClusterError::Api(format!(
                "Pod {name:?} is invalid: spec.containers: Required value"
            )));
        }
        let k = key(&ns, &name);
        if st.pods.contains_key(&k) {
            return Err(ClusterError::AlreadyExists(format!("pods {name:?}")));
        }
        let mut object = pod.clone();
        object.metadata.name = Some(name.clone());
        object.status = None;
        let uid = st.next_seq();
        st.insert_pod(object, uid, Origin::Client);
        let block = match fault {
            Some(Fault::PodNeverRunning) => Some(StartBlock::Unschedulable),
            Some(Fault::ImagePullError) => Some(StartBlock::ImagePull),
            Some(Fault::Hang) => Some(StartBlock::Hang),
            _ => None,
        };
        let image = pod
            .spec
            .as_ref()
            .and_then(|s| s.containers.first())
            .and_then(|c| c.image.clone())
            .unwrap_or_default();
        if let Some(p) = st.pods.get_mut(&k) {
            p.start_block = block;
            match block {
                Some(StartBlock::Unschedulable) => status::mark_unschedulable(p),
                Some(StartBlock::ImagePull) => status::mark_pending(
                    p,
                    "ErrImagePull",
                    &format!(
                        "failed to pull and unpack image \"{image}\": failed to resolve reference \"{image}\": unexpected status from HEAD request: 401 Unauthorized"
                    ),
                ),
                _ => status::mark_pending(p, "ContainerCreating", ""),
            }
            // the scheduler places it unless the fault says it cannot
            if block != Some(StartBlock::Unschedulable)
                && let Some(spec) = p.pod.spec.as_mut()
            {
                spec.node_name
                    .get_or_insert_with(|| super::names::CR_NODES[0].into());
            }
        }
        let delay = st.timing.pod_start;
        st.schedule_in(delay, Event::PodStarted { pod: k, uid });
        st.effects.pods_created += 1;
        st.touch();
        Ok(())
    }

    pub(crate) async fn delete_pod_impl(
        &self,
        ns: &str,
        name: &str,
        _timeout: Duration,
    ) -> ClusterResult<()> {
        self.gate(StepName::Cleanup, &[Fault::Error], "delete pod")
            .await?;
        let mut st = self.lock();
        // grace period 0: gone at once, with its processes and emptyDirs
        let k = key(ns, name);
        super::processes::kill_pod_processes(&mut st, &k);
        if st.pods.remove(&k).is_some() {
            st.effects.pods_deleted += 1;
            st.reconcile_workloads();
            st.touch();
        }
        Ok(())
    }
}
