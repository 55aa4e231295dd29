//! What the unit tests of the plan share: the recorded chart manifests and CRDs under
//! `tests/fixtures` (copies of `shared/fixtures`, so that a clean clone tests the same), an
//! installation built from a rendered chart, and validation of objects against a CRD's schema.
//!
//! CRD schemas are OpenAPI v3 structural schemas, not JSON Schema. [`json_schema`] converts them
//! for the JSON-schema validator, explicitly: `nullable: true` adds `null` to the type;
//! `x-kubernetes-int-or-string` becomes integer-or-string; an object with `properties` and without
//! `x-kubernetes-preserve-unknown-fields` or `additionalProperties` rejects other fields (the API
//! server's strict field validation of a server-side apply rejects them as well); the other
//! `x-kubernetes-*` keys (list and map types, embedded resources) say nothing a single object can
//! violate and are left to the validator to ignore.

use std::path::PathBuf;

use serde_json::{Map, Value, json};

use super::v1::{HelmValues, NodeLabels, OperatorDeployment, Passphrase, V1Installation, V1Resource};
use crate::linstor::toml::Backend;

pub fn fixture_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// The documents of a YAML file (empty documents left out).
pub fn documents(rel: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(fixture_path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{rel}: {e}"));
    docs.into_iter().filter(|d| d.is_object()).collect()
}

/// The one document of `kind` in a file.
pub fn document(rel: &str, kind: &str) -> Value {
    documents(rel)
        .into_iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("{rel} has no {kind}"))
}

/// The `openAPIV3Schema` of a CRD file (its first version).
pub fn crd_schema(rel: &str) -> Value {
    let crd = document(rel, "CustomResourceDefinition");
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

/// An OpenAPI v3 structural schema as JSON Schema (see the module comment).
pub fn json_schema(s: &Value) -> Value {
    let Some(obj) = s.as_object() else {
        return s.clone();
    };
    let mut out = Map::new();
    for (k, v) in obj {
        let converted = match k.as_str() {
            "properties" => Value::Object(
                v.as_object()
                    .into_iter()
                    .flatten()
                    .map(|(name, p)| (name.clone(), json_schema(p)))
                    .collect(),
            ),
            "items" | "additionalProperties" | "not" => json_schema(v),
            "allOf" | "anyOf" | "oneOf" => {
                Value::Array(v.as_array().into_iter().flatten().map(json_schema).collect())
            }
            _ => v.clone(),
        };
        out.insert(k.clone(), converted);
    }
    if obj.get("nullable") == Some(&Value::Bool(true))
        && let Some(t) = obj.get("type")
    {
        out.insert("type".into(), json!([t, "null"]));
    }
    if obj.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        out.remove("type");
        out.insert("anyOf".into(), json!([{"type": "integer"}, {"type": "string"}]));
    }
    let preserve = obj.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if obj.contains_key("properties") && !preserve && !obj.contains_key("additionalProperties") {
        out.insert("additionalProperties".into(), Value::Bool(false));
    }
    Value::Object(out)
}

/// Every way `object` violates the CRD in `crd_file` (empty: it validates).
pub fn violations(crd_file: &str, object: &Value) -> Vec<String> {
    let schema = json_schema(&crd_schema(crd_file));
    let validator = jsonschema::draft4::new(&schema).expect("the converted schema compiles");
    validator
        .iter_errors(object)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// The v2 CRD file of a kind.
pub fn v2_crd(kind: &str) -> &'static str {
    match kind {
        "LinstorCluster" => "piraeus-v2.6/crds/piraeus.io_linstorclusters.yaml",
        "LinstorSatelliteConfiguration" => "piraeus-v2.6/crds/piraeus.io_linstorsatelliteconfigurations.yaml",
        other => panic!("no v2 CRD for {other}"),
    }
}

/// The v1 CRD file of a kind.
pub fn v1_crd(kind: &str) -> &'static str {
    match kind {
        "LinstorController" => "piraeus-v1.10.8/crds/piraeus.linbit.com_linstorcontrollers.yaml",
        "LinstorSatelliteSet" => "piraeus-v1.10.8/crds/piraeus.linbit.com_linstorsatellitesets.yaml",
        "LinstorCSIDriver" => "piraeus-v1.10.8/crds/piraeus.linbit.com_linstorcsidrivers.yaml",
        other => panic!("no v1 CRD for {other}"),
    }
}

/// The installation a rendered chart (`piraeus-v1.10.8/rendered/<file>`) describes, as the
/// engine would read it from a cluster running it: the backend as its LinstorController says,
/// the passphrase Secret present, the three v1 CRDs installed, satellites without extra labels.
pub fn rendered_installation(file: &str) -> V1Installation {
    let rel = format!("piraeus-v1.10.8/rendered/{file}");
    let docs = documents(&rel);
    let of = |kind: &str| -> Vec<V1Resource> {
        docs.iter()
            .filter(|d| d["kind"] == kind)
            .map(V1Resource::from_object)
            .collect()
    };
    let controller = of("LinstorController")
        .into_iter()
        .next()
        .expect("a LinstorController");
    let url = controller.text("dbConnectionURL").unwrap_or("").to_string();
    let backend = if url == "k8s" { Backend::K8s } else { Backend::Etcd };
    let operator = docs
        .iter()
        .find(|d| {
            d["kind"] == "Deployment"
                && d["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.ends_with("-operator"))
        })
        .map(|d| OperatorDeployment {
            name: d["metadata"]["name"].as_str().unwrap_or_default().into(),
            selector: d["spec"]["selector"]["matchLabels"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(","),
        });
    let etcd = docs
        .iter()
        .find(|d| d["kind"] == "StatefulSet")
        .and_then(|d| d["metadata"]["name"].as_str().map(str::to_string));
    V1Installation {
        namespace: controller.namespace.clone(),
        target_namespace: controller.namespace.clone(),
        controllers_found: vec![format!("{}/{}", controller.namespace, controller.name)],
        satellite_sets: of("LinstorSatelliteSet"),
        csi_drivers: of("LinstorCSIDriver"),
        backend,
        config_url: Some(url.clone()),
        controller_deployment: format!("{}-controller", controller.name),
        linstor_version: Some("1.25.1".into()),
        helm: Some(HelmValues {
            release: "piraeus-op".into(),
            namespace: controller.namespace.clone(),
            chart_name: "piraeus".into(),
            values: json!({"operator": {"controller": {"dbConnectionURL": url}}}),
        }),
        other_releases: Vec::new(),
        passphrase: Passphrase::Present {
            secret: controller
                .text("luksSecret")
                .unwrap_or("piraeus-op-passphrase")
                .into(),
        },
        operator,
        v1_crds: [
            "linstorcontrollers.piraeus.linbit.com",
            "linstorcsidrivers.piraeus.linbit.com",
            "linstorsatellitesets.piraeus.linbit.com",
        ]
        .map(String::from)
        .to_vec(),
        v2_crds: Vec::new(),
        node_labels: NodeLabels::Known(Vec::new()),
        etcd_stateful_set: etcd,
        controller,
    }
}

/// An installation made of the every-field resources in `tests/fixtures/upgrade`.
pub fn all_fields_installation() -> V1Installation {
    let mut inst = rendered_installation("after-migration.yaml");
    let one = |file: &str| V1Resource::from_object(&documents(&format!("upgrade/{file}"))[0]);
    inst.controller = one("linstorcontroller-all-fields.yaml");
    inst.satellite_sets = vec![one("linstorsatelliteset-all-fields.yaml")];
    inst.csi_drivers = vec![one("linstorcsidriver-all-fields.yaml")];
    inst.namespace = inst.controller.namespace.clone();
    inst.controllers_found = vec![format!("{}/{}", inst.namespace, inst.controller.name)];
    inst.backend = Backend::Etcd;
    inst
}
