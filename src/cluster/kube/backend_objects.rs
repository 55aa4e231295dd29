//! The objects of LINSTOR's `k8s` backend, read and written directly: each is a row of a table
//! (REFERENCE.md §3: cluster-scoped, group `internal.linstor.linbit.com`, named by the SHA-256 of
//! the row's primary key, `spec` = the row with null columns left out). The data verification
//! reads them page by page; the delta import creates, replaces and deletes single rows.

use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};

use super::FIELD_MANAGER;
use super::errors::{is_not_found, map_kube_error};
use crate::cluster::{ClusterResult, K8sBackendObject, K8sBackendPage};

use crate::linstor::schema::K8S_GROUP as GROUP;

fn resource(plural: &str, version: &str, kind: &str) -> ApiResource {
    ApiResource {
        group: GROUP.into(),
        version: version.into(),
        api_version: format!("{GROUP}/{version}"),
        // only the plural is in the URL; the kind goes into created objects
        kind: kind.into(),
        plural: plural.into(),
    }
}

fn api(client: &kube::Client, plural: &str, version: &str, kind: &str) -> Api<DynamicObject> {
    Api::all_with(client.clone(), &resource(plural, version, kind))
}

fn what(plural: &str) -> String {
    format!("{plural}.{GROUP}")
}

/// Creates the object of a row.
pub(super) async fn create(
    client: &kube::Client,
    plural: &str,
    version: &str,
    kind: &str,
    object: &K8sBackendObject,
) -> ClusterResult<()> {
    let ar = resource(plural, version, kind);
    let mut o = DynamicObject::new(&object.name, &ar);
    o.data = serde_json::json!({"spec": object.spec});
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PostParams::default()
    };
    api(client, plural, version, kind)
        .create(&params, &o)
        .await
        .map(|_| ())
        .map_err(|e| {
            map_kube_error(
                "create",
                "CustomResource",
                "",
                &format!("{}/{}", what(plural), object.name),
                e,
            )
        })
}

/// Replaces the whole `spec` with a JSON patch: keys not in the new row go (a merge patch would
/// keep them), and no resourceVersion is needed.
pub(super) async fn replace_spec(
    client: &kube::Client,
    plural: &str,
    version: &str,
    object: &K8sBackendObject,
) -> ClusterResult<()> {
    let patch: json_patch::Patch = serde_json::from_value(serde_json::json!([
        {"op": "replace", "path": "/spec", "value": object.spec}
    ]))
    .expect("a valid JSON patch");
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    api(client, plural, version, "")
        .patch(&object.name, &params, &Patch::<()>::Json(patch))
        .await
        .map(|_| ())
        .map_err(|e| {
            map_kube_error(
                "patch",
                "CustomResource",
                "",
                &format!("{}/{}", what(plural), object.name),
                e,
            )
        })
}

/// Deletes the object of a row; absent is fine.
pub(super) async fn delete(
    client: &kube::Client,
    plural: &str,
    version: &str,
    name: &str,
) -> ClusterResult<()> {
    match api(client, plural, version, "")
        .delete(name, &DeleteParams::default())
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(map_kube_error(
            "delete",
            "CustomResource",
            "",
            &format!("{}/{name}", what(plural)),
            e,
        )),
    }
}

/// A LIST answer of backend objects, as far as a row needs it: each object's name and `spec`.
/// Everything else (`metadata.managedFields` and the rest, `apiVersion`, `kind`) is skipped while
/// parsing, not built: a page of a large table holds thousands of objects.
#[derive(serde::Deserialize)]
struct RowList {
    #[serde(default)]
    metadata: RowListMeta,
    #[serde(default)]
    items: Vec<RowObject>,
}

#[derive(serde::Deserialize, Default)]
struct RowListMeta {
    #[serde(default, rename = "continue")]
    continue_: Option<String>,
}

#[derive(serde::Deserialize)]
struct RowObject {
    metadata: RowObjectMeta,
    #[serde(default)]
    spec: serde_json::Map<String, serde_json::Value>,
}

#[derive(serde::Deserialize)]
struct RowObjectMeta {
    #[serde(default)]
    name: String,
}

/// One page of `plural`'s objects; `NotFound` when the CRD does not exist or does not serve
/// `version` (a 404 is never an empty table: reading 1.25.1's objects at 1.33.3's version must
/// not look like an empty backend).
pub(super) async fn list_page(
    client: &kube::Client,
    plural: &str,
    version: &str,
    limit: u32,
    continue_token: Option<&str>,
) -> ClusterResult<K8sBackendPage> {
    let mut lp = ListParams::default().limit(limit);
    if let Some(token) = continue_token {
        lp = lp.continue_token(token);
    }
    let failed = |e: kube::Error| {
        map_kube_error(
            "list",
            "CustomResource",
            "",
            &format!("{}/{version}", what(plural)),
            e,
        )
    };
    let request = kube::core::Request::new(format!("/apis/{GROUP}/{version}/{plural}"))
        .list(&lp)
        .map_err(|e| failed(kube::Error::BuildRequest(e)))?;
    let list: RowList = client.request(request).await.map_err(failed)?;
    Ok(K8sBackendPage {
        objects: list
            .items
            .into_iter()
            .map(|o| K8sBackendObject {
                name: o.metadata.name,
                spec: o.spec,
            })
            .collect(),
        continue_token: list.metadata.continue_.filter(|c| !c.is_empty()),
    })
}
