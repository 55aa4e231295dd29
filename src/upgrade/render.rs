//! YAML out of JSON values: the v2 resources, and the patches inside them (kustomize takes a patch
//! as a YAML string). serde-saphyr writes multi-line strings as literal blocks, so a patch reads as
//! YAML inside the YAML.

use serde_json::Value;

/// One YAML document (no `---`).
pub fn yaml(value: &Value) -> String {
    // a serde_json::Value has only string keys and no NaN: nothing in it fails to serialize
    serde_saphyr::to_string(value).expect("a JSON value serializes to YAML")
}

/// Several documents, each after a `---` line.
pub fn documents(values: &[Value]) -> String {
    let mut out = String::new();
    for v in values {
        out.push_str("---\n");
        let doc = yaml(v);
        out.push_str(&doc);
        if !doc.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}
