//! The delta import: what the `k8s` backend holds is compared, row by row by primary key, with
//! an export, and only the rows that differ are written: created, replaced (the whole `spec`), or
//! deleted, many requests in flight, by the recorded naming rule (object name = SHA-256 of the
//! primary key, `spec` = the row without its null columns; REFERENCE.md §3, the same in every
//! recorded LINSTOR version). Tables, primary keys and the CRD version are the run's own
//! ([`RunSchema`]); an object that is not a row of the export is deleted by its own name. The
//! export is read as a stream: only the rows to write pass through memory, one at a time.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};

use super::RunSchema;
use crate::cluster::{Cluster, ClusterError, K8sBackendObject};
use crate::engine::context::DeltaCounts;
use crate::engine::steps::StepError;
use crate::linstor::compare::side_by_side;
use crate::linstor::export::{ExportSummary, Row};
use crate::linstor::export_rows;
use crate::linstor::row_index::{Difference, RowKey, key_hash, key_text};
use crate::linstor::schema::Table;

/// Requests in flight while writing.
const IN_FLIGHT: usize = 32;

/// The rows that differ between an export and the backend.
#[derive(Debug, Default)]
pub(in crate::engine) struct Delta {
    /// Per table, the keys of rows to create or replace, and whether they exist now.
    write: BTreeMap<String, HashMap<RowKey, bool>>,
    /// Tables the backend holds no row of: every row is created, without a key per row in
    /// memory (the pre-copy into an empty backend).
    create_all: BTreeSet<String>,
    /// `(plural, object name)` to delete.
    remove: Vec<(String, String)>,
    pub counts: DeltaCounts,
    /// Tables whose rows differ but cannot be named (no primary key): the delta cannot fix them.
    pub unsupported: Vec<String>,
}

impl Delta {
    /// Whether any row of `table` is written (the others need not even be keyed).
    fn touches(&self, table: &str) -> bool {
        self.create_all.contains(table) || self.write.contains_key(table)
    }

    /// Whether the row of `table` with `key` is written, and whether its object exists now.
    fn writes(&self, table: &str, key: &RowKey) -> Option<bool> {
        if self.create_all.contains(table) {
            return Some(false);
        }
        self.write.get(table)?.get(key).copied()
    }
}

/// What must change in the backend (`found`, whose objects of odd names `odd_names` lists) to make
/// it equal the export (`expected`, whose tables `schema` describes).
pub(in crate::engine) fn plan(
    schema: &RunSchema,
    expected: &ExportSummary,
    found: &ExportSummary,
    odd_names: &HashMap<RowKey, String>,
) -> Delta {
    let mut delta = Delta::default();
    for (name, want, have) in side_by_side(expected, found) {
        let Some(table) = schema.table(name).filter(|t| t.is_keyed()) else {
            if want != have {
                delta.unsupported.push(name.to_string());
            }
            continue;
        };
        if have.is_empty() {
            if !want.is_empty() {
                delta.create_all.insert(name.to_string());
                delta.counts.created += want.len() as u64;
            }
            continue;
        }
        let (mut write, counts, remove) = (HashMap::new(), &mut delta.counts, &mut delta.remove);
        want.diff(have, |key, difference| match difference {
            Difference::Changed => {
                write.insert(*key, true);
                counts.changed += 1;
            }
            Difference::Missing => {
                write.insert(*key, false);
                counts.created += 1;
            }
            Difference::Extra => {
                // by the object's own name: a copy under another name goes, not the right one
                let name = odd_names.get(key).cloned().unwrap_or_else(|| hex::encode(key));
                remove.push((table.plural().to_string(), name));
                counts.removed += 1;
            }
        });
        if !write.is_empty() {
            delta.write.insert(name.to_string(), write);
        }
    }
    delta
}

/// The object of a row, as LINSTOR names and writes it, given the hash of its primary-key text:
/// the name is its hex, the spec the row without its null columns.
fn object_named(key: &RowKey, row: Row) -> K8sBackendObject {
    K8sBackendObject {
        name: hex::encode(key),
        spec: row.into_iter().filter(|(_, v)| !v.is_null()).collect(),
    }
}

/// Creates or replaces one row's object, whichever it needs (a row thought absent may have been
/// created meanwhile by an interrupted attempt, and the other way round).
async fn put(
    cluster: &dyn Cluster,
    table: &Table,
    version: &str,
    exists: bool,
    object: K8sBackendObject,
) -> Result<(), ClusterError> {
    let (plural, kind) = (table.plural(), table.crd_kind.as_str());
    if exists {
        match cluster.replace_k8s_backend_spec(plural, version, &object).await {
            Err(ClusterError::NotFound { .. }) => {
                cluster
                    .create_k8s_backend_object(plural, version, kind, &object)
                    .await
            }
            other => other,
        }
    } else {
        match cluster
            .create_k8s_backend_object(plural, version, kind, &object)
            .await
        {
            Err(ClusterError::AlreadyExists(_)) => {
                cluster.replace_k8s_backend_spec(plural, version, &object).await
            }
            other => other,
        }
    }
}

/// A row to write: its table, its key hash, the row, and whether its object exists.
type ToWrite = (Arc<Table>, RowKey, Row, bool);

/// One row's write, as a future that owns what it needs.
async fn write_one(cluster: Arc<dyn Cluster>, version: String, write: ToWrite) -> Result<(), ClusterError> {
    let (table, key, row, exists) = write;
    put(
        cluster.as_ref(),
        &table,
        &version,
        exists,
        object_named(&key, row),
    )
    .await
}

/// Writes `delta` into the backend: the rows to write are taken from the export at `path` (whose
/// tables `schema` describes) as it is read, the rows to remove deleted by name.
pub(in crate::engine) async fn apply(
    cluster: Arc<dyn Cluster>,
    path: PathBuf,
    schema: &RunSchema,
    delta: Delta,
) -> Result<DeltaCounts, StepError> {
    let version = schema.version.as_str();
    let tables: HashMap<String, Arc<Table>> = schema
        .tables
        .iter()
        .map(|t| (t.name.clone(), Arc::new(t.clone())))
        .collect();
    let removals: Vec<_> = delta
        .remove
        .iter()
        .map(|(plural, name)| {
            let (cluster, plural, name, version) =
                (cluster.clone(), plural.clone(), name.clone(), version.to_string());
            async move { cluster.delete_k8s_backend_object(&plural, &version, &name).await }
        })
        .collect();
    futures::stream::iter(removals)
        .buffer_unordered(IN_FLIGHT)
        .try_collect::<Vec<()>>()
        .await?;
    if delta.write.is_empty() && delta.create_all.is_empty() {
        return Ok(delta.counts);
    }

    // the export is parsed on a blocking thread; rows to write come over a bounded channel,
    // with whether their object exists
    let counts = delta.counts;
    let (tx, rx) = tokio::sync::mpsc::channel::<ToWrite>(256);
    let reader = tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        export_rows::for_each_row(file, &mut |name, row| {
            // rows of a table with nothing to write are not even keyed
            if !delta.touches(name) {
                return Ok(());
            }
            let Some(table) = tables.get(name) else {
                return Ok(());
            };
            let Some(key) = key_text(table, &row).map(|k| key_hash(&k)) else {
                return Ok(());
            };
            if let Some(exists) = delta.writes(name, &key) {
                tx.blocking_send((table.clone(), key, row, exists))
                    .map_err(|_| "the writer stopped".to_string())?;
            }
            Ok(())
        })
    });
    let writes = tokio_stream::wrappers::ReceiverStream::new(rx)
        .map(|write| write_one(cluster.clone(), version.to_string(), write));
    let written = writes.buffer_unordered(IN_FLIGHT).try_collect::<Vec<()>>().await;
    let read = reader.await.map_err(|e| StepError::Internal(e.into()))?;
    written?;
    read.map_err(StepError::Failed)?;
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linstor::export::TableSummary;
    use crate::linstor::row_index::{RowEntry, RowIndex};
    use linstor_fake::Release;

    /// The object the delta writes for a row of a table with a primary key.
    fn object_of(table: &Table, row: Row) -> K8sBackendObject {
        object_named(&key_hash(&key_text(table, &row).unwrap()), row)
    }

    /// The schema of the fact sheet's tables called `names`.
    fn schema_of(names: &[&str]) -> RunSchema {
        RunSchema {
            version: "v1-31-1".into(),
            tables: names
                .iter()
                .map(|n| Release::LATEST.table(n).unwrap().clone())
                .collect(),
        }
    }

    fn plan(expected: &ExportSummary, found: &ExportSummary) -> Delta {
        let names: Vec<&str> = expected.tables.iter().map(|t| t.name.as_str()).collect();
        super::plan(&schema_of(&names), expected, found, &HashMap::new())
    }

    fn summary(tables: &[(&str, &[(&str, u8)])]) -> ExportSummary {
        ExportSummary {
            tables: tables
                .iter()
                .map(|(name, rows)| TableSummary {
                    name: name.to_string(),
                    rows: rows.len() as u64,
                    row_index: RowIndex::build(
                        rows.iter()
                            .map(|(k, d)| RowEntry::new(key_hash(k), &[*d; 32]))
                            .collect(),
                    )
                    .0,
                    ..TableSummary::default()
                })
                .collect(),
            ..ExportSummary::default()
        }
    }

    #[test]
    fn the_plan_creates_what_is_missing_replaces_what_changed_and_removes_what_is_extra() {
        let expected = summary(&[
            ("NODES", &[("A", 1), ("B", 2), ("C", 3)]),
            ("FILES", &[("/x", 9)]),
        ]);
        let found = summary(&[("NODES", &[("A", 1), ("B", 7), ("D", 4)])]);
        let delta = plan(&expected, &found);
        assert_eq!(
            delta.counts,
            DeltaCounts {
                created: 2,
                changed: 1,
                removed: 1
            }
        );
        assert_eq!(delta.writes("NODES", &key_hash("B")), Some(true));
        assert_eq!(delta.writes("NODES", &key_hash("C")), Some(false));
        assert_eq!(delta.writes("NODES", &key_hash("A")), None);
        // a table with nothing to write is skipped whole
        assert!(delta.touches("NODES") && delta.touches("FILES") && !delta.touches("RESOURCES"));
        // a table the backend holds nothing of: every row, no key per row
        assert!(delta.create_all.contains("FILES"));
        assert!(!delta.write.contains_key("FILES"));
        assert_eq!(delta.writes("FILES", &key_hash("/y")), Some(false));
        assert_eq!(
            delta.remove,
            vec![("nodes".to_string(), hex::encode(key_hash("D")))]
        );
        assert!(delta.unsupported.is_empty());
    }

    #[test]
    fn equal_sides_need_nothing_and_a_keyless_table_that_differs_is_unsupported() {
        let same = summary(&[("NODES", &[("A", 1)]), ("TRACKING_DATE", &[("x", 1)])]);
        assert_eq!(plan(&same, &same).counts.total(), 0);
        let other = summary(&[("NODES", &[("A", 1)]), ("TRACKING_DATE", &[("y", 1)])]);
        assert_eq!(plan(&same, &other).unsupported, vec!["TRACKING_DATE".to_string()]);
    }

    #[test]
    fn an_object_that_is_no_row_goes_by_its_own_name() {
        let expected = summary(&[("NODES", &[("A", 1)])]);
        let odd_key = key_hash("object name a-copy");
        let mut found = summary(&[("NODES", &[("A", 1)])]);
        let t = &mut found.tables[0];
        t.row_index = RowIndex::build(vec![
            RowEntry::new(key_hash("A"), &[1; 32]),
            RowEntry::new(odd_key, &[1; 32]),
        ])
        .0;
        let odd = HashMap::from([(odd_key, "a-copy".to_string())]);
        let delta = super::plan(&schema_of(&["NODES"]), &expected, &found, &odd);
        assert_eq!(delta.remove, vec![("nodes".to_string(), "a-copy".to_string())]);
        assert_eq!(delta.counts.total(), 1);
    }

    /// The conformance replay of the delta's writes, for every recorded LINSTOR version: every
    /// object the real `import-db` created from the recorded export
    /// (`fixtures/linstor-<version>/k8s/objects.yaml`) is the object the delta writes for the same
    /// row (name, apiVersion, kind and spec), with the tables, keys and CRD version taken from the
    /// export itself, as a run takes them.
    #[test]
    fn the_delta_writes_the_objects_the_real_import_created() {
        for recorded in linstor_model::versions::RECORDED {
            let fixtures = linstor_fake::recorded::fixtures().join(format!("linstor-{}", recorded.linstor));
            let path = fixtures.join("dataset/export-etcd.json");
            let summary = crate::linstor::export::summarize(std::fs::File::open(&path).unwrap()).unwrap();
            let schema = RunSchema::of(&summary).unwrap();
            assert_eq!(schema.version, recorded.data_version);
            assert_eq!(schema.tables.len(), recorded.export_tables);
            let mut ours = BTreeMap::new();
            crate::linstor::export_rows::for_each_row(
                std::fs::File::open(&path).unwrap(),
                &mut |name, row| {
                    let table = schema.table(name).unwrap();
                    let o = object_of(table, row);
                    let api_version = format!("internal.linstor.linbit.com/{}", schema.version);
                    ours.insert((table.crd_kind.clone(), o.name), (api_version, o.spec));
                    Ok(())
                },
            )
            .unwrap();
            let text = std::fs::read_to_string(fixtures.join("k8s/objects.yaml")).unwrap();
            let kinds: BTreeSet<&str> = schema.tables.iter().map(|t| t.crd_kind.as_str()).collect();
            let mut compared = 0;
            for doc in serde_yaml::Deserializer::from_str(&text) {
                let real: serde_json::Value = serde::Deserialize::deserialize(doc).unwrap();
                let kind = real["kind"].as_str().unwrap_or_default();
                if real.is_null() || !kinds.contains(kind) {
                    continue;
                }
                let name = real["metadata"]["name"].as_str().unwrap();
                // names are unique per kind only (SEC_IDENTITIES and SEC_DFLT_ROLES share keys)
                let (api_version, spec) =
                    ours.get(&(kind.to_string(), name.to_string()))
                        .unwrap_or_else(|| {
                            panic!("{}: the delta writes no {kind} named {name}", recorded.linstor)
                        });
                assert_eq!(real["apiVersion"], api_version.as_str(), "{name}");
                assert_eq!(
                    real["spec"],
                    serde_json::Value::Object(spec.clone()),
                    "{} {kind} {name}: spec",
                    recorded.linstor
                );
                compared += 1;
            }
            assert!(
                compared >= 40,
                "{}: only {compared} recorded objects",
                recorded.linstor
            );
            if recorded.linstor == "1.25.1" {
                // that recording holds every object of the import
                assert_eq!(compared, ours.len(), "1.25.1: every row's object");
            }
        }
    }

    #[test]
    fn object_names_follow_the_recorded_rule() {
        // fixtures/linstor-1.33.3/k8s/naming.txt, worked examples
        let nodes = Release::LATEST.table("NODES").unwrap();
        let row: Row = serde_json::from_str(r#"{"node_name": "ALPHA", "node_flags": 0}"#).unwrap();
        // (the rule itself lives once, in linstor_model::naming)
        assert_eq!(
            object_of(nodes, row).name,
            "73ab66a033c267e00b7429bb256f6deb2734ebc4cd4ff5b564a8c9f9b2c8a719"
        );
        let vd = Release::LATEST.table("VOLUME_DEFINITIONS").unwrap();
        let row: Row = serde_json::from_str(
            r#"{"uuid": "bc9a211a", "resource_name": "DB0", "snapshot_name": "", "vlm_nr": 1, "vlm_size": 10485760, "vlm_flags": 0}"#,
        )
        .unwrap();
        assert_eq!(
            object_of(vd, row).name,
            "93b8c0352bb8069b44801293e87bb1d581e60adcfb0981466c776de86b20e1a1"
        );
    }
}
