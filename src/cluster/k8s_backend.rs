//! What the cluster tells of LINSTOR's `k8s` database backend: its CRDs and how many objects each
//! holds ([`K8sBackendInventory`]), and its objects, each a row of a LINSTOR table (REFERENCE.md
//! §3): whole ([`K8sBackendObject`]) or as the data verification reads them ([`K8sBackendRow`]).

use serde::Serialize;
use utoipa::ToSchema;

use crate::linstor::export::row_digest;
use crate::linstor::row_index::key_text;
use crate::linstor::schema::Table;

/// One CRD of the `k8s` backend's group, as the cluster has it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
pub struct BackendCrd {
    /// `nodes.internal.linstor.linbit.com`.
    pub name: String,
    /// `nodes`.
    pub plural: String,
    /// `Nodes`.
    #[serde(default)]
    pub kind: String,
    /// The version its objects are stored in (`v1-19-1` for LINSTOR 1.25.1, `v1-31-1` for 1.33.3):
    /// the version LINSTOR writes and reads, and the one every direct read and write uses.
    #[serde(default)]
    pub storage_version: String,
    /// Every version it serves.
    #[serde(default)]
    pub served_versions: Vec<String>,
    /// How many objects it holds.
    pub objects: u64,
}

impl BackendCrd {
    /// Whether it holds rows of an export table (not the schema version, Rollback entries or
    /// tables LINSTOR never exports), of whichever LINSTOR version.
    pub fn holds_export_rows(&self) -> bool {
        crate::linstor::schema::holds_export_rows(&self.plural)
    }
}

/// A stored inventory of an earlier release listed CRDs as `[name, objects]` pairs.
fn crds_of_any_release<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<BackendCrd>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Entry {
        Crd(BackendCrd),
        Pair(String, u64),
    }
    let entries: Vec<Entry> = serde::Deserialize::deserialize(d)?;
    Ok(entries
        .into_iter()
        .map(|e| match e {
            Entry::Crd(c) => c,
            Entry::Pair(name, objects) => BackendCrd {
                plural: name.split('.').next().unwrap_or_default().to_string(),
                name,
                objects,
                ..BackendCrd::default()
            },
        })
        .collect())
}

/// What the `k8s` database backend already holds in the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
pub struct K8sBackendInventory {
    /// The `*.internal.linstor.linbit.com` CRDs, by name.
    #[serde(deserialize_with = "crds_of_any_release")]
    pub crds: Vec<BackendCrd>,
    /// `spec.version` of the `LinstorVersion` object, when present.
    pub schema_version: Option<i64>,
    /// Number of `Rollback` objects (stale ones break controller start-up, linstor-server#357).
    pub rollback_objects: u64,
}

impl K8sBackendInventory {
    /// The rows of export tables the backend holds, of whichever LINSTOR version: not the schema
    /// version object, the Rollback entries, nor the rows of tables LINSTOR never exports (the four
    /// `SEC_ACCESS_TYPES` rows the schema migrations create: the tool's truncate leaves them, and
    /// LINSTOR needs them).
    pub fn total_objects(&self) -> u64 {
        self.crds
            .iter()
            .filter(|c| c.holds_export_rows())
            .map(|c| c.objects)
            .sum()
    }

    /// The CRD of `plural`.
    pub fn crd(&self, plural: &str) -> Option<&BackendCrd> {
        self.crds.iter().find(|c| c.plural == plural)
    }

    /// The storage versions of the CRDs that hold export rows, each once, sorted.
    pub fn storage_versions(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .crds
            .iter()
            .filter(|c| c.holds_export_rows() && !c.storage_version.is_empty())
            .map(|c| c.storage_version.clone())
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

/// One object of the `k8s` backend: a row of a LINSTOR table (REFERENCE.md §3).
#[derive(Debug, Clone, PartialEq)]
pub struct K8sBackendObject {
    /// Lower-case hex SHA-256 of the row's primary key.
    pub name: String,
    /// The row: lower-case column names, null columns left out.
    pub spec: serde_json::Map<String, serde_json::Value>,
}

/// One object of the `k8s` backend as the data verification needs it: what names it and what
/// digests its row, not the row.
#[derive(Debug, Clone, PartialEq)]
pub struct K8sBackendRow {
    /// The object's name.
    pub name: String,
    /// The primary-key text of its row ([`crate::linstor::row_index::key_text`]); `None` for a
    /// table without a primary key.
    pub key_text: Option<String>,
    /// [`crate::linstor::export::row_digest`] of its `spec`.
    pub digest: [u8; 32],
}

impl K8sBackendRow {
    /// The row of `object`, an object of `table`.
    pub fn of(table: &Table, object: &K8sBackendObject) -> Self {
        Self {
            name: object.name.clone(),
            key_text: key_text(table, &object.spec),
            digest: row_digest(&object.spec),
        }
    }
}

/// A page of a `k8s`-backend table's rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct K8sBackendRowPage {
    pub rows: Vec<K8sBackendRow>,
    /// Where the next page starts; `None` after the last one.
    pub continue_token: Option<String>,
}

/// A page of a `k8s`-backend table's objects.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct K8sBackendPage {
    pub objects: Vec<K8sBackendObject>,
    /// Where the next page starts; `None` after the last one.
    pub continue_token: Option<String>,
}
