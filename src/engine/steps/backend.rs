//! Reading the `k8s` backend directly: every table's objects, page by page, several tables at
//! once, turned into the same per-row digests (keyed by primary key) that the backup's streaming
//! summary has, so that the two compare row by row without a second tool export. Only 48 bytes
//! per row are kept ([`RowIndex`]), never the rows: memory grows with the row count, not with the
//! data.

use std::sync::Arc;

use super::StepError;
use crate::cluster::Cluster;
use crate::linstor::export::{ExportHeader, ExportSummary, TableSummary, row_digest};
use crate::linstor::row_index::{RowEntry, RowIndex, key_hash, key_text};
use crate::linstor::schema;
use futures::{StreamExt, TryStreamExt};

/// Objects per LIST request.
const PAGE: u32 = 500;
/// Tables read at once.
const TABLES_AT_ONCE: usize = 6;

/// What the backend holds, as the verification needs it.
pub(super) struct BackendContents {
    pub summary: ExportSummary,
    /// Objects whose name is not the SHA-256 of their primary key (LINSTOR would not find them).
    pub misnamed: Vec<String>,
}

async fn read_table(
    cluster: &dyn Cluster,
    table: &'static schema::Table,
    version: &str,
) -> Result<(TableSummary, Vec<String>), StepError> {
    let mut entries = Vec::new();
    let mut misnamed = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = cluster
            .list_k8s_backend_page(table.plural(), version, PAGE, token.as_deref())
            .await?;
        for object in page.objects {
            let digest = row_digest(&object.spec);
            let key = match key_text(table, &object.spec) {
                Some(text) => {
                    let key = key_hash(&text);
                    if hex::encode(key) != object.name && misnamed.len() < 20 {
                        misnamed.push(format!("{}/{} (key {text:?})", table.plural(), object.name));
                    }
                    key
                }
                None => digest,
            };
            entries.push(RowEntry::new(key, &digest));
        }
        match page.continue_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    let rows = entries.len() as u64;
    let (row_index, repeated) = RowIndex::build(entries);
    let problems = if table.primary_key().next().is_some() {
        repeated
            .iter()
            .take(20)
            .map(|k| format!("two objects with primary key (object {})", hex::encode(k)))
            .collect()
    } else {
        Vec::new()
    };
    let summary = TableSummary {
        name: table.name.clone(),
        rows,
        digest: row_index.table_digest(),
        row_index,
        problems,
    };
    Ok((summary, misnamed))
}

/// Reads every table an export holds from the backend (CRD `version`, e.g. `v1-31-1`): what the
/// tool's export of the backend would contain.
pub(super) async fn read(cluster: Arc<dyn Cluster>, version: &str) -> Result<BackendContents, StepError> {
    // owned futures: borrowing closures here trip the compiler's `Send` check of the task
    let reads: Vec<_> = schema::exported_tables()
        .map(|t| {
            let (cluster, version) = (cluster.clone(), version.to_string());
            async move { read_table(cluster.as_ref(), t, &version).await }
        })
        .collect();
    let tables: Vec<(TableSummary, Vec<String>)> = futures::stream::iter(reads)
        .buffered(TABLES_AT_ONCE)
        .try_collect()
        .await?;
    let mut summary = ExportSummary {
        header: ExportHeader {
            exported_from: Some("k8s".into()),
            data_version: Some(version.into()),
            ..ExportHeader::default()
        },
        tables: Vec::with_capacity(tables.len()),
    };
    let mut misnamed = Vec::new();
    for (t, m) in tables {
        summary.tables.push(t);
        misnamed.extend(m);
    }
    Ok(BackendContents { summary, misnamed })
}
