//! What `import-db` and `export-db` of a release do with the `k8s` backend (recorded:
//! `k8s/import-requests-*.txt` of both sets, 1.25.1's `k8s/preexisting-1.33.3.txt`):
//!
//! 1. read the `LinstorVersion`; below the release's own (or none: a fresh cluster) it migrates
//!    the schema: applies all its CRDs (`LinstorVersion` first), on a fresh cluster writes the four
//!    `SecAccessTypes` objects, and sets the `LinstorVersion`; at or above its own it changes no
//!    CRD and says nothing (1.25.1 over 1.33.3's `LinstorVersion` 31);
//! 2. truncates: one `deletecollection` per exported table of the release, in reverse export
//!    order, at the release's data version; a table the cluster does not serve at that version
//!    fails the import with a 404 after the earlier tables were emptied (1.25.1 over 1.33.3's
//!    objects: 191 of 217 gone, then `layeropenflexvolumes`);
//! 3. creates one object per row, tables and rows in file order.
//!
//! Not transactional: a failure leaves what was done.

use async_trait::async_trait;
use linstor_model::export::Row;

use super::{ApiError, K8sApi, access_type_rows, crds, row_object};
use crate::Release;
use crate::schema::Table;

/// Called along an import (pacing, progress).
#[async_trait]
pub trait Pace: Send + Sync {
    /// Before the schema migrations of a cluster whose schema is older than the release's.
    async fn migrations(&self) {}
    /// After every created object.
    async fn row(&self, done: usize);
}

/// No pacing.
pub struct NoPace;

#[async_trait]
impl Pace for NoPace {
    async fn row(&self, _done: usize) {}
}

/// The import of `tables` (rows per table, in file order) by `release`; returns how many objects
/// it created.
pub async fn import(
    api: &dyn K8sApi,
    release: Release,
    tables: &[(&'static Table, Vec<Row>)],
    pace: &dyn Pace,
) -> Result<usize, ApiError> {
    let own = release.recorded().k8s_schema_version;
    let found = api.schema_version().await?;
    if found.is_none_or(|v| v < own) {
        pace.migrations().await;
        // LINSTOR applies the LinstorVersion CRD first, then the tables'
        let all = crds(release);
        let (version, rest): (Vec<&serde_json::Value>, Vec<&serde_json::Value>) = all
            .iter()
            .partition(|c| c["spec"]["names"]["plural"] == super::VERSION_PLURAL);
        for crd in version.into_iter().chain(rest) {
            api.apply_crd(crd).await?;
        }
        if found.is_none()
            && let Some(t) = release.table("SEC_ACCESS_TYPES")
        {
            for row in access_type_rows() {
                api.create(t.plural(), release.data_version(), row_object(release, t, &row))
                    .await?;
            }
        }
        api.put_schema_version(own).await?;
    }
    let version = release.data_version();
    for t in release.exported_tables().iter().rev() {
        api.delete_collection(t.plural(), version).await?;
    }
    let mut done = 0;
    for (t, rows) in tables {
        for row in rows {
            api.create(t.plural(), version, row_object(release, t, row))
                .await?;
            done += 1;
            pace.row(done).await;
        }
    }
    Ok(done)
}

/// What `export-db` of `release` reads from `k8s`: every exported table's rows (object `spec`s)
/// at its data version, in the API server's order.
pub async fn read_tables(
    api: &dyn K8sApi,
    release: Release,
) -> Result<Vec<(&'static Table, Vec<Row>)>, ApiError> {
    let mut out = Vec::new();
    for t in release.exported_tables() {
        let rows = api
            .list(t.plural(), release.data_version())
            .await?
            .iter()
            .filter_map(|o| o.get("spec")?.as_object().cloned())
            .collect();
        out.push((t, rows));
    }
    Ok(out)
}
