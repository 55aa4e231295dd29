//! LINSTOR's `k8s` database backend read from a real API server. What the backend *is* (the
//! 45 CRDs, object names, specs, `LinstorVersion`, `Rollback`) is `linstor_fake::k8s`; this file
//! holds the kube-rs side: the resources to call, paged lists, and reading the whole backend
//! (the REST stand-in at controller start, the cluster suite's checks).

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use linstor_fake::k8s::{GROUP, ROLLBACK_PLURAL, VERSION_OBJECT, VERSION_PLURAL, crd_names};
use linstor_fake::schema::{self, Table};
use linstor_migrator::linstor::export::Row;
use serde_json::Value;

/// Requests in flight at once when walking the 43 tables.
pub const CONCURRENCY: usize = 8;

/// The resource of the objects of CRD `plural` (a table's, `linstorversion`, `rollback`), at
/// the version LINSTOR 1.33.3 stores them in.
pub fn resource_of(plural: &str) -> ApiResource {
    let (kind, version) = crd_names()
        .into_iter()
        .find(|(p, _, _)| p == plural)
        .map(|(_, k, v)| (k, v))
        .unwrap_or_default();
    ApiResource {
        group: GROUP.into(),
        api_version: format!("{GROUP}/{version}"),
        version,
        kind,
        plural: plural.into(),
    }
}

/// The collection path of CRD `plural` (`/apis/internal.linstor.linbit.com/v1-31-1/nodes`).
pub fn path_of(plural: &str) -> String {
    let r = resource_of(plural);
    format!("/apis/{}/{}", r.api_version, r.plural)
}

/// The resource of a table's objects.
pub fn table_resource(t: &Table) -> ApiResource {
    resource_of(t.plural())
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
    let versions = Api::<DynamicObject>::all_with(client.clone(), &resource_of(VERSION_PLURAL));
    let schema_version = match versions.get_opt(VERSION_OBJECT).await {
        Ok(o) => o.and_then(|o| o.data.get("spec")?.get("version")?.as_i64()),
        Err(e) if is_not_found(&e) => None,
        Err(e) => return Err(e),
    };
    let rollback_objects = list_objects(client, &resource_of(ROLLBACK_PLURAL))
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
    use serde_json::json;

    #[test]
    fn resources_follow_the_crds_and_rows_are_normalized() {
        let nodes = schema::table("NODES").unwrap();
        let r = table_resource(nodes);
        assert_eq!((r.kind.as_str(), r.version.as_str()), ("Nodes", "v1-31-1"));
        assert_eq!(
            path_of(VERSION_PLURAL),
            "/apis/internal.linstor.linbit.com/v1/linstorversion"
        );
        assert_eq!(resource_of(ROLLBACK_PLURAL).kind, "Rollback");
        let row = normalize_row(nodes, json!({"node_name": "N1"}).as_object().unwrap());
        assert_eq!(row.len(), 5);
        assert_eq!(row["uuid"], Value::Null);
    }
}
