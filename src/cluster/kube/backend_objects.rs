//! The objects of LINSTOR's `k8s` backend, read and written directly: each is a row of a table
//! (REFERENCE.md §3: cluster-scoped, group `internal.linstor.linbit.com`, named by the SHA-256 of
//! the row's primary key, `spec` = the row with null columns left out). The data verification
//! reads them page by page; the delta import creates, replaces and deletes single rows.

use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};

use super::FIELD_MANAGER;
use super::errors::{is_not_found, map_kube_error};
use std::borrow::Cow;

use linstor_model::row_ref::RowRef;

use crate::cluster::{ClusterResult, K8sBackendObject, K8sBackendPage, K8sBackendRow, K8sBackendRowPage};
use crate::linstor::row_index::key_text;
use crate::linstor::schema::Table;

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
    let text = list_text(client, plural, version, limit, continue_token).await?;
    let list: RowList =
        serde_json::from_str(&text).map_err(|e| list_failed(plural, version, kube::Error::SerdeError(e)))?;
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

/// A failed LIST of `plural` in `version`.
fn list_failed(plural: &str, version: &str, e: kube::Error) -> crate::cluster::ClusterError {
    map_kube_error(
        "list",
        "CustomResource",
        "",
        &format!("{}/{version}", what(plural)),
        e,
    )
}

/// The text of the LIST answer of one page of `plural`'s objects in `version`.
async fn list_text(
    client: &kube::Client,
    plural: &str,
    version: &str,
    limit: u32,
    continue_token: Option<&str>,
) -> ClusterResult<String> {
    let mut lp = ListParams::default().limit(limit);
    if let Some(token) = continue_token {
        lp = lp.continue_token(token);
    }
    let request = kube::core::Request::new(format!("/apis/{GROUP}/{version}/{plural}"))
        .list(&lp)
        .map_err(|e| list_failed(plural, version, kube::Error::BuildRequest(e)))?;
    client
        .request_text(request)
        .await
        .map_err(|e| list_failed(plural, version, e))
}

/// A LIST answer as [`list_rows`] reads it: names and `spec`s borrowed from the answer's text.
#[derive(serde::Deserialize)]
struct RowRefList<'a> {
    #[serde(default)]
    metadata: RowListMeta,
    #[serde(default, borrow)]
    items: Vec<RowRefObject<'a>>,
}

#[derive(serde::Deserialize)]
struct RowRefObject<'a> {
    #[serde(borrow)]
    metadata: RowRefMeta<'a>,
    #[serde(default, borrow)]
    spec: RowRef<'a>,
}

#[derive(serde::Deserialize)]
struct RowRefMeta<'a> {
    #[serde(default, borrow)]
    name: Cow<'a, str>,
}

/// The rows of one LIST answer's text.
fn rows_of(table: &Table, text: &str) -> serde_json::Result<K8sBackendRowPage> {
    let list: RowRefList = serde_json::from_str(text)?;
    Ok(K8sBackendRowPage {
        rows: list
            .items
            .iter()
            .map(|o| K8sBackendRow {
                name: o.metadata.name.to_string(),
                key_text: key_text(table, &o.spec),
                digest: o.spec.digest(),
            })
            .collect(),
        continue_token: list.metadata.continue_.filter(|c| !c.is_empty()),
    })
}

/// One page of `table`'s objects as rows (name, key text, digest), parsed without building them:
/// [`list_page`]'s answer, as the direct read of the whole backend needs it. `NotFound` as there.
pub(super) async fn list_rows(
    client: &kube::Client,
    table: &Table,
    version: &str,
    limit: u32,
    continue_token: Option<&str>,
) -> ClusterResult<K8sBackendRowPage> {
    let plural = table.plural();
    let text = list_text(client, plural, version, limit, continue_token).await?;
    rows_of(table, &text).map_err(|e| list_failed(plural, version, kube::Error::SerdeError(e)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::linstor::export::row_digest;

    /// A LIST answer as the API server writes it (Go's encoder: `<`, `>`, `&` escaped), with
    /// everything the rows do not need.
    fn answer(items: &[serde_json::Value], next: &str) -> String {
        let text = json!({
            "apiVersion": "internal.linstor.linbit.com/v1-31-1",
            "items": items,
            "kind": "ResourceDefinitionsList",
            "metadata": {"continue": next, "resourceVersion": "100764"},
        })
        .to_string();
        text.replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026")
    }

    #[test]
    fn a_list_answer_gives_the_rows_of_the_owned_objects() {
        let table = linstor_fake::Release::LATEST
            .table("RESOURCE_DEFINITIONS")
            .unwrap();
        let specs = [
            json!({"resource_name": "PVC-1", "resource_dsp_name": "pvc-1", "uuid": "u-1", "resource_flags": 0}),
            json!({"resource_name": "A<&>B", "resource_dsp_name": "a<&>b \"q\" é", "uuid": "u-2", "resource_flags": 18446744073709551615u64, "snapshot_name": null}),
        ];
        let items: Vec<_> = specs
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                json!({
                    "apiVersion": "internal.linstor.linbit.com/v1-31-1",
                    "kind": "ResourceDefinitions",
                    "metadata": {"name": format!("n{i}"), "managedFields": [{"manager": "x", "fieldsV1": {"f:spec": {}}}], "resourceVersion": "7"},
                    "spec": spec,
                })
            })
            .collect();
        let text = answer(&items, "next-page");
        let page = rows_of(table, &text).unwrap();
        assert_eq!(page.continue_token.as_deref(), Some("next-page"));
        assert_eq!(page.rows.len(), 2);
        for (i, (row, spec)) in page.rows.iter().zip(&specs).enumerate() {
            let owned = spec.as_object().unwrap().clone();
            assert_eq!(row.name, format!("n{i}"));
            assert_eq!(row.digest, row_digest(&owned));
            assert_eq!(row.key_text, key_text(table, &owned));
        }
        // the key of a null snapshot name is empty
        assert_eq!(page.rows[1].key_text.as_deref(), Some("A<&>B:"));
        // the last page
        assert_eq!(rows_of(table, &answer(&[], "")).unwrap().continue_token, None);
        // not a LIST answer
        assert!(rows_of(table, "{\"items\": [{\"spec\": 1}]}").is_err());
    }
}
