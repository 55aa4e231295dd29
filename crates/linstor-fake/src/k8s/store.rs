//! An in-memory `k8s` backend as kube-apiserver keeps it: CRDs, objects stored at their CRD's
//! storage version and read at any version it serves (conversion `None`: only `apiVersion`
//! changes), a resource it does not serve answers 404 ([`super::NOT_SERVED`]); and [`StoreApi`],
//! the [`K8sApi`] of a client with RBAC over such a store.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use linstor_model::export::Row;
use serde_json::{Value, json};

use super::{
    ApiError, CRD_GROUP, GROUP, K8sApi, ROLLBACK_KIND, ROLLBACK_PLURAL, V1, VERSION_KIND, VERSION_OBJECT,
    VERSION_PLURAL, access_type_rows, counts_by_table, crds, path, rollback_crd, row_object, serves,
    storage_version,
};
use crate::Release;
use crate::schema::Table;

/// An in-memory `k8s` backend: CRDs, objects, the schema version, Rollback objects.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct K8sStore {
    /// CRD name -> CRD.
    pub crds: BTreeMap<String, Value>,
    /// Plural -> object name -> object (`apiVersion` at the storage version).
    pub objects: BTreeMap<String, BTreeMap<String, Value>>,
}

/// Why a store refused a call: the HTTP status.
pub type Refused = u16;

impl K8sStore {
    fn crd(&self, plural: &str) -> Option<&Value> {
        self.crds.get(&format!("{plural}.{GROUP}"))
    }

    /// Whether the CRD of `plural` exists and serves `version`.
    pub fn serves(&self, plural: &str, version: &str) -> bool {
        self.crd(plural).is_some_and(|c| serves(c, version))
    }

    /// The storage version of the CRD of `plural`.
    pub fn storage_version(&self, plural: &str) -> Option<String> {
        self.crd(plural).and_then(storage_version).map(String::from)
    }

    /// The rows (object `spec`s) of `plural` read at `version`, in name order; none when the CRD
    /// does not serve it.
    pub fn rows(&self, plural: &str, version: &str) -> Vec<Row> {
        self.list(plural, version)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|o| o.get("spec")?.as_object().cloned())
            .collect()
    }

    /// Objects per table name: every table of any release whose CRD exists (empty ones as 0).
    pub fn row_counts(&self) -> BTreeMap<String, usize> {
        counts_by_table(&self.crds, |plural| {
            self.objects.get(plural).map_or(0, BTreeMap::len)
        })
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
        self.put_crd(&rollback_crd());
        let m = self.objects.entry(ROLLBACK_PLURAL.into()).or_default();
        for _ in 0..n {
            let name = format!("rollback-{}", m.len());
            m.insert(
                name.clone(),
                json!({"apiVersion": format!("{GROUP}/{V1}"), "kind": ROLLBACK_KIND, "metadata": {"name": name},
                       "spec": {"delete_map": {}, "rollback_map": {}}}),
            );
        }
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
            json!({"apiVersion": format!("{GROUP}/{V1}"), "kind": VERSION_KIND,
                   "metadata": {"name": VERSION_OBJECT}, "spec": {"version": version}}),
        );
    }

    /// Creates an object of `plural` sent at `version`, stored at the CRD's storage version;
    /// 404 when the CRD does not serve `version`, 409 when the name exists.
    pub fn create(&mut self, plural: &str, version: &str, mut object: Value) -> Result<(), Refused> {
        if !self.serves(plural, version) {
            return Err(404);
        }
        if let Some(storage) = self.storage_version(plural) {
            object["apiVersion"] = json!(format!("{GROUP}/{storage}"));
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

    /// Deletes every object of `plural`; 404 when the CRD does not serve `version`.
    pub fn delete_collection(&mut self, plural: &str, version: &str) -> Result<(), Refused> {
        if !self.serves(plural, version) {
            return Err(404);
        }
        self.objects.remove(plural);
        Ok(())
    }

    /// The objects of `plural` as read at `version`, in name order; 404 when not served.
    pub fn list(&self, plural: &str, version: &str) -> Result<Vec<Value>, Refused> {
        if !self.serves(plural, version) {
            return Err(404);
        }
        Ok(self
            .objects
            .get(plural)
            .map(|m| {
                m.values()
                    .map(|o| {
                        let mut o = o.clone();
                        o["apiVersion"] = json!(format!("{GROUP}/{version}"));
                        o
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Replaces everything with what a fresh import of `rows` per table by `release` leaves
    /// (its CRDs, `LinstorVersion`, the four access types, one object per row).
    pub fn load(&mut self, release: Release, tables: &[(&Table, &[Row])]) {
        self.crds.clear();
        for crd in crds(release) {
            self.put_crd(&crd);
        }
        self.objects.clear();
        self.put_schema_version(release.recorded().k8s_schema_version);
        let version = release.data_version();
        if let Some(t) = release.table("SEC_ACCESS_TYPES") {
            for row in access_type_rows() {
                let _ = self.create(t.plural(), version, row_object(release, t, &row));
            }
        }
        for (t, rows) in tables {
            for row in rows.iter() {
                let _ = self.create(t.plural(), version, row_object(release, t, row));
            }
        }
    }
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
    /// The client's kubeconfig user entry (`None`: named as the user).
    pub config_user: Option<String>,
    pub denied: Denied,
}

impl<S: WithStore> StoreApi<S> {
    /// A client of `store` at `server` as `user`, nothing denied.
    pub fn new(store: S, server: &str, user: &str) -> Self {
        Self {
            store,
            server: server.into(),
            user: user.into(),
            config_user: None,
            denied: Denied::none(),
        }
    }

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

    fn refused(method: &'static str, path: String, code: Refused, what: &str) -> ApiError {
        match code {
            404 => ApiError::not_served(method, path),
            _ => ApiError {
                method,
                path,
                code,
                message: format!("{what} already exists"),
                forbidden: None,
            },
        }
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

    fn config_user(&self) -> String {
        self.config_user.clone().unwrap_or_else(|| self.user.clone())
    }

    async fn schema_version(&self) -> Result<Option<i64>, ApiError> {
        let p = format!("{}/{VERSION_OBJECT}", path(VERSION_PLURAL, V1));
        self.check("GET", p, "get", GROUP, VERSION_PLURAL, Some(VERSION_OBJECT))?;
        Ok(self.store.with_store(|s| s.schema_version()))
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
        let p = path(VERSION_PLURAL, V1);
        self.check("POST", p, "create", GROUP, VERSION_PLURAL, None)?;
        self.store.with_store(|s| s.put_schema_version(version));
        Ok(())
    }

    async fn delete_collection(&self, plural: &str, version: &str) -> Result<(), ApiError> {
        let p = path(plural, version);
        self.check("DELETE", p.clone(), "deletecollection", GROUP, plural, None)?;
        self.store
            .with_store(|s| s.delete_collection(plural, version))
            .map_err(|code| Self::refused("DELETE", p, code, plural))
    }

    async fn create(&self, plural: &str, version: &str, object: Value) -> Result<(), ApiError> {
        let p = path(plural, version);
        self.check("POST", p.clone(), "create", GROUP, plural, None)?;
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        self.store
            .with_store(|s| s.create(plural, version, object))
            .map_err(|code| Self::refused("POST", p, code, &format!("{plural}.{GROUP} \"{name}\"")))
    }

    async fn list(&self, plural: &str, version: &str) -> Result<Vec<Value>, ApiError> {
        let p = path(plural, version);
        self.check("GET", p.clone(), "list", GROUP, plural, None)?;
        self.store
            .with_store(|s| s.list(plural, version))
            .map_err(|code| Self::refused("GET", p, code, plural))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denied_matches_wildcards() {
        let d = Denied::none().deny(GROUP, "*", "deletecollection");
        assert!(!d.allows(GROUP, "volumegroups", "deletecollection"));
        assert!(d.allows(GROUP, "volumegroups", "create"));
    }

    #[test]
    fn objects_live_at_the_storage_version_and_are_read_at_any_served_one() {
        let r = Release::V1_33_3;
        let mut s = K8sStore::default();
        let nodes = r.table("NODES").unwrap();
        s.load(r, &[]);
        let row: Row = serde_json::from_str(r#"{"node_name": "A", "uuid": "u"}"#).unwrap();
        // an older client writes at v1-19-1, which 1.33.3's CRDs still serve
        let old = row_object(Release::V1_25_1, nodes, &row);
        s.create("nodes", "v1-19-1", old).unwrap();
        let stored = s.objects["nodes"].values().next().unwrap();
        assert_eq!(stored["apiVersion"], "internal.linstor.linbit.com/v1-31-1");
        assert_eq!(
            s.list("nodes", "v1-19-1").unwrap()[0]["apiVersion"],
            "internal.linstor.linbit.com/v1-19-1"
        );
        // tables 1.33.3 dropped are not served at all
        assert_eq!(s.delete_collection("layeropenflexvolumes", "v1-19-1"), Err(404));
        assert_eq!(s.list("nodes", "v1-99-9"), Err(404));
        assert_eq!(s.row_counts()["NODES"], 1);
        assert_eq!(s.row_counts()["SEC_ACCESS_TYPES"], 4);
        assert!(!s.row_counts().contains_key("LAYER_OPENFLEX_VOLUMES"));
    }
}
