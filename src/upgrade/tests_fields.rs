//! Nothing convertible is dropped silently: every field of the three v1 CRD schemas has a rule in
//! the catalogue (and every rule a field), and resources that set every field come out with each
//! value either carried into the v2 YAML or reported as not converted.

use std::collections::BTreeSet;

use serde_json::Value;

use super::catalogue::{DESCEND, Handling, Kind, RULES, rule};
use super::ledger::rule_path;
use super::test_support::{all_fields_installation, crd_schema, documents, v1_crd, violations};
use super::tests::assert_valid;
use super::{Outcome, plan};

const KINDS: [Kind; 3] = [Kind::Controller, Kind::SatelliteSet, Kind::CsiDriver];

/// The field paths of a spec schema, descending where the catalogue looks into a value.
fn walk(kind: Kind, schema: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    for (name, field) in schema["properties"].as_object().into_iter().flatten() {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        let items = format!("{path}[]");
        if DESCEND.contains(&(kind, path.as_str())) {
            walk(kind, field, &path, out);
        } else if DESCEND.contains(&(kind, items.as_str())) {
            walk(kind, &field["items"], &items, out);
        } else {
            out.insert(path);
        }
    }
}

fn schema_fields(kind: Kind) -> BTreeSet<String> {
    let schema = crd_schema(v1_crd(kind.name()));
    let mut out = BTreeSet::new();
    walk(kind, &schema["properties"]["spec"], "", &mut out);
    out
}

#[test]
fn every_field_of_the_v1_schemas_has_a_rule_and_every_rule_a_field() {
    for kind in KINDS {
        let fields = schema_fields(kind);
        assert!(fields.len() > 20, "{kind:?}: the walk found only {fields:?}");
        let missing: Vec<&String> = fields.iter().filter(|f| rule(kind, f).is_none()).collect();
        assert!(missing.is_empty(), "{kind:?}: fields without a rule: {missing:?}");
        let stale: Vec<&str> = RULES
            .iter()
            .filter(|r| r.kind == kind && !fields.contains(r.path))
            .map(|r| r.path)
            .collect();
        assert!(
            stale.is_empty(),
            "{kind:?}: rules for fields the schema lacks: {stale:?}"
        );
    }
}

#[test]
fn the_every_field_resources_are_valid_v1_and_set_every_field() {
    for (file, kind) in [
        ("upgrade/linstorcontroller-all-fields.yaml", Kind::Controller),
        ("upgrade/linstorsatelliteset-all-fields.yaml", Kind::SatelliteSet),
        ("upgrade/linstorcsidriver-all-fields.yaml", Kind::CsiDriver),
    ] {
        let object = &documents(file)[0];
        let problems = violations(v1_crd(kind.name()), object);
        assert!(problems.is_empty(), "{file}: {problems:#?}");
        // the leaves it sets, in the catalogue's form
        let mut set = BTreeSet::new();
        collect_paths(kind, &object["spec"], "", &mut set);
        let unset: Vec<String> = schema_fields(kind).difference(&set).cloned().collect();
        assert!(unset.is_empty(), "{file} leaves fields unset: {unset:?}");
    }
}

fn collect_paths(kind: Kind, v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    for (name, field) in v.as_object().into_iter().flatten() {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        let items = format!("{path}[]");
        if DESCEND.contains(&(kind, path.as_str())) {
            collect_paths(kind, field, &path, out);
        } else if DESCEND.contains(&(kind, items.as_str())) {
            for item in field.as_array().into_iter().flatten() {
                collect_paths(kind, item, &items, out);
            }
        } else {
            out.insert(path);
        }
    }
}

/// The strings in a value (what must show up in the YAML when it is carried over).
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(o) => o.iter().for_each(|(k, x)| {
            out.push(k.clone());
            strings(x, out)
        }),
        _ => {}
    }
}

#[test]
fn every_value_of_the_every_field_resources_is_converted_or_reported() {
    let inst = all_fields_installation();
    let p = plan(&inst);
    assert_valid(&p);
    let yaml = p.yaml();
    for (kind, resource) in std::iter::once((Kind::Controller, &inst.controller))
        .chain(inst.satellite_sets.iter().map(|s| (Kind::SatelliteSet, s)))
        .chain(inst.csi_drivers.iter().map(|s| (Kind::CsiDriver, s)))
    {
        let mut expected = BTreeSet::new();
        collect_paths(kind, &Value::Object(resource.spec.clone()), "", &mut expected);
        let label = format!("{} {}", kind.name(), resource.name);
        let recorded: Vec<&super::FieldOutcome> = p.fields.iter().filter(|f| f.resource == label).collect();
        for path in &expected {
            let outcomes: Vec<_> = recorded.iter().filter(|f| &rule_path(&f.field) == path).collect();
            assert!(!outcomes.is_empty(), "{label} {path}: no outcome recorded");
            let handling = rule(kind, path).expect("a rule").handling;
            for f in outcomes {
                // every value here differs from the defaults: the rule's verdict must hold
                let expected_outcome = match handling {
                    Handling::Converted(_) => Outcome::Converted,
                    Handling::NotConverted(_) => Outcome::NotConverted,
                };
                assert_eq!(f.outcome, expected_outcome, "{label} {path}: {f:?}");
                assert!(!f.detail.is_empty(), "{label} {path}: no words");
            }
        }
    }
    // a converted value is really in the YAML: its marker strings, or its effect
    let lc_image = "registry.example.com/marker/piraeus-server:v1.33.3";
    assert!(
        !yaml.contains(lc_image),
        "a not converted value must not show up in the YAML"
    );
    for f in p.fields.iter().filter(|f| f.outcome == Outcome::Converted) {
        let value: Value = serde_json::from_str(&f.value).unwrap_or_else(|_| Value::String(f.value.clone()));
        let mut texts = Vec::new();
        strings(&value, &mut texts);
        let markers: Vec<&String> = texts
            .iter()
            .filter(|t| t.contains("marker") || t.contains("MARKER"))
            .collect();
        if markers.is_empty() {
            continue; // numbers and booleans: checked one by one below
        }
        for m in markers {
            assert!(
                yaml.contains(m.as_str()),
                "{} {}: {m} is not in the YAML:\n{yaml}",
                f.resource,
                f.field
            );
        }
    }
    assert!(yaml.contains("replicas: 3"), "controllerReplicas");
    assert!(
        yaml.contains("/etc/drbd.d"),
        "mountDrbdResourceDirectoriesFromHost"
    );
    assert!(yaml.contains("zfsThinPool"), "zfsPools[].thin");
    assert!(
        yaml.contains("connection_url = \"etcd://marker-lc-etcd:2379\""),
        "dbConnectionURL"
    );
}
