//! Injected faults: each fires once, at the first operation that belongs to its step, so that
//! the engine's rollback (which repeats some of those operations) then succeeds. A fault or a
//! refusal may belong to one run (a demo scenario, see `scenario`): it then fires only where an
//! operation can be told to be that run's (its controller's objects, its pod, the `k8s` backend
//! while its controller is stopped), so that two runs on two controllers do not meet each
//! other's faults.

use crate::cluster::ClusterError;
use crate::model::StepName;

/// A failure to inject with [`super::SimCluster::inject`]. Which operations belong to which step:
///
/// - `Preflight`: reading LinstorControllers, Deployments, ConfigMaps (`Error`, `Hang`: never answers).
/// - `PreparePod`: `apply_config_map` of a ConfigMap no controller mounts, `create_pod`,
///   `wait_pod_running` (`Error`: the create fails; `PodNeverRunning`: Pending Unschedulable;
///   `ImagePullError`: ErrImagePull; `Hang`: stays ContainerCreating until the wait times out).
/// - `Snapshot`: REST listings (nodes, storage pools, resources) before the controller was ever
///   stopped (`Error`: unreachable).
/// - `PrepareTarget`: the tool runs of step 4 (the pre-copy `export-db` to `precopy.json`, the
///   `import-db` of `schema-only.json`), with the faults of `Export` and `Import`.
/// - `StopController`: scaling to 0 (CR patch or Deployment), `wait_pods_gone` (`Error`;
///   `Hang`: the pod stays Terminating until the wait times out).
/// - `Export`: exec of `linstor-database export-db` on a non-`k8s` config (`Error`: the exec call
///   fails; `ExitOne`: exception, exit 1; `UsageExitZero`: usage, exit 0, no file; `Hang`: runs
///   until cancelled).
/// - `CopyBackup`: `copy_from_pod` (`Error`: the stream breaks after part of the bytes).
/// - `Import`: exec of `import-db` (`ExitOne`, `UsageExitZero`, `Hang`, `Error`, `PartialImport`:
///   truncates, imports about half, then fails with exit 1 and leaves the rows); with the delta
///   import, a direct write of a backend object (`PartialImport`: one write is accepted and lost).
/// - `VerifyData`: a direct LIST of the `k8s` backend's objects (`Error`), or with
///   `options.verify = "tool"` the exec of `export-db` on the `k8s` config (`ExitOne`, `Error`,
///   `UsageExitZero`, `Hang`).
/// - `Switch`: a CR patch of `dbConnectionURL`, a write of a controller's ConfigMap (`Error`;
///   `Hang`: the operator does not re-render the ConfigMap until a wait for it times out).
/// - `StartController`: scaling up, `wait_deployment_ready` (`Error`; `Hang`: never ready until
///   the wait times out); a controller pod that starts on the `k8s` backend (`CrashLoop`: it
///   crash-loops, so the Deployment is never ready).
/// - `VerifyCluster`: REST listings and error reports after the controller was stopped and
///   started again (`Error`: unreachable).
/// - `Cleanup`: `delete_pod`, `delete_config_map` (`Error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The call fails (an API error, a refused connection, a broken stream).
    Error,
    /// The call or wait never finishes (a wait times out once, then things go on).
    Hang,
    /// The tool dies with a Java exception and exit code 1.
    ExitOne,
    /// The tool prints its usage and exits 0 without doing anything.
    UsageExitZero,
    /// The import truncates the target, writes about half the rows, then dies.
    PartialImport,
    /// The migration pod stays Pending: Unschedulable.
    PodNeverRunning,
    /// The migration pod's image cannot be pulled.
    ImagePullError,
    /// The controller started on the `k8s` backend crash-loops (CrashLoopBackOff).
    CrashLoop,
}

/// A refusal that lasts until it is lifted (unlike a [`Fault`], which fires once): for tests of
/// a rollback that meets the same refusal on every retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Refusal {
    /// Every patch of a LinstorController is refused (an admission webhook, an outage).
    CrPatch,
    /// Every scale of a StatefulSet is refused.
    StatefulSetScale,
    /// Every change that scales a controller up (its CR's `spec.replicas`, its Deployment's
    /// scale) is refused, as an admission webhook would; scaling down is allowed.
    ControllerStart,
}

/// Where an operation happens, as far as a fault of one run can tell.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Site<'a> {
    /// Not attributed: only faults of no run fire here.
    Anywhere,
    /// A controller's own objects: `(namespace, Deployment)`.
    Controller(&'a str, &'a str),
    /// A pod made for a run (its run label).
    RunPod(&'a str),
}

/// The run a fault or refusal belongs to, and its controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RunScope {
    pub run: String,
    pub namespace: String,
    /// The controller's Deployment.
    pub deployment: String,
}

impl RunScope {
    /// Whether an operation at `site` is this run's.
    fn covers(&self, site: Site<'_>) -> bool {
        match site {
            Site::Anywhere => false,
            Site::Controller(ns, deployment) => self.namespace == ns && self.deployment == deployment,
            Site::RunPod(run) => self.run == run,
        }
    }
}

/// Trouble one process has with its Leases (the API server unreachable from it, or its calls
/// hanging), until lifted: for tests of a holder that cannot renew.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseTrouble {
    /// Every Lease call of that holder fails.
    Error,
    /// Every Lease call of that holder never answers.
    Hang,
}

/// Faults waiting to fire, and what the REST mapping needs to know.
#[derive(Debug, Clone, Default)]
pub(crate) struct Faults {
    pending: Vec<(StepName, Fault)>,
    /// Faults of one run each.
    scoped: Vec<(RunScope, StepName, Fault)>,
    /// Refusals of one run each, until the run ends.
    scoped_refusals: Vec<(RunScope, Refusal)>,
    /// Runs whose scenario was armed in this process (never twice).
    armed: std::collections::BTreeSet<String>,
    /// A controller was scaled to 0 at some point (REST calls after it are not the snapshot).
    pub controller_stopped: bool,
    /// ... and scaled up again afterwards (REST calls now belong to VerifyCluster).
    pub controller_restarted: bool,
}

impl Faults {
    pub fn inject(&mut self, at: StepName, fault: Fault) {
        self.pending.push((at, fault));
    }

    pub fn pending(&self) -> Vec<(StepName, Fault)> {
        self.pending.clone()
    }

    /// Removes and returns the first fault injected for `step` that this operation can show.
    pub fn take(&mut self, step: StepName, possible: &[Fault]) -> Option<Fault> {
        self.take_at(step, possible, Site::Anywhere)
    }

    /// Like [`Faults::take`], for an operation at `site`: a fault of no run, or of the run the
    /// site belongs to.
    pub fn take_at(&mut self, step: StepName, possible: &[Fault], site: Site<'_>) -> Option<Fault> {
        if let Some(idx) = self
            .pending
            .iter()
            .position(|(s, f)| *s == step && possible.contains(f))
        {
            return Some(self.pending.remove(idx).1);
        }
        self.take_scoped(|scope, s, f| s == step && possible.contains(&f) && scope.covers(site))
            .map(|(_, f)| f)
    }

    /// Removes and returns the first fault of a run that `wanted` picks (for operations whose
    /// run only the caller can tell, such as writes into the cluster-wide `k8s` backend).
    pub fn take_scoped(
        &mut self,
        wanted: impl Fn(&RunScope, StepName, Fault) -> bool,
    ) -> Option<(StepName, Fault)> {
        let idx = self
            .scoped
            .iter()
            .position(|(scope, s, f)| wanted(scope, *s, *f))?;
        let (_, step, fault) = self.scoped.remove(idx);
        Some((step, fault))
    }

    /// Arms a run's faults and refusals; false (and nothing armed) when the run was armed before.
    pub fn arm(&mut self, scope: RunScope, faults: &[(StepName, Fault)], refusals: &[Refusal]) -> bool {
        if !self.armed.insert(scope.run.clone()) {
            return false;
        }
        for (step, fault) in faults {
            self.scoped.push((scope.clone(), *step, *fault));
        }
        for r in refusals {
            self.scoped_refusals.push((scope.clone(), *r));
        }
        true
    }

    /// Drops what is left of a run's faults and refusals.
    pub fn disarm(&mut self, run: &str) {
        self.scoped.retain(|(scope, _, _)| scope.run != run);
        self.scoped_refusals.retain(|(scope, _)| scope.run != run);
    }

    /// A refusal of some run holds at `site`.
    pub fn refused_at(&self, refusal: Refusal, site: Site<'_>) -> bool {
        self.scoped_refusals
            .iter()
            .any(|(scope, r)| *r == refusal && scope.covers(site))
    }

    /// Notes a change of a controller's replicas, for the REST mapping.
    pub fn note_scale(&mut self, replicas: i32) {
        if replicas == 0 {
            self.controller_stopped = true;
        } else if self.controller_stopped {
            self.controller_restarted = true;
        }
    }

    /// The step REST listings belong to now, if any.
    pub fn rest_step(&self) -> Option<StepName> {
        if self.controller_restarted {
            Some(StepName::VerifyCluster)
        } else if !self.controller_stopped {
            Some(StepName::Snapshot)
        } else {
            None
        }
    }
}

/// The error an API call fails with when an `Error` fault fires.
pub(crate) fn api_error(step: StepName, what: &str) -> ClusterError {
    ClusterError::Api(format!(
        "{what}: Internal error occurred: etcdserver: request timed out (simulated fault in step {step})"
    ))
}

/// Never returns: an API call that hangs (the caller's timeout or cancellation drops it).
pub(crate) async fn hang<T>() -> T {
    std::future::pending::<T>().await
}
