//! LINSTOR's `k8s` database backend as it looks in the API server (REFERENCE.md §3): one
//! cluster-scoped CRD per table in group `internal.linstor.linbit.com` (storage version
//! `v1-31-1`), the `LinstorVersion` object `version`, and `Rollback` objects. Shared by the tool
//! stand-in (install, import, export) and the REST stand-in (load at controller start).

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use linstor_migrator::linstor::export::{Row, k8s_object_name, scalar_text};
use linstor_migrator::linstor::schema::{self, DATA_VERSION, K8S_GROUP, Table};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Plural and kind of the schema-version CRD; its one object is called [`VERSION_OBJECT`].
pub const VERSION_PLURAL: &str = "linstorversion";
pub const VERSION_KIND: &str = "LinstorVersion";
pub const VERSION_OBJECT: &str = "version";
/// Plural and kind of the CRD of multi-object commits (stale ones: linstor-server#357).
pub const ROLLBACK_PLURAL: &str = "rollback";
pub const ROLLBACK_KIND: &str = "Rollback";
/// The `LinstorVersion` LINSTOR 1.33 writes (the simulated cluster uses the same).
pub const SCHEMA_VERSION: i64 = 27;
/// Requests in flight at once when walking the 43 tables.
pub const CONCURRENCY: usize = 8;

fn resource(plural: &str, kind: &str, version: &str) -> ApiResource {
    ApiResource {
        group: K8S_GROUP.into(),
        version: version.into(),
        api_version: format!("{K8S_GROUP}/{version}"),
        kind: kind.into(),
        plural: plural.into(),
    }
}

/// The resource of a table's objects.
pub fn table_resource(t: &Table) -> ApiResource {
    resource(t.plural(), &t.crd_kind, DATA_VERSION)
}

/// The resource of the `LinstorVersion` object.
pub fn version_resource() -> ApiResource {
    resource(VERSION_PLURAL, VERSION_KIND, "v1")
}

/// The resource of `Rollback` objects.
pub fn rollback_resource() -> ApiResource {
    resource(ROLLBACK_PLURAL, ROLLBACK_KIND, "v1")
}

/// A cluster-scoped CRD whose `spec` keeps whatever it is given.
pub fn crd_for(r: &ApiResource) -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{}.{}", r.plural, r.group)},
        "spec": {
            "group": r.group,
            "scope": "Cluster",
            "names": {
                "plural": r.plural,
                "singular": r.plural,
                "kind": r.kind,
                "listKind": format!("{}List", r.kind),
            },
            "versions": [{
                "name": r.version,
                "served": true,
                "storage": true,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                }},
            }],
        },
    }))
    .expect("a well-formed CRD")
}

/// Every CRD LINSTOR installs: the 43 tables, `LinstorVersion` and `Rollback`.
pub fn all_crds() -> Vec<CustomResourceDefinition> {
    schema::tables()
        .iter()
        .map(table_resource)
        .chain([version_resource(), rollback_resource()])
        .map(|r| crd_for(&r))
        .collect()
}

/// The object name of a row: [`k8s_object_name`]; a table without a primary key
/// (`TRACKING_DATE`) hashes all its values instead, so that its rows do not collide.
pub fn object_name(t: &Table, row: &Row) -> String {
    if t.primary_key().next().is_some() {
        return k8s_object_name(t, row);
    }
    let values: Vec<String> = t
        .columns
        .iter()
        .map(|c| {
            row.get(&c.name.to_ascii_lowercase())
                .map(scalar_text)
                .unwrap_or_default()
        })
        .collect();
    hex::encode(Sha256::digest(values.join(":").as_bytes()))
}

/// A row as LINSTOR exports it: every column of the schema in order, absent ones null.
pub fn normalize_row(t: &Table, spec: &serde_json::Map<String, Value>) -> Row {
    t.columns
        .iter()
        .map(|c| {
            let key = c.name.to_ascii_lowercase();
            let value = spec.get(&key).cloned().unwrap_or(Value::Null);
            (key, value)
        })
        .collect()
}

/// The object of a row.
pub fn row_object(t: &Table, row: &Row) -> DynamicObject {
    DynamicObject::new(&object_name(t, row), &table_resource(t)).data(json!({ "spec": row }))
}

/// True for "not found", which a list of a CRD that does not exist answers.
pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// All objects of `r`, page by page; `None` when the CRD does not exist.
pub async fn list_objects(
    client: &kube::Client,
    r: &ApiResource,
) -> Result<Option<Vec<DynamicObject>>, kube::Error> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), r);
    let mut lp = ListParams::default().limit(500);
    let mut out = Vec::new();
    loop {
        let page = match api.list(&lp).await {
            Ok(p) => p,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        out.extend(page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => lp = lp.continue_token(&token),
            None => return Ok(Some(out)),
        }
    }
}

/// The rows of one table (`None`: its CRD does not exist).
pub async fn read_table(client: &kube::Client, t: &Table) -> Result<Option<Vec<Row>>, kube::Error> {
    let objects = list_objects(client, &table_resource(t)).await?;
    Ok(objects.map(|objs| {
        objs.iter()
            .map(|o| {
                // as the real export writes a row: the object's spec, null columns left out
                // (recorded: tests/fixtures/linstor-1.33.3/dataset/export-k8s.json)
                let spec = o
                    .data
                    .get("spec")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                linstor_migrator::linstor::export::without_nulls(spec)
            })
            .collect()
    }))
}

async fn read_named(
    client: kube::Client,
    t: &'static Table,
) -> Result<(String, Option<Vec<Row>>), kube::Error> {
    Ok((t.name.clone(), read_table(&client, t).await?))
}

/// What the backend holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BackendContent {
    /// Table name -> rows, for every table whose CRD exists.
    pub tables: BTreeMap<String, Vec<Row>>,
    /// `spec.version` of the `LinstorVersion` object.
    pub schema_version: Option<i64>,
    pub rollback_objects: usize,
}

/// Reads the whole backend, [`CONCURRENCY`] lists at a time.
pub async fn read_all(client: &kube::Client) -> Result<BackendContent, kube::Error> {
    // futures built eagerly: a closure inside the stream type trips the compiler's
    // higher-ranked lifetime check once the whole thing is spawned
    let reads: Vec<_> = schema::tables()
        .iter()
        .map(|t| read_named(client.clone(), t))
        .collect();
    let tables: Vec<(String, Option<Vec<Row>>)> = futures::stream::iter(reads)
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;
    let versions = Api::<DynamicObject>::all_with(client.clone(), &version_resource());
    let schema_version = match versions.get_opt(VERSION_OBJECT).await {
        Ok(o) => o.and_then(|o| o.data.get("spec")?.get("version")?.as_i64()),
        Err(e) if is_not_found(&e) => None,
        Err(e) => return Err(e),
    };
    let rollback_objects = list_objects(client, &rollback_resource())
        .await?
        .map_or(0, |v| v.len());
    Ok(BackendContent {
        tables: tables
            .into_iter()
            .filter_map(|(name, rows)| rows.map(|r| (name, r)))
            .collect(),
        schema_version,
        rollback_objects,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crds_are_cluster_scoped_and_keep_unknown_fields() {
        let crds = all_crds();
        assert_eq!(crds.len(), 45);
        let nodes = crds
            .iter()
            .find(|c| c.metadata.name.as_deref() == Some("nodes.internal.linstor.linbit.com"))
            .unwrap();
        assert_eq!(nodes.spec.scope, "Cluster");
        assert_eq!(nodes.spec.names.kind, "Nodes");
        let v = &nodes.spec.versions[0];
        assert_eq!((v.name.as_str(), v.served, v.storage), ("v1-31-1", true, true));
        let schema = serde_json::to_value(v.schema.as_ref().unwrap()).unwrap();
        assert_eq!(
            schema["openAPIV3Schema"]["properties"]["spec"]["x-kubernetes-preserve-unknown-fields"],
            true
        );
        assert!(
            crds.iter()
                .any(|c| c.metadata.name.as_deref() == Some("linstorversion.internal.linstor.linbit.com"))
        );
    }

    #[test]
    fn keyless_rows_get_distinct_names_and_rows_are_normalized() {
        let t = schema::table("TRACKING_DATE").unwrap();
        let a = json!({"entry_date": 1}).as_object().unwrap().clone();
        let b = json!({"entry_date": 2}).as_object().unwrap().clone();
        assert_ne!(object_name(t, &a), object_name(t, &b));
        let nodes = schema::table("NODES").unwrap();
        let row = normalize_row(nodes, json!({"node_name": "N1"}).as_object().unwrap());
        assert_eq!(row.len(), 5);
        assert_eq!(row["uuid"], Value::Null);
        assert_eq!(object_name(nodes, &row), k8s_object_name(nodes, &row));
    }
}
