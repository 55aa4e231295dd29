//! Reads for the upgrade plan: the v1 LinstorSatelliteSets and LinstorCSIDrivers of a namespace,
//! and which CRDs of an API group exist (listed as metadata only: the v1 CRDs are large).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams};

use super::errors::{is_not_found, map_kube_error};
use super::reads::list_all;
use crate::cluster::{ClusterResult, LinstorCsiDriver, LinstorSatelliteSet};

/// Every `K` in `ns`; none when its CRD is not installed.
async fn list_v1<K>(client: &kube::Client, kind: &'static str, ns: &str) -> ClusterResult<Vec<K>>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    match list_all(&api, &ListParams::default()).await {
        Ok(items) => Ok(items),
        Err(e) if is_not_found(&e) => Ok(Vec::new()),
        Err(e) => Err(map_kube_error("list", kind, ns, "", e)),
    }
}

pub(super) async fn list_satellite_sets(
    client: &kube::Client,
    ns: &str,
) -> ClusterResult<Vec<LinstorSatelliteSet>> {
    list_v1(client, "LinstorSatelliteSet", ns).await
}

pub(super) async fn list_csi_drivers(
    client: &kube::Client,
    ns: &str,
) -> ClusterResult<Vec<LinstorCsiDriver>> {
    list_v1(client, "LinstorCSIDriver", ns).await
}

/// CRD names end in `.<group>` (`<plural>.<group>`).
pub(super) async fn crd_names(client: &kube::Client, group: &str) -> ClusterResult<Vec<String>> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let suffix = format!(".{group}");
    let list = api
        .list_metadata(&ListParams::default())
        .await
        .map_err(|e| map_kube_error("list", "CustomResourceDefinition", "", "", e))?;
    let mut names: Vec<String> = list
        .items
        .into_iter()
        .filter_map(|m| m.metadata.name)
        .filter(|n| n.ends_with(&suffix))
        .collect();
    names.sort();
    Ok(names)
}
