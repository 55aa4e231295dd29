//! The table-by-table comparison of two export summaries (a backup with a re-export, or with
//! what the `k8s` backend holds), and the naming of the rows that differ for the report.

use std::io::Read;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::export::ExportSummary;
use super::row_index::{Difference, NO_ROWS, RowIndex, key_hash, key_text};
use super::schema::Table;

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

/// Every table of `expected` or `found`, by name, with its rows on each side (a table absent
/// from one side counts as empty).
pub fn side_by_side<'a>(
    expected: &'a ExportSummary,
    found: &'a ExportSummary,
) -> Vec<(&'a str, &'a RowIndex, &'a RowIndex)> {
    let names: std::collections::BTreeSet<&str> = expected
        .tables
        .iter()
        .chain(&found.tables)
        .map(|t| t.name.as_str())
        .collect();
    let rows = |s: &'a ExportSummary, name| s.table(name).map_or(&NO_ROWS, |t| &t.row_index);
    names
        .into_iter()
        .map(|name| (name, rows(expected, name), rows(found, name)))
        .collect()
}

/// Compares every table of `expected` (the backup) with `found` (the re-export). A table absent
/// from one side counts as empty (some tables have no export driver). Examples name objects
/// (`object <SHA-256 of the key>`); [`name_examples`] puts the key texts in.
pub fn compare(expected: &ExportSummary, found: &ExportSummary) -> DataComparison {
    let mut out = DataComparison::default();
    for (name, a, b) in side_by_side(expected, found) {
        let mut cmp = TableComparison {
            name: name.to_string(),
            rows_expected: a.len() as u64,
            rows_found: b.len() as u64,
            missing: 0,
            extra: 0,
            changed: 0,
            examples: Vec::new(),
        };
        a.diff(b, |key, difference| {
            match difference {
                Difference::Changed => cmp.changed += 1,
                Difference::Missing => cmp.missing += 1,
                Difference::Extra => cmp.extra += 1,
            }
            if cmp.examples.len() < 10 {
                cmp.examples.push(format!("{OBJECT}{}", hex::encode(key)));
            }
        });
        out.tables_compared += 1;
        out.rows_compared += a.len() as u64;
        if !cmp.is_equal() {
            out.differences.push(cmp);
        }
    }
    out
}

/// How [`compare`] writes an example before it is named.
const OBJECT: &str = "object ";

/// Replaces every example of `cmp` that is a row of the export in `reader` (whose tables are
/// `tables`) with the row's primary-key text (rows only the other side has keep their object
/// name). One more pass over the export, made only when something differs.
pub fn name_examples<R: Read>(reader: R, tables: &[Table], cmp: &mut DataComparison) -> Result<(), String> {
    if cmp.is_equal() {
        return Ok(());
    }
    super::export_rows::for_each_row(reader, &mut |table, row| {
        let Some(diff) = cmp.differences.iter_mut().find(|d| d.name == table) else {
            return Ok(());
        };
        let Some(text) = tables
            .iter()
            .find(|t| t.name == table)
            .and_then(|t| key_text(t, &row))
        else {
            return Ok(());
        };
        let object = format!("{OBJECT}{}", hex::encode(key_hash(&text)));
        if let Some(e) = diff.examples.iter_mut().find(|e| **e == object) {
            *e = text;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linstor::export::tests::{doc, summary_of};
    use serde_json::json;

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
        let mut cmp = compare(&summary_of(&a), &summary_of(&b));
        assert_eq!(cmp.tables_compared, 3);
        assert_eq!(cmp.differences.len(), 2);
        let object_x = format!("object {}", hex::encode(key_hash("X")));
        let roles = cmp.differences.iter().find(|t| t.name == "SEC_ROLES").unwrap();
        assert_eq!((roles.extra, roles.examples.clone()), (1, vec![object_x.clone()]));

        // the backup's rows are named by their key, a row only the other side has by its object
        name_examples(
            serde_json::to_vec(&a).unwrap().as_slice(),
            &summary_of(&a).schema(),
            &mut cmp,
        )
        .unwrap();
        let nodes = cmp.differences.iter().find(|t| t.name == "NODES").unwrap();
        assert_eq!((nodes.missing, nodes.changed, nodes.extra), (1, 1, 0));
        let mut named = nodes.examples.clone();
        named.sort();
        assert_eq!(named, vec!["N1".to_string(), "N2".to_string()]);
        let roles = cmp.differences.iter().find(|t| t.name == "SEC_ROLES").unwrap();
        assert_eq!(roles.examples, vec![object_x]);
    }
}
