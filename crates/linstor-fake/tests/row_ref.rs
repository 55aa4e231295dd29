//! A row read without copying its text (`linstor_model::row_ref`) names and digests every row of
//! both releases' recordings as the owned row does: the recorded exports' rows (etcd and `k8s`),
//! and the `spec` of every object the real LINSTOR created in the `k8s` backend
//! (`k8s/objects.yaml`: all of 1.25.1's, up to two per table of 1.33.3's), each parsed from its JSON text as the direct read parses a LIST answer.

use linstor_fake::Release;
use linstor_fake::recorded::fixtures_of;
use linstor_model::export::{ExportDocument, Row, row_digest};
use linstor_model::naming::key_text;
use linstor_model::row_ref::RowRef;
use serde_json::Value;

fn export(release: Release, file: &str) -> ExportDocument {
    let text = std::fs::read_to_string(fixtures_of(release).join("dataset").join(file)).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn every_recorded_row_has_the_owned_rows_digest_and_key() {
    for release in Release::ALL {
        for file in ["export-etcd.json", "export-k8s.json"] {
            let doc = export(release, file);
            let mut rows = 0;
            for table in &doc.tables {
                let schema = table.schema();
                for row in &table.data {
                    let text = serde_json::to_string(row).unwrap();
                    let borrowed: RowRef = serde_json::from_str(&text).unwrap();
                    assert_eq!(
                        borrowed.digest(),
                        row_digest(row),
                        "{} {file} {}: {text}",
                        release.version(),
                        table.name
                    );
                    assert_eq!(
                        key_text(&schema, &borrowed),
                        key_text(&schema, row),
                        "{}: {text}",
                        table.name
                    );
                    rows += 1;
                }
            }
            assert!(rows > 200, "{} {file}: {rows} rows", release.version());
        }
    }
}

#[test]
fn every_recorded_objects_spec_has_the_owned_rows_digest() {
    for release in Release::ALL {
        let text = std::fs::read_to_string(fixtures_of(release).join("k8s").join("objects.yaml")).unwrap();
        let mut specs = 0;
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let Ok(object) = <Value as serde::Deserialize>::deserialize(doc) else {
                continue;
            };
            let Some(spec) = object.get("spec").and_then(Value::as_object) else {
                continue;
            };
            let owned: Row = spec.clone();
            let text = serde_json::to_string(spec).unwrap();
            let borrowed: RowRef = serde_json::from_str(&text).unwrap();
            assert_eq!(
                borrowed.digest(),
                row_digest(&owned),
                "{}: {text}",
                release.version()
            );
            specs += 1;
        }
        assert!(specs > 40, "{}: {specs} objects with a spec", release.version());
    }
}
