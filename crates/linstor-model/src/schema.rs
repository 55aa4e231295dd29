//! The tables of a LINSTOR database as an export describes them (`column_description`), and the
//! rule that names each table's CRD in the `k8s` backend. Nothing here is of one LINSTOR version:
//! a run's tables, columns and primary keys come from its own export (REFERENCE.md §3, §10; the
//! rule is proven for every table of the 1.25.1 and 1.33.3 recordings).

use crate::export::ColumnDescription;

/// The API group of the `k8s` backend's CRDs.
pub const K8S_GROUP: &str = "internal.linstor.linbit.com";

/// One column of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Upper case, as in the export's `column_description`.
    pub name: String,
    /// `VARCHAR`, `BIGINT`, `BLOB`, ... (from the java.sql.Types code).
    pub sql_type: String,
    /// The java.sql.Types code.
    pub sql_type_code: i32,
    pub primary_key: bool,
    pub nullable: bool,
}

impl Column {
    /// The key of this column in a row (and in an object's `spec`): its name in lower case.
    pub fn row_key(&self) -> String {
        self.name.to_ascii_lowercase()
    }
}

/// One table of a LINSTOR database.
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
    /// The table `name` with the columns an export's `column_description` gives; its CRD named
    /// by [`crd_kind`].
    pub fn from_export(name: &str, columns: &[ColumnDescription]) -> Self {
        let kind = crd_kind(name);
        Self {
            name: name.to_string(),
            crd_name: format!("{}.{K8S_GROUP}", kind.to_ascii_lowercase()),
            crd_kind: kind,
            columns: columns
                .iter()
                .map(|c| Column {
                    name: c.name.clone(),
                    sql_type: sql_type_name(c.sql_type).to_string(),
                    sql_type_code: c.sql_type,
                    primary_key: c.is_primary_key,
                    nullable: c.is_nullable,
                })
                .collect(),
        }
    }

    /// The export's `column_description` of this table.
    pub fn column_description(&self) -> Vec<ColumnDescription> {
        self.columns
            .iter()
            .map(|c| ColumnDescription {
                name: c.name.clone(),
                sql_type: c.sql_type_code,
                is_primary_key: c.primary_key,
                is_nullable: c.nullable,
            })
            .collect()
    }

    /// The CRD plural (`nodes`).
    pub fn plural(&self) -> &str {
        self.crd_name.split('.').next().unwrap_or(&self.crd_name)
    }

    pub fn primary_key(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|c| c.primary_key)
    }

    /// Whether rows have a primary key (all tables but `TRACKING_DATE`), so objects have names
    /// that [`crate::naming`] derives.
    pub fn is_keyed(&self) -> bool {
        self.columns.iter().any(|c| c.primary_key)
    }
}

/// The kind of a table's CRD: the table name in CamelCase (`NODE_STOR_POOL` -> `NodeStorPool`,
/// `S3_REMOTES` -> `S3Remotes`); its plural (and singular) is the kind in lower case. Recorded for
/// every table of LINSTOR 1.25.1 and 1.33.3 (`k8s/naming.txt` of both sets).
pub fn crd_kind(table: &str) -> String {
    table
        .split('_')
        .map(|part| {
            let lower = part.to_ascii_lowercase();
            let mut chars = lower.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// The CRD plural of a table (`NODE_STOR_POOL` -> `nodestorpool`).
pub fn crd_plural(table: &str) -> String {
    crd_kind(table).to_ascii_lowercase()
}

/// The name of a java.sql.Types code, as the fact sheets write it.
pub fn sql_type_name(code: i32) -> &'static str {
    match code {
        -7 => "BIT",
        -6 => "TINYINT",
        -5 => "BIGINT",
        1 => "CHAR",
        4 => "INTEGER",
        5 => "SMALLINT",
        12 => "VARCHAR",
        16 => "BOOLEAN",
        91 => "DATE",
        93 => "TIMESTAMP",
        2004 => "BLOB",
        2005 => "CLOB",
        _ => "OTHER",
    }
}

/// CRDs of the group that hold no export table: the schema version, pending multi-object commits,
/// and the four tables LINSTOR keeps but never exports (their rows come from the schema's own
/// migrations or from the running controller). The same six in 1.25.1 and 1.33.3 (section 7 of
/// `fixtures/linstor-1.25.1/COMPARISON-1.33.3.md`). Emptying the backend leaves them alone, as the
/// tool's truncate does.
pub const NOT_EXPORTED_CRDS: [&str; 6] = [
    "linstorversion",
    "rollback",
    "satellitescapacity",
    "secaccesstypes",
    "spacehistory",
    "trackingdate",
];

/// Whether the CRD `plural` of the group holds rows of an export table (every one not in
/// [`NOT_EXPORTED_CRDS`], including tables of other LINSTOR versions).
pub fn holds_export_rows(plural: &str) -> bool {
    !NOT_EXPORTED_CRDS.contains(&plural)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crd_names_follow_the_recorded_rule() {
        assert_eq!(crd_kind("NODE_STOR_POOL"), "NodeStorPool");
        assert_eq!(crd_kind("S3_REMOTES"), "S3Remotes");
        assert_eq!(
            crd_kind("LAYER_OPENFLEX_RESOURCE_DEFINITIONS"),
            "LayerOpenflexResourceDefinitions"
        );
        assert_eq!(crd_plural("KEY_VALUE_STORE"), "keyvaluestore");
        let t = Table::from_export(
            "NODES",
            &[
                ColumnDescription {
                    name: "UUID".into(),
                    sql_type: 1,
                    is_primary_key: false,
                    is_nullable: false,
                },
                ColumnDescription {
                    name: "NODE_NAME".into(),
                    sql_type: 12,
                    is_primary_key: true,
                    is_nullable: false,
                },
            ],
        );
        assert_eq!(t.crd_name, "nodes.internal.linstor.linbit.com");
        assert_eq!(t.plural(), "nodes");
        assert_eq!(t.columns[1].sql_type, "VARCHAR");
        assert!(t.is_keyed());
        assert_eq!(t.column_description()[1].name, "NODE_NAME");
    }

    #[test]
    fn export_tables_and_the_rest_of_the_group() {
        assert!(holds_export_rows("nodes"));
        assert!(holds_export_rows("layeropenflexvolumes"));
        assert!(!holds_export_rows("linstorversion"));
        assert!(!holds_export_rows("secaccesstypes"));
    }
}
