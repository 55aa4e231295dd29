//! Reading the `k8s` backend directly: the objects of every table of a run's export, page by page,
//! several tables at once, turned into the same per-row digests that the backup's streaming summary
//! has, so that the two compare row by row without a second tool export. Only 48 bytes per row are
//! kept ([`RowIndex`]), never the rows: memory grows with the row count, not with the data.
//!
//! A row is keyed by its object's own name (the SHA-256 of its primary key when LINSTOR wrote it):
//! a copy under another name is an object of its own, so that the delta removes exactly the object
//! that is there, and the verification names the objects LINSTOR would not find.

use std::collections::HashMap;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};

use super::RunSchema;
use crate::cluster::{Cluster, ClusterError};
use crate::linstor::export::{ExportHeader, ExportSummary, TableSummary};
use crate::linstor::row_index::{RowEntry, RowIndex, RowKey, key_hash};
use crate::linstor::schema::Table;

/// Objects per LIST request.
const PAGE: u32 = 1000;
/// Tables read at once.
const TABLES_AT_ONCE: usize = 6;
/// Misnamed objects named in a report.
const NAMED: usize = 20;

/// What the backend holds, as the verification and the delta need it.
pub(in crate::engine) struct BackendContents {
    pub summary: ExportSummary,
    /// Objects whose name is not the SHA-256 of their primary key (LINSTOR would not find them),
    /// up to 20, for the report.
    pub misnamed: Vec<String>,
    /// How many objects are misnamed in all.
    pub misnamed_count: u64,
    /// The names of objects whose name is no SHA-256 at all, by the key they are summarized under
    /// (the delta deletes them by that name).
    pub odd_names: HashMap<RowKey, String>,
}

/// The key an object of `name` is summarized under: the name itself when it is a SHA-256 in hex,
/// else the SHA-256 of the name (no row of an export has that key).
fn key_of_name(name: &str) -> (RowKey, bool) {
    let mut key = [0u8; 32];
    match hex::decode_to_slice(name, &mut key) {
        Ok(()) if name.bytes().all(|b| !b.is_ascii_uppercase()) => (key, true),
        _ => (key_hash(&format!("object name {name}")), false),
    }
}

struct TableRead {
    summary: TableSummary,
    misnamed: Vec<String>,
    misnamed_count: u64,
    odd_names: HashMap<RowKey, String>,
}

async fn read_table(cluster: &dyn Cluster, table: &Table, version: &str) -> Result<TableRead, ClusterError> {
    let mut entries = Vec::new();
    let mut out = TableRead {
        summary: TableSummary::default(),
        misnamed: Vec::new(),
        misnamed_count: 0,
        odd_names: HashMap::new(),
    };
    let mut token: Option<String> = None;
    loop {
        let page = cluster
            .list_k8s_backend_rows(table, version, PAGE, token.as_deref())
            .await?;
        for object in page.rows {
            let key = match &object.key_text {
                Some(text) => {
                    let (key, hex_name) = key_of_name(&object.name);
                    if !hex_name {
                        out.odd_names.insert(key, object.name.clone());
                    }
                    if key_hash(text) != key {
                        out.misnamed_count += 1;
                        if out.misnamed.len() < NAMED {
                            out.misnamed
                                .push(format!("{}/{} (key {text:?})", table.plural(), object.name));
                        }
                    }
                    key
                }
                None => object.digest,
            };
            entries.push(RowEntry::new(key, &object.digest));
        }
        match page.continue_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    let rows = entries.len() as u64;
    let (row_index, repeated) = RowIndex::build(entries);
    let problems = if table.is_keyed() {
        repeated
            .iter()
            .take(NAMED)
            .map(|k| format!("two objects with primary key (object {})", hex::encode(k)))
            .collect()
    } else {
        Vec::new()
    };
    out.summary = TableSummary {
        name: table.name.clone(),
        rows,
        digest: row_index.table_digest(),
        row_index,
        columns: table.column_description(),
        problems,
    };
    Ok(out)
}

/// Reads every table of `schema` from the backend at its version: what the tool's export of the
/// backend would contain. A table whose CRD does not exist or does not serve the version is an
/// error, never an empty table.
pub(in crate::engine) async fn read(
    cluster: Arc<dyn Cluster>,
    schema: &RunSchema,
) -> Result<BackendContents, ClusterError> {
    // owned futures: borrowing closures here trip the compiler's `Send` check of the task
    let reads: Vec<_> = schema
        .tables
        .iter()
        .map(|t| {
            let (cluster, table, version) = (cluster.clone(), t.clone(), schema.version.clone());
            async move { read_table(cluster.as_ref(), &table, &version).await }
        })
        .collect();
    let tables: Vec<TableRead> = futures::stream::iter(reads)
        .buffered(TABLES_AT_ONCE)
        .try_collect()
        .await?;
    let mut contents = BackendContents {
        summary: ExportSummary {
            header: ExportHeader {
                exported_from: Some("k8s".into()),
                data_version: Some(schema.version.clone()),
                ..ExportHeader::default()
            },
            tables: Vec::with_capacity(tables.len()),
        },
        misnamed: Vec::new(),
        misnamed_count: 0,
        odd_names: HashMap::new(),
    };
    for t in tables {
        contents.summary.tables.push(t.summary);
        contents.misnamed_count += t.misnamed_count;
        contents.misnamed.extend(
            t.misnamed
                .into_iter()
                .take(NAMED - contents.misnamed.len().min(NAMED)),
        );
        contents.odd_names.extend(t.odd_names);
    }
    Ok(contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_keyed_by_their_own_name() {
        let name = hex::encode(key_hash("ALPHA"));
        assert_eq!(key_of_name(&name), (key_hash("ALPHA"), true));
        let (odd, hex_name) = key_of_name("alpha-copy");
        assert!(!hex_name);
        assert_ne!(odd, key_hash("alpha-copy"));
        // upper-case hex is not a name LINSTOR writes
        assert!(!key_of_name(&name.to_ascii_uppercase()).1);
    }
}
