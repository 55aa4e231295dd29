//! Waits of the simulated cluster. Waits look at the state, then sleep until the
//! next scheduled event, a change by someone else, or the deadline; a wait that times out because
//! of an injected `Hang` lets the stuck thing go on afterwards (faults fire once).

use std::time::Duration;

use tokio::time::Instant;

use super::faults::{Fault, api_error};
use super::state::{Event, Origin, StartBlock, State, key, selector_matches};
use super::{SimCluster, status};
use crate::cluster::{ClusterError, ClusterResult};
use crate::model::StepName;

impl SimCluster {
    /// Waits until `check` gives an answer; `on_timeout` runs once at the deadline.
    async fn wait_for<T>(
        &self,
        timeout: Duration,
        what: String,
        mut check: impl FnMut(&mut State) -> Option<ClusterResult<T>>,
        on_timeout: impl FnOnce(&mut State),
    ) -> ClusterResult<T> {
        let deadline = Instant::now() + timeout;
        let mut changes = self.subscribe();
        loop {
            let next = {
                let mut st = self.lock();
                if let Some(answer) = check(&mut st) {
                    return answer;
                }
                if Instant::now() >= deadline {
                    on_timeout(&mut st);
                    st.touch();
                    return Err(ClusterError::Timeout {
                        what,
                        seconds: timeout.as_secs(),
                    });
                }
                st.next_event_time()
            };
            let wake = next.map_or(deadline, |n| n.min(deadline));
            tokio::select! {
                changed = changes.changed() => {
                    if changed.is_err() {
                        tokio::time::sleep_until(wake).await;
                    }
                }
                () = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    pub(crate) async fn wait_stateful_set_ready_impl(
        &self,
        ns: &str,
        name: &str,
        replicas: i32,
        timeout: Duration,
    ) -> ClusterResult<()> {
        let sk = key(ns, name);
        self.wait_for(
            timeout,
            format!("StatefulSet {ns}/{name} to be ready"),
            |st| {
                let Some(s) = st.stateful_sets.get(&sk) else {
                    return Some(Err(ClusterError::NotFound {
                        kind: "StatefulSet",
                        namespace: ns.into(),
                        name: name.into(),
                    }));
                };
                let desired = s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                let ready = s.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0);
                (desired == replicas && ready == replicas).then_some(Ok(()))
            },
            |_| {},
        )
        .await
    }

    pub(crate) async fn wait_pods_gone_impl(
        &self,
        ns: &str,
        selector: &str,
        timeout: Duration,
    ) -> ClusterResult<()> {
        let fault = self
            .lock()
            .faults
            .take(StepName::StopController, &[Fault::Error, Fault::Hang]);
        match fault {
            Some(Fault::Error) => return Err(api_error(StepName::StopController, "watch pods")),
            Some(Fault::Hang) => {
                let mut st = self.lock();
                for ((pns, _), p) in st.pods.iter_mut() {
                    if pns == ns && selector_matches(selector, p.pod.metadata.labels.as_ref()) {
                        p.stuck = true;
                    }
                }
            }
            _ => {}
        }
        let what = format!("pods {selector:?} in {ns} to be gone");
        self.wait_for(
            timeout,
            what,
            |st| {
                let left = st.pods.iter().any(|((pns, _), p)| {
                    pns == ns && selector_matches(selector, p.pod.metadata.labels.as_ref())
                });
                (!left).then_some(Ok(()))
            },
            |st| st.unstick(ns),
        )
        .await
    }

    pub(crate) async fn wait_deployment_ready_impl(
        &self,
        ns: &str,
        name: &str,
        replicas: i32,
        timeout: Duration,
    ) -> ClusterResult<()> {
        let fault = self
            .lock()
            .faults
            .take(StepName::StartController, &[Fault::Error, Fault::Hang]);
        match fault {
            Some(Fault::Error) => return Err(api_error(StepName::StartController, "watch deployment")),
            Some(Fault::Hang) => {
                self.lock().start_hung.insert(key(ns, name));
            }
            _ => {}
        }
        let dk = key(ns, name);
        self.wait_for(
            timeout,
            format!("Deployment {ns}/{name} to be ready"),
            |st| {
                let Some(d) = st.deployments.get(&dk) else {
                    return Some(Err(ClusterError::NotFound {
                        kind: "Deployment",
                        namespace: ns.into(),
                        name: name.into(),
                    }));
                };
                let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                let s = d.status.clone().unwrap_or_default();
                // the operator scales the Deployment after the CR: 0 of 0 is not started
                let done = desired == replicas
                    && s.observed_generation >= d.metadata.generation
                    && s.ready_replicas.unwrap_or(0) == desired
                    && s.replicas.unwrap_or(0) == desired
                    && s.updated_replicas.unwrap_or(0) == desired;
                done.then_some(Ok(()))
            },
            |st| {
                st.start_hung.remove(&dk);
                for ((pns, _), p) in st.pods.iter_mut() {
                    if *pns == dk.0
                        && p.origin == Origin::Deployment(dk.1.clone())
                        && p.start_block == Some(StartBlock::Hang)
                    {
                        p.start_block = None;
                        status::set_ready(p, true);
                    }
                }
                st.reconcile_workloads();
            },
        )
        .await
    }

    pub(crate) async fn wait_pod_running_impl(
        &self,
        ns: &str,
        name: &str,
        timeout: Duration,
    ) -> ClusterResult<()> {
        let pk = key(ns, name);
        self.wait_for(
            timeout,
            format!("pod {ns}/{name} to be running"),
            |st| {
                let Some(p) = st.pods.get(&pk) else {
                    return Some(Err(ClusterError::NotFound {
                        kind: "Pod",
                        namespace: ns.into(),
                        name: name.into(),
                    }));
                };
                let start_error = |reason: String| {
                    Some(Err(ClusterError::PodStart {
                        pod: name.into(),
                        reason,
                    }))
                };
                let status = p.pod.status.clone().unwrap_or_default();
                if let Some(c) = status
                    .conditions
                    .iter()
                    .flatten()
                    .find(|c| c.type_ == "PodScheduled" && c.status == "False")
                {
                    return start_error(format!(
                        "{}: {}",
                        c.reason.clone().unwrap_or_default(),
                        c.message.clone().unwrap_or_default()
                    ));
                }
                for cs in status.container_statuses.iter().flatten() {
                    if let Some(w) = cs.state.as_ref().and_then(|s| s.waiting.as_ref()) {
                        let reason = w.reason.clone().unwrap_or_default();
                        if [
                            "ErrImagePull",
                            "ImagePullBackOff",
                            "InvalidImageName",
                            "CreateContainerConfigError",
                            "CrashLoopBackOff",
                        ]
                        .contains(&reason.as_str())
                        {
                            return start_error(format!(
                                "{reason}: {}",
                                w.message.clone().unwrap_or_default()
                            ));
                        }
                    }
                }
                if status.phase.as_deref() == Some("Failed") {
                    return start_error("the pod failed".into());
                }
                (p.running && p.ready).then_some(Ok(()))
            },
            |st| {
                if let Some(p) = st.pods.get_mut(&pk)
                    && p.start_block == Some(StartBlock::Hang)
                {
                    p.start_block = None;
                    let uid = p.uid;
                    st.schedule_in(Duration::ZERO, Event::PodStarted { pod: pk.clone(), uid });
                }
            },
        )
        .await
    }

    pub(crate) async fn wait_config_map_key_impl(
        &self,
        ns: &str,
        name: &str,
        k: &str,
        accept: &(dyn for<'v> Fn(Option<&'v str>) -> bool + Send + Sync),
        timeout: Duration,
    ) -> ClusterResult<()> {
        let ck = key(ns, name);
        self.wait_for(
            timeout,
            format!("ConfigMap {ns}/{name} key {k}"),
            |st| {
                let value = st
                    .config_maps
                    .get(&ck)
                    .and_then(|c| c.data.as_ref())
                    .and_then(|d| d.get(k))
                    .map(String::as_str);
                accept(value).then_some(Ok(()))
            },
            |st| {
                // the stalled operator comes back after this one timeout
                let stalled: Vec<_> = st
                    .operator_stalled
                    .iter()
                    .filter(|c| c.0 == ns)
                    .cloned()
                    .collect();
                for cr in stalled {
                    st.operator_stalled.remove(&cr);
                    st.schedule_in(Duration::ZERO, Event::Reconcile { cr });
                }
            },
        )
        .await
    }
}
