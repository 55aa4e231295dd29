//! Demo scenarios (`serve --demo`, `--demo`): what each one makes the simulated cluster do for
//! one run, armed through the cluster's fault machinery ([`super::faults`]) with faults and
//! refusals that belong to that run only, so that two demo runs with different scenarios do not
//! meet each other's faults.

use super::SimCluster;
use super::faults::{Fault, Refusal, RunScope, Site};
use super::state::{State, key};
use crate::cluster::{ClusterError, ClusterResult};
use crate::model::{ControllerRef, DemoScenario, StepName};

/// Rows of the `slow-100k` scenario's database.
const SLOW_ROWS: usize = 100_000;

impl State {
    /// Takes a fault for an operation at `site`: one of no run, or of the run the site belongs to.
    pub(crate) fn take_fault(&mut self, step: StepName, possible: &[Fault], site: Site<'_>) -> Option<Fault> {
        self.faults.take_at(step, possible, site)
    }

    /// Whether a write into the `k8s` backend is lost (`PartialImport`): a fault of no run fires
    /// at `Import` once any controller was stopped; a run's fault while its migration pod exists,
    /// at `PrepareTarget` (the pre-copy) while its controller runs and at `Import` after it stopped.
    pub(crate) fn lose_backend_write(&mut self) -> bool {
        if self.faults.controller_stopped
            && self
                .faults
                .take(StepName::Import, &[Fault::PartialImport])
                .is_some()
        {
            return true;
        }
        let (pods, deployments) = (&self.pods, &self.deployments);
        let migrating = |scope: &RunScope| {
            pods.values().any(|p| {
                p.pod
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(crate::cluster::pod::RUN_LABEL))
                    == Some(&scope.run)
            })
        };
        let stopped = |scope: &RunScope| {
            deployments
                .get(&key(&scope.namespace, &scope.deployment))
                .and_then(|d| d.spec.as_ref()?.replicas)
                == Some(0)
        };
        self.faults
            .take_scoped(|scope, step, fault| {
                let now = if stopped(scope) {
                    StepName::Import
                } else {
                    StepName::PrepareTarget
                };
                fault == Fault::PartialImport && step == now && migrating(scope)
            })
            .is_some()
    }

    /// A refusal holds for an operation at `site`: for everyone, or for the run it belongs to.
    pub(crate) fn refused(&self, refusal: Refusal, site: Site<'_>) -> bool {
        self.refusals.contains(&refusal) || self.faults.refused_at(refusal, site)
    }
}

impl SimCluster {
    pub(crate) fn arm_scenario(
        &self,
        run_id: &str,
        controller: &ControllerRef,
        scenario: DemoScenario,
    ) -> ClusterResult<()> {
        // the database of the controller's own LINSTOR release, made outside the lock (100k rows
        // take a moment)
        let release = {
            let st = self.lock();
            st.etcd
                .values()
                .find(|e| e.namespace == controller.namespace && e.controllers.contains(&controller.name))
                .map_or(linstor_fake::Release::LATEST, |e| {
                    linstor_fake::Release::modelling(&e.data.linstor_version)
                })
        };
        let slow =
            (scenario == DemoScenario::Slow100k).then(|| linstor_fake::dataset::sized(release, SLOW_ROWS));
        let mut st = self.lock();
        let (ns, name) = (controller.namespace.as_str(), controller.name.as_str());
        // the operator's Deployment of a LinstorController is `<cr>-controller`
        let deployment = if st.crs.contains_key(&key(ns, name)) {
            format!("{name}-controller")
        } else if st.deployments.contains_key(&key(ns, name)) {
            name.to_string()
        } else {
            return Err(ClusterError::NotFound {
                kind: "LinstorController",
                namespace: ns.into(),
                name: name.into(),
            });
        };
        let scope = RunScope {
            run: run_id.into(),
            namespace: ns.into(),
            deployment,
        };
        let (faults, refusals): (&[(StepName, Fault)], &[Refusal]) = match scenario {
            DemoScenario::None | DemoScenario::Slow100k => (&[], &[]),
            // the tool's import dies half way; with the delta import, a write of the pre-copy is
            // lost, so that the verification sends the data to the tool's import, which dies
            DemoScenario::ImportFails => (
                &[
                    (StepName::PrepareTarget, Fault::PartialImport),
                    (StepName::Import, Fault::PartialImport),
                ],
                &[],
            ),
            DemoScenario::ControllerDoesNotStart => (&[(StepName::StartController, Fault::CrashLoop)], &[]),
            DemoScenario::RollbackFails => (&[], &[Refusal::ControllerStart]),
        };
        if !st.faults.arm(scope, faults, refusals) {
            return Ok(());
        }
        if let Some(doc) = slow {
            let etcd = st
                .etcd
                .values_mut()
                .find(|e| e.namespace == ns && e.controllers.iter().any(|c| c == name));
            if let Some(e) = etcd {
                e.data = doc;
            }
        }
        st.touch();
        Ok(())
    }

    pub(crate) fn end_scenario(&self, run_id: &str) {
        let mut st = self.lock();
        st.faults.disarm(run_id);
        st.touch();
    }
}
