//! The `linstor-database` export document (REFERENCE.md §3) as LINSTOR writes it. Facts checked
//! against the recordings of 1.25.1 and 1.33.3 (same keys in the same order in both): the header
//! carries the three backend versions, `sql_version` as a string (`"2025.12.31.23.59"`); rows use
//! lower-case column names and leave out null columns; a table's `column_description` says its
//! columns and primary key.

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
    /// An empty table with the columns of `t`.
    pub fn from_schema(t: &schema::Table) -> Self {
        Self {
            name: t.name.clone(),
            column_description: t.column_description(),
            data: Vec::new(),
        }
    }

    /// The table as its `column_description` describes it.
    pub fn schema(&self) -> schema::Table {
        schema::Table::from_export(&self.name, &self.column_description)
    }
}

/// A whole export document, in memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportDocument {
    pub linstor_version: String,
    pub export_timestamp_ms: i64,
    pub exported_from: String,
    pub data_version: String,
    /// A string in 1.25.1 and 1.33.3 (`"2025.12.31.23.59"`); kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql_version: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd_version: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k8s_version: Option<i64>,
    pub tables: Vec<ExportTable>,
}

impl ExportDocument {
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

/// SHA-256 of a row's canonical JSON (keys sorted, null columns left out: the export and the
/// `k8s` backend omit them, and an explicit null means the same row).
pub fn row_digest(row: &Row) -> [u8; 32] {
    let mut hashing = Hashing(Sha256::new());
    // a row read from JSON is sorted already (serde_json's map is ordered by key): hashed as it is,
    // without a sorted copy; the bytes are the same either way
    let written = if row.keys().is_sorted() && row.values().all(|v| !v.is_null()) {
        serde_json::to_writer(&mut hashing, row)
    } else {
        let sorted: BTreeMap<&String, &serde_json::Value> =
            row.iter().filter(|(_, v)| !v.is_null()).collect();
        serde_json::to_writer(&mut hashing, &sorted)
    };
    written.expect("a JSON map serializes");
    hashing.0.finalize().into()
}

/// Feeds what is written into a SHA-256.
pub(crate) struct Hashing(pub(crate) Sha256);

impl std::io::Write for Hashing {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
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
    fn a_row_digest_ignores_key_order_and_null_columns() {
        let a = json!({"a": 1, "b": "x"}).as_object().unwrap().clone();
        let b = json!({"b": "x", "a": 1, "c": null}).as_object().unwrap().clone();
        assert_eq!(row_digest(&a), row_digest(&b));
        // the same bytes as a sorted copy serialized whole
        let sorted: BTreeMap<&String, &serde_json::Value> = a.iter().collect();
        let whole: [u8; 32] = Sha256::digest(serde_json::to_vec(&sorted).unwrap()).into();
        assert_eq!(row_digest(&a), whole);
        assert_eq!(without_nulls(b).len(), 2);
        assert_eq!(scalar_text(&json!(7)), "7");
        assert_eq!(scalar_text(&json!("DB0")), "DB0");
    }
}
