//! Reads: single objects (absent is `None`, not an error) and paged lists.

use std::fmt::Debug;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, ListParams};
use kube::core::NamespaceResourceScope;
use serde::de::DeserializeOwned;

use super::errors::{is_not_found, map_kube_error};
use crate::cluster::{ClusterResult, LinstorController};

/// Page size of list calls: large lists (all Deployments of a big cluster) arrive in pieces
/// instead of one response the API server has to build in memory.
pub(super) const PAGE_SIZE: u32 = 500;

/// The Secret type Helm 3 stores releases in (REFERENCE.md §2).
const HELM_RELEASE_TYPE: &str = "helm.sh/release.v1";

/// Gets a namespaced object of `kind`; `None` when it does not exist.
pub(super) async fn get_opt<K>(
    client: &kube::Client,
    kind: &'static str,
    ns: &str,
    name: &str,
) -> ClusterResult<Option<K>>
where
    K: kube::Resource<Scope = NamespaceResourceScope, DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    get_optional(&api, name)
        .await
        .map_err(|e| map_kube_error("get", kind, ns, name, e))
}

/// `Api::get_opt`, but also `None` on the plain-text 404 of a resource whose CRD is absent,
/// which kube's own check misses.
pub(super) async fn get_optional<K>(api: &Api<K>, name: &str) -> Result<Option<K>, kube::Error>
where
    K: kube::Resource + Clone + DeserializeOwned + Debug,
{
    match api.get(name).await {
        Ok(object) => Ok(Some(object)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// All objects of `api` matching `lp`, following `continue` tokens.
pub(super) async fn list_all<K>(api: &Api<K>, lp: &ListParams) -> Result<Vec<K>, kube::Error>
where
    K: kube::Resource + Clone + DeserializeOwned + Debug,
{
    let mut lp = lp.clone().limit(PAGE_SIZE);
    let mut items = Vec::new();
    loop {
        let page = api.list(&lp).await?;
        items.extend(page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => lp = lp.continue_token(&token),
            None => return Ok(items),
        }
    }
}

/// `LinstorController` CRs in `namespaces` (empty: all namespaces); without the CRD (404) there
/// are none.
pub(super) async fn list_linstor_controllers(
    client: &kube::Client,
    namespaces: &[String],
) -> ClusterResult<Vec<LinstorController>> {
    let mut out = Vec::new();
    for api in scoped_apis::<LinstorController>(client, namespaces) {
        match list_all(&api.api, &ListParams::default()).await {
            Ok(items) => out.extend(items),
            // No Piraeus Operator v1 installed: not an error, discovery falls back to Deployments.
            Err(e) if is_not_found(&e) => return Ok(Vec::new()),
            Err(e) => return Err(map_kube_error("list", "LinstorController", api.ns, "", e)),
        }
    }
    Ok(out)
}

/// Deployments in `namespaces` (empty: all namespaces).
pub(super) async fn list_deployments(
    client: &kube::Client,
    namespaces: &[String],
) -> ClusterResult<Vec<Deployment>> {
    let mut out = Vec::new();
    for api in scoped_apis::<Deployment>(client, namespaces) {
        let items = list_all(&api.api, &ListParams::default())
            .await
            .map_err(|e| map_kube_error("list", "Deployment", api.ns, "", e))?;
        out.extend(items);
    }
    Ok(out)
}

/// An `Api` of one namespace, or of all (`ns` empty).
pub(super) struct ScopedApi<'a, K> {
    pub api: Api<K>,
    pub ns: &'a str,
}

/// One `Api` per namespace in `namespaces`, or one for all namespaces when it is empty. Listed
/// one after the other: a scoped service manages a handful of namespaces.
pub(super) fn scoped_apis<'a, K>(client: &kube::Client, namespaces: &'a [String]) -> Vec<ScopedApi<'a, K>>
where
    K: kube::Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
{
    if namespaces.is_empty() {
        return vec![ScopedApi {
            api: Api::all(client.clone()),
            ns: "",
        }];
    }
    namespaces
        .iter()
        .map(|ns| ScopedApi {
            api: Api::namespaced(client.clone(), ns),
            ns: ns.as_str(),
        })
        .collect()
}

/// Pods in `ns` matching a label selector.
pub(super) async fn list_pods(
    client: &kube::Client,
    ns: &str,
    label_selector: &str,
) -> ClusterResult<Vec<Pod>> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let lp = ListParams::default().labels(label_selector);
    list_all(&api, &lp)
        .await
        .map_err(|e| map_kube_error("list", "Pod", ns, "", e))
}

/// Helm release Secrets in `ns`, selected by type on the server.
pub(super) async fn list_helm_release_secrets(client: &kube::Client, ns: &str) -> ClusterResult<Vec<Secret>> {
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let lp = ListParams::default().fields(&format!("type={HELM_RELEASE_TYPE}"));
    list_all(&api, &lp)
        .await
        .map_err(|e| map_kube_error("list", "Secret", ns, "", e))
}
