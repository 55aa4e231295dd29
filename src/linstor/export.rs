//! The `linstor-database` export format (REFERENCE.md §3): the document type (from
//! `linstor-model`, shared with the fake LINSTOR), a streaming reader that summarises an export
//! without holding it in memory, and validation of a backup. Two summaries are compared in
//! [`super::compare`].

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use super::row_index::{RowEntry, RowIndex, RowKey};
use super::schema::Table;

pub use linstor_model::export::{
    ColumnDescription, ExportDocument, ExportTable, Row, row_digest, scalar_text, without_nulls,
};
use linstor_model::naming;

/// The header fields of an export.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct ExportHeader {
    pub linstor_version: Option<String>,
    pub export_timestamp_ms: Option<i64>,
    pub exported_from: Option<String>,
    pub data_version: Option<String>,
    /// The backends' schema versions the exporting LINSTOR knew (kept to write an export of the
    /// same version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql_version: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k8s_version: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd_version: Option<serde_json::Value>,
}

/// What is known of one table after reading it: row count and a digest per primary key.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct TableSummary {
    pub name: String,
    pub rows: u64,
    /// SHA-256 over the row digests in key order: equal tables have equal digests.
    pub digest: String,
    #[serde(skip)]
    pub row_index: RowIndex,
    /// The table's `column_description`: its columns and primary key, as the exporting LINSTOR
    /// has them (empty for a summary of the backend, which is read by the export's tables).
    #[serde(skip)]
    pub columns: Vec<ColumnDescription>,
    /// Problems found while reading (null primary key, unknown column, duplicate key).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// A summary of an export read as a stream.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct ExportSummary {
    pub header: ExportHeader,
    pub tables: Vec<TableSummary>,
}

impl TableSummary {
    /// The table as the export describes it (its CRD named by the rule).
    pub fn schema(&self) -> Table {
        Table::from_export(&self.name, &self.columns)
    }
}

impl ExportSummary {
    /// The tables of the export, as its `column_description`s describe them, in export order.
    pub fn schema(&self) -> Vec<Table> {
        self.tables.iter().map(TableSummary::schema).collect()
    }

    pub fn total_rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }

    pub fn table(&self, name: &str) -> Option<&TableSummary> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// Row counts per table, for the record.
    pub fn row_counts(&self) -> BTreeMap<String, u64> {
        self.tables.iter().map(|t| (t.name.clone(), t.rows)).collect()
    }
}

/// Reads an export from `reader` one row at a time; memory use is bounded by the number of rows
/// (48 bytes each, [`RowIndex`]), not by the file size.
pub fn summarize<R: Read>(reader: R) -> Result<ExportSummary, String> {
    let mut de = serde_json::Deserializer::from_reader(std::io::BufReader::with_capacity(64 * 1024, reader));
    let summary = SummaryVisitor
        .deserialize(&mut de)
        .map_err(|e| format!("backup is not a LINSTOR export: {e}"))?;
    de.end().map_err(|e| format!("backup has trailing data: {e}"))?;
    Ok(summary)
}

struct SummaryVisitor;

impl<'de> DeserializeSeed<'de> for SummaryVisitor {
    type Value = ExportSummary;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<ExportSummary, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for SummaryVisitor {
    type Value = ExportSummary;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an export object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ExportSummary, A::Error> {
        let mut out = ExportSummary::default();
        let mut saw_tables = false;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "linstor_version" => out.header.linstor_version = map.next_value()?,
                "export_timestamp_ms" => out.header.export_timestamp_ms = map.next_value()?,
                "exported_from" => out.header.exported_from = map.next_value()?,
                "data_version" => out.header.data_version = map.next_value()?,
                "sql_version" => out.header.sql_version = map.next_value()?,
                "k8s_version" => out.header.k8s_version = map.next_value()?,
                "etcd_version" => out.header.etcd_version = map.next_value()?,
                "tables" => {
                    out.tables = map.next_value_seed(TablesSeed)?;
                    saw_tables = true;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if !saw_tables {
            return Err(de::Error::missing_field("tables"));
        }
        Ok(out)
    }
}

struct TablesSeed;

impl<'de> DeserializeSeed<'de> for TablesSeed {
    type Value = Vec<TableSummary>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for TablesSeed {
    type Value = Vec<TableSummary>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of tables")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(t) = seq.next_element_seed(TableSeed)? {
            out.push(t);
        }
        Ok(out)
    }
}

struct TableSeed;

impl<'de> DeserializeSeed<'de> for TableSeed {
    type Value = TableSummary;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TableSeed {
    type Value = TableSummary;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a table object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TableSummary, A::Error> {
        let mut name: Option<String> = None;
        let mut columns: Option<Vec<ColumnDescription>> = None;
        let mut rows: Option<RowsOut> = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "name" => name = Some(map.next_value()?),
                "column_description" => columns = Some(map.next_value()?),
                "data" => {
                    // the keys need the columns only (a document written with sorted keys has
                    // its `data` before its `name`)
                    let table = columns
                        .as_ref()
                        .map(|c| Table::from_export(name.as_deref().unwrap_or_default(), c));
                    rows = Some(map.next_value_seed(RowsSeed {
                        table: table.as_ref(),
                    })?)
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let name = name.ok_or_else(|| de::Error::missing_field("name"))?;
        let columns = columns.ok_or_else(|| de::Error::missing_field("column_description"))?;
        let rows = rows.unwrap_or_default();
        let mut problems = rows.problems;
        let (row_index, repeated) = RowIndex::build(rows.entries);
        if rows.keyed {
            for key in repeated.iter().take(20usize.saturating_sub(problems.len())) {
                problems.push(format!("duplicate primary key (object {})", hex::encode(key)));
            }
        }
        Ok(TableSummary {
            name,
            rows: rows.count,
            digest: row_index.table_digest(),
            row_index,
            columns,
            problems,
        })
    }
}

#[derive(Default)]
struct RowsOut {
    count: u64,
    entries: Vec<RowEntry>,
    /// Whether rows are keyed by a primary key (else by their digest, and may repeat).
    keyed: bool,
    problems: Vec<String>,
}

struct RowsSeed<'a> {
    /// The table, when its `column_description` came before its rows (the tool writes it first).
    table: Option<&'a Table>,
}

impl<'de> DeserializeSeed<'de> for RowsSeed<'_> {
    type Value = RowsOut;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RowsSeed<'_> {
    type Value = RowsOut;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of rows")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RowsOut, A::Error> {
        let mut out = RowsOut::default();
        let keyed = self.table.filter(|t| t.is_keyed());
        out.keyed = keyed.is_some();
        let lower: Vec<(String, bool)> = self
            .table
            .map(|t| t.columns.iter().map(|c| (c.row_key(), c.primary_key)).collect())
            .unwrap_or_default();
        while let Some(row) = seq.next_element::<Row>()? {
            out.count += 1;
            let digest = row_digest(&row);
            let key: RowKey = match keyed.and_then(|t| naming::key_text(t, &row).map(|k| (t, k))) {
                Some((_, text)) => {
                    if out.problems.len() < 20 {
                        if let Some(unknown) = row.keys().find(|k| !lower.iter().any(|(c, _)| c == *k)) {
                            out.problems
                                .push(format!("row {} has unknown column {unknown:?}", out.count));
                        }
                        if let Some((c, _)) = lower
                            .iter()
                            .find(|(c, pk)| *pk && row.get(c).is_none_or(|v| v.is_null()))
                        {
                            out.problems
                                .push(format!("row {} has no value for key column {c:?}", out.count));
                        }
                    }
                    naming::key_hash(&text)
                }
                // no primary key (TRACKING_DATE) or column_description after data: rows are
                // keyed by their own digest, and repeats are kept
                None => digest,
            };
            out.entries.push(RowEntry::new(key, &digest));
        }
        Ok(out)
    }
}

/// An export of the same version as `header` with the tables of `tables` and no rows: importing
/// it makes the tool create and migrate the `k8s` backend's schema (CRDs, `LinstorVersion`) and
/// nothing else. The tables and columns are the export's own (whatever its LINSTOR version).
pub fn schema_only(header: &ExportHeader, tables: &[TableSummary]) -> serde_json::Value {
    let tables: Vec<serde_json::Value> = tables
        .iter()
        .map(|t| {
            serde_json::to_value(ExportTable {
                name: t.name.clone(),
                column_description: t.columns.clone(),
                data: Vec::new(),
            })
            .expect("a table serializes")
        })
        .collect();
    let mut doc = serde_json::json!({
        "linstor_version": header.linstor_version,
        "export_timestamp_ms": header.export_timestamp_ms,
        "exported_from": header.exported_from,
        "data_version": header.data_version,
    });
    for (key, value) in [
        ("sql_version", &header.sql_version),
        ("k8s_version", &header.k8s_version),
        ("etcd_version", &header.etcd_version),
    ] {
        if let Some(v) = value {
            doc[key] = v.clone();
        }
    }
    doc["tables"] = serde_json::Value::Array(tables);
    doc
}

/// What a valid backup must be.
#[derive(Debug, Clone)]
pub struct Expectation<'a> {
    /// `exported_from` of the source (`etcd`, `k8s`, `sql/postgresql`).
    pub exported_from: &'a str,
    /// The controller's LINSTOR version when its image tag tells (`1.33.3`); the export must
    /// not be newer.
    pub linstor_version: Option<&'a str>,
}

/// Checks a summarised backup against what the run expects; returns every problem found.
pub fn validate(summary: &ExportSummary, expect: &Expectation<'_>) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    let h = &summary.header;
    match h.exported_from.as_deref() {
        Some(f) if f == expect.exported_from => {}
        Some(f) => problems.push(format!(
            "exported_from is {f:?}, expected {:?}",
            expect.exported_from
        )),
        None => problems.push("exported_from is missing".into()),
    }
    match (h.linstor_version.as_deref(), expect.linstor_version) {
        (None, _) => problems.push("linstor_version is missing".into()),
        (Some(got), Some(want)) if !same_release(got, want) => problems.push(format!(
            "linstor_version is {got:?}, but the controller runs {want:?}"
        )),
        _ => {}
    }
    if h.data_version.is_none() {
        problems.push("data_version is missing".into());
    }
    if summary.tables.is_empty() {
        problems.push("the export has no tables".into());
    }
    for t in &summary.tables {
        problems.extend(t.problems.iter().map(|p| format!("table {}: {p}", t.name)));
    }
    // An export of a real cluster always has its security tables; an export of an empty H2
    // database (the tool's silent fallback when linstor.toml is missing) has no nodes and no roles.
    if !summary.tables.is_empty() && summary.table("SEC_ROLES").is_none_or(|t| t.rows == 0) {
        problems.push("SEC_ROLES is empty: this looks like an export of an empty database".into());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Compares `major.minor.patch` prefixes (`1.33.3` matches `1.33.3-rc1` and `v1.33.3`).
fn same_release(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        s.trim_start_matches('v')
            .split(['-', '+'])
            .next()
            .unwrap_or("")
            .to_string()
    };
    norm(a) == norm(b)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::linstor::row_index::key_hash;
    use linstor_fake::Release;
    use serde_json::json;

    /// A small export: two nodes, one role, an empty FILES table.
    pub(crate) fn doc(exported_from: &str) -> ExportDocument {
        let mut nodes = ExportTable::from_schema(Release::LATEST.table("NODES").unwrap());
        for n in ["n1", "n2"] {
            nodes.data.push(
                json!({"uuid": format!("u-{n}"), "node_name": n.to_uppercase(), "node_dsp_name": n,
                       "node_flags": 0, "node_type": 2})
                .as_object()
                .unwrap()
                .clone(),
            );
        }
        let mut roles = ExportTable::from_schema(Release::LATEST.table("SEC_ROLES").unwrap());
        roles.data.push(
            json!({"role_name": "SYSADM", "role_dsp_name": "SysAdm", "domain_name": "SYSADM",
                   "role_enabled": true, "role_privileges": -1})
            .as_object()
            .unwrap()
            .clone(),
        );
        ExportDocument {
            linstor_version: "1.33.3".into(),
            export_timestamp_ms: 1_700_000_000_000,
            exported_from: exported_from.into(),
            data_version: "v1-31-1".into(),
            sql_version: None,
            k8s_version: None,
            etcd_version: Some(55),
            tables: vec![
                nodes,
                roles,
                ExportTable::from_schema(Release::LATEST.table("FILES").unwrap()),
            ],
        }
    }

    pub(crate) fn summary_of(d: &ExportDocument) -> ExportSummary {
        summarize(serde_json::to_vec(d).unwrap().as_slice()).unwrap()
    }

    #[test]
    fn summarizes_rows_per_table() {
        let s = summary_of(&doc("etcd"));
        assert_eq!(s.header.exported_from.as_deref(), Some("etcd"));
        assert_eq!(s.header.linstor_version.as_deref(), Some("1.33.3"));
        assert_eq!(s.row_counts()["NODES"], 2);
        assert_eq!(s.total_rows(), 3);
        assert!(s.table("NODES").unwrap().row_index.get(&key_hash("N1")).is_some());
    }

    #[test]
    fn valid_backup_passes() {
        let s = summary_of(&doc("etcd"));
        validate(
            &s,
            &Expectation {
                exported_from: "etcd",
                linstor_version: Some("v1.33.3"),
            },
        )
        .unwrap();
    }

    #[test]
    fn wrong_source_version_and_empty_database_fail() {
        let s = summary_of(&doc("sql/h2"));
        let err = validate(
            &s,
            &Expectation {
                exported_from: "etcd",
                linstor_version: Some("1.32.0"),
            },
        )
        .unwrap_err();
        assert!(
            err.iter().any(|p| p.contains("exported_from is \"sql/h2\"")),
            "{err:?}"
        );
        assert!(err.iter().any(|p| p.contains("linstor_version")), "{err:?}");

        let mut empty = doc("etcd");
        for t in &mut empty.tables {
            t.data.clear();
        }
        let err = validate(
            &summary_of(&empty),
            &Expectation {
                exported_from: "etcd",
                linstor_version: None,
            },
        )
        .unwrap_err();
        assert!(err.iter().any(|p| p.contains("empty database")), "{err:?}");
    }

    #[test]
    fn garbage_and_truncated_files_are_rejected() {
        assert!(summarize(&b"Usage: linstor-database [-hV] [COMMAND]"[..]).is_err());
        let full = serde_json::to_vec(&doc("etcd")).unwrap();
        assert!(summarize(&full[..full.len() - 10]).is_err());
        assert!(
            summarize(&b"{\"linstor_version\": \"1.33.3\"}"[..])
                .unwrap_err()
                .contains("tables")
        );
    }

    #[test]
    fn null_key_and_duplicate_rows_are_problems() {
        let mut d = doc("etcd");
        let mut dup = d.tables[0].data[0].clone();
        d.tables[0].data.push(dup.clone());
        dup.insert("node_name".into(), serde_json::Value::Null);
        d.tables[0].data.push(dup);
        let err = validate(
            &summary_of(&d),
            &Expectation {
                exported_from: "etcd",
                linstor_version: None,
            },
        )
        .unwrap_err();
        assert!(err.iter().any(|p| p.contains("duplicate primary key")), "{err:?}");
        assert!(
            err.iter().any(|p| p.contains("no value for key column")),
            "{err:?}"
        );
    }

    #[test]
    fn a_summary_keeps_each_table_as_its_export_describes_it() {
        let s = summary_of(&doc("etcd"));
        let nodes = s.table("NODES").unwrap().schema();
        assert_eq!(nodes.plural(), "nodes");
        assert_eq!(
            nodes.primary_key().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            ["NODE_NAME"]
        );
        let schema_only = schema_only(&s.header, &s.tables);
        assert_eq!(
            schema_only["tables"][0]["column_description"],
            json!(doc("etcd").tables[0].column_description)
        );
        assert_eq!(schema_only["tables"][0]["data"], json!([]));
        assert_eq!(schema_only["data_version"], "v1-31-1");
    }
}
