//! LINSTOR's `k8s` database backend as each release leaves it in the API server (recorded:
//! `tests/fixtures/linstor-<version>/k8s`): cluster-scoped CRDs of group
//! `internal.linstor.linbit.com` (47 of 1.25.1, 45 of 1.33.3: one per table at the release's
//! versions, its data version the storage version, and `LinstorVersion`, `Rollback` at `v1`), one
//! object per row named by [`object_name`] with `spec` = the row and `apiVersion` at the storage
//! version, the `LinstorVersion` object `version` (18, 31), and four `SecAccessTypes` objects the
//! schema migrations of a fresh import create.
//!
//! [`K8sApi`] is what the tool needs of an API server; [`store`] holds an in-memory backend with
//! RBAC that implements it (the simulated cluster keeps one; the stand-ins talk to a real API
//! server instead); [`import`] is what `import-db` and `export-db` do with it.

pub mod import;
pub mod store;

use std::collections::BTreeMap;

use async_trait::async_trait;
use linstor_model::export::Row;
use linstor_model::naming::object_name;
use serde_json::{Value, json};

use crate::Release;
use crate::schema::{K8S_GROUP, Table};

pub use import::{NoPace, Pace, import, read_tables};
pub use store::{Denied, K8sStore, StoreApi, WithStore};

/// The CRD group.
pub const GROUP: &str = K8S_GROUP;
/// Plural, kind and object of the schema-version CRD.
pub const VERSION_PLURAL: &str = "linstorversion";
pub const VERSION_KIND: &str = "LinstorVersion";
pub const VERSION_OBJECT: &str = "version";
/// Plural and kind of the CRD of multi-object commits (stale ones break the controller's start,
/// linstor-server#357).
pub const ROLLBACK_PLURAL: &str = "rollback";
pub const ROLLBACK_KIND: &str = "Rollback";
/// The version of the `LinstorVersion` and `Rollback` CRDs.
pub const V1: &str = "v1";
/// The group of CRDs themselves.
pub const CRD_GROUP: &str = "apiextensions.k8s.io";

/// `(plural, kind, storage version)` of every CRD `release` installs.
pub fn crd_names(release: Release) -> Vec<(String, String, String)> {
    release
        .tables()
        .iter()
        .map(|t| {
            (
                t.plural().to_string(),
                t.crd_kind.clone(),
                release.data_version().to_string(),
            )
        })
        .chain([
            (VERSION_PLURAL.into(), VERSION_KIND.into(), V1.into()),
            (ROLLBACK_PLURAL.into(), ROLLBACK_KIND.into(), V1.into()),
        ])
        .collect()
}

/// The OpenAPI type of a column (`format: byte` for BLOBs, `int64` for BIGINT, ...).
fn property(sql_type: &str) -> Value {
    match sql_type {
        "BLOB" => json!({"type": "string", "format": "byte"}),
        "BIGINT" | "DATE" => json!({"type": "integer", "format": "int64"}),
        "INTEGER" => json!({"type": "integer", "format": "int32"}),
        "SMALLINT" | "TIMESTAMP" => json!({"type": "integer"}),
        "BOOLEAN" => json!({"type": "boolean"}),
        _ => json!({"type": "string"}),
    }
}

fn spec_schema(t: &Table) -> Value {
    let properties: serde_json::Map<String, Value> = t
        .columns
        .iter()
        .map(|c| (c.row_key(), property(&c.sql_type)))
        .collect();
    json!({"type": "object", "properties": properties})
}

/// `(major, minor, patch)` of a CRD version name (`v1-19-1`).
fn version_key(v: &str) -> Option<(u32, u32, u32)> {
    linstor_model::versions::parse(&v.replace('-', "."))
}

/// The columns of table `name` at CRD version `version`: those of the oldest recorded release
/// that stores that version or a later one (the same version has the same schema in every
/// release: recorded for all 169 versions the two sets share; versions between two recorded
/// releases are not recorded), else `release`'s own.
fn table_at(release: Release, name: &str, version: &str) -> Option<&'static Table> {
    let v = version_key(version);
    Release::ALL
        .into_iter()
        .find(|r| version_key(r.data_version()) >= v)
        .and_then(|r| r.table(name))
        .or_else(|| release.table(name))
}

/// The CRD of a table of `release`: every version it has, newest (the storage version) first.
pub fn table_crd(release: Release, t: &Table) -> Value {
    let versions: Vec<Value> = release
        .crd_versions(&t.name)
        .iter()
        .rev()
        .map(|v| {
            let columns = table_at(release, &t.name, v).unwrap_or(t);
            version_entry(v, *v == release.data_version(), spec_schema(columns))
        })
        .collect();
    crd(t.plural(), &t.crd_kind, versions)
}

fn version_entry(name: &str, storage: bool, spec_schema: Value) -> Value {
    json!({"name": name, "served": true, "storage": storage,
           "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": spec_schema}}}})
}

fn crd(plural: &str, kind: &str, versions: Vec<Value>) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{GROUP}")},
        "spec": {
            "group": GROUP,
            "names": {"plural": plural, "singular": plural, "kind": kind, "listKind": format!("{kind}List")},
            "scope": "Cluster",
            "conversion": {"strategy": "None"},
            "versions": versions,
        },
    })
}

/// The CRD of `LinstorVersion` (the same in every release).
pub fn version_crd() -> Value {
    crd(
        VERSION_PLURAL,
        VERSION_KIND,
        vec![version_entry(
            V1,
            true,
            json!({"type": "object", "properties": {"version": {"type": "integer", "format": "int32"}}}),
        )],
    )
}

/// The CRD of `Rollback` (the same in every release).
pub fn rollback_crd() -> Value {
    crd(
        ROLLBACK_PLURAL,
        ROLLBACK_KIND,
        vec![version_entry(
            V1,
            true,
            json!({"type": "object", "required": ["rollback_map", "delete_map"], "properties": {
                "delete_map": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
                "rollback_map": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}),
        )],
    )
}

/// Every CRD of `release`'s backend: its tables, `LinstorVersion`, `Rollback`.
pub fn crds(release: Release) -> Vec<Value> {
    release
        .tables()
        .iter()
        .map(|t| table_crd(release, t))
        .chain([version_crd(), rollback_crd()])
        .collect()
}

/// The storage version of a CRD (`None` without one).
pub fn storage_version(crd: &Value) -> Option<&str> {
    crd["spec"]["versions"]
        .as_array()?
        .iter()
        .find(|v| v["storage"] == true)?
        .get("name")?
        .as_str()
}

/// Whether a CRD serves `version`.
pub fn serves(crd: &Value, version: &str) -> bool {
    crd["spec"]["versions"].as_array().is_some_and(|vs| {
        vs.iter()
            .any(|v| v["name"] == version && v["served"].as_bool().unwrap_or(true))
    })
}

/// The object of a row, as `release` writes it: name by the naming rule, `apiVersion` at its
/// data version, `spec` = the row without nulls.
pub fn row_object(release: Release, t: &Table, row: &Row) -> Value {
    let spec: Row = row
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    json!({
        "apiVersion": format!("{GROUP}/{}", release.data_version()),
        "kind": t.crd_kind,
        "metadata": {"name": object_name(t, row).unwrap_or_else(|| linstor_model::naming::name_of_key(""))},
        "spec": spec,
    })
}

/// The four `SEC_ACCESS_TYPES` rows the schema migrations of a fresh import create (recorded:
/// `create secaccesstypes(4)` in 1.33.3's requests, the four objects in 1.25.1's `objects.yaml`;
/// never exported).
pub fn access_type_rows() -> Vec<Row> {
    [("CONTROL", 15), ("CHANGE", 7), ("USE", 3), ("VIEW", 1)]
        .iter()
        .map(|(name, value)| {
            json!({"access_type_name": name, "access_type_value": value})
                .as_object()
                .cloned()
                .unwrap_or_default()
        })
        .collect()
}

/// A refused API call, as the API server answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP method (`DELETE`, `PATCH`, `POST`, `GET`).
    pub method: &'static str,
    /// Path and query (`/apis/internal.linstor.linbit.com/v1-31-1/volumegroups`).
    pub path: String,
    pub code: u16,
    /// The Status message (`volumegroups.internal.linstor.linbit.com is forbidden: ...`), or
    /// [`NOT_SERVED`] when the server answered without a Status.
    pub message: String,
    /// For a 403: the verb, resource and group refused (boxed: errors stay small).
    pub forbidden: Option<Box<(String, String, String)>>,
}

/// What kube-apiserver answers for a resource it does not serve (a CRD that does not exist, or
/// not at that version): plain text, no Status.
pub const NOT_SERVED: &str = "404 page not found";

impl ApiError {
    /// The API server's 403 for `user`.
    pub fn forbidden(
        method: &'static str,
        path: String,
        user: &str,
        verb: &str,
        group: &str,
        resource: &str,
        name: Option<&str>,
    ) -> Self {
        let subject = match name {
            Some(n) => format!("{resource}.{group} \"{n}\""),
            None => format!("{resource}.{group}"),
        };
        Self {
            method,
            path,
            code: 403,
            message: format!(
                "{subject} is forbidden: User \"{user}\" cannot {verb} resource \"{resource}\" in API group \"{group}\" at the cluster scope"
            ),
            forbidden: Some(Box::new((verb.into(), resource.into(), group.into()))),
        }
    }

    /// The API server's 404 for a resource it does not serve.
    pub fn not_served(method: &'static str, path: String) -> Self {
        Self {
            method,
            path,
            code: 404,
            message: NOT_SERVED.into(),
            forbidden: None,
        }
    }
}

/// The collection path of `plural` at `version`.
pub fn path(plural: &str, version: &str) -> String {
    format!("/apis/{GROUP}/{version}/{plural}")
}

/// What `linstor-database` does with the API server (fabric8 client calls).
#[async_trait]
pub trait K8sApi: Send + Sync {
    /// The API server's URL as the client names it (`https://127.0.0.1:6443`).
    fn server(&self) -> String;
    /// The authenticated user (for 403 messages).
    fn user(&self) -> String;
    /// The name of the client's kubeconfig user entry, which fabric8 6.7 puts in its 403
    /// messages (`Forbidden! User admin doesn't have permission.`, tool/13 of 1.25.1).
    fn config_user(&self) -> String {
        self.user()
    }
    /// `spec.version` of the `LinstorVersion` object; `None` when it or its CRD does not exist.
    async fn schema_version(&self) -> Result<Option<i64>, ApiError>;
    /// Server-side apply of a CRD (`PATCH ...?fieldManager=fabric8`): needs `patch`, and also
    /// `create` when it does not exist yet.
    async fn apply_crd(&self, crd: &Value) -> Result<(), ApiError>;
    /// Writes the `LinstorVersion` object.
    async fn put_schema_version(&self, version: i64) -> Result<(), ApiError>;
    /// `deletecollection` of one plural at `version`.
    async fn delete_collection(&self, plural: &str, version: &str) -> Result<(), ApiError>;
    /// Creates one object of `plural` at `version`.
    async fn create(&self, plural: &str, version: &str, object: Value) -> Result<(), ApiError>;
    /// The objects of `plural`, read at `version`.
    async fn list(&self, plural: &str, version: &str) -> Result<Vec<Value>, ApiError>;
}

/// Objects per table name, for every table of any release whose CRD exists in `crds` (by CRD
/// name), from `count(plural)`.
pub(crate) fn counts_by_table(
    crds: &BTreeMap<String, Value>,
    count: impl Fn(&str) -> usize,
) -> BTreeMap<String, usize> {
    Release::ALL
        .into_iter()
        .flat_map(|r| r.tables())
        .filter(|t| crds.contains_key(&t.crd_name))
        .map(|t| (t.name.clone(), count(t.plural())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_release_installs_its_recorded_number_of_crds() {
        for r in Release::ALL {
            let all = crds(r);
            assert_eq!(all.len(), r.recorded().crds, "{r}");
            assert!(all.iter().all(|c| c["spec"]["scope"] == "Cluster"));
            let nodes = table_crd(r, r.table("NODES").unwrap());
            assert_eq!(storage_version(&nodes), Some(r.data_version()));
            assert!(serves(&nodes, "v1-15-0") && serves(&nodes, "v1-19-1"));
        }
        let rg = table_crd(
            Release::V1_33_3,
            Release::V1_33_3.table("RESOURCE_GROUPS").unwrap(),
        );
        let at = |v: &str| {
            rg["spec"]["versions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["name"] == v)
                .unwrap()["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
                .clone()
        };
        // 1.33.3 serves 1.25.1's schema at v1-19-1
        assert!(at("v1-31-1").get("peer_slots").is_some());
        assert!(at("v1-19-1").get("peer_slots").is_none());
    }
}
