//! The LINSTOR 1.33 database schema (export `data_version` `v1-31-1`): 43 tables with their
//! columns, SQL types, primary keys and the `k8s` backend CRD of each, read from the fact sheet
//! `linstor-tables-v1-31-1.tsv`; and which 39 of them a real export writes, in which order
//! (recorded: tests/fixtures/linstor-1.33.3/dataset/export-etcd.json).

use std::sync::OnceLock;

/// The export `data_version` / k8s CRD storage version this schema describes.
pub const DATA_VERSION: &str = "v1-31-1";
/// The API group of the k8s backend's CRDs.
pub const K8S_GROUP: &str = "internal.linstor.linbit.com";

const TSV: &str = include_str!("linstor-tables-v1-31-1.tsv");

/// One column of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Upper case, as in the export's `column_description`.
    pub name: String,
    /// `VARCHAR`, `BIGINT`, `BLOB`, ...
    pub sql_type: String,
    /// The java.sql.Types code.
    pub sql_type_code: i32,
    pub primary_key: bool,
    pub nullable: bool,
}

/// One table of the LINSTOR database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Upper case (`NODES`).
    pub name: String,
    /// `nodes.internal.linstor.linbit.com`.
    pub crd_name: String,
    /// `Nodes`.
    pub crd_kind: String,
    pub columns: Vec<Column>,
}

impl Table {
    /// The CRD plural (`nodes`).
    pub fn plural(&self) -> &str {
        self.crd_name.split('.').next().unwrap_or(&self.crd_name)
    }

    pub fn primary_key(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|c| c.primary_key)
    }
}

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
