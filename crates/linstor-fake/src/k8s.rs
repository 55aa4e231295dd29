//! LINSTOR's `k8s` database backend as LINSTOR 1.33.3 leaves it in the API server (recorded:
//! tests/fixtures/linstor-1.33.3/k8s): 45 cluster-scoped CRDs of group
//! `internal.linstor.linbit.com` (43 tables at storage version `v1-31-1`, `LinstorVersion` and
//! `Rollback` at `v1`), one object per row named by [`object_name`] with `spec` = the row, the
//! `LinstorVersion` object `version` (`spec.version` 31), and four `SecAccessTypes` objects the
//! schema migrations of a fresh import create.
//!
//! [`K8sApi`] is what the tool needs of an API server; [`K8sStore`] is an in-memory backend with
//! RBAC that implements its operations (the simulated cluster keeps one; the stand-ins talk to a
//! real API server instead). The API of the store is small on purpose: tables by plural, objects
//! by name, the schema version, Rollback objects.

use std::collections::{BTreeMap, BTreeSet};

use crate::schema::{self, DATA_VERSION, K8S_GROUP, Table};
use async_trait::async_trait;
use linstor_model::export::Row;
use linstor_model::naming::object_name;
use serde_json::{Value, json};

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
/// The group of CRDs themselves.
pub const CRD_GROUP: &str = "apiextensions.k8s.io";

/// `(plural, kind, version)` of every CRD LINSTOR 1.33.3 installs.
pub fn crd_names() -> Vec<(String, String, String)> {
    schema::tables()
        .iter()
        .map(|t| {
            (
                t.plural().to_string(),
                t.crd_kind.clone(),
                DATA_VERSION.to_string(),
            )
        })
        .chain([
            (VERSION_PLURAL.into(), VERSION_KIND.into(), "v1".into()),
            (ROLLBACK_PLURAL.into(), ROLLBACK_KIND.into(), "v1".into()),
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

/// The CRD of a table at its storage version (the real ones also serve older versions).
pub fn table_crd(t: &Table) -> Value {
    let properties: serde_json::Map<String, Value> = t
        .columns
        .iter()
        .map(|c| (c.name.to_ascii_lowercase(), property(&c.sql_type)))
        .collect();
    crd(
        t.plural(),
        &t.crd_kind,
        DATA_VERSION,
        json!({"type": "object", "properties": properties}),
    )
}

fn crd(plural: &str, kind: &str, version: &str, spec_schema: Value) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{GROUP}")},
        "spec": {
            "group": GROUP,
            "names": {"plural": plural, "singular": plural, "kind": kind, "listKind": format!("{kind}List")},
            "scope": "Cluster",
            "versions": [{
                "name": version, "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": spec_schema}}},
            }],
        },
    })
}

/// Every CRD of the backend: the 43 tables, `LinstorVersion`, `Rollback`.
pub fn all_crds() -> Vec<Value> {
    schema::tables()
        .iter()
        .map(table_crd)
        .chain([
            crd(
                VERSION_PLURAL,
                VERSION_KIND,
                "v1",
                json!({"type": "object", "properties": {"version": {"type": "integer", "format": "int32"}}}),
            ),
            crd(
                ROLLBACK_PLURAL,
                ROLLBACK_KIND,
                "v1",
                json!({"type": "object", "required": ["rollback_map", "delete_map"], "properties": {
                    "delete_map": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
                    "rollback_map": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}),
            ),
        ])
        .collect()
}

/// The object of a row: name by the naming rule, `spec` = the row without nulls.
pub fn row_object(t: &Table, row: &Row) -> Value {
    let spec: Row = row
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    json!({
        "apiVersion": format!("{GROUP}/{DATA_VERSION}"),
        "kind": t.crd_kind,
        "metadata": {"name": object_name(t, row).unwrap_or_else(|| linstor_model::naming::name_of_key(""))},
        "spec": spec,
    })
}

/// The four `SEC_ACCESS_TYPES` rows the schema migrations of a fresh import create (recorded:
/// `create secaccesstypes(4)`; never exported).
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
    /// The Status message (`volumegroups.internal.linstor.linbit.com is forbidden: ...`).
    pub message: String,
    /// For a 403: the verb, resource and group refused (boxed: errors stay small).
    pub forbidden: Option<Box<(String, String, String)>>,
}

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
}

/// What `linstor-database` does with the API server (fabric8 client calls).
#[async_trait]
pub trait K8sApi: Send + Sync {
    /// The API server's URL as the client names it (`https://127.0.0.1:6443`).
    fn server(&self) -> String;
    /// The authenticated user (for 403 messages).
    fn user(&self) -> String;
    /// Names of the existing CRDs of [`GROUP`] whose storage version is current.
    async fn current_crds(&self) -> Result<BTreeSet<String>, ApiError>;
    /// Server-side apply of a CRD (`PATCH ...?fieldManager=fabric8`): needs `patch`, and also
    /// `create` when it does not exist yet.
    async fn apply_crd(&self, crd: &Value) -> Result<(), ApiError>;
    /// Writes the `LinstorVersion` object.
    async fn put_schema_version(&self, version: i64) -> Result<(), ApiError>;
    /// `deletecollection` of one plural.
    async fn delete_collection(&self, plural: &str) -> Result<(), ApiError>;
    /// Creates one object of `plural`.
    async fn create(&self, plural: &str, object: Value) -> Result<(), ApiError>;
    /// The objects of `plural`.
    async fn list(&self, plural: &str) -> Result<Vec<Value>, ApiError>;
}

/// An in-memory `k8s` backend: CRDs, objects, the schema version, Rollback objects.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct K8sStore {
    /// CRD name -> CRD.
    pub crds: BTreeMap<String, Value>,
    /// Plural -> object name -> object.
    pub objects: BTreeMap<String, BTreeMap<String, Value>>,
}

impl K8sStore {
    /// The rows of `table` (their `spec`s), in name order.
    pub fn rows(&self, table: &Table) -> Vec<Row> {
        self.objects
            .get(table.plural())
            .map(|m| {
                m.values()
                    .filter_map(|o| o.get("spec")?.as_object().cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Objects per table name (tables whose CRD exists, empty ones as 0).
    pub fn row_counts(&self) -> BTreeMap<String, usize> {
        schema::tables()
            .iter()
            .filter(|t| self.crds.contains_key(&format!("{}.{GROUP}", t.plural())))
            .map(|t| {
                (
                    t.name.clone(),
                    self.objects.get(t.plural()).map_or(0, BTreeMap::len),
                )
            })
            .collect()
    }

    /// `spec.version` of the `LinstorVersion` object.
    pub fn schema_version(&self) -> Option<i64> {
        self.objects
            .get(VERSION_PLURAL)?
            .get(VERSION_OBJECT)?
            .get("spec")?
            .get("version")?
            .as_i64()
    }

    /// Number of `Rollback` objects.
    pub fn rollback_objects(&self) -> usize {
        self.objects.get(ROLLBACK_PLURAL).map_or(0, BTreeMap::len)
    }

    /// Adds `n` `Rollback` objects (and their CRD), as an interrupted transaction leaves them.
    pub fn add_rollbacks(&mut self, n: usize) {
        if let Some(crd) = all_crds()
            .into_iter()
            .find(|c| c["spec"]["names"]["plural"] == ROLLBACK_PLURAL)
        {
            self.put_crd(&crd);
        }
        let m = self.objects.entry(ROLLBACK_PLURAL.into()).or_default();
        for _ in 0..n {
            let name = format!("rollback-{}", m.len());
            m.insert(
                name.clone(),
                json!({"apiVersion": format!("{GROUP}/v1"), "kind": ROLLBACK_KIND, "metadata": {"name": name},
                       "spec": {"delete_map": {}, "rollback_map": {}}}),
            );
        }
    }

    /// True when every CRD exists.
    pub fn installed(&self) -> bool {
        crd_names()
            .iter()
            .all(|(p, _, _)| self.crds.contains_key(&format!("{p}.{GROUP}")))
    }

    /// Creates or updates a CRD.
    pub fn put_crd(&mut self, crd: &Value) {
        let name = crd["metadata"]["name"].as_str().unwrap_or_default().to_string();
        self.crds.insert(name, crd.clone());
    }

    /// Sets the `LinstorVersion` object.
    pub fn put_schema_version(&mut self, version: i64) {
        self.objects.entry(VERSION_PLURAL.into()).or_default().insert(
            VERSION_OBJECT.into(),
            json!({"apiVersion": format!("{GROUP}/v1"), "kind": VERSION_KIND,
                   "metadata": {"name": VERSION_OBJECT}, "spec": {"version": version}}),
        );
    }

    /// Creates an object; `Err` (409) when the name exists, or 404 when its CRD does not.
    pub fn create(&mut self, plural: &str, object: Value) -> Result<(), u16> {
        if !self.crds.contains_key(&format!("{plural}.{GROUP}")) {
            return Err(404);
        }
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let m = self.objects.entry(plural.into()).or_default();
        if m.contains_key(&name) {
            return Err(409);
        }
        m.insert(name, object);
        Ok(())
    }

    /// Deletes every object of `plural`.
    pub fn delete_collection(&mut self, plural: &str) {
        self.objects.remove(plural);
    }

    /// Replaces everything with a fresh import of `rows` per table (CRDs, migrations, objects).
    pub fn load(&mut self, tables: &[(&Table, &[Row])]) {
        for crd in all_crds() {
            self.put_crd(&crd);
        }
        self.objects.clear();
        self.put_schema_version(crate::fact_sheet::versions::K8S_LINSTOR_VERSION_OBJECT);
        if let Some(t) = schema::table("SEC_ACCESS_TYPES") {
            for row in access_type_rows() {
                let _ = self.create(t.plural(), row_object(t, &row));
            }
        }
        for (t, rows) in tables {
            for row in rows.iter() {
                let _ = self.create(t.plural(), row_object(t, row));
            }
        }
    }
}

/// Called after every object an import created (pacing, progress).
#[async_trait]
pub trait Pace: Send + Sync {
    async fn row(&self, done: usize);
}

/// No pacing.
pub struct NoPace;

#[async_trait]
impl Pace for NoPace {
    async fn row(&self, _done: usize) {}
}

/// The import's writes (recorded: tests/fixtures/linstor-1.33.3/k8s/import-requests-*.txt): on a
/// cluster without the current CRDs, apply all 45 (`linstorversion` first) and run the schema
/// migrations (which leave the `LinstorVersion` at 31 and four `SecAccessTypes` objects); then
/// truncate with one `deletecollection` per exported table in reverse order; then create one
/// object per row, tables and rows in file order; `pace` after every created object. Not
/// transactional: a failure leaves what was done.
pub async fn import(
    api: &dyn K8sApi,
    tables: &[(&'static Table, Vec<Row>)],
    pace: &dyn Pace,
) -> Result<usize, ApiError> {
    let current = api.current_crds().await?;
    let crds = all_crds();
    let fresh = crds
        .iter()
        .any(|c| !current.contains(c["metadata"]["name"].as_str().unwrap_or_default()));
    if fresh {
        // LINSTOR applies the LinstorVersion CRD first, then the tables'
        let (version, rest): (Vec<&Value>, Vec<&Value>) = crds
            .iter()
            .partition(|c| c["spec"]["names"]["plural"] == VERSION_PLURAL);
        for crd in version.into_iter().chain(rest) {
            api.apply_crd(crd).await?;
        }
        if let Some(t) = schema::table("SEC_ACCESS_TYPES") {
            for row in access_type_rows() {
                api.create(t.plural(), row_object(t, &row)).await?;
            }
        }
        api.put_schema_version(crate::fact_sheet::versions::K8S_LINSTOR_VERSION_OBJECT)
            .await?;
    }
    for t in schema::EXPORT_ORDER.iter().rev().filter_map(|n| schema::table(n)) {
        api.delete_collection(t.plural()).await?;
    }
    let mut done = 0;
    for (t, rows) in tables {
        for row in rows {
            api.create(t.plural(), row_object(t, row)).await?;
            done += 1;
            pace.row(done).await;
        }
    }
    Ok(done)
}

/// The export from `k8s`: every exported table's rows (object `spec`s) in the store's order.
pub async fn read_tables(api: &dyn K8sApi) -> Result<Vec<(&'static Table, Vec<Row>)>, ApiError> {
    let mut out = Vec::new();
    for t in schema::exported_tables() {
        let rows = api
            .list(t.plural())
            .await?
            .iter()
            .filter_map(|o| o.get("spec")?.as_object().cloned())
            .collect();
        out.push((t, rows));
    }
    Ok(out)
}

/// Who may do what in a [`StoreApi`]: `(group, resource, verb)` denied (`*` matches all).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Denied(pub BTreeSet<(String, String, String)>);

impl Denied {
    /// Nothing denied.
    pub fn none() -> Self {
        Self::default()
    }

    /// Denies `verb` on `resource` of `group`.
    pub fn deny(mut self, group: &str, resource: &str, verb: &str) -> Self {
        self.0.insert((group.into(), resource.into(), verb.into()));
        self
    }

    /// Whether `verb` on `resource` of `group` is allowed.
    pub fn allows(&self, group: &str, resource: &str, verb: &str) -> bool {
        !self.0.iter().any(|(g, r, v)| {
            (g == "*" || g == group) && (r == "*" || r == resource) && (v == "*" || v == verb)
        })
    }
}

/// Runs `f` on a store someone else owns (a mutex, the simulated cluster's state).
pub trait WithStore: Send + Sync {
    fn with_store<R>(&self, f: impl FnOnce(&mut K8sStore) -> R) -> R;
}

impl WithStore for std::sync::Mutex<K8sStore> {
    fn with_store<R>(&self, f: impl FnOnce(&mut K8sStore) -> R) -> R {
        let mut guard = self.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }
}

impl<T: WithStore> WithStore for std::sync::Arc<T> {
    fn with_store<R>(&self, f: impl FnOnce(&mut K8sStore) -> R) -> R {
        T::with_store(self, f)
    }
}

/// [`K8sApi`] over an in-memory store, as `user` with `denied` rights.
pub struct StoreApi<S> {
    pub store: S,
    pub server: String,
    pub user: String,
    pub denied: Denied,
}

impl<S: WithStore> StoreApi<S> {
    fn check(
        &self,
        method: &'static str,
        path: String,
        verb: &str,
        group: &str,
        resource: &str,
        name: Option<&str>,
    ) -> Result<(), ApiError> {
        if self.denied.allows(group, resource, verb) {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                method, path, &self.user, verb, group, resource, name,
            ))
        }
    }

    fn table_path(plural: &str) -> String {
        let version = if plural == VERSION_PLURAL || plural == ROLLBACK_PLURAL {
            "v1"
        } else {
            DATA_VERSION
        };
        format!("/apis/{GROUP}/{version}/{plural}")
    }
}

#[async_trait]
impl<S: WithStore> K8sApi for StoreApi<S> {
    fn server(&self) -> String {
        self.server.clone()
    }

    fn user(&self) -> String {
        self.user.clone()
    }

    async fn current_crds(&self) -> Result<BTreeSet<String>, ApiError> {
        self.check(
            "GET",
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions".into(),
            "list",
            CRD_GROUP,
            "customresourcedefinitions",
            None,
        )?;
        Ok(self.store.with_store(|s| s.crds.keys().cloned().collect()))
    }

    async fn apply_crd(&self, crd: &Value) -> Result<(), ApiError> {
        let name = crd["metadata"]["name"].as_str().unwrap_or_default().to_string();
        let path =
            format!("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}?fieldManager=fabric8");
        let res = "customresourcedefinitions";
        self.check("PATCH", path.clone(), "patch", CRD_GROUP, res, Some(&name))?;
        if !self.store.with_store(|s| s.crds.contains_key(&name)) {
            self.check("PATCH", path, "create", CRD_GROUP, res, Some(&name))?;
        }
        self.store.with_store(|s| s.put_crd(crd));
        Ok(())
    }

    async fn put_schema_version(&self, version: i64) -> Result<(), ApiError> {
        let path = Self::table_path(VERSION_PLURAL);
        self.check("POST", path, "create", GROUP, VERSION_PLURAL, None)?;
        self.store.with_store(|s| s.put_schema_version(version));
        Ok(())
    }

    async fn delete_collection(&self, plural: &str) -> Result<(), ApiError> {
        self.check(
            "DELETE",
            Self::table_path(plural),
            "deletecollection",
            GROUP,
            plural,
            None,
        )?;
        self.store.with_store(|s| s.delete_collection(plural));
        Ok(())
    }

    async fn create(&self, plural: &str, object: Value) -> Result<(), ApiError> {
        let path = Self::table_path(plural);
        self.check("POST", path.clone(), "create", GROUP, plural, None)?;
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        self.store
            .with_store(|s| s.create(plural, object))
            .map_err(|code| ApiError {
                method: "POST",
                path,
                code,
                message: if code == 409 {
                    format!("{plural}.{GROUP} \"{name}\" already exists")
                } else {
                    "the server could not find the requested resource".into()
                },
                forbidden: None,
            })
    }

    async fn list(&self, plural: &str) -> Result<Vec<Value>, ApiError> {
        self.check("GET", Self::table_path(plural), "list", GROUP, plural, None)?;
        Ok(self.store.with_store(|s| {
            s.objects
                .get(plural)
                .map(|m| m.values().cloned().collect())
                .unwrap_or_default()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_are_45_crds_cluster_scoped() {
        let crds = all_crds();
        assert_eq!(crds.len(), 45);
        assert!(crds.iter().all(|c| c["spec"]["scope"] == "Cluster"));
    }

    #[test]
    fn denied_matches_wildcards() {
        let d = Denied::none().deny(GROUP, "*", "deletecollection");
        assert!(!d.allows(GROUP, "volumegroups", "deletecollection"));
        assert!(d.allows(GROUP, "volumegroups", "create"));
    }
}
