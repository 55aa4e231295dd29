//! The `linstor-database` export document (REFERENCE.md §3) as LINSTOR 1.33.3 writes it, and the
//! `k8s` backend's object naming rule. Facts checked against the recordings
//! (tests/fixtures/linstor-1.33.3): the header carries all three backend versions, `sql_version`
//! as a string (`"2025.12.31.23.59"`); rows use lower-case column names and leave out null
//! columns; an object's name is the SHA-256 of its primary key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::schema;

/// One entry of a table's `column_description`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnDescription {
    pub name: String,
    pub sql_type: i32,
    pub is_primary_key: bool,
    pub is_nullable: bool,
}

/// A row: lower-case column names to JSON values (BLOBs as base64 strings); a null column is
/// absent, as in a real export.
pub type Row = serde_json::Map<String, serde_json::Value>;

/// A table of an export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportTable {
    pub name: String,
    pub column_description: Vec<ColumnDescription>,
    pub data: Vec<Row>,
}

impl ExportTable {
    /// An empty table with the schema's columns.
    pub fn from_schema(t: &schema::Table) -> Self {
        Self {
            name: t.name.clone(),
            column_description: t
                .columns
                .iter()
                .map(|c| ColumnDescription {
                    name: c.name.clone(),
                    sql_type: c.sql_type_code,
                    is_primary_key: c.primary_key,
                    is_nullable: c.nullable,
                })
                .collect(),
            data: Vec::new(),
        }
    }
}

/// The header versions LINSTOR 1.33.3 writes into every export (whatever the source backend).
pub mod versions {
    /// `data_version`, also the CRDs' storage version.
    pub const DATA: &str = crate::schema::DATA_VERSION;
    /// `sql_version` (a string).
    pub const SQL: &str = "2025.12.31.23.59";
    /// `etcd_version`.
    pub const ETCD: i64 = 71;
    /// `k8s_version`; note that the `LinstorVersion` object of an imported database says 31.
    pub const K8S: i64 = 30;
    /// `spec.version` of the `LinstorVersion` object after an import by 1.33.3.
    pub const K8S_LINSTOR_VERSION_OBJECT: i64 = 31;
}

/// A whole export document, in memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportDocument {
    pub linstor_version: String,
    pub export_timestamp_ms: i64,
    pub exported_from: String,
    pub data_version: String,
    /// A string in 1.33.3 (`"2025.12.31.23.59"`); kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql_version: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd_version: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k8s_version: Option<i64>,
    pub tables: Vec<ExportTable>,
}

impl ExportDocument {
    /// An export of LINSTOR 1.33.3 with the header it writes and the 39 exported tables, empty.
    pub fn empty_1_33_3(exported_from: &str, export_timestamp_ms: i64) -> Self {
        Self {
            linstor_version: "1.33.3".into(),
            export_timestamp_ms,
            exported_from: exported_from.into(),
            data_version: versions::DATA.into(),
            sql_version: Some(serde_json::Value::String(versions::SQL.into())),
            etcd_version: Some(versions::ETCD),
            k8s_version: Some(versions::K8S),
            tables: schema::exported_tables().map(ExportTable::from_schema).collect(),
        }
    }

    /// The table called `name`.
    pub fn table(&self, name: &str) -> Option<&ExportTable> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// Rows of every table.
    pub fn total_rows(&self) -> usize {
        self.tables.iter().map(|t| t.data.len()).sum()
    }
}

/// The text of a scalar as LINSTOR joins primary-key values (strings as they are, numbers in
/// decimal).
pub fn scalar_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The primary key of a row as LINSTOR formats it: the key columns' values joined by `:`.
pub fn primary_key(table: &schema::Table, row: &Row) -> String {
    let key: Vec<String> = table
        .primary_key()
        .map(|c| {
            row.get(&c.name.to_ascii_lowercase())
                .map(scalar_text)
                .unwrap_or_default()
        })
        .collect();
    key.join(":")
}

/// The name of a row's object in the `k8s` backend: lower-case hex SHA-256 of
/// [`primary_key`] (verified for all 216 objects of the recorded import).
pub fn k8s_object_name(table: &schema::Table, row: &Row) -> String {
    hex::encode(Sha256::digest(primary_key(table, row).as_bytes()))
}

/// SHA-256 of a row's canonical JSON (keys sorted, null columns left out: the export and the
/// `k8s` backend omit them, and an explicit null means the same row).
pub fn row_digest(row: &Row) -> [u8; 32] {
    let sorted: BTreeMap<&String, &serde_json::Value> = row.iter().filter(|(_, v)| !v.is_null()).collect();
    let bytes = serde_json::to_vec(&sorted).expect("a JSON map serializes");
    Sha256::digest(&bytes).into()
}

/// `row` as a real export writes it: null columns left out.
pub fn without_nulls(row: Row) -> Row {
    row.into_iter().filter(|(_, v)| !v.is_null()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_hash_the_joined_primary_key() {
        // the three worked examples of tests/fixtures/linstor-1.33.3/k8s/naming.txt
        let t = schema::table("NODES").unwrap();
        let row = json!({"node_name": "ALPHA"}).as_object().unwrap().clone();
        assert_eq!(
            k8s_object_name(t, &row),
            "73ab66a033c267e00b7429bb256f6deb2734ebc4cd4ff5b564a8c9f9b2c8a719"
        );
        let t = schema::table("VOLUME_DEFINITIONS").unwrap();
        let row = json!({"resource_name": "DB0", "snapshot_name": "", "vlm_nr": 1})
            .as_object()
            .unwrap()
            .clone();
        assert_eq!(primary_key(t, &row), "DB0::1");
        assert_eq!(
            k8s_object_name(t, &row),
            "93b8c0352bb8069b44801293e87bb1d581e60adcfb0981466c776de86b20e1a1"
        );
    }

    #[test]
    fn an_empty_export_has_the_real_header_and_tables() {
        let d = ExportDocument::empty_1_33_3("etcd", 1);
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["sql_version"], "2025.12.31.23.59");
        assert_eq!(
            (v["etcd_version"].clone(), v["k8s_version"].clone()),
            (json!(71), json!(30))
        );
        assert_eq!(d.tables.len(), 39);
        assert_eq!(d.tables[0].name, "EBS_REMOTES");
    }
}
