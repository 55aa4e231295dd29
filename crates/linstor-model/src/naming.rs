//! The one rule that names a row's object in the `k8s` backend (REFERENCE.md §3; verified for every
//! object of the 1.25.1 and 1.33.3 recordings, `k8s/naming.txt`): the primary-key values in column
//! order joined by `:` (strings as they are, numbers in decimal, an empty string stays empty), and
//! the object's name is the lower-case hex SHA-256 of that text. A primary-key column is never null
//! in a real database; a missing or null value is taken as the empty text here, and the export's
//! validation reports such a row.

use sha2::{Digest, Sha256};

use crate::export::{Row, scalar_text};
use crate::row_ref::RowRef;
use crate::schema::Table;

/// What the naming rule reads of a row: a column's value as text (a string as it is, anything
/// else as JSON), `None` when the row lacks the column or it is null. An owned [`Row`] and a
/// borrowed [`RowRef`] answer alike.
pub trait Columns {
    fn column_text(&self, column: &str) -> Option<String>;
}

impl Columns for Row {
    fn column_text(&self, column: &str) -> Option<String> {
        self.get(column).filter(|v| !v.is_null()).map(scalar_text)
    }
}

impl Columns for RowRef<'_> {
    fn column_text(&self, column: &str) -> Option<String> {
        self.get(column).filter(|v| !v.is_null()).map(|v| v.text())
    }
}

/// The primary-key text of `row`; `None` for a table without a primary key.
pub fn key_text<R: Columns + ?Sized>(table: &Table, row: &R) -> Option<String> {
    if !table.is_keyed() {
        return None;
    }
    let parts: Vec<String> = table
        .primary_key()
        .map(|c| row.column_text(&c.row_key()).unwrap_or_default())
        .collect();
    Some(parts.join(":"))
}

/// The SHA-256 of a key text: its hex is the object's name.
pub fn key_hash(key_text: &str) -> [u8; 32] {
    Sha256::digest(key_text.as_bytes()).into()
}

/// The object name of a key text.
pub fn name_of_key(key_text: &str) -> String {
    hex::encode(key_hash(key_text))
}

/// The name of `row`'s object; `None` for a table without a primary key.
pub fn object_name(table: &Table, row: &Row) -> Option<String> {
    key_text(table, row).map(|k| name_of_key(&k))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::ColumnDescription;
    use serde_json::json;

    fn table(name: &str, columns: &[(&str, bool)]) -> Table {
        let columns: Vec<ColumnDescription> = columns
            .iter()
            .map(|(c, pk)| ColumnDescription {
                name: c.to_string(),
                sql_type: 12,
                is_primary_key: *pk,
                is_nullable: !pk,
            })
            .collect();
        Table::from_export(name, &columns)
    }

    #[test]
    fn names_hash_the_joined_primary_key() {
        // the worked examples of k8s/naming.txt (the same in 1.25.1 and 1.33.3)
        let nodes = table("NODES", &[("UUID", false), ("NODE_NAME", true)]);
        let row = json!({"node_name": "ALPHA", "uuid": "x"})
            .as_object()
            .unwrap()
            .clone();
        assert_eq!(
            object_name(&nodes, &row).unwrap(),
            "73ab66a033c267e00b7429bb256f6deb2734ebc4cd4ff5b564a8c9f9b2c8a719"
        );
        let rd = table(
            "RESOURCE_DEFINITIONS",
            &[("RESOURCE_NAME", true), ("SNAPSHOT_NAME", true)],
        );
        let row = json!({"resource_name": "DB0", "snapshot_name": ""})
            .as_object()
            .unwrap()
            .clone();
        assert_eq!(key_text(&rd, &row).unwrap(), "DB0:");
        assert_eq!(
            object_name(&rd, &row).unwrap(),
            "d2cf780937b2ba37c371600e07c4a3575072600340da9dfa0bca5c1a3a81a37e"
        );
        let vd = table(
            "VOLUME_DEFINITIONS",
            &[("RESOURCE_NAME", true), ("SNAPSHOT_NAME", true), ("VLM_NR", true)],
        );
        let row = json!({"resource_name": "DB0", "snapshot_name": "", "vlm_nr": 1})
            .as_object()
            .unwrap()
            .clone();
        assert_eq!(key_text(&vd, &row).unwrap(), "DB0::1");
        assert_eq!(
            object_name(&vd, &row).unwrap(),
            "93b8c0352bb8069b44801293e87bb1d581e60adcfb0981466c776de86b20e1a1"
        );
    }

    #[test]
    fn a_null_key_value_is_the_empty_text_and_a_keyless_table_has_no_names() {
        let rd = table(
            "RESOURCE_DEFINITIONS",
            &[("RESOURCE_NAME", true), ("SNAPSHOT_NAME", true)],
        );
        let missing = json!({"resource_name": "DB0"}).as_object().unwrap().clone();
        let null = json!({"resource_name": "DB0", "snapshot_name": null})
            .as_object()
            .unwrap()
            .clone();
        assert_eq!(key_text(&rd, &missing).unwrap(), "DB0:");
        assert_eq!(key_text(&rd, &null), key_text(&rd, &missing));
        let tracking = table("TRACKING_DATE", &[("ENTRY_DATE", false)]);
        assert_eq!(object_name(&tracking, &missing), None);
    }
}
