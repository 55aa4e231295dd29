//! LINSTOR's `k8s` database backend read from a real API server. What the backend *is* (each
//! release's CRDs, object names, specs, `LinstorVersion`, `Rollback`) is `linstor_fake::k8s`; this
//! file holds the kube-rs side: the resources to call at a release's version, paged lists, and
//! reading the whole backend as a release reads it (the REST stand-in at controller start, the
//! cluster suite's checks).

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use linstor_fake::Release;
use linstor_fake::k8s::{
    GROUP, ROLLBACK_KIND, ROLLBACK_PLURAL, V1, VERSION_KIND, VERSION_OBJECT, VERSION_PLURAL,
};
use linstor_fake::schema::Table;
use linstor_migrator::linstor::export::Row;
use serde_json::Value;

/// Requests in flight at once when walking the tables.
pub const CONCURRENCY: usize = 8;

/// The resource of the objects of CRD `plural` of `kind` at `version`.
pub fn resource_at(plural: &str, kind: &str, version: &str) -> ApiResource {
    ApiResource {
        group: GROUP.into(),
        api_version: format!("{GROUP}/{version}"),
        version: version.into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

/// The resource of the `linstorversion` or `rollback` objects (at `v1`, in every release).
pub fn resource_of(plural: &str) -> ApiResource {
    let kind = if plural == ROLLBACK_PLURAL {
        ROLLBACK_KIND
    } else {
        VERSION_KIND
    };
    resource_at(plural, kind, V1)
}

/// The resource of a table's objects as `release` reads and writes them (its data version).
pub fn table_resource(release: Release, t: &Table) -> ApiResource {
    resource_at(t.plural(), &t.crd_kind, release.data_version())
}

/// The resource of `plural`'s objects at `version`, its kind found among the recorded releases'
/// tables.
pub fn plural_resource(plural: &str, version: &str) -> ApiResource {
    if plural == VERSION_PLURAL || plural == ROLLBACK_PLURAL {
        return resource_of(plural);
    }
    let kind = Release::ALL
        .into_iter()
        .flat_map(|r| r.tables())
        .find(|t| t.plural() == plural)
        .map(|t| t.crd_kind.clone())
        .unwrap_or_else(|| plural.to_string());
    resource_at(plural, &kind, version)
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

/// The rows of one table as `release` reads them (`None`: its CRD does not serve that version).
pub async fn read_table(
    client: &kube::Client,
    release: Release,
    t: &Table,
) -> Result<Option<Vec<Row>>, kube::Error> {
    let objects = list_objects(client, &table_resource(release, t)).await?;
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
    release: Release,
    t: &'static Table,
) -> Result<(String, Option<Vec<Row>>), kube::Error> {
    Ok((t.name.clone(), read_table(&client, release, t).await?))
}

/// What the backend holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BackendContent {
    /// Table name -> rows, for every table whose CRD serves the release's version.
    pub tables: BTreeMap<String, Vec<Row>>,
    /// `spec.version` of the `LinstorVersion` object.
    pub schema_version: Option<i64>,
    pub rollback_objects: usize,
}

/// Reads the whole backend as `release` does, [`CONCURRENCY`] lists at a time.
pub async fn read_all(client: &kube::Client, release: Release) -> Result<BackendContent, kube::Error> {
    // futures built eagerly: a closure inside the stream type trips the compiler's
    // higher-ranked lifetime check once the whole thing is spawned
    let reads: Vec<_> = release
        .tables()
        .iter()
        .map(|t| read_named(client.clone(), release, t))
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
        let nodes = Release::V1_33_3.table("NODES").unwrap();
        let r = table_resource(Release::V1_33_3, nodes);
        assert_eq!((r.kind.as_str(), r.version.as_str()), ("Nodes", "v1-31-1"));
        let r = table_resource(Release::V1_25_1, nodes);
        assert_eq!(r.api_version, "internal.linstor.linbit.com/v1-19-1");
        assert_eq!(
            resource_of(VERSION_PLURAL).api_version,
            "internal.linstor.linbit.com/v1"
        );
        assert_eq!(resource_of(ROLLBACK_PLURAL).kind, "Rollback");
        assert_eq!(
            plural_resource("layeropenflexvolumes", "v1-19-1").kind,
            "LayerOpenflexVolumes"
        );
        let row = normalize_row(nodes, json!({"node_name": "N1"}).as_object().unwrap());
        assert_eq!(row.len(), 5);
        assert_eq!(row["uuid"], Value::Null);
    }
}
