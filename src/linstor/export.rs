//! The `linstor-database` export format (REFERENCE.md §3): the document type used to write
//! exports (simulated tool, stand-ins), a streaming reader that summarises an export without
//! holding it in memory, validation of a backup, and the table-by-table comparison of two exports.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::schema;

/// One entry of a table's `column_description`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ColumnDescription {
    pub name: String,
    pub sql_type: i32,
    pub is_primary_key: bool,
    pub is_nullable: bool,
}

/// A row: lower-case column names to JSON values (BLOBs as base64 strings).
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

/// A whole export document, in memory (for writing exports; reading uses [`summarize`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportDocument {
    pub linstor_version: String,
    pub export_timestamp_ms: i64,
    pub exported_from: String,
    pub data_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql_version: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k8s_version: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd_version: Option<i64>,
    pub tables: Vec<ExportTable>,
}

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
    /// SHA-256 over the sorted row digests: equal tables have equal digests.
    pub digest: String,
    #[serde(skip)]
    pub row_digests: BTreeMap<String, [u8; 32]>,
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

impl ExportSummary {
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
/// (32 bytes and a key each), not by the file size.
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
                    rows = Some(map.next_value_seed(RowsSeed {
                        columns: columns.as_deref(),
                    })?)
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let name = name.ok_or_else(|| de::Error::missing_field("name"))?;
        columns.ok_or_else(|| de::Error::missing_field("column_description"))?;
        let rows = rows.unwrap_or_default();
        let problems = rows.problems;
        let mut h = Sha256::new();
        for d in rows.digests.values() {
            h.update(d);
        }
        Ok(TableSummary {
            name,
            rows: rows.count,
            digest: hex::encode(h.finalize()),
            row_digests: rows.digests,
            problems,
        })
    }
}

#[derive(Default)]
struct RowsOut {
    count: u64,
    digests: BTreeMap<String, [u8; 32]>,
    problems: Vec<String>,
}

struct RowsSeed<'a> {
    columns: Option<&'a [ColumnDescription]>,
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
        let lower: Option<Vec<(String, bool)>> = self.columns.map(|cols| {
            cols.iter()
                .map(|c| (c.name.to_ascii_lowercase(), c.is_primary_key))
                .collect()
        });
        while let Some(row) = seq.next_element::<Row>()? {
            out.count += 1;
            let digest = row_digest(&row);
            let key = match &lower {
                Some(cols) if cols.iter().any(|(_, pk)| *pk) => {
                    if let Some(unknown) = row.keys().find(|k| !cols.iter().any(|(c, _)| c == *k))
                        && out.problems.len() < 20
                    {
                        out.problems
                            .push(format!("row {} has unknown column {unknown:?}", out.count));
                    }
                    let mut parts = Vec::new();
                    for (c, _) in cols.iter().filter(|(_, pk)| *pk) {
                        match row.get(c) {
                            Some(v) if !v.is_null() => parts.push(scalar_text(v)),
                            _ => {
                                if out.problems.len() < 20 {
                                    out.problems
                                        .push(format!("row {} has no value for key column {c:?}", out.count));
                                }
                                parts.push(String::new());
                            }
                        }
                    }
                    parts.join(":")
                }
                // no primary key (TRACKING_DATE) or column_description after data: key rows by
                // their own digest, counting repeats
                _ => {
                    let base = hex::encode(digest);
                    let mut key = base.clone();
                    let mut n = 1;
                    while out.digests.contains_key(&key) {
                        n += 1;
                        key = format!("{base}#{n}");
                    }
                    key
                }
            };
            if out.digests.insert(key.clone(), digest).is_some() && out.problems.len() < 20 {
                out.problems.push(format!("duplicate primary key {key:?}"));
            }
        }
        Ok(out)
    }
}

/// An export of the same version as `header` with no rows in `tables`: importing it makes the
/// tool create and migrate the `k8s` backend's schema (CRDs, `LinstorVersion`) and nothing else.
pub fn schema_only(header: &ExportHeader, tables: &[&str]) -> serde_json::Value {
    let tables: Vec<serde_json::Value> = tables
        .iter()
        .filter_map(|name| schema::table(name))
        .map(|t| serde_json::to_value(ExportTable::from_schema(t)).expect("a table serializes"))
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

/// The text of a scalar as LINSTOR joins primary-key values.
pub fn scalar_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// SHA-256 of a row's canonical JSON (keys sorted, null columns left out: the export and the
/// `k8s` backend omit them, and an explicit null means the same row).
pub fn row_digest(row: &Row) -> [u8; 32] {
    let sorted: BTreeMap<&String, &serde_json::Value> = row.iter().filter(|(_, v)| !v.is_null()).collect();
    let bytes = serde_json::to_vec(&sorted).expect("a JSON map serializes");
    Sha256::digest(&bytes).into()
}

/// The name of a row's object in the `k8s` backend: lower-case hex SHA-256 of the primary-key
/// values joined by `:` in column order (REFERENCE.md §3).
pub fn k8s_object_name(table: &schema::Table, row: &Row) -> String {
    let key: Vec<String> = table
        .primary_key()
        .map(|c| {
            row.get(&c.name.to_ascii_lowercase())
                .map(scalar_text)
                .unwrap_or_default()
        })
        .collect();
    hex::encode(Sha256::digest(key.join(":").as_bytes()))
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

/// The difference of one table between two exports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TableComparison {
    pub name: String,
    pub rows_expected: u64,
    pub rows_found: u64,
    pub missing: u64,
    pub extra: u64,
    pub changed: u64,
    /// Up to ten primary keys that differ, for the report.
    pub examples: Vec<String>,
}

impl TableComparison {
    pub fn is_equal(&self) -> bool {
        self.missing == 0 && self.extra == 0 && self.changed == 0
    }
}

/// The table-by-table comparison of a backup with a re-export.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct DataComparison {
    pub tables_compared: usize,
    pub rows_compared: u64,
    /// Only the tables that differ.
    pub differences: Vec<TableComparison>,
}

impl DataComparison {
    pub fn is_equal(&self) -> bool {
        self.differences.is_empty()
    }
}

/// Compares every table of `expected` (the backup) with `found` (the re-export). A table absent
/// from one side counts as empty (some tables have no export driver).
pub fn compare(expected: &ExportSummary, found: &ExportSummary) -> DataComparison {
    let empty = BTreeMap::new();
    let names: std::collections::BTreeSet<&str> = expected
        .tables
        .iter()
        .chain(&found.tables)
        .map(|t| t.name.as_str())
        .collect();
    let mut out = DataComparison::default();
    for name in names {
        let a = expected.table(name).map(|t| &t.row_digests).unwrap_or(&empty);
        let b = found.table(name).map(|t| &t.row_digests).unwrap_or(&empty);
        let mut cmp = TableComparison {
            name: name.to_string(),
            rows_expected: a.len() as u64,
            rows_found: b.len() as u64,
            missing: 0,
            extra: 0,
            changed: 0,
            examples: Vec::new(),
        };
        for (k, da) in a {
            match b.get(k) {
                None => cmp.missing += 1,
                Some(db) if db != da => cmp.changed += 1,
                _ => continue,
            }
            if cmp.examples.len() < 10 {
                cmp.examples.push(k.clone());
            }
        }
        for k in b.keys().filter(|k| !a.contains_key(*k)) {
            cmp.extra += 1;
            if cmp.examples.len() < 10 {
                cmp.examples.push(k.clone());
            }
        }
        out.tables_compared += 1;
        out.rows_compared += a.len() as u64;
        if !cmp.is_equal() {
            out.differences.push(cmp);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(exported_from: &str) -> ExportDocument {
        let mut nodes = ExportTable::from_schema(schema::table("NODES").unwrap());
        for n in ["n1", "n2"] {
            nodes.data.push(
                json!({"uuid": format!("u-{n}"), "node_name": n.to_uppercase(), "node_dsp_name": n,
                       "node_flags": 0, "node_type": 2})
                .as_object()
                .unwrap()
                .clone(),
            );
        }
        let mut roles = ExportTable::from_schema(schema::table("SEC_ROLES").unwrap());
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
                ExportTable::from_schema(schema::table("FILES").unwrap()),
            ],
        }
    }

    fn summary_of(d: &ExportDocument) -> ExportSummary {
        summarize(serde_json::to_vec(d).unwrap().as_slice()).unwrap()
    }

    #[test]
    fn summarizes_rows_per_table() {
        let s = summary_of(&doc("etcd"));
        assert_eq!(s.header.exported_from.as_deref(), Some("etcd"));
        assert_eq!(s.header.linstor_version.as_deref(), Some("1.33.3"));
        assert_eq!(s.row_counts()["NODES"], 2);
        assert_eq!(s.total_rows(), 3);
        assert!(s.table("NODES").unwrap().row_digests.contains_key("N1"));
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
    fn compare_finds_missing_extra_and_changed_rows() {
        let a = doc("etcd");
        assert!(compare(&summary_of(&a), &summary_of(&doc("k8s"))).is_equal());

        let mut b = doc("k8s");
        b.tables[0].data[0].insert("node_flags".into(), json!(4));
        b.tables[0].data.remove(1);
        b.tables[1].data.push(
            json!({"role_name": "X", "role_dsp_name": "X", "domain_name": "X", "role_enabled": true,
                   "role_privileges": 0})
            .as_object()
            .unwrap()
            .clone(),
        );
        b.tables.remove(2); // absent table == empty table
        let cmp = compare(&summary_of(&a), &summary_of(&b));
        assert_eq!(cmp.tables_compared, 3);
        assert_eq!(cmp.differences.len(), 2);
        let nodes = &cmp.differences.iter().find(|t| t.name == "NODES").unwrap();
        assert_eq!((nodes.missing, nodes.changed, nodes.extra), (1, 1, 0));
        let roles = &cmp.differences.iter().find(|t| t.name == "SEC_ROLES").unwrap();
        assert_eq!((roles.extra, roles.examples.clone()), (1, vec!["X".to_string()]));
    }

    #[test]
    fn k8s_object_names_hash_the_primary_key() {
        let t = schema::table("NODES").unwrap();
        let row = json!({"node_name": "N1"}).as_object().unwrap().clone();
        assert_eq!(k8s_object_name(t, &row), hex::encode(Sha256::digest(b"N1")));
    }
}
