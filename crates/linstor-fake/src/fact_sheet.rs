//! The LINSTOR 1.33 database schema (export `data_version` `v1-31-1`): 43 tables with their
//! columns, SQL types, primary keys and the `k8s` backend CRD of each, read from the fact sheet
//! `linstor-tables-v1-31-1.tsv`; which 39 of them a real export writes, in which order
//! (recorded: tests/fixtures/linstor-1.33.3/dataset/export-etcd.json); and the header versions
//! 1.33.3 writes. Facts of the model's LINSTOR 1.33.3 only: the service takes a run's tables from
//! its export.

use std::sync::OnceLock;

use linstor_model::export::{ExportDocument, ExportTable};
use linstor_model::schema::{Column, Table};

/// The export `data_version` / k8s CRD storage version this schema describes.
pub const DATA_VERSION: &str = "v1-31-1";

/// The header versions LINSTOR 1.33.3 writes into every export (whatever the source backend).
pub mod versions {
    /// `data_version`, also the CRDs' storage version.
    pub const DATA: &str = super::DATA_VERSION;
    /// `sql_version` (a string).
    pub const SQL: &str = "2025.12.31.23.59";
    /// `etcd_version`.
    pub const ETCD: i64 = 71;
    /// `k8s_version`; note that the `LinstorVersion` object of an imported database says 31.
    pub const K8S: i64 = 30;
    /// `spec.version` of the `LinstorVersion` object after an import by 1.33.3.
    pub const K8S_LINSTOR_VERSION_OBJECT: i64 = 31;
}

/// An export of LINSTOR 1.33.3 with the header it writes and the 39 exported tables, empty.
pub fn empty_1_33_3(exported_from: &str, export_timestamp_ms: i64) -> ExportDocument {
    ExportDocument {
        linstor_version: "1.33.3".into(),
        export_timestamp_ms,
        exported_from: exported_from.into(),
        data_version: versions::DATA.into(),
        sql_version: Some(serde_json::Value::String(versions::SQL.into())),
        etcd_version: Some(versions::ETCD),
        k8s_version: Some(versions::K8S),
        tables: exported_tables().map(ExportTable::from_schema).collect(),
    }
}

const TSV: &str = include_str!("linstor-tables-v1-31-1.tsv");

/// The tables `linstor-database export-db` of LINSTOR 1.33.3 writes, in its (dependency) order;
/// an import creates objects in this order and truncates in the reverse one.
pub const EXPORT_ORDER: [&str; 39] = [
    "EBS_REMOTES",
    "FILES",
    "KEY_VALUE_STORE",
    "NODES",
    "RESOURCE_DEFINITIONS",
    "RESOURCES",
    "LAYER_RESOURCE_IDS",
    "STOR_POOL_DEFINITIONS",
    "NODE_STOR_POOL",
    "LAYER_BCACHE_VOLUMES",
    "LAYER_CACHE_VOLUMES",
    "LAYER_DRBD_RESOURCES",
    "LAYER_DRBD_RESOURCE_DEFINITIONS",
    "LAYER_DRBD_VOLUMES",
    "VOLUME_DEFINITIONS",
    "LAYER_DRBD_VOLUME_DEFINITIONS",
    "LAYER_LUKS_VOLUMES",
    "LAYER_STORAGE_VOLUMES",
    "LAYER_WRITECACHE_VOLUMES",
    "LINSTOR_REMOTES",
    "NODE_CONNECTIONS",
    "NODE_NET_INTERFACES",
    "PROPS_CONTAINERS",
    "RESOURCE_CONNECTIONS",
    "S3_REMOTES",
    "SCHEDULES",
    "SEC_IDENTITIES",
    "SEC_TYPES",
    "SEC_ROLES",
    "SEC_OBJECT_PROTECTION",
    "SEC_ACL_MAP",
    "SEC_CONFIGURATION",
    "SEC_ID_ROLE_MAP",
    "SEC_DFLT_ROLES",
    "SEC_TYPE_RULES",
    "VOLUMES",
    "VOLUME_CONNECTIONS",
    "RESOURCE_GROUPS",
    "VOLUME_GROUPS",
];

/// The exported tables in [`EXPORT_ORDER`].
pub fn exported_tables() -> impl Iterator<Item = &'static Table> {
    EXPORT_ORDER.iter().filter_map(|name| table(name))
}

/// All tables, in the fact sheet's (alphabetical) order; four of them (`SATELLITES_CAPACITY`,
/// `SEC_ACCESS_TYPES`, `SPACE_HISTORY`, `TRACKING_DATE`) have CRDs but are never exported.
pub fn tables() -> &'static [Table] {
    static TABLES: OnceLock<Vec<Table>> = OnceLock::new();
    TABLES.get_or_init(|| parse(TSV))
}

/// The table called `name` (upper case).
pub fn table(name: &str) -> Option<&'static Table> {
    tables().iter().find(|t| t.name == name)
}

fn parse(tsv: &str) -> Vec<Table> {
    let mut out: Vec<Table> = Vec::new();
    for line in tsv
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("table\t") && !l.trim().is_empty())
    {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(
            f.len(),
            8,
            "schema fact sheet line has {} fields: {line}",
            f.len()
        );
        let column = Column {
            name: f[3].into(),
            sql_type: f[4].into(),
            sql_type_code: f[5].parse().expect("sql type code"),
            primary_key: f[6] == "yes",
            nullable: f[7] == "yes",
        };
        match out.last_mut() {
            Some(t) if t.name == f[0] => t.columns.push(column),
            _ => out.push(Table {
                name: f[0].into(),
                crd_name: f[1].into(),
                crd_kind: f[2].into(),
                columns: vec![column],
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_export_has_the_real_header_and_tables() {
        let d = empty_1_33_3("etcd", 1);
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["sql_version"], "2025.12.31.23.59");
        assert_eq!(
            (v["etcd_version"].clone(), v["k8s_version"].clone()),
            (serde_json::json!(71), serde_json::json!(30))
        );
        assert_eq!(d.tables.len(), 39);
        assert_eq!(d.tables[0].name, "EBS_REMOTES");
    }

    #[test]
    fn the_fact_sheet_follows_the_crd_naming_rule() {
        for t in tables() {
            assert_eq!(t.crd_kind, linstor_model::schema::crd_kind(&t.name), "{}", t.name);
            assert_eq!(
                t.plural(),
                linstor_model::schema::crd_plural(&t.name),
                "{}",
                t.name
            );
        }
    }

    #[test]
    fn fact_sheet_has_43_tables_with_primary_keys() {
        assert_eq!(tables().len(), 43);
        let nodes = table("NODES").unwrap();
        assert_eq!(nodes.crd_name, "nodes.internal.linstor.linbit.com");
        assert_eq!(nodes.plural(), "nodes");
        assert_eq!(
            nodes.primary_key().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            ["NODE_NAME"]
        );
        let keyless: Vec<&str> = tables()
            .iter()
            .filter(|t| t.primary_key().count() == 0)
            .map(|t| t.name.as_str())
            .collect();
        assert_eq!(keyless, ["TRACKING_DATE"]);
        let vols = table("VOLUMES").unwrap();
        assert_eq!(vols.primary_key().count(), 4);
    }

    #[test]
    fn the_export_writes_39_known_tables() {
        assert_eq!(exported_tables().count(), 39);
        let unexported: Vec<&str> = tables()
            .iter()
            .map(|t| t.name.as_str())
            .filter(|n| !EXPORT_ORDER.contains(n))
            .collect();
        assert_eq!(
            unexported,
            [
                "SATELLITES_CAPACITY",
                "SEC_ACCESS_TYPES",
                "SPACE_HISTORY",
                "TRACKING_DATE"
            ]
        );
    }
}
