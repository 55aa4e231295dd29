//! The Deployment and StatefulSet controllers of the simulated cluster: pods follow
//! `spec.replicas` (Recreate strategy: new pods only once the old ones are gone), and the
//! Deployment's status counts them the way `kubectl rollout status` reads it.

use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentStatus, StatefulSetStatus};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use super::names::short_hash;
use super::state::{Event, Key, Origin, SimPod, State, key};
use super::status;

impl State {
    pub(crate) fn new_pod_from_template(
        &mut self,
        ns: &str,
        name: &str,
        template: &PodTemplateSpec,
        owner: OwnerReference,
        origin: Origin,
    ) {
        let mut pod = Pod {
            metadata: template.metadata.clone().unwrap_or_default(),
            spec: template.spec.clone(),
            status: None,
        };
        pod.metadata.name = Some(name.into());
        pod.metadata.namespace = Some(ns.into());
        pod.metadata.owner_references = Some(vec![owner]);
        let node = super::names::CR_NODES[(self.random() % 4) as usize];
        if let Some(spec) = pod.spec.as_mut() {
            spec.node_name = Some(node.into());
        }
        let uid = self.next_seq();
        self.insert_pod(pod, uid, origin.clone());
        let k = key(ns, name);
        if let Some(p) = self.pods.get_mut(&k) {
            status::mark_pending(p, "ContainerCreating", "");
        }
        let delay = match origin {
            Origin::Deployment(_) => self.timing.controller_start,
            _ => self.timing.pod_start,
        };
        self.schedule_in(delay, Event::PodStarted { pod: k, uid });
    }

    /// The Deployment and StatefulSet controllers: make pods match `spec.replicas`.
    pub(crate) fn reconcile_workloads(&mut self) {
        let deployments: Vec<Key> = self.deployments.keys().cloned().collect();
        for dk in deployments {
            let (ns, name) = dk.clone();
            let Some(dep) = self.deployments.get(&dk) else {
                continue;
            };
            let desired = dep.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1).max(0) as usize;
            let template = dep.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
            let uid = dep.metadata.uid.clone().unwrap_or_default();
            let mine = |p: &SimPod| p.origin == Origin::Deployment(name.clone());
            let mut live: Vec<(u64, Key)> = self
                .pods
                .iter()
                .filter(|((pns, _), p)| *pns == ns && mine(p) && !p.terminating)
                .map(|(k, p)| (p.uid, k.clone()))
                .collect();
            live.sort();
            let terminating = self
                .pods
                .iter()
                .filter(|((pns, _), p)| *pns == ns && mine(p) && p.terminating)
                .count();
            while live.len() > desired {
                if let Some((_, k)) = live.pop() {
                    self.terminate_pod(&k);
                }
            }
            // Recreate strategy: new pods only once the old ones are gone
            if live.len() < desired && terminating == 0 {
                let hash =
                    short_hash(&serde_json::to_string(&template).unwrap_or_default())[..10].to_string();
                for _ in live.len()..desired {
                    let suffix = short_hash(&self.random().to_string())[..5].to_string();
                    let owner = OwnerReference {
                        api_version: "apps/v1".into(),
                        kind: "ReplicaSet".into(),
                        name: format!("{name}-{hash}"),
                        uid: format!("{uid}-rs"),
                        controller: Some(true),
                        block_owner_deletion: Some(true),
                    };
                    let mut t = template.clone();
                    t.metadata
                        .get_or_insert_with(Default::default)
                        .labels
                        .get_or_insert_with(Default::default)
                        .insert("pod-template-hash".into(), hash.clone());
                    self.new_pod_from_template(
                        &ns,
                        &format!("{name}-{hash}-{suffix}"),
                        &t,
                        owner,
                        Origin::Deployment(name.clone()),
                    );
                }
            }
            self.update_deployment_status(&dk);
        }
        let sets: Vec<Key> = self.stateful_sets.keys().cloned().collect();
        for sk in sets {
            let (ns, name) = sk.clone();
            let Some(sts) = self.stateful_sets.get(&sk) else {
                continue;
            };
            let desired = sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1).max(0) as usize;
            let template = sts.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
            let uid = sts.metadata.uid.clone().unwrap_or_default();
            for i in 0..desired.max(8) {
                let pk = key(&ns, &format!("{name}-{i}"));
                let exists = self.pods.get(&pk).map(|p| p.terminating);
                if i < desired && exists.is_none() {
                    let owner = OwnerReference {
                        api_version: "apps/v1".into(),
                        kind: "StatefulSet".into(),
                        name: name.clone(),
                        uid: uid.clone(),
                        controller: Some(true),
                        block_owner_deletion: Some(true),
                    };
                    self.new_pod_from_template(
                        &ns,
                        &pk.1,
                        &template,
                        owner,
                        Origin::StatefulSet(name.clone()),
                    );
                } else if i >= desired && exists == Some(false) {
                    self.terminate_pod(&pk);
                }
            }
            let ready = self
                .pods
                .iter()
                .filter(|((pns, _), p)| {
                    *pns == ns && p.origin == Origin::StatefulSet(name.clone()) && p.ready
                })
                .count() as i32;
            if let Some(sts) = self.stateful_sets.get_mut(&sk) {
                sts.status = Some(StatefulSetStatus {
                    replicas: ready,
                    ready_replicas: Some(ready),
                    ..Default::default()
                });
            }
        }
    }

    pub(crate) fn update_deployment_status(&mut self, dk: &Key) {
        let (ns, name) = dk;
        let mine = |p: &&SimPod| p.origin == Origin::Deployment(name.clone());
        let pods: Vec<&SimPod> = self
            .pods
            .iter()
            .filter(|((pns, _), _)| pns == ns)
            .map(|(_, p)| p)
            .filter(mine)
            .collect();
        let total = pods.len() as i32;
        let updated = pods.iter().filter(|p| !p.terminating).count() as i32;
        let ready = pods.iter().filter(|p| p.ready && !p.terminating).count() as i32;
        let Some(dep) = self.deployments.get_mut(dk) else {
            return;
        };
        let desired = dep.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let available = if ready >= desired { "True" } else { "False" };
        dep.status = Some(DeploymentStatus {
            observed_generation: dep.metadata.generation,
            replicas: Some(total),
            updated_replicas: Some(updated),
            ready_replicas: Some(ready),
            available_replicas: Some(ready),
            unavailable_replicas: Some((desired - ready).max(0)),
            conditions: Some(vec![DeploymentCondition {
                type_: "Available".into(),
                status: available.into(),
                reason: Some(
                    if available == "True" {
                        "MinimumReplicasAvailable"
                    } else {
                        "MinimumReplicasUnavailable"
                    }
                    .into(),
                ),
                ..Default::default()
            }]),
            ..Default::default()
        });
    }
}
