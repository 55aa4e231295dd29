//! Whose data the `k8s` backend holds. The backend is one per Kubernetes cluster, and a LINSTOR
//! this service cannot see (another namespace, a Piraeus v2 installation, a migration made by hand)
//! may run on it: objects found there may be replaced only when this service can prove it left them
//! itself — its newest record ([`BackendWrite`]) says a run left them, and the backend is still
//! exactly so — or when the run itself is the one writing them (a resumed step). A run of this
//! service that is writing the backend (or stopped while writing it) keeps every other run off it.
//! A backend whose schema is of another LINSTOR version is refused in any case (recorded: 1.25.1's
//! `import-db` over 1.33.3's objects deletes most of them and then fails,
//! `fixtures/linstor-1.25.1/k8s/`).

use crate::cluster::K8sBackendInventory;
use crate::db::{BackendUse, BackendWrite, Db, DbError, RunRecord};
use crate::linstor::versions;

/// Whose data the backend holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::engine) enum Ownership {
    /// No rows of export tables.
    Empty,
    /// Rows an earlier run of this service left, unchanged since.
    Ours(BackendWrite),
    /// Rows this service cannot account for; the text says what was found and how to check it.
    Foreign(String),
}

/// A few CRDs with their counts: `nodes: 5, propscontainers: 67, ...`.
fn sample(inventory: &K8sBackendInventory) -> String {
    let mut crds: Vec<_> = inventory
        .crds
        .iter()
        .filter(|c| c.holds_export_rows() && c.objects > 0)
        .collect();
    // the largest tables first
    crds.sort_by_key(|c| std::cmp::Reverse(c.objects));
    let mut held: Vec<String> = crds
        .iter()
        .map(|c| format!("{}: {}", c.plural, c.objects))
        .collect();
    if held.len() > 4 {
        held.truncate(4);
        held.push("...".into());
    }
    held.join(", ")
}

/// How a person checks who uses the backend, and empties it when nobody does.
pub(in crate::engine) const HOW_TO_CHECK: &str = "check who uses it: `kubectl get crd -o name | grep internal.linstor.linbit.com`, \
     `kubectl get nodes.internal.linstor.linbit.com`, and every LINSTOR controller of the cluster \
     (`kubectl get linstorcontrollers,linstorclusters -A`; a `connection_url = \"k8s\"` in a controller's \
     linstor.toml). If nobody does, delete its objects (`kubectl delete <plural>.internal.linstor.linbit.com \
     --all` for each of those CRDs) and start again";

/// Whose rows `inventory` holds for run `run_id`, given this service's newest record `last`.
pub(in crate::engine) fn judge(
    inventory: &K8sBackendInventory,
    last: Option<&BackendWrite>,
    run_id: &str,
) -> Ownership {
    match last {
        // the run's own write, resumed: what it wrote is its own
        Some(l) if l.state == BackendUse::Writing && l.run_id == run_id => {
            return if inventory.total_objects() == 0 {
                Ownership::Empty
            } else {
                Ownership::Ours(l.clone())
            };
        }
        Some(l) if l.state == BackendUse::Writing => {
            return Ownership::Foreign(format!(
                "run {} of this service is writing the k8s backend (or stopped while writing it, since {}): the \
                 backend is one per Kubernetes cluster, and one run at a time may write it; wait until that run \
                 ends, or end it (cancel, roll back)",
                l.run_id,
                l.recorded_at.format("%Y-%m-%d %H:%M:%S UTC")
            ));
        }
        _ => {}
    }
    let objects = inventory.total_objects();
    if objects == 0 {
        return Ownership::Empty;
    }
    if let Some(last) = last.filter(|l| l.state == BackendUse::Left && l.matches(inventory)) {
        return Ownership::Ours(last.clone());
    }
    let version = inventory
        .schema_version
        .map_or("no LinstorVersion".to_string(), |v| format!("LinstorVersion {v}"));
    let since = match last {
        Some(l) if l.state == BackendUse::InUse => format!(
            "; the controller that run {} of this service migrated runs on it",
            l.run_id
        ),
        Some(l) => format!(
            "; this service last left {} objects there (run {}), and the backend has changed since",
            l.objects, l.run_id
        ),
        None => "; this service has not written it".to_string(),
    };
    Ownership::Foreign(format!(
        "the k8s backend already holds {objects} objects ({version}; {}) that this service cannot account \
         for{since}: another LINSTOR (in a namespace this service does not watch, a Piraeus v2 installation, a \
         migration made by hand) may run on them, and this migration would delete them; {HOW_TO_CHECK}",
        sample(inventory)
    ))
}

/// Records that run `run` is about to write the backend (before its first write).
pub(in crate::engine) async fn begin_writing(
    db: &Db,
    run: &RunRecord,
    inventory: &K8sBackendInventory,
) -> Result<(), DbError> {
    db.record_backend_write(&BackendWrite::of(&run.id, BackendUse::Writing, inventory))
        .await
}

/// Records how run `run_id` leaves the backend when it ends (`Left`, or `InUse` when its
/// controller runs on it), if the newest record is its own (it wrote it, or its controller ran on
/// it until a manual rollback); the backend is read only then. A backend that cannot be read keeps
/// the newest record: other runs stay off it until someone looks.
pub(in crate::engine) async fn end_writing(
    db: &Db,
    cluster: &dyn crate::cluster::Cluster,
    run_id: &str,
    state: BackendUse,
) {
    let last = match db.last_backend_write().await {
        Ok(Some(l)) if l.run_id == run_id => l,
        Ok(_) => return,
        Err(e) => {
            tracing::warn!(run = run_id, "cannot read the k8s backend's record: {e}");
            return;
        }
    };
    match cluster.k8s_backend_inventory().await {
        Ok(inventory) => {
            if let Err(e) = db
                .record_backend_write(&BackendWrite::of(&last.run_id, state, &inventory))
                .await
            {
                tracing::warn!(
                    run = run_id,
                    "cannot record what the run left in the k8s backend: {e}"
                );
            }
        }
        Err(e) => tracing::warn!(
            run = run_id,
            "cannot read the k8s backend to record what the run left there ({e}); other runs stay off it"
        ),
    }
}

/// Why the backend's schema cannot take an import of LINSTOR `linstor_version` (`1.25.1`): its
/// `LinstorVersion` or its CRDs' storage version are another recorded version's. `None` when they
/// match, when the backend has no schema, or when the version is not recorded (step 4 compares the
/// CRDs with the export then).
pub(in crate::engine) fn other_version(
    inventory: &K8sBackendInventory,
    linstor_version: &str,
) -> Option<String> {
    let ours = versions::recorded(linstor_version)?;
    let stored = inventory.storage_versions();
    let schema_differs = inventory
        .schema_version
        .is_some_and(|v| v != ours.k8s_schema_version);
    let crds_differ = stored.iter().any(|v| v != ours.data_version);
    if !schema_differs && !crds_differ {
        return None;
    }
    let theirs = inventory
        .schema_version
        .and_then(|v| versions::RECORDED.iter().find(|r| r.k8s_schema_version == v))
        .map_or(String::new(), |r| format!(", as LINSTOR {} writes it", r.linstor));
    Some(format!(
        "the k8s backend holds the schema of another LINSTOR version (LinstorVersion {}, CRDs stored at {}{theirs}); \
         this controller runs LINSTOR {linstor_version}, whose import needs LinstorVersion {} at {}. An import \
         of this version over it destroys data and fails (recorded with LINSTOR 1.25.1 over 1.33.3's objects); \
         {HOW_TO_CHECK}, and delete the CRDs as well",
        inventory
            .schema_version
            .map_or("none".to_string(), |v| v.to_string()),
        if stored.is_empty() {
            "no version".to_string()
        } else {
            stored.join(", ")
        },
        ours.k8s_schema_version,
        ours.data_version,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::BackendCrd;

    fn inventory(schema: Option<i64>, version: &str, counts: &[(&str, u64)]) -> K8sBackendInventory {
        K8sBackendInventory {
            crds: counts
                .iter()
                .map(|(plural, objects)| BackendCrd {
                    name: format!("{plural}.internal.linstor.linbit.com"),
                    plural: plural.to_string(),
                    storage_version: version.into(),
                    objects: *objects,
                    ..BackendCrd::default()
                })
                .collect(),
            schema_version: schema,
            rollback_objects: 0,
        }
    }

    #[test]
    fn only_a_backend_as_this_service_left_it_is_ours() {
        let inv = inventory(Some(18), "v1-19-1", &[("nodes", 5), ("secaccesstypes", 4)]);
        let empty = inventory(Some(18), "v1-19-1", &[("secaccesstypes", 4)]);
        assert_eq!(judge(&empty, None, "run-2"), Ownership::Empty);
        assert!(
            matches!(judge(&inv, None, "run-2"), Ownership::Foreign(t) if t.contains("5 objects") && t.contains("nodes: 5"))
        );
        let left = BackendWrite::of("run-1", BackendUse::Left, &inv);
        assert_eq!(judge(&inv, Some(&left), "run-2"), Ownership::Ours(left.clone()));
        // one more node since: someone else writes there
        let changed = inventory(Some(18), "v1-19-1", &[("nodes", 6), ("secaccesstypes", 4)]);
        assert!(
            matches!(judge(&changed, Some(&left), "run-2"), Ownership::Foreign(t) if t.contains("run run-1"))
        );
        // a controller runs on it
        let in_use = BackendWrite::of("run-1", BackendUse::InUse, &inv);
        assert!(
            matches!(judge(&inv, Some(&in_use), "run-2"), Ownership::Foreign(t) if t.contains("migrated runs on it"))
        );
    }

    #[test]
    fn a_run_writing_the_backend_keeps_every_other_run_off_it() {
        let empty = inventory(None, "v1-19-1", &[]);
        let writing = BackendWrite::of("run-1", BackendUse::Writing, &empty);
        assert!(
            matches!(judge(&empty, Some(&writing), "run-2"), Ownership::Foreign(t) if t.contains("run-1"))
        );
        // the writer itself, resumed, finds its own partial write
        let partial = inventory(Some(18), "v1-19-1", &[("nodes", 2)]);
        assert!(matches!(
            judge(&partial, Some(&writing), "run-1"),
            Ownership::Ours(_)
        ));
    }

    #[test]
    fn a_schema_of_another_recorded_version_is_refused() {
        let of_1_33 = inventory(Some(31), "v1-31-1", &[("nodes", 0)]);
        let why = other_version(&of_1_33, "1.25.1").unwrap();
        assert!(
            why.contains("LINSTOR 1.33.3 writes it") && why.contains("LinstorVersion 18"),
            "{why}"
        );
        assert_eq!(other_version(&of_1_33, "1.33.3"), None);
        assert_eq!(other_version(&inventory(None, "v1-19-1", &[]), "1.25.1"), None);
        // a version without recordings: step 4 compares the CRDs with its export instead
        assert_eq!(other_version(&of_1_33, "1.28.0"), None);
    }
}
