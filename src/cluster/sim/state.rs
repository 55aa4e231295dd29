//! The objects of the simulated cluster and its event queue. The behaviour (operator,
//! Deployment controller, kubelet) lives in `operator.rs`; this file only holds and orders things.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service};
use tokio::time::Instant;

use super::SimTiming;
use super::access::Access;
use super::faults::Faults;
use super::fingerprint::SimEffects;
use crate::cluster::LinstorController;
use crate::linstor::export::ExportDocument;
use crate::linstor::rest::ErrorReport;

/// `(namespace, name)`.
pub(crate) type Key = (String, String);

pub(crate) fn key(namespace: &str, name: &str) -> Key {
    (namespace.to_string(), name.to_string())
}

/// Who made a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A client of the cluster (the migration pod).
    Client,
    /// The ReplicaSet of this Deployment.
    Deployment(String),
    /// This StatefulSet.
    StatefulSet(String),
    /// Installed with the cluster and left alone (satellites, the operator).
    Static,
}

/// Why a client pod does not start (injected faults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StartBlock {
    Unschedulable,
    ImagePull,
    /// Stays ContainerCreating until someone's wait for it times out.
    Hang,
}

/// A pod with what the simulation knows beyond the object.
#[derive(Debug, Clone)]
pub(crate) struct SimPod {
    pub pod: Pod,
    /// Distinguishes a recreated pod of the same name from the old one in scheduled events.
    pub uid: u64,
    pub origin: Origin,
    /// Files written in the pod (emptyDirs and the container filesystem), by absolute path.
    pub files: BTreeMap<String, Bytes>,
    /// For controller pods: the `connection_url` LINSTOR started with.
    pub started_with: Option<String>,
    pub start_block: Option<StartBlock>,
    pub running: bool,
    pub ready: bool,
    pub terminating: bool,
    /// Terminating but never finishing until someone's wait times out (StopController Hang).
    pub stuck: bool,
}

/// One etcd cluster and the LINSTOR data in it (never modified by anything).
#[derive(Debug, Clone)]
pub(crate) struct EtcdCluster {
    pub namespace: String,
    /// The StatefulSet running it: unreachable when it has no Running pod.
    pub stateful_set: String,
    /// The controllers (CR or Deployment names) that use it.
    pub controllers: Vec<String>,
    pub data: ExportDocument,
}

/// A process started by an exec in a pod: it lives until it ends, is killed, or its pod goes,
/// whatever happens to the exec connection that started it.
#[derive(Debug, Clone)]
pub(crate) struct SimProcess {
    pub pod: Key,
    pub argv: Vec<String>,
    /// Cancelled to kill it (SIGKILL: the command stops at its next await).
    pub kill: tokio_util::sync::CancellationToken,
}

/// A Lease.
#[derive(Debug, Clone)]
pub(crate) struct Lease {
    pub holder: String,
    pub expires: Instant,
}

/// Something the simulated control plane does later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// The kubelet started the pod's containers.
    PodStarted { pod: Key, uid: u64 },
    /// A terminating pod is gone.
    PodRemoved { pod: Key, uid: u64 },
    /// The Piraeus operator reconciles this LinstorController.
    Reconcile { cr: Key },
}

#[derive(Debug, Clone)]
struct Scheduled {
    at: Instant,
    seq: u64,
    event: Event,
}

/// Everything in the simulated cluster.
pub(crate) struct State {
    pub timing: SimTiming,
    /// Bumped on every change (see `touch`).
    pub generation: u64,
    pub now: Instant,
    pub crs: BTreeMap<Key, LinstorController>,
    pub deployments: BTreeMap<Key, Deployment>,
    pub stateful_sets: BTreeMap<Key, StatefulSet>,
    pub config_maps: BTreeMap<Key, ConfigMap>,
    /// ConfigMaps of the installation (the rest were made by clients).
    pub installed_config_maps: BTreeSet<Key>,
    pub secrets: BTreeMap<Key, Secret>,
    pub services: BTreeMap<Key, Service>,
    pub pods: BTreeMap<Key, SimPod>,
    /// By `connection_url` (and namespace, where two installations name their etcd alike).
    pub etcd: BTreeMap<String, EtcdCluster>,
    /// The cluster's `k8s` database backend (LINSTOR's CRDs and objects, one per cluster).
    pub k8s: linstor_fake::k8s::K8sStore,
    pub faults: Faults,
    pub effects: SimEffects,
    pub access: Access,
    pub leases: BTreeMap<Key, Lease>,
    /// Error reports of the controller of a Deployment `(namespace, deployment)`.
    pub error_reports: Vec<(Key, ErrorReport)>,
    /// LinstorControllers whose operator reconcile is stalled (Switch Hang).
    pub operator_stalled: BTreeSet<Key>,
    /// Deployments whose new pods never get ready (StartController Hang).
    pub start_hung: BTreeSet<Key>,
    /// Deployments whose next terminating pod never finishes (StopController Hang).
    pub stop_hung: BTreeSet<Key>,
    /// Live exec'd processes by pid.
    pub processes: BTreeMap<u64, SimProcess>,
    /// Tool-guard locks: `(pod, pid file)` -> the pid holding it.
    pub guard_locks: BTreeMap<(Key, String), u64>,
    /// `linstor-database` processes running now, per pod.
    pub tools_running: BTreeMap<Key, u32>,
    /// Refusals that last until lifted (see `SimCluster::refuse`).
    pub refusals: BTreeSet<super::faults::Refusal>,
    /// Lease calls that fail or hang, by holder (see `SimCluster::lease_trouble`).
    pub lease_trouble: BTreeMap<String, super::faults::LeaseTrouble>,
    /// The v1 objects only the upgrade plan reads (satellite sets, CSI driver, CRDs).
    pub v1: super::install_v1::V1Objects,
    events: Vec<Scheduled>,
    seq: u64,
    rng: u64,
}

impl State {
    pub fn new(timing: SimTiming) -> Self {
        Self {
            timing,
            generation: 0,
            now: Instant::now(),
            crs: BTreeMap::new(),
            deployments: BTreeMap::new(),
            stateful_sets: BTreeMap::new(),
            config_maps: BTreeMap::new(),
            installed_config_maps: BTreeSet::new(),
            secrets: BTreeMap::new(),
            services: BTreeMap::new(),
            pods: BTreeMap::new(),
            etcd: BTreeMap::new(),
            k8s: Default::default(),
            faults: Faults::default(),
            effects: SimEffects::default(),
            access: Access::default(),
            leases: BTreeMap::new(),
            error_reports: Vec::new(),
            operator_stalled: BTreeSet::new(),
            start_hung: BTreeSet::new(),
            stop_hung: BTreeSet::new(),
            processes: BTreeMap::new(),
            guard_locks: BTreeMap::new(),
            tools_running: BTreeMap::new(),
            refusals: BTreeSet::new(),
            lease_trouble: BTreeMap::new(),
            v1: super::install_v1::V1Objects::default(),
            events: Vec::new(),
            seq: 0,
            rng: 0x5eed_1234_abcd_0042,
        }
    }

    /// Records that something changed, so that waiters look again.
    pub fn touch(&mut self) {
        self.generation += 1;
    }

    /// A fresh number: pod uids, name suffixes (deterministic, no wall-clock randomness).
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Deterministic pseudo-random numbers (splitmix64).
    pub fn random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn schedule_in(&mut self, delay: std::time::Duration, event: Event) {
        let at = self.now + delay;
        self.schedule_at(at, event);
    }

    pub fn schedule_at(&mut self, at: Instant, event: Event) {
        let seq = self.next_seq();
        self.events.push(Scheduled { at, seq, event });
    }

    pub fn next_event_time(&self) -> Option<Instant> {
        self.events.iter().map(|s| s.at).min()
    }

    fn pop_due(&mut self, until: Option<Instant>) -> Option<Scheduled> {
        let idx = self
            .events
            .iter()
            .enumerate()
            .filter(|(_, s)| until.is_none_or(|u| s.at <= u))
            .min_by_key(|(_, s)| (s.at, s.seq))
            .map(|(i, _)| i)?;
        Some(self.events.swap_remove(idx))
    }

    /// Applies every event due by `now`, in order, each at its own time.
    pub fn advance(&mut self, now: Instant) {
        while let Some(s) = self.pop_due(Some(now)) {
            self.now = self.now.max(s.at);
            self.apply(s.event);
        }
        self.now = self.now.max(now);
    }

    /// Applies everything scheduled as if it had happened already (the installation's start).
    pub fn settle_now(&mut self) {
        for _ in 0..10_000 {
            let Some(s) = self.pop_due(None) else { return };
            self.apply(s.event);
        }
    }

    /// The pods of a Deployment's ReplicaSet that are Running and Ready.
    pub fn controller_pods<'a>(
        &'a self,
        namespace: &'a str,
        deployment: &'a str,
    ) -> impl Iterator<Item = &'a SimPod> {
        self.pods.iter().filter_map(move |((ns, _), p)| {
            (ns == namespace
                && p.origin == Origin::Deployment(deployment.to_string())
                && p.ready
                && !p.terminating)
                .then_some(p)
        })
    }
}

/// True when `labels` match a label selector (`k=v`, `k==v`, `k!=v`, `k`, `!k`, comma-separated).
pub(crate) fn selector_matches(selector: &str, labels: Option<&BTreeMap<String, String>>) -> bool {
    let empty = BTreeMap::new();
    let labels = labels.unwrap_or(&empty);
    selector
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .all(|term| {
            if let Some((k, v)) = term.split_once("!=") {
                labels.get(k.trim()).map(String::as_str) != Some(v.trim())
            } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                labels.get(k.trim()).map(String::as_str) == Some(v.trim())
            } else if let Some(k) = term.strip_prefix('!') {
                !labels.contains_key(k.trim())
            } else {
                labels.contains_key(term)
            }
        })
}
