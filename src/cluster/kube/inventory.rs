//! What the `k8s` database backend already holds: the `*.internal.linstor.linbit.com` CRDs that
//! LINSTOR installs, how many objects each has, the schema version and stale `Rollback`
//! objects (REFERENCE.md §3, §6).

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};

use super::errors::{is_not_found, map_kube_error};
use super::reads::{PAGE_SIZE, get_optional, list_all};
use crate::cluster::{BackendCrd as BackendCrdCount, ClusterError, ClusterResult, K8sBackendInventory};

/// The API group of LINSTOR's k8s backend.
const BACKEND_GROUP: &str = "internal.linstor.linbit.com";
/// The kind and object name holding the schema version.
const VERSION_KIND: &str = "LinstorVersion";
const VERSION_OBJECT: &str = "version";
const ROLLBACK_KIND: &str = "Rollback";
/// The CRD of the `Rollback` objects (the same in 1.25.1 and 1.33.3, `k8s/crds.yaml` of both).
const ROLLBACK_CRD: &str = "rollback.internal.linstor.linbit.com";
/// How many CRDs are counted at once (LINSTOR 1.25.1 has 47, 1.33.3 45).
const CONCURRENT_COUNTS: usize = 8;

/// One CRD of the backend, resolved to the version its objects are stored in.
#[derive(Debug, Clone, PartialEq)]
struct BackendCrd {
    /// The CRD's name, e.g. `nodes.internal.linstor.linbit.com`.
    name: String,
    resource: ApiResource,
    /// Every version it serves.
    served: Vec<String>,
}

/// The backend CRD described by `crd`, or `None` when it belongs to another group.
fn backend_crd(crd: &CustomResourceDefinition) -> Option<BackendCrd> {
    let spec = &crd.spec;
    if spec.group != BACKEND_GROUP {
        return None;
    }
    // Objects are readable in every served version, but the storage version is the one LINSTOR
    // writes (`v1-19-1` for 1.25.1, `v1-31-1` for 1.33.3): asking for it avoids conversions.
    let version = spec
        .versions
        .iter()
        .find(|v| v.storage)
        .or_else(|| spec.versions.iter().find(|v| v.served))?;
    let resource = ApiResource {
        group: spec.group.clone(),
        version: version.name.clone(),
        api_version: format!("{}/{}", spec.group, version.name),
        kind: spec.names.kind.clone(),
        plural: spec.names.plural.clone(),
    };
    Some(BackendCrd {
        name: crd
            .metadata
            .name
            .clone()
            .unwrap_or_else(|| format!("{}.{}", spec.names.plural, spec.group)),
        resource,
        served: spec
            .versions
            .iter()
            .filter(|v| v.served)
            .map(|v| v.name.clone())
            .collect(),
    })
}

fn api_for(client: &kube::Client, crd: &BackendCrd) -> Api<DynamicObject> {
    // Cluster-scoped as LINSTOR creates them; were one namespaced, this counts all namespaces.
    Api::all_with(client.clone(), &crd.resource)
}

/// Counts a CRD's objects by listing metadata only, page by page.
async fn count_objects(client: &kube::Client, crd: &BackendCrd) -> ClusterResult<u64> {
    let api = api_for(client, crd);
    let mut lp = ListParams::default().limit(PAGE_SIZE);
    let mut count = 0u64;
    loop {
        let page = match api.list_metadata(&lp).await {
            Ok(page) => page,
            // The CRD was deleted between listing CRDs and counting: nothing there.
            Err(e) if is_not_found(&e) => return Ok(count),
            Err(e) => return Err(list_error(crd, e)),
        };
        count += page.items.len() as u64;
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => lp = lp.continue_token(&token),
            None => return Ok(count),
        }
    }
}

fn list_error(crd: &BackendCrd, err: kube::Error) -> ClusterError {
    match map_kube_error("list", "CustomResource", "", &crd.name, err) {
        // The API server's message names the resource already; say which check needed it.
        ClusterError::Forbidden(message) => {
            ClusterError::Forbidden(format!("{message} (needed to count {} objects)", crd.name))
        }
        other => other,
    }
}

/// `spec.version` of the `LinstorVersion` object `version`, when it exists.
async fn schema_version(client: &kube::Client, crd: &BackendCrd) -> ClusterResult<Option<i64>> {
    let api = api_for(client, crd);
    match get_optional(&api, VERSION_OBJECT).await {
        Ok(object) => Ok(object.as_ref().and_then(version_of)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(map_kube_error("get", "LinstorVersion", "", VERSION_OBJECT, e)),
    }
}

fn version_of(object: &DynamicObject) -> Option<i64> {
    object.data.get("spec")?.get("version")?.as_i64()
}

/// Counts the objects of the `Rollback` CRD only (absent CRD: none), in the version it stores.
pub(super) async fn k8s_backend_rollback_objects(client: &kube::Client) -> ClusterResult<u64> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = match get_optional(&api, ROLLBACK_CRD).await {
        Ok(crd) => crd,
        Err(e) if is_not_found(&e) => None,
        Err(e) => {
            return Err(map_kube_error(
                "get",
                "CustomResourceDefinition",
                "",
                ROLLBACK_CRD,
                e,
            ));
        }
    };
    match crd.as_ref().and_then(backend_crd) {
        Some(crd) => count_objects(client, &crd).await,
        None => Ok(0),
    }
}

/// Lists the backend's CRDs and counts their objects.
pub(super) async fn k8s_backend_inventory(client: &kube::Client) -> ClusterResult<K8sBackendInventory> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let all = list_all(&api, &ListParams::default()).await.map_err(|e| {
        map_kube_error(
            "list",
            "CustomResourceDefinition",
            "",
            "customresourcedefinitions",
            e,
        )
    })?;
    let mut crds: Vec<BackendCrd> = all.iter().filter_map(backend_crd).collect();
    crds.sort_by(|a, b| a.name.cmp(&b.name));

    // Owned futures: borrowing closures here trip the compiler's `Send` check of async_trait.
    let counting = crds.iter().cloned().map(|crd| {
        let client = client.clone();
        async move { count_objects(&client, &crd).await }
    });
    let counts: Vec<u64> = futures::stream::iter(counting)
        .buffered(CONCURRENT_COUNTS)
        .try_collect()
        .await?;

    let schema_version = match crds.iter().find(|c| c.resource.kind == VERSION_KIND) {
        Some(crd) => schema_version(client, crd).await?,
        None => None,
    };
    let rollback_objects = crds
        .iter()
        .zip(&counts)
        .filter(|(c, _)| c.resource.kind == ROLLBACK_KIND)
        .map(|(_, n)| n)
        .sum();
    Ok(K8sBackendInventory {
        crds: crds
            .into_iter()
            .zip(counts)
            .map(|(c, objects)| BackendCrdCount {
                name: c.name,
                plural: c.resource.plural,
                kind: c.resource.kind,
                storage_version: c.resource.version,
                served_versions: c.served,
                objects,
            })
            .collect(),
        schema_version,
        rollback_objects,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd(group: &str, plural: &str, kind: &str, versions: &[(&str, bool)]) -> CustomResourceDefinition {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": format!("{plural}.{group}")},
            "spec": {
                "group": group,
                "names": {"plural": plural, "kind": kind},
                "scope": "Cluster",
                "versions": versions.iter().map(|(name, storage)| serde_json::json!({
                    "name": name, "served": true, "storage": storage
                })).collect::<Vec<_>>(),
            }
        }))
        .expect("valid CRD")
    }

    #[test]
    fn backend_crds_use_the_storage_version() {
        let c = crd(
            BACKEND_GROUP,
            "nodes",
            "Nodes",
            &[("v1-25-1", false), ("v1-31-1", true)],
        );
        let b = backend_crd(&c).expect("backend CRD");
        assert_eq!(b.name, "nodes.internal.linstor.linbit.com");
        assert_eq!(b.resource.api_version, "internal.linstor.linbit.com/v1-31-1");
        assert_eq!(
            (b.resource.kind.as_str(), b.resource.plural.as_str()),
            ("Nodes", "nodes")
        );
    }

    #[test]
    fn other_groups_are_ignored() {
        let c = crd(
            "piraeus.linbit.com",
            "linstorcontrollers",
            "LinstorController",
            &[("v1", true)],
        );
        assert!(backend_crd(&c).is_none());
    }

    #[test]
    fn schema_version_is_read_from_spec() {
        let ar = ApiResource {
            group: BACKEND_GROUP.into(),
            version: "v1".into(),
            api_version: format!("{BACKEND_GROUP}/v1"),
            kind: VERSION_KIND.into(),
            plural: "linstorversion".into(),
        };
        let object =
            DynamicObject::new(VERSION_OBJECT, &ar).data(serde_json::json!({"spec": {"version": 17}}));
        assert_eq!(version_of(&object), Some(17));
        assert_eq!(version_of(&DynamicObject::new(VERSION_OBJECT, &ar)), None);
    }
}
