//! `SimCluster`: an in-memory Kubernetes cluster shaped like a Piraeus Operator v1 installation on
//! etcd (REFERENCE.md §2), for the engine's unit tests and `serve --demo`.
//!
//! It is faithful where the migration can go wrong: the operator reverts direct scaling of the
//! Deployment it owns and re-renders the ConfigMap only after its next reconcile; a controller pod
//! runs on whatever `linstor.toml` it started with. Everything LINSTOR itself does comes from
//! `linstor-fake`, the one model of LINSTOR replayed against recordings of the real 1.25.1 and
//! 1.33.3: the etcd databases (`linstor_fake::dataset`), `linstor-database` (exit 0 on bad
//! arguments, the silent H2 fallback that then fails, an import that truncates the `k8s` backend
//! first and leaves partial data when it fails, 1.25.1's minute of lingering after its last line),
//! the `k8s` backend's CRDs and objects and the REST views, each as the LINSTOR release of the
//! image of the pod it runs in; this module is the Kubernetes side they run in. Three controllers:
//! a Piraeus v1 installation on 1.33.3 ([`SimCluster::CR_CONTROLLER`]), one on the v1.10.8
//! chart's default image, 1.25.1 ([`SimCluster::CHART_DEFAULT_CONTROLLER`]), and a plain
//! Deployment on 1.32.3 ([`SimCluster::PLAIN_CONTROLLER`]). Faults can be injected per step.
//!
//! Nothing runs in the background: every access first advances the simulation to "now" (tokio
//! time, so `tokio::time::pause` works), and waits sleep until the next scheduled event or until
//! another caller changed something.

mod access;
mod api;
mod exec;
mod faults;
mod fingerprint;
mod fs;
mod install;
mod install_v1;
mod k8s_objects;
mod names;
mod operator;
mod pods;
mod processes;
mod rest;
mod rest_views;
mod scenario;
mod shell;
mod state;
mod status;
mod tool;
mod waits;
mod workloads;
mod writes;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_operator;
#[cfg(test)]
mod tests_tool;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;

pub use faults::{Fault, LeaseTrouble, Refusal};
pub use fingerprint::{ControllerStart, SimEffects, SimFingerprint};

use crate::cluster::UserInfo;
use crate::linstor::export::ExportDocument;
use crate::model::StepName;
use state::State;

/// How long the simulated cluster takes for things.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimTiming {
    /// From `create_pod` to Running (image pull, volume setup).
    pub pod_start: Duration,
    /// From scaling a controller down to its pod being gone (graceful shutdown).
    pub controller_stop: Duration,
    /// From a controller pod being created to Running and Ready (JVM start, DB load).
    pub controller_start: Duration,
    /// Delay of the operator's next reconcile: the ConfigMap follows a CR change only then.
    pub operator_reconcile: Duration,
    /// Total time an export takes.
    pub export: Duration,
    /// How long `linstor-database` tries an unreachable etcd before it fails (the real 1.33.3
    /// tool: about 60 s, tests/fixtures/linstor-1.33.3/tool/09).
    pub etcd_give_up: Duration,
    /// Time per imported row (the real tool makes one API call per row).
    pub import_per_row: Duration,
    /// Pause between the tool's log lines.
    pub exec_line_interval: Duration,
}

impl SimTiming {
    /// Realistic for the demo: a whole migration takes 35-40 s, the import (about 1000 rows) the
    /// longest, as in the Piraeus guide's example (export 2 s, import 39 s).
    pub fn demo() -> Self {
        Self {
            pod_start: Duration::from_millis(2500),
            controller_stop: Duration::from_secs(3),
            controller_start: Duration::from_secs(5),
            operator_reconcile: Duration::from_secs(4),
            export: Duration::from_secs(2),
            etcd_give_up: Duration::from_secs(60),
            import_per_row: Duration::from_millis(12),
            exec_line_interval: Duration::from_millis(40),
        }
    }

    /// Every duration times `factor` (a factor that is not a positive number keeps them).
    pub fn scaled(self, factor: f64) -> Self {
        if !(factor.is_finite() && factor > 0.0) {
            return self;
        }
        let s = |d: Duration| d.mul_f64(factor);
        Self {
            pod_start: s(self.pod_start),
            controller_stop: s(self.controller_stop),
            controller_start: s(self.controller_start),
            operator_reconcile: s(self.operator_reconcile),
            export: s(self.export),
            etcd_give_up: s(self.etcd_give_up),
            import_per_row: s(self.import_per_row),
            exec_line_interval: s(self.exec_line_interval),
        }
    }

    /// Next to nothing, for tests.
    pub fn instant() -> Self {
        Self {
            pod_start: Duration::from_millis(2),
            controller_stop: Duration::from_millis(2),
            controller_start: Duration::from_millis(3),
            operator_reconcile: Duration::from_millis(5),
            export: Duration::from_millis(1),
            etcd_give_up: Duration::from_millis(1),
            import_per_row: Duration::ZERO,
            exec_line_interval: Duration::ZERO,
        }
    }
}

pub(crate) struct Shared {
    state: Mutex<State>,
    /// Bumped whenever the state changes; waits watch it instead of polling.
    changes: watch::Sender<u64>,
}

/// An in-memory Piraeus-v1 cluster implementing [`crate::cluster::Cluster`]; clones share it.
#[derive(Clone)]
pub struct SimCluster {
    shared: Arc<Shared>,
}

/// The state, advanced to now; notifies waiters on drop when something changed.
pub(crate) struct StateGuard<'a> {
    guard: MutexGuard<'a, State>,
    generation_at_lock: u64,
    changes: &'a watch::Sender<u64>,
}

impl std::ops::Deref for StateGuard<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        &self.guard
    }
}

impl std::ops::DerefMut for StateGuard<'_> {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.guard
    }
}

impl Drop for StateGuard<'_> {
    fn drop(&mut self) {
        if self.guard.generation != self.generation_at_lock {
            self.changes.send_replace(self.guard.generation);
        }
    }
}

impl SimCluster {
    /// The LinstorController of the standard installation.
    pub const CR_CONTROLLER: (&'static str, &'static str) = ("piraeus-datastore", "piraeus-op-cs");
    /// The plain Deployment (no CR) of the standard installation.
    pub const PLAIN_CONTROLLER: (&'static str, &'static str) = ("storage", "linstor-controller");
    /// The LinstorController of the installation on the Piraeus v1.10.8 chart's default image
    /// (`piraeus-server:v1.25.1`).
    pub const CHART_DEFAULT_CONTROLLER: (&'static str, &'static str) = ("piraeus", "piraeus-op-cs");

    /// The standard installation: a Piraeus v1 release `piraeus-op` on etcd in
    /// `piraeus-datastore` with LINSTOR 1.33.3, another one in `piraeus` with the chart's default
    /// LINSTOR 1.25.1, and a plain controller Deployment on its own etcd in `storage` (1.32.3).
    pub fn new(timing: SimTiming) -> Self {
        let mut state = State::new(timing);
        install::standard(&mut state);
        install_v1::standard(&mut state);
        let (changes, _) = watch::channel(0);
        let sim = Self {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                changes,
            }),
        };
        // controllers and etcd start Running: the cluster exists before we look at it
        sim.lock().settle_now();
        sim
    }

    /// Locks the state and advances it to now.
    pub(crate) fn lock(&self) -> StateGuard<'_> {
        let mut guard = self
            .shared
            .state
            .lock()
            .expect("simulated cluster state poisoned");
        let generation_at_lock = guard.generation;
        guard.advance(tokio::time::Instant::now());
        StateGuard {
            guard,
            generation_at_lock,
            changes: &self.shared.changes,
        }
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.changes.subscribe()
    }

    /// The timing this cluster was built with.
    pub fn timing(&self) -> SimTiming {
        self.lock().timing.clone()
    }

    /// Makes `fault` happen once, at the first operation that belongs to step `at`
    /// (see [`Fault`] for the mapping of operations to steps).
    pub fn inject(&self, at: StepName, fault: Fault) {
        self.lock().faults.inject(at, fault);
    }

    /// Makes every operation of a kind fail (`on`) until lifted (`off`).
    pub fn refuse(&self, refusal: Refusal, on: bool) {
        let mut st = self.lock();
        if on {
            st.refusals.insert(refusal);
        } else {
            st.refusals.remove(&refusal);
        }
        st.touch();
    }

    /// Makes every Lease call of `holder` fail or hang (`Some`), or work again (`None`), as when
    /// the API server cannot be reached from that one process.
    pub fn lease_trouble(&self, holder: &str, trouble: Option<LeaseTrouble>) {
        let mut st = self.lock();
        match trouble {
            Some(t) => st.lease_trouble.insert(holder.to_string(), t),
            None => st.lease_trouble.remove(holder),
        };
        st.touch();
    }

    /// Faults injected but not fired yet.
    pub fn pending_faults(&self) -> Vec<(StepName, Fault)> {
        self.lock().faults.pending()
    }

    /// Everything a migration may change, for before/after comparisons.
    pub fn fingerprint(&self) -> SimFingerprint {
        fingerprint::take(&self.lock())
    }

    /// What the clients of this cluster have done so far.
    pub fn effects(&self) -> SimEffects {
        self.lock().effects.clone()
    }

    /// Rows per table in the `k8s` backend (every table of the schema, empty ones as 0 once
    /// LINSTOR created its CRDs; nothing before). The four `SEC_ACCESS_TYPES` objects a fresh
    /// import's schema migrations create are rows of a table that is never exported.
    pub fn k8s_backend_rows(&self) -> BTreeMap<String, usize> {
        self.lock().k8s.row_counts()
    }

    /// What an export of the CR controller's etcd gives.
    pub fn etcd_dataset(&self) -> ExportDocument {
        self.etcd_dataset_of(Self::CR_CONTROLLER.0, Self::CR_CONTROLLER.1)
            .unwrap_or_else(|| linstor_fake::dataset::piraeus(linstor_fake::Release::LATEST))
    }

    /// The etcd data of a controller of the installation (`namespace`, CR or Deployment name).
    pub fn etcd_dataset_of(&self, namespace: &str, controller: &str) -> Option<ExportDocument> {
        let st = self.lock();
        st.etcd
            .values()
            .find(|e| e.namespace == namespace && e.controllers.iter().any(|c| c == controller))
            .map(|e| e.data.clone())
    }

    /// Changes the etcd data of a controller (as the running controller would: a new resource,
    /// a changed property, a deleted node); false when the controller has no etcd here.
    pub fn change_etcd_data(
        &self,
        namespace: &str,
        controller: &str,
        change: impl FnOnce(&mut ExportDocument),
    ) -> bool {
        let mut st = self.lock();
        let Some(e) = st
            .etcd
            .values_mut()
            .find(|e| e.namespace == namespace && e.controllers.iter().any(|c| c == controller))
        else {
            return false;
        };
        change(&mut e.data);
        st.touch();
        true
    }

    /// Fills the `k8s` backend with `doc`'s rows as if the LINSTOR of its `linstor_version` had
    /// imported it before (its CRDs and `LinstorVersion`: data a migration's import will replace,
    /// or another LINSTOR's backend).
    pub fn preload_k8s_backend(&self, doc: &ExportDocument) {
        let release = linstor_fake::Release::modelling(&doc.linstor_version);
        let mut st = self.lock();
        let tables: Vec<_> = doc
            .tables
            .iter()
            .filter_map(|t| Some((release.table(&t.name)?, t.data.as_slice())))
            .collect();
        st.k8s.load(release, &tables);
        st.touch();
    }

    /// Adds `doc`'s rows to the `k8s` backend (whose schema exists), as another writer would.
    pub fn add_k8s_backend_rows(&self, doc: &ExportDocument) {
        let release = linstor_fake::Release::modelling(&doc.linstor_version);
        let mut st = self.lock();
        for t in &doc.tables {
            let Some(table) = release.table(&t.name) else {
                continue;
            };
            for row in &t.data {
                let object = linstor_fake::k8s::row_object(release, table, row);
                let _ = st.k8s.create(table.plural(), release.data_version(), object);
            }
        }
        st.touch();
    }

    /// Leaves `n` stale `Rollback` objects in the `k8s` backend (linstor-server#357).
    pub fn add_rollback_objects(&self, n: u64) {
        let mut st = self.lock();
        st.k8s.add_rollbacks(n as usize);
        st.touch();
    }

    /// Removes a right: `user_or_self` is a user (`system:serviceaccount:ns:name`), a group, or
    /// `self` for this service's own SelfSubjectAccessReviews. `*` matches any group, resource or verb.
    pub fn deny(&self, user_or_self: &str, group: &str, resource: &str, verb: &str) {
        self.lock().access.deny(user_or_self, group, resource, verb);
    }

    /// Registers a bearer token that TokenReview accepts.
    pub fn add_token(&self, token: &str, username: &str, groups: &[&str]) {
        let user = UserInfo {
            username: username.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        };
        self.lock().access.tokens.insert(token.into(), user);
    }

    /// The `connection_url`s the Running controller pods of a Deployment started with.
    pub fn controller_connection_urls(&self, namespace: &str, deployment: &str) -> Vec<String> {
        let st = self.lock();
        st.controller_pods(namespace, deployment)
            .filter_map(|p| p.started_with.clone())
            .collect()
    }

    /// A file in a pod's filesystem (emptyDirs and the container's own files).
    pub fn pod_file(&self, namespace: &str, pod: &str, path: &str) -> Option<Vec<u8>> {
        let st = self.lock();
        st.pods
            .get(&state::key(namespace, pod))
            .and_then(|p| p.files.get(path))
            .map(|b| b.to_vec())
    }

    /// Waits until nothing is scheduled any more (pods started or gone, operator reconciled).
    pub async fn settle(&self) {
        loop {
            let next = self.lock().next_event_time();
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => return,
            }
        }
    }
}

impl std::fmt::Debug for SimCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SimCluster")
    }
}
