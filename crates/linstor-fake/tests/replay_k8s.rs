//! The model's import of each release's recorded export into an empty `k8s` backend creates the
//! CRDs and objects the real one created (`tests/fixtures/linstor-<version>/k8s`: CRD names,
//! versions served and stored, the storage schema; object names, apiVersion, kind, spec; the
//! `LinstorVersion` and the access types), and 1.25.1's import over 1.33.3's backend destroys what
//! the real one destroyed and fails where it failed (`k8s/preexisting-1.33.3.txt`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use linstor_fake::Release;
use linstor_fake::k8s::{self, K8sStore, NoPace, StoreApi};
use linstor_fake::recorded::fixtures_of;
use serde_json::Value;

fn yaml_docs(release: Release, file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(fixtures_of(release).join("k8s").join(file)).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .filter_map(|d| serde::Deserialize::deserialize(d).ok())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

fn api(store: Arc<Mutex<K8sStore>>) -> StoreApi<Arc<Mutex<K8sStore>>> {
    StoreApi::new(store, "https://127.0.0.1:6443", "admin")
}

/// A fresh backend after `release`'s import of `doc`'s rows.
async fn imported_by(
    release: Release,
    doc: &linstor_fake::export::ExportDocument,
) -> Result<Arc<Mutex<K8sStore>>, k8s::ApiError> {
    let store = Arc::new(Mutex::new(K8sStore::default()));
    import_into(&store, release, doc).await?;
    Ok(store)
}

async fn import_into(
    store: &Arc<Mutex<K8sStore>>,
    release: Release,
    doc: &linstor_fake::export::ExportDocument,
) -> Result<usize, k8s::ApiError> {
    let tables: Vec<_> = doc
        .tables
        .iter()
        .map(|t| (release.table(&t.name).unwrap(), t.data.clone()))
        .collect();
    k8s::import(&api(store.clone()), release, &tables, &NoPace).await
}

fn versions(crd: &Value) -> Vec<(String, bool, bool)> {
    crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap().to_string(),
                v["served"].as_bool().unwrap(),
                v["storage"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn schema_at(crd: &Value, version: &str) -> Option<Value> {
    crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == version)
        .map(|v| v["schema"]["openAPIV3Schema"]["properties"]["spec"].clone())
}

#[tokio::test]
async fn the_crds_are_the_recorded_ones() {
    for release in Release::ALL {
        let store = imported_by(release, &release.recorded_export()).await.unwrap();
        let ours = store.lock().unwrap().crds.clone();
        let recorded = yaml_docs(release, "crds.yaml");
        assert_eq!(recorded.len(), release.recorded().crds, "{release}");
        let names: BTreeSet<String> = recorded
            .iter()
            .map(|c| c["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, ours.keys().cloned().collect::<BTreeSet<_>>(), "{release}");
        for real in &recorded {
            let name = real["metadata"]["name"].as_str().unwrap();
            let model = &ours[name];
            for field in ["group", "scope", "names", "conversion"] {
                assert_eq!(
                    model["spec"][field], real["spec"][field],
                    "{release} {name}: {field}"
                );
            }
            assert_eq!(
                versions(model),
                versions(real),
                "{release} {name}: versions served and stored"
            );
            // the schema of the storage version, and of every version a recorded release stores
            // (the same version has the same schema in every release)
            for r in Release::ALL {
                let v = r.data_version();
                assert_eq!(
                    schema_at(model, v),
                    schema_at(real, v),
                    "{release} {name}: schema at {v}"
                );
            }
            let storage = k8s::storage_version(real).unwrap();
            assert_eq!(
                schema_at(model, storage),
                schema_at(real, storage),
                "{release} {name}"
            );
        }
    }
}

#[tokio::test]
async fn the_objects_are_the_recorded_ones() {
    for release in Release::ALL {
        let store = imported_by(release, &release.recorded_export()).await.unwrap();
        let store = store.lock().unwrap().clone();
        let recorded = yaml_docs(release, "objects.yaml");
        let mut compared = 0;
        for real in recorded.iter().filter(|o| o["kind"] != "Rollback") {
            let kind = real["kind"].as_str().unwrap();
            let plural = kind.to_ascii_lowercase();
            let name = real["metadata"]["name"].as_str().unwrap();
            let ours = store
                .objects
                .get(&plural)
                .and_then(|m| m.get(name))
                .unwrap_or_else(|| panic!("{release}: {kind} {name} was not created"));
            for field in ["apiVersion", "kind", "spec"] {
                assert_eq!(ours[field], real[field], "{release} {kind} {name}: {field}");
            }
            compared += 1;
        }
        assert_eq!(
            store.schema_version(),
            Some(release.recorded().k8s_schema_version)
        );
        assert_eq!(store.rollback_objects(), 0, "none left after a successful import");
        let counts: BTreeMap<String, usize> = store.row_counts();
        assert_eq!(counts.len(), release.tables().len(), "{release}");
        assert_eq!(
            counts["SEC_ACCESS_TYPES"], 4,
            "created by the fresh cluster's migrations"
        );
        assert_eq!(counts.values().sum::<usize>(), 220, "{release}");
        match release {
            // that recording holds every object: the 216 rows, LinstorVersion and 4 access types
            Release::V1_25_1 => assert_eq!(compared, 221),
            // up to two objects per table and the LinstorVersion
            Release::V1_33_3 => assert_eq!(compared, 42),
        }
    }
}

/// `plural -> (before, after)` from the table of `k8s/preexisting-1.33.3.txt`.
fn recorded_counts() -> BTreeMap<String, (usize, usize)> {
    let text =
        std::fs::read_to_string(fixtures_of(Release::V1_25_1).join("k8s/preexisting-1.33.3.txt")).unwrap();
    text.lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            match w.as_slice() {
                [plural, before, "->", after, ..] if *plural != "TOTAL" => {
                    Some((plural.to_string(), (before.parse().ok()?, after.parse().ok()?)))
                }
                _ => None,
            }
        })
        .collect()
}

#[tokio::test]
async fn an_import_of_1_25_1_over_1_33_3_objects_destroys_what_the_real_one_did_and_fails() {
    let store = imported_by(Release::V1_33_3, &Release::V1_33_3.recorded_export())
        .await
        .unwrap();
    let count = |s: &K8sStore| -> BTreeMap<String, usize> {
        s.objects
            .iter()
            .filter(|(p, m)| !m.is_empty() && p.as_str() != "secaccesstypes")
            .map(|(p, m)| (p.clone(), m.len()))
            .collect()
    };
    let recorded = recorded_counts();
    assert_eq!(recorded.len(), 25);
    let before = count(&store.lock().unwrap());
    let want_before: BTreeMap<String, usize> = recorded.iter().map(|(p, (b, _))| (p.clone(), *b)).collect();
    assert_eq!(before, want_before, "the recorded 1.33.3 backend");
    let crds_before = store.lock().unwrap().crds.clone();

    let err = import_into(&store, Release::V1_25_1, &Release::V1_25_1.recorded_export())
        .await
        .unwrap_err();
    assert_eq!(
        (err.method, err.code, err.path.as_str()),
        (
            "DELETE",
            404,
            "/apis/internal.linstor.linbit.com/v1-19-1/layeropenflexvolumes"
        )
    );
    let s = store.lock().unwrap();
    let after: BTreeMap<String, usize> = count(&s);
    let want_after: BTreeMap<String, usize> = recorded
        .iter()
        .filter(|(_, (_, a))| *a > 0)
        .map(|(p, (_, a))| (p.clone(), *a))
        .collect();
    assert_eq!(after, want_after, "217 -> 26 objects");
    assert_eq!(s.crds, crds_before, "no migration: the CRDs are unchanged");
    assert_eq!(s.schema_version(), Some(31));
}
