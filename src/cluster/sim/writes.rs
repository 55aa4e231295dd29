//! The writes of the simulated cluster (CR patches, scaling, ConfigMaps, pods) with the
//! operator's reactions, and the gate that lets an injected fault of the operation's step fire.

use k8s_openapi::api::core::v1::ConfigMap;

use super::faults::{Fault, Refusal, Site, api_error, hang};
use super::state::{Event, Key, State, key};
use super::{SimCluster, status};
use crate::cluster::{ClusterError, ClusterResult, LinstorController};
use crate::model::StepName;

pub(crate) fn not_found(kind: &'static str, ns: &str, name: &str) -> ClusterError {
    ClusterError::NotFound {
        kind,
        namespace: ns.into(),
        name: name.into(),
    }
}

/// RFC 7386 JSON merge patch.
fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    let Some(p) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = serde_json::Value::Object(Default::default());
    }
    if let Some(t) = target.as_object_mut() {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(serde_json::Value::Null), v);
            }
        }
    }
}

impl State {
    /// True when a controller Deployment mounts this ConfigMap (writing it is the Switch).
    fn is_controller_config_map(&self, ns: &str, name: &str) -> bool {
        self.deployments.iter().any(|((dns, dname), d)| {
            dns == ns
                && self.is_controller_deployment(dns, dname)
                && d.spec
                    .as_ref()
                    .and_then(|s| s.template.spec.as_ref())
                    .is_some_and(|s| {
                        s.volumes
                            .iter()
                            .flatten()
                            .any(|v| v.config_map.as_ref().is_some_and(|c| c.name == name))
                    })
        })
    }

    /// The LinstorController owning an object, if any.
    fn cr_owner(
        &self,
        ns: &str,
        owners: Option<&Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>>,
    ) -> Option<Key> {
        owners?
            .iter()
            .find(|o| o.kind == "LinstorController" && o.controller == Some(true))
            .map(|o| key(ns, &o.name))
    }
}

impl SimCluster {
    /// Lets a fault of `step` fire: `Error` fails, `Hang` never returns, others are handed back.
    pub(crate) async fn gate(
        &self,
        step: StepName,
        possible: &[Fault],
        what: &str,
    ) -> ClusterResult<Option<Fault>> {
        let fault = self.lock().faults.take(step, possible);
        match fault {
            Some(Fault::Error) => Err(api_error(step, what)),
            Some(Fault::Hang)
                if !matches!(
                    step,
                    StepName::StopController
                        | StepName::StartController
                        | StepName::Switch
                        | StepName::PreparePod
                ) =>
            {
                hang().await
            }
            other => Ok(other),
        }
    }

    pub(crate) async fn read_gate(&self, what: &str) -> ClusterResult<()> {
        self.gate(StepName::Preflight, &[Fault::Error, Fault::Hang], what)
            .await
            .map(|_| ())
    }

    /// Step of a replica change: stopping or starting a controller.
    fn scale_step(replicas: i64) -> StepName {
        if replicas == 0 {
            StepName::StopController
        } else {
            StepName::StartController
        }
    }

    /// Arms a `Hang` of a scale: the next stop never finishes, or the next start never gets ready.
    fn arm_scale_hang(st: &mut State, deployment: Key, replicas: i64) {
        if replicas == 0 {
            st.stop_hung.insert(deployment);
        } else {
            st.start_hung.insert(deployment);
        }
    }
}

/// What an admission webhook that refuses to scale a controller up answers.
fn start_refused(kind: &str, ns: &str, name: &str) -> ClusterError {
    ClusterError::Api(format!(
        "admission webhook \"replicas.policy.example\" denied the request: {kind} {ns}/{name} may not be scaled \
         up now (simulated refusal)"
    ))
}

impl SimCluster {
    pub(crate) async fn patch_linstor_controller_impl(
        &self,
        ns: &str,
        name: &str,
        patch: serde_json::Value,
    ) -> ClusterResult<()> {
        if self.lock().refusals.contains(&super::faults::Refusal::CrPatch) {
            return Err(ClusterError::Api(format!(
                "Internal error occurred: failed calling webhook for LinstorController {ns}/{name}: \
                 connection refused (simulated refusal)"
            )));
        }
        let spec = patch.get("spec");
        let url_change = spec.and_then(|s| s.get("dbConnectionURL")).is_some();
        let replicas = spec
            .and_then(|s| s.get("replicas"))
            .and_then(serde_json::Value::as_i64);
        if replicas.is_some_and(|r| r > 0)
            && self.lock().refused(
                Refusal::ControllerStart,
                Site::Controller(ns, &format!("{name}-controller")),
            )
        {
            return Err(start_refused("LinstorController", ns, name));
        }
        let step = match replicas {
            _ if url_change => Some(StepName::Switch),
            Some(r) => Some(Self::scale_step(r)),
            None => None,
        };
        let fault = match step {
            Some(step) => {
                self.gate(step, &[Fault::Error, Fault::Hang], "patch linstorcontroller")
                    .await?
            }
            None => None,
        };
        let mut st = self.lock();
        let k = key(ns, name);
        let cr = st
            .crs
            .get(&k)
            .ok_or_else(|| not_found("LinstorController", ns, name))?;
        let mut value = serde_json::to_value(cr).map_err(|e| ClusterError::Api(e.to_string()))?;
        merge_patch(&mut value, &patch);
        let mut patched: LinstorController = serde_json::from_value(value).map_err(|e| {
            ClusterError::Api(format!(
                "LinstorController.piraeus.linbit.com {name:?} is invalid: {e}"
            ))
        })?;
        patched.metadata.generation = Some(patched.metadata.generation.unwrap_or(1) + 1);
        let desired = patched.spec.replicas.unwrap_or(1);
        st.crs.insert(k.clone(), patched);
        st.effects.cr_patches += 1;
        let deployment = key(ns, &format!("{name}-controller"));
        if fault == Some(Fault::Hang) {
            match step {
                Some(StepName::Switch) => {
                    st.operator_stalled.insert(k.clone());
                }
                _ => Self::arm_scale_hang(&mut st, deployment.clone(), replicas.unwrap_or(1)),
            }
        }
        if let Some(r) = replicas {
            st.faults.note_scale(r as i32);
        }
        // the operator applies the CR's replicas at once; the ConfigMap only at its next reconcile
        st.set_deployment_replicas(&deployment, desired);
        let delay = st.timing.operator_reconcile;
        st.schedule_in(delay, Event::Reconcile { cr: k });
        st.reconcile_workloads();
        st.touch();
        Ok(())
    }

    pub(crate) async fn scale_deployment_impl(
        &self,
        ns: &str,
        name: &str,
        replicas: i32,
    ) -> ClusterResult<()> {
        if replicas > 0
            && self
                .lock()
                .refused(Refusal::ControllerStart, Site::Controller(ns, name))
        {
            return Err(start_refused("Deployment", ns, name));
        }
        let step = Self::scale_step(replicas.into());
        let fault = self
            .gate(step, &[Fault::Error, Fault::Hang], "patch deployments/scale")
            .await?;
        let mut st = self.lock();
        let k = key(ns, name);
        let dep = st
            .deployments
            .get(&k)
            .ok_or_else(|| not_found("Deployment", ns, name))?;
        let owner = st.cr_owner(ns, dep.metadata.owner_references.as_ref());
        if fault == Some(Fault::Hang) {
            Self::arm_scale_hang(&mut st, k.clone(), replicas.into());
        }
        st.set_deployment_replicas(&k, replicas);
        st.effects.deployment_scales += 1;
        st.faults.note_scale(replicas);
        if let Some(cr) = owner {
            // the operator re-applies the Deployment from the CR: a direct scale does not last
            let delay = st.timing.operator_reconcile;
            st.schedule_in(delay, Event::Reconcile { cr });
        }
        st.reconcile_workloads();
        st.touch();
        Ok(())
    }

    pub(crate) async fn scale_stateful_set_impl(
        &self,
        ns: &str,
        name: &str,
        replicas: i32,
    ) -> ClusterResult<()> {
        let mut st = self.lock();
        if st.refusals.contains(&super::faults::Refusal::StatefulSetScale) {
            return Err(ClusterError::Forbidden(format!(
                "statefulsets.apps \"{name}\" is forbidden: cannot patch resource \"statefulsets/scale\" in {ns} \
                 (simulated refusal)"
            )));
        }
        let sts = st
            .stateful_sets
            .get_mut(&key(ns, name))
            .ok_or_else(|| not_found("StatefulSet", ns, name))?;
        sts.spec.get_or_insert_with(Default::default).replicas = Some(replicas);
        st.effects.stateful_set_scales += 1;
        st.reconcile_workloads();
        st.touch();
        Ok(())
    }

    pub(crate) async fn set_config_map_key_impl(
        &self,
        ns: &str,
        name: &str,
        k: &str,
        value: &str,
    ) -> ClusterResult<()> {
        let step = if self.lock().is_controller_config_map(ns, name) {
            StepName::Switch
        } else {
            StepName::PreparePod
        };
        if self
            .gate(step, &[Fault::Error, Fault::Hang], "patch configmap")
            .await?
            == Some(Fault::Hang)
        {
            return hang().await;
        }
        let mut st = self.lock();
        let cm_key = key(ns, name);
        let cm = st
            .config_maps
            .get_mut(&cm_key)
            .ok_or_else(|| not_found("ConfigMap", ns, name))?;
        cm.data
            .get_or_insert_with(Default::default)
            .insert(k.into(), value.into());
        let owner = st.cr_owner(
            ns,
            st.config_maps
                .get(&cm_key)
                .and_then(|c| c.metadata.owner_references.as_ref()),
        );
        st.effects.config_map_writes += 1;
        if let Some(cr) = owner {
            // the operator renders its ConfigMap from the CR and overwrites manual edits
            let delay = st.timing.operator_reconcile;
            st.schedule_in(delay, Event::Reconcile { cr });
        }
        st.touch();
        Ok(())
    }

    pub(crate) async fn apply_config_map_impl(&self, cm: &ConfigMap) -> ClusterResult<()> {
        let ns = cm
            .metadata
            .namespace
            .clone()
            .ok_or_else(|| ClusterError::Api("ConfigMap has no namespace".into()))?;
        let name = cm
            .metadata
            .name
            .clone()
            .ok_or_else(|| ClusterError::Api("ConfigMap has no name".into()))?;
        let step = if self.lock().is_controller_config_map(&ns, &name) {
            StepName::Switch
        } else {
            StepName::PreparePod
        };
        if self
            .gate(step, &[Fault::Error, Fault::Hang], "apply configmap")
            .await?
            == Some(Fault::Hang)
        {
            return hang().await;
        }
        let mut st = self.lock();
        let k = key(&ns, &name);
        let mut new = cm.clone();
        if let Some(old) = st.config_maps.get(&k) {
            new.metadata.uid = old.metadata.uid.clone();
            new.metadata.owner_references = new
                .metadata
                .owner_references
                .or_else(|| old.metadata.owner_references.clone());
        } else {
            let n = st.next_seq();
            new.metadata.uid = Some(format!("c0f1c000-0000-4000-8000-{n:012x}"));
            new.metadata.creation_timestamp = Some(status::now());
        }
        let owner = st.cr_owner(&ns, new.metadata.owner_references.as_ref());
        st.config_maps.insert(k, new);
        st.effects.config_map_writes += 1;
        if let Some(cr) = owner {
            let delay = st.timing.operator_reconcile;
            st.schedule_in(delay, Event::Reconcile { cr });
        }
        st.touch();
        Ok(())
    }

    pub(crate) async fn delete_config_map_impl(&self, ns: &str, name: &str) -> ClusterResult<()> {
        self.gate(StepName::Cleanup, &[Fault::Error], "delete configmap")
            .await?;
        let mut st = self.lock();
        let k = key(ns, name);
        if st.config_maps.remove(&k).is_some() {
            st.installed_config_maps.remove(&k);
            st.effects.config_maps_deleted += 1;
            st.touch();
        }
        Ok(())
    }
}
