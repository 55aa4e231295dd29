//! The `k8s` database backend of the simulated cluster: one "CRD" per table holding objects named
//! by the SHA-256 of their primary key (REFERENCE.md §3), shared by every controller.

use std::collections::BTreeMap;

use crate::linstor::export::{ExportDocument, ExportTable, Row, k8s_object_name};
use crate::linstor::schema;

/// The `k8s` database backend: cluster-wide, shared by every controller, like the real CRDs.
#[derive(Debug, Clone, Default)]
pub(crate) struct K8sBackend {
    /// Table -> object name -> row; a table is present once LINSTOR created its CRD.
    pub tables: BTreeMap<String, BTreeMap<String, Row>>,
    /// `spec.version` of the `LinstorVersion` object.
    pub schema_version: Option<i64>,
    pub rollback_objects: u64,
}

/// The `LinstorVersion` the simulated LINSTOR 1.33 writes.
pub(crate) const K8S_SCHEMA_VERSION: i64 = 27;

impl K8sBackend {
    /// Creates every CRD (as LINSTOR does on start) and deletes every object (the import's
    /// `deletecollection`).
    pub fn truncate(&mut self) {
        for t in schema::tables() {
            self.tables.insert(t.name.clone(), BTreeMap::new());
        }
        self.schema_version = Some(K8S_SCHEMA_VERSION);
        self.rollback_objects = 0;
    }

    /// Creates one object; false when the table is unknown.
    pub fn insert(&mut self, table: &str, row: Row) -> bool {
        let Some(t) = schema::table(table) else {
            return false;
        };
        let name = k8s_object_name(t, &row);
        self.tables.entry(t.name.clone()).or_default().insert(name, row);
        true
    }

    pub fn replace_with(&mut self, doc: &ExportDocument) {
        self.truncate();
        for t in &doc.tables {
            for row in &t.data {
                self.insert(&t.name, row.clone());
            }
        }
    }

    /// The rows of `table` (empty when absent).
    pub fn rows(&self, table: &str) -> Vec<Row> {
        self.tables
            .get(table)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// What `export-db` from the `k8s` backend writes.
    pub fn to_export(&self, linstor_version: &str) -> ExportDocument {
        let tables = schema::tables()
            .iter()
            .map(|t| {
                let mut out = ExportTable::from_schema(t);
                out.data = self.rows(&t.name);
                out
            })
            .collect();
        ExportDocument {
            linstor_version: linstor_version.into(),
            export_timestamp_ms: chrono::Utc::now().timestamp_millis(),
            exported_from: "k8s".into(),
            data_version: schema::DATA_VERSION.into(),
            sql_version: None,
            k8s_version: Some(self.schema_version.unwrap_or(K8S_SCHEMA_VERSION)),
            etcd_version: None,
            tables,
        }
    }
}
