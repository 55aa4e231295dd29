//! Databases of a chosen size, for benchmarks: the generator of [`super::piraeus`] with as many
//! satellites and CSI volumes as it takes to reach about `target_rows` rows (the recorded
//! databases of timing.txt section E had 5 satellites at 1k rows, 20 at 20k and 50 at 100k; each
//! volume brings its resource definition, two replicas and a diskless tie-breaker, their layer
//! rows, properties and object protection: about 49 rows).

use linstor_model::export::ExportDocument;

use super::generate::{Spec, generate};
use crate::Release;

/// How many satellites a database of about `rows` rows has (timing.txt, section E).
fn satellites_for(rows: usize) -> usize {
    match rows {
        0..5_000 => 5,
        5_000..50_000 => 20,
        _ => 50,
    }
}

/// A Piraeus-managed controller's etcd data of `release` with about `target_rows` rows,
/// following every rule of dataset-rules.txt that [`super::piraeus`] follows. The same release and
/// size always give the same document.
pub fn sized(release: Release, target_rows: usize) -> ExportDocument {
    let names: Vec<String> = (1..=satellites_for(target_rows))
        .map(|i| format!("k8s-worker-{i}"))
        .collect();
    let nodes: Vec<&str> = names.iter().map(String::as_str).collect();
    let spec = |resources| Spec {
        seed: 0x5172_ed00 ^ target_rows as u64,
        nodes: &nodes,
        resources,
        linstor_version: release.version(),
        subnet: "10.42.0",
    };
    // the rows of the cluster without volumes, and what one volume adds
    let base = generate(&spec(0)).total_rows();
    let per_volume = generate(&spec(1)).total_rows() - base;
    let volumes = (target_rows.saturating_sub(base) + per_volume / 2) / per_volume;
    generate(&spec(volumes.max(1)))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use linstor_model::export::Row;
    use linstor_model::naming::key_text;
    use serde_json::Value;

    use super::*;

    fn rows<'a>(doc: &'a ExportDocument, table: &str) -> &'a [Row] {
        doc.table(table).map(|t| t.data.as_slice()).unwrap_or_default()
    }

    fn text<'a>(row: &'a Row, column: &str) -> &'a str {
        row.get(column).and_then(Value::as_str).unwrap_or_default()
    }

    /// The rules of dataset-rules.txt a document breaks (those a generated database can be
    /// checked for without the real controller), plus duplicate primary keys.
    fn rule_violations(doc: &ExportDocument) -> Vec<String> {
        let mut out = Vec::new();
        let release = Release::modelling(&doc.linstor_version);
        let reference = release.empty_export("etcd", 0);
        // 9: header versions as the release writes them
        if (
            &doc.data_version,
            &doc.sql_version,
            &doc.etcd_version,
            &doc.k8s_version,
        ) != (
            &reference.data_version,
            &reference.sql_version,
            &reference.etcd_version,
            &reference.k8s_version,
        ) {
            out.push("9: header versions".into());
        }
        // 10: the release's exported tables in the real export's order
        let names: Vec<&str> = doc.tables.iter().map(|t| t.name.as_str()).collect();
        let want: Vec<&str> = release
            .exported_tables()
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        if names != want {
            out.push(format!("10: tables {names:?}"));
        }
        for t in &doc.tables {
            let table = release.table(&t.name).expect("a known table");
            let keys: BTreeSet<String> = t
                .data
                .iter()
                .map(|r| key_text(table, r).unwrap_or_default())
                .collect();
            if keys.len() != t.data.len() {
                out.push(format!("{}: duplicate primary keys", t.name));
            }
        }
        // 1: JSON-valued columns hold JSON lists
        for r in rows(doc, "RESOURCE_DEFINITIONS") {
            if !serde_json::from_str::<Value>(text(r, "layer_stack")).is_ok_and(|v| v.is_array()) {
                out.push(format!("1: layer_stack of {}", text(r, "resource_name")));
            }
        }
        // 2: every object the user created is protected
        let protected: BTreeSet<&str> = rows(doc, "SEC_OBJECT_PROTECTION")
            .iter()
            .map(|r| text(r, "object_path"))
            .collect();
        let acl: BTreeSet<&str> = rows(doc, "SEC_ACL_MAP")
            .iter()
            .map(|r| text(r, "object_path"))
            .collect();
        let mut paths: Vec<String> = Vec::new();
        for (table, prefix, column) in [
            ("NODES", "/nodes/", "node_name"),
            ("RESOURCE_DEFINITIONS", "/resourcedefinitions/", "resource_name"),
            ("RESOURCE_GROUPS", "/resourcegroups/", "resource_group_name"),
            ("STOR_POOL_DEFINITIONS", "/storpooldefinitions/", "pool_name"),
            ("KEY_VALUE_STORE", "/keyvaluestores/", "kvs_name"),
        ] {
            paths.extend(
                rows(doc, table)
                    .iter()
                    .map(|r| format!("{prefix}{}", text(r, column))),
            );
        }
        paths.extend(
            rows(doc, "RESOURCES")
                .iter()
                .map(|r| format!("/resources/{}/{}", text(r, "node_name"), text(r, "resource_name"))),
        );
        for p in paths {
            if !protected.contains(p.as_str()) || !acl.contains(p.as_str()) {
                out.push(format!("2: {p} not protected"));
            }
        }
        // 3: enum names; 4: name rules
        for r in rows(doc, "NODE_NET_INTERFACES") {
            if !["PLAIN", "SSL"].contains(&text(r, "stlt_conn_encr_type")) {
                out.push("3: stlt_conn_encr_type".into());
            }
        }
        for r in rows(doc, "NODE_STOR_POOL") {
            let name = text(r, "free_space_mgr_name");
            if name.contains(':') || !name.contains(';') {
                out.push(format!("4: free_space_mgr_name {name}"));
            }
        }
        // 5: layer rows for every resource and volume
        let layered: BTreeSet<(&str, &str)> = rows(doc, "LAYER_RESOURCE_IDS")
            .iter()
            .map(|r| (text(r, "node_name"), text(r, "resource_name")))
            .collect();
        for r in rows(doc, "RESOURCES") {
            if !layered.contains(&(text(r, "node_name"), text(r, "resource_name"))) {
                out.push(format!("5: no layer rows for {}", text(r, "resource_name")));
            }
        }
        if rows(doc, "LAYER_STORAGE_VOLUMES").len() != rows(doc, "VOLUMES").len() {
            out.push("5: one LAYER_STORAGE_VOLUMES row per volume".into());
        }
        // 6: flags of volumes are 0
        for (table, column) in [("VOLUMES", "vlm_flags"), ("VOLUME_DEFINITIONS", "vlm_flags")] {
            if rows(doc, table)
                .iter()
                .any(|r| r.get(column) != Some(&Value::from(0)))
            {
                out.push(format!("6: {table}.{column}"));
            }
        }
        // 7: the default diskless pool's spelling
        if !rows(doc, "STOR_POOL_DEFINITIONS").iter().any(|r| {
            text(r, "pool_name") == "DFLTDISKLESSSTORPOOL"
                && text(r, "pool_dsp_name") == "DfltDisklessStorPool"
        }) {
            out.push("7: DfltDisklessStorPool".into());
        }
        out
    }

    #[test]
    fn the_checker_accepts_the_presets() {
        for release in Release::ALL {
            assert_eq!(
                rule_violations(&super::super::piraeus(release)),
                Vec::<String>::new()
            );
        }
        assert_eq!(rule_violations(&super::super::plain()), Vec::<String>::new());
    }

    #[test]
    fn sizes_land_near_their_targets_and_follow_the_rules() {
        for release in Release::ALL {
            for target in [1_000, 20_000, 100_000] {
                let doc = sized(release, target);
                let rows = doc.total_rows();
                let off = rows.abs_diff(target) as f64 / target as f64;
                assert!(off < 0.05, "{release} {target}: {rows} rows");
                assert_eq!(
                    rule_violations(&doc),
                    Vec::<String>::new(),
                    "{release} {target} rows"
                );
            }
        }
        assert_eq!(
            sized(Release::V1_25_1, 1_000),
            sized(Release::V1_25_1, 1_000),
            "deterministic"
        );
    }

    #[test]
    fn each_release_has_its_shape_and_property_names() {
        for release in Release::ALL {
            let doc = super::super::piraeus(release);
            assert_eq!(doc.linstor_version, release.version());
            assert_eq!(doc.data_version, release.data_version());
            assert_eq!(doc.tables.len(), release.recorded().export_tables);
            let instances: BTreeSet<&str> = rows(&doc, "PROPS_CONTAINERS")
                .iter()
                .map(|r| text(r, "props_instance"))
                .collect();
            let props = release.facts().props;
            assert!(instances.contains(props.ctrl), "{release}: {instances:?}");
            for prefix in [
                props.rsc_dfns,
                props.rscs,
                props.vlms,
                props.stor_pools,
                props.kvs,
            ] {
                assert!(
                    instances.iter().any(|i| i.starts_with(prefix)),
                    "{release}: {prefix}"
                );
            }
        }
        let old = super::super::piraeus(Release::V1_25_1);
        assert!(
            rows(&old, "LAYER_DRBD_RESOURCES")
                .iter()
                .all(|r| !r.contains_key("tcp_port_list"))
        );
        assert_eq!(old.table("LAYER_OPENFLEX_VOLUMES").map(|t| t.data.len()), Some(0));
    }
}
