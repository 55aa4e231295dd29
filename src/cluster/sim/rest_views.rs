//! The LINSTOR REST views of the simulated controller: `linstor_fake::rest` (the one model of
//! LINSTOR's views, replayed against the recorded answers) over the database the controller
//! loaded, in the shapes of the controller's release, with its satellites connected, in the
//! service's REST types.

use linstor_fake::Release;
use serde::de::DeserializeOwned;

use super::rest::Tables;
use crate::linstor::export::Row;
use crate::linstor::rest::{Node, Resource, StoragePool};

pub(crate) fn rows<'a>(t: &'a Tables, table: &str) -> &'a [Row] {
    t.get(table).map(Vec::as_slice).unwrap_or_default()
}

pub(crate) fn s(row: &Row, col: &str) -> String {
    row.get(col)
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string()
}

/// The fake's JSON answers as the service's client would read them.
fn read<T: DeserializeOwned>(answers: Vec<serde_json::Value>) -> Vec<T> {
    answers
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect()
}

pub(crate) fn nodes(release: Release, t: &Tables) -> Vec<Node> {
    read(linstor_fake::rest::nodes(release, t, true))
}

pub(crate) fn storage_pools(release: Release, t: &Tables) -> Vec<StoragePool> {
    let now = chrono::Utc::now().to_rfc3339();
    read(linstor_fake::rest::storage_pools(release, t, true, &now))
}

pub(crate) fn resources(release: Release, t: &Tables) -> Vec<Resource> {
    read(linstor_fake::rest::resources(release, t, true))
}
