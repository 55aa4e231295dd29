//! The model's import of the recorded export into an empty `k8s` backend creates the CRDs and
//! objects the real one created (tests/fixtures/linstor-1.33.3/k8s: names, apiVersion, kind,
//! spec; the CRDs' storage versions and column types), and its re-export has the recorded shape
//! (tests/fixtures/linstor-1.33.3/dataset/export-k8s.json).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use linstor_fake::k8s::{self, Denied, K8sApi, K8sStore, NoPace, StoreApi};
use linstor_fake::recorded::fixtures;
use linstor_fake::schema;
use serde_json::Value;

fn yaml_docs(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(fixtures().join("linstor-1.33.3/k8s").join(file)).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .filter_map(|d| serde::Deserialize::deserialize(d).ok())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

async fn imported() -> Arc<Mutex<K8sStore>> {
    let store = Arc::new(Mutex::new(K8sStore::default()));
    let api = StoreApi {
        store: store.clone(),
        server: "https://127.0.0.1:6443".into(),
        user: "admin".into(),
        denied: Denied::none(),
    };
    let doc = linstor_fake::dataset::recorded();
    let tables: Vec<_> = doc
        .tables
        .iter()
        .map(|t| (schema::table(&t.name).unwrap(), t.data.clone()))
        .collect();
    let created = k8s::import(&api, &tables, &NoPace).await.unwrap();
    assert_eq!(created, 216);
    store
}

fn storage_schema(crd: &Value) -> (String, Value) {
    let v = crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["storage"] == true)
        .unwrap();
    (
        v["name"].as_str().unwrap().to_string(),
        v["schema"]["openAPIV3Schema"]["properties"]["spec"].clone(),
    )
}

#[tokio::test]
async fn the_crds_are_the_recorded_ones() {
    let store = imported().await;
    let ours = store.lock().unwrap().crds.clone();
    let recorded = yaml_docs("crds.yaml");
    assert_eq!(recorded.len(), 45);
    let names: BTreeSet<String> = recorded
        .iter()
        .map(|c| c["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ours.keys().cloned().collect::<BTreeSet<_>>());
    for real in &recorded {
        let name = real["metadata"]["name"].as_str().unwrap();
        let model = &ours[name];
        for field in ["group", "scope", "names"] {
            assert_eq!(model["spec"][field], real["spec"][field], "{name}: {field}");
        }
        assert_eq!(
            storage_schema(model),
            storage_schema(real),
            "{name}: storage version and schema"
        );
    }
}

#[tokio::test]
async fn the_objects_are_the_recorded_ones() {
    let store = imported().await;
    let store = store.lock().unwrap().clone();
    let recorded = yaml_docs("objects.yaml");
    let mut compared = 0;
    for real in recorded.iter().filter(|o| o["kind"] != "Rollback") {
        let kind = real["kind"].as_str().unwrap();
        let plural = kind.to_ascii_lowercase();
        let name = real["metadata"]["name"].as_str().unwrap();
        let ours = store
            .objects
            .get(&plural)
            .and_then(|m| m.get(name))
            .unwrap_or_else(|| panic!("{kind} {name} was not created"));
        for field in ["apiVersion", "kind", "spec"] {
            assert_eq!(ours[field], real[field], "{kind} {name}: {field}");
        }
        compared += 1;
    }
    assert_eq!(
        compared, 42,
        "every recorded table object (41) and the LinstorVersion"
    );
    assert_eq!(store.schema_version(), Some(31));
    assert_eq!(store.rollback_objects(), 0, "none left after a successful import");
    let counts: BTreeMap<String, usize> = store.row_counts();
    assert_eq!(counts.len(), 43);
    assert_eq!(
        counts["SEC_ACCESS_TYPES"], 4,
        "created by the fresh cluster's migrations"
    );
    assert_eq!(counts.values().sum::<usize>(), 220);
}

#[tokio::test]
async fn the_re_export_has_the_recorded_shape() {
    let store = imported().await;
    let api = StoreApi {
        store,
        server: "https://127.0.0.1:6443".into(),
        user: "admin".into(),
        denied: Denied::none(),
    };
    let tables = k8s::read_tables(&api as &dyn K8sApi).await.unwrap();
    let recorded: Value = serde_json::from_slice(
        &std::fs::read(fixtures().join("linstor-1.33.3/dataset/export-k8s.json")).unwrap(),
    )
    .unwrap();
    let real_tables = recorded["tables"].as_array().unwrap();
    assert_eq!(tables.len(), real_tables.len());
    for ((t, rows), real) in tables.iter().zip(real_tables) {
        assert_eq!(t.name, real["name"].as_str().unwrap());
        // rows come in the API server's order (the real tool: HashMap order): compare as sets
        let set = |rows: Vec<String>| rows.into_iter().collect::<BTreeSet<_>>();
        let ours = set(rows.iter().map(|r| serde_json::to_string(r).unwrap()).collect());
        let theirs = set(real["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| serde_json::to_string(r.as_object().unwrap()).unwrap())
            .collect());
        assert_eq!(ours, theirs, "{}", t.name);
    }
}
