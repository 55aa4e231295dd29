//! The objects of LINSTOR's `k8s` backend read directly, page by page: each is a row of a table
//! (REFERENCE.md §3: cluster-scoped, group `internal.linstor.linbit.com`, `spec` = the row).
//! The data verification compares them with the backup without a second tool export.

use kube::api::{Api, ApiResource, DynamicObject, ListParams};

use super::errors::{is_not_found, map_kube_error};
use crate::cluster::{ClusterResult, K8sBackendObject, K8sBackendPage};

const GROUP: &str = "internal.linstor.linbit.com";

fn resource(plural: &str, version: &str) -> ApiResource {
    ApiResource {
        group: GROUP.into(),
        version: version.into(),
        api_version: format!("{GROUP}/{version}"),
        // only the plural is in the URL; the kind is not needed to list
        kind: String::new(),
        plural: plural.into(),
    }
}

/// One page of `plural`'s objects; a CRD that does not exist is an empty table.
pub(super) async fn list_page(
    client: &kube::Client,
    plural: &str,
    version: &str,
    limit: u32,
    continue_token: Option<&str>,
) -> ClusterResult<K8sBackendPage> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource(plural, version));
    let mut lp = ListParams::default().limit(limit);
    if let Some(token) = continue_token {
        lp = lp.continue_token(token);
    }
    let list = match api.list(&lp).await {
        Ok(list) => list,
        Err(e) if is_not_found(&e) => return Ok(K8sBackendPage::default()),
        Err(e) => {
            return Err(map_kube_error(
                "list",
                "CustomResource",
                "",
                &format!("{plural}.{GROUP}"),
                e,
            ));
        }
    };
    let objects = list
        .items
        .into_iter()
        .map(|o| K8sBackendObject {
            name: o.metadata.name.unwrap_or_default(),
            spec: match o.data.get("spec") {
                Some(serde_json::Value::Object(m)) => m.clone(),
                _ => serde_json::Map::new(),
            },
        })
        .collect();
    Ok(K8sBackendPage {
        objects,
        continue_token: list.metadata.continue_.filter(|c| !c.is_empty()),
    })
}
