//! Emptying the `k8s` backend: every object of every CRD of the group that holds export rows, at
//! the version the cluster stores it in, whichever LINSTOR version created it (tables only one
//! version has, such as 1.25.1's OpenFlex tables, included), page by page, until a LIST finds
//! none. Never left to the tool's truncate, which deletes only its own version's tables and fails
//! half-way on large ones. The schema's own objects stay (the `LinstorVersion`, the four
//! `SEC_ACCESS_TYPES` rows LINSTOR needs), as the tool's truncate leaves them.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};

use crate::cluster::{BackendCrd, Cluster, ClusterError, K8sBackendInventory};

/// Objects per LIST request, and deletes in flight.
const PAGE: u32 = 500;
const IN_FLIGHT: usize = 32;

async fn empty_crd(cluster: &Arc<dyn Cluster>, crd: &BackendCrd) -> Result<u64, ClusterError> {
    let mut removed = 0;
    loop {
        let page = match cluster
            .list_k8s_backend_page(&crd.plural, &crd.storage_version, PAGE, None)
            .await
        {
            Ok(page) => page,
            // the CRD went away since the inventory: nothing of it is left
            Err(ClusterError::NotFound { .. }) => return Ok(removed),
            Err(e) => return Err(e),
        };
        if page.objects.is_empty() {
            return Ok(removed);
        }
        let deletes: Vec<_> = page
            .objects
            .into_iter()
            .map(|o| {
                let (cluster, version, plural) =
                    (cluster.clone(), crd.storage_version.clone(), crd.plural.clone());
                async move {
                    cluster
                        .delete_k8s_backend_object(&plural, &version, &o.name)
                        .await
                }
            })
            .collect();
        removed += deletes.len() as u64;
        futures::stream::iter(deletes)
            .buffer_unordered(IN_FLIGHT)
            .try_collect::<Vec<()>>()
            .await?;
    }
}

/// Deletes the export rows `inventory` lists; returns how many objects went.
pub(in crate::engine) async fn empty(
    cluster: Arc<dyn Cluster>,
    inventory: &K8sBackendInventory,
) -> Result<u64, ClusterError> {
    let mut removed = 0;
    for crd in inventory
        .crds
        .iter()
        .filter(|c| c.holds_export_rows() && c.objects > 0)
    {
        removed += empty_crd(&cluster, crd).await?;
    }
    Ok(removed)
}
