//! The backend module against the simulated cluster: what the direct read, the delta and the
//! emptying do to a backend that holds more than the export says (a misnamed copy of an object, a
//! table of another LINSTOR version).

use std::sync::Arc;

use super::{RunSchema, delta, empty, read};
use crate::cluster::sim::{SimCluster, SimTiming};
use crate::cluster::{Cluster, K8sBackendObject};
use crate::linstor::export::summarize;

fn sim_with_backend() -> (Arc<SimCluster>, Vec<u8>) {
    let sim = SimCluster::new(SimTiming::instant());
    let doc = sim.etcd_dataset();
    sim.preload_k8s_backend(&doc);
    (Arc::new(sim), serde_json::to_vec(&doc).unwrap())
}

#[tokio::test]
async fn a_misnamed_copy_is_removed_by_its_own_name_and_the_right_object_stays() {
    let (sim, export) = sim_with_backend();
    let expected = summarize(export.as_slice()).unwrap();
    let schema = RunSchema::of(&expected).unwrap();
    let nodes = schema.table("NODES").unwrap();
    let page = sim
        .list_k8s_backend_page("nodes", &schema.version, 1, None)
        .await
        .unwrap();
    let right = page.objects[0].clone();
    let copy = K8sBackendObject {
        name: "a-copy-of-a-node".into(),
        spec: right.spec.clone(),
    };
    sim.create_k8s_backend_object("nodes", &schema.version, &nodes.crd_kind, &copy)
        .await
        .unwrap();

    let found = read::read(sim.clone(), &schema).await.unwrap();
    assert_eq!(found.misnamed_count, 1, "{:?}", found.misnamed);
    let plan = delta::plan(&schema, &expected, &found.summary, &found.odd_names);
    assert_eq!(plan.counts.total(), 1, "{:?}", plan.counts);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export.json");
    std::fs::write(&path, &export).unwrap();
    delta::apply(sim.clone(), path, &schema, plan).await.unwrap();

    let names: Vec<String> = sim
        .list_k8s_backend_page("nodes", &schema.version, 500, None)
        .await
        .unwrap()
        .objects
        .into_iter()
        .map(|o| o.name)
        .collect();
    assert!(names.contains(&right.name), "the right object stays: {names:?}");
    assert!(!names.contains(&copy.name), "the copy goes: {names:?}");
    let again = read::read(sim.clone(), &schema).await.unwrap();
    assert_eq!(again.misnamed_count, 0);
    assert_eq!(
        crate::linstor::compare::compare(&expected, &again.summary).differences,
        vec![]
    );
}

#[tokio::test]
async fn reading_at_a_version_the_crds_do_not_serve_is_an_error_not_an_empty_table() {
    let (sim, export) = sim_with_backend();
    let mut schema = RunSchema::of(&summarize(export.as_slice()).unwrap()).unwrap();
    schema.version = "v1-99-9".into();
    assert!(read::read(sim.clone(), &schema).await.is_err());
}

#[tokio::test]
async fn emptying_takes_every_export_table_at_its_stored_version_and_leaves_the_schema_rows() {
    let (sim, _) = sim_with_backend();
    let inventory = sim.k8s_backend_inventory().await.unwrap();
    let held = inventory.total_objects();
    assert!(held > 100);
    let removed = empty::empty(sim.clone(), &inventory).await.unwrap();
    assert_eq!(removed, held);
    let after = sim.k8s_backend_inventory().await.unwrap();
    assert_eq!(after.total_objects(), 0);
    // the schema's own rows stay, as the tool's truncate leaves them
    assert_eq!(after.schema_version, inventory.schema_version);
    assert_eq!(
        after.crd("secaccesstypes").map(|c| c.objects),
        inventory.crd("secaccesstypes").map(|c| c.objects)
    );
}
