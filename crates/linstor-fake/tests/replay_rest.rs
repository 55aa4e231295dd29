//! The model's REST views of each release's recorded database answer like the real controller
//! did on it (`tests/fixtures/linstor-<version>/rest/etcd` and `rest/k8s`, all satellites
//! offline): the same fields with the same types and values, but for the time stamps of the live
//! reports.

use linstor_fake::Release;
use linstor_fake::recorded::fixtures_of;
use linstor_fake::rest;
use serde_json::Value;

fn recorded(release: Release, backend: &str, name: &str) -> Value {
    let path = fixtures_of(release).join("rest").join(backend).join(name);
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn tables(release: Release) -> rest::Tables {
    rest::tables_of(&linstor_fake::dataset::recorded(release))
}

/// The controller answered the same on etcd and, after the import, on `k8s`.
const BACKENDS: [&str; 2] = ["etcd", "k8s"];

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
    for release in Release::ALL {
        let ours = Value::Array(rest::nodes(release, &tables(release), false));
        for backend in BACKENDS {
            assert_eq!(
                ours,
                recorded(release, backend, "nodes.json"),
                "{release} {backend}"
            );
        }
    }
}

#[test]
fn storage_pools_are_the_recorded_ones_but_for_report_times() {
    for release in Release::ALL {
        let ours = Value::Array(rest::storage_pools(
            release,
            &tables(release),
            false,
            "2026-11-28T06:54:32.887037808Z",
        ));
        for backend in BACKENDS {
            assert_eq!(
                without(ours.clone(), &["created_at"]),
                without(
                    recorded(release, backend, "view_storage-pools.json"),
                    &["created_at"]
                ),
                "{release} {backend}"
            );
        }
    }
}

#[test]
fn resources_and_version_are_the_recorded_ones() {
    for release in Release::ALL {
        for backend in BACKENDS {
            assert_eq!(
                Value::Array(rest::resources(release, &tables(release), false)),
                recorded(release, backend, "view_resources.json"),
                "{release} {backend}"
            );
            assert_eq!(
                rest::controller_version(release, release.version()),
                recorded(release, backend, "controller_version.json"),
                "{release} {backend}"
            );
        }
    }
}

#[test]
fn controller_properties_are_the_controllers_props_container() {
    for release in Release::ALL {
        let ctrl = rest::props(&tables(release), release.facts().props.ctrl);
        let satellites = rest::props(&tables(release), release.facts().props.stlt);
        // `/v1/controller/properties` shows both containers, the satellites' over the controller's
        let mut both = ctrl.clone();
        both.extend(satellites);
        for backend in BACKENDS {
            assert_eq!(
                serde_json::to_value(&both).unwrap(),
                recorded(release, backend, "controller_properties.json"),
                "{release} {backend}"
            );
        }
        assert!(!ctrl.is_empty(), "{release}");
    }
}
