//! Reading the `k8s` backend directly: every table's objects, page by page, several tables at
//! once, turned into the same per-row digests (keyed by primary key) that the backup's streaming
//! summary has, so that the two compare row by row without a second tool export. Only digests
//! are kept, never the rows: memory grows with the row count, not with the data.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};

use super::StepError;
use crate::cluster::Cluster;
use crate::linstor::export::{ExportHeader, ExportSummary, TableSummary, row_digest, scalar_text};
use crate::linstor::schema;

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

/// The primary-key text of a row (values joined by `:` in column order, as LINSTOR names
/// objects); the digest of the whole row when the table has no primary key.
fn key_of(table: &schema::Table, row: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
    let pk: Vec<&schema::Column> = table.primary_key().collect();
    if pk.is_empty() {
        return None;
    }
    Some(
        pk.iter()
            .map(|c| {
                row.get(&c.name.to_ascii_lowercase())
                    .filter(|v| !v.is_null())
                    .map(scalar_text)
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join(":"),
    )
}

async fn read_table(
    cluster: &dyn Cluster,
    table: &'static schema::Table,
    version: &str,
) -> Result<(TableSummary, Vec<String>), StepError> {
    let mut summary = TableSummary {
        name: table.name.clone(),
        ..TableSummary::default()
    };
    let mut misnamed = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = cluster
            .list_k8s_backend_page(table.plural(), version, PAGE, token.as_deref())
            .await?;
        for object in page.objects {
            let digest = row_digest(&object.spec);
            let key = match key_of(table, &object.spec) {
                Some(key) => {
                    if hex::encode(Sha256::digest(key.as_bytes())) != object.name && misnamed.len() < 20 {
                        misnamed.push(format!("{}/{} (key {key:?})", table.plural(), object.name));
                    }
                    key
                }
                None => hex::encode(digest),
            };
            summary.rows += 1;
            if summary.row_digests.insert(key.clone(), digest).is_some() && summary.problems.len() < 20 {
                summary
                    .problems
                    .push(format!("two objects with primary key {key:?}"));
            }
        }
        match page.continue_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    let mut h = Sha256::new();
    for d in summary.row_digests.values() {
        h.update(d);
    }
    summary.digest = hex::encode(h.finalize());
    Ok((summary, misnamed))
}

/// Reads every table of the schema from the backend (CRD `version`, e.g. `v1-31-1`).
pub(super) async fn read(cluster: Arc<dyn Cluster>, version: &str) -> Result<BackendContents, StepError> {
    // owned futures: borrowing closures here trip the compiler's `Send` check of the task
    let reads: Vec<_> = schema::tables()
        .iter()
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
