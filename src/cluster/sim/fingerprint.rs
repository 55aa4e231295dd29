//! What tests look at: a fingerprint of everything a migration may change (compare before and
//! after a rollback or a preflight) and counters of what clients did (no effect done twice).

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use super::state::{Origin, State};

/// Everything a migration may change, in comparable form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimFingerprint {
    /// `ns/name` -> `spec` of each LinstorController.
    pub cr_specs: BTreeMap<String, serde_json::Value>,
    /// `ns/name` -> `spec.replicas` of each Deployment.
    pub deployment_replicas: BTreeMap<String, i32>,
    /// `ns/name` -> `linstor.toml` of each ConfigMap of the installation that has one.
    pub controller_tomls: BTreeMap<String, String>,
    /// SHA-256 over all etcd data (must never change).
    pub etcd_digest: String,
    /// SHA-256 over the `k8s` backend's objects, schema version and Rollback objects.
    pub k8s_backend_digest: String,
    /// `ns/owner` -> live (not terminating) pods not made by clients; names change on restart.
    pub foreign_pods: BTreeMap<String, usize>,
    /// `ns/name` of pods made by clients.
    pub our_pods: BTreeSet<String>,
    /// `ns/name` of ConfigMaps made by clients.
    pub our_config_maps: BTreeSet<String>,
    /// `ns/name` -> `spec.replicas` of each StatefulSet.
    pub stateful_set_replicas: BTreeMap<String, i32>,
}

/// A controller pod that started, with the database it started on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerStart {
    pub namespace: String,
    pub deployment: String,
    /// The effective `connection_url` (`k8s`, `etcd://...`, the H2 default), or the error that
    /// made it crash.
    pub connection_url: String,
}

/// Counters of what the clients of the cluster did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimEffects {
    /// Finished or failed `export-db` runs that read a database, by `exported_from`
    /// (`etcd`, `k8s`, `sql/h2`).
    pub exports: BTreeMap<String, u64>,
    /// `import-db` runs that truncated the target.
    pub imports: u64,
    pub cr_patches: u64,
    pub deployment_scales: u64,
    pub stateful_set_scales: u64,
    /// `set_config_map_key` and `apply_config_map` calls.
    pub config_map_writes: u64,
    pub config_maps_deleted: u64,
    pub pods_created: u64,
    pub pods_deleted: u64,
    /// `copy_from_pod` calls that streamed a file.
    pub copies: u64,
    /// Every controller pod start, in order.
    pub controller_starts: Vec<ControllerStart>,
    /// `linstor-database` processes started (under the tool guard or not).
    pub tool_runs: u64,
    /// `linstor-database` processes started while another one ran in the same pod.
    pub tool_overlaps: u64,
    /// Processes killed (by a tool guard, or with their pod).
    pub processes_killed: u64,
    /// Objects of the `k8s` backend created, replaced or deleted by clients directly.
    pub backend_writes: u64,
    /// How long each `linstor-database` that lingered after its last line (LINSTOR 1.25.1 on
    /// `k8s`: its recorded minute) lived on, by the simulation's clock, until it exited or was
    /// killed.
    pub tool_lingered: Vec<std::time::Duration>,
}

impl SimEffects {
    /// Exports of one source (`etcd`, `k8s`, `sql/h2`).
    pub fn exports_of(&self, source: &str) -> u64 {
        self.exports.get(source).copied().unwrap_or(0)
    }
}

fn name((ns, n): &(String, String)) -> String {
    format!("{ns}/{n}")
}

pub(crate) fn take(st: &State) -> SimFingerprint {
    let mut etcd = Sha256::new();
    for (url, e) in &st.etcd {
        etcd.update(url.as_bytes());
        etcd.update(serde_json::to_vec(&e.data).unwrap_or_default());
    }
    let mut k8s = Sha256::new();
    for name in st.k8s.crds.keys() {
        k8s.update(name.as_bytes());
    }
    for (plural, objects) in &st.k8s.objects {
        k8s.update(plural.as_bytes());
        for (name, object) in objects {
            k8s.update(name.as_bytes());
            k8s.update(serde_json::to_vec(object).unwrap_or_default());
        }
    }
    let mut foreign_pods = BTreeMap::new();
    let mut our_pods = BTreeSet::new();
    for ((ns, pod_name), p) in &st.pods {
        let owner = match &p.origin {
            Origin::Client => {
                our_pods.insert(format!("{ns}/{pod_name}"));
                continue;
            }
            Origin::Deployment(d) => d.clone(),
            Origin::StatefulSet(s) => s.clone(),
            Origin::Static => pod_name.clone(),
        };
        if !p.terminating {
            *foreign_pods.entry(format!("{ns}/{owner}")).or_insert(0) += 1;
        }
    }
    SimFingerprint {
        cr_specs: st
            .crs
            .iter()
            .map(|(k, cr)| (name(k), serde_json::to_value(&cr.spec).unwrap_or_default()))
            .collect(),
        deployment_replicas: st
            .deployments
            .iter()
            .map(|(k, d)| (name(k), d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)))
            .collect(),
        controller_tomls: st
            .installed_config_maps
            .iter()
            .filter_map(|k| {
                let toml = st.config_maps.get(k)?.data.as_ref()?.get("linstor.toml")?;
                Some((name(k), toml.clone()))
            })
            .collect(),
        etcd_digest: hex::encode(etcd.finalize()),
        k8s_backend_digest: hex::encode(k8s.finalize()),
        foreign_pods,
        our_pods,
        our_config_maps: st
            .config_maps
            .keys()
            .filter(|k| !st.installed_config_maps.contains(*k))
            .map(name)
            .collect(),
        stateful_set_replicas: st
            .stateful_sets
            .iter()
            .map(|(k, s)| (name(k), s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)))
            .collect(),
    }
}
