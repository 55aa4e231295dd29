//! The model's REST views of the recorded database answer like the real controller did on it
//! (tests/fixtures/linstor-1.33.3/rest/etcd, all satellites offline): the same fields with the
//! same types and values, but for the time stamps of the live reports.

use linstor_fake::recorded::fixtures;
use linstor_fake::rest;
use serde_json::Value;

fn recorded(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(fixtures().join("linstor-1.33.3/rest/etcd").join(name)).unwrap())
        .unwrap()
}

fn tables() -> rest::Tables {
    rest::tables_of(&linstor_fake::dataset::recorded())
}

/// `v` with the keys of `live` removed wherever they are.
fn without(mut v: Value, live: &[&str]) -> Value {
    match &mut v {
        Value::Object(m) => {
            for k in live {
                m.remove(*k);
            }
            for (_, x) in m.iter_mut() {
                *x = without(x.take(), live);
            }
        }
        Value::Array(a) => {
            for x in a.iter_mut() {
                *x = without(x.take(), live);
            }
        }
        _ => {}
    }
    v
}

#[test]
fn nodes_are_the_recorded_ones() {
    let ours = Value::Array(rest::nodes(&tables(), false));
    assert_eq!(ours, recorded("nodes.json"));
}

#[test]
fn storage_pools_are_the_recorded_ones_but_for_report_times() {
    let ours = Value::Array(rest::storage_pools(
        &tables(),
        false,
        "2026-11-28T06:54:32.887037808Z",
    ));
    assert_eq!(
        without(ours, &["created_at"]),
        without(recorded("view_storage-pools.json"), &["created_at"])
    );
}

#[test]
fn resources_and_version_are_the_recorded_ones() {
    assert_eq!(
        Value::Array(rest::resources(&tables(), false)),
        recorded("view_resources.json")
    );
    assert_eq!(
        rest::controller_version("1.33.3"),
        recorded("controller_version.json")
    );
}
