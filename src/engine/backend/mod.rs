//! What the engine does to LINSTOR's `k8s` backend, in one place that the steps call: read it
//! directly ([`read`]), empty it ([`empty`]), and write only the rows that differ from an export
//! ([`delta`]). The schema itself (CRDs, `LinstorVersion`) is always created by LINSTOR's own tool
//! (step 4).
//!
//! Nothing here is of one LINSTOR version: the tables, columns and primary keys of a run come from
//! its own export ([`RunSchema`]), the CRD version from the export's `data_version`, which must be
//! the version the cluster's CRDs store ([`RunSchema::check`]); emptying covers every table CRD of
//! the group at the version the cluster stores, whichever LINSTOR created it.

pub(super) mod delta;
pub(super) mod empty;
pub(super) mod ownership;
pub(super) mod read;

use crate::cluster::K8sBackendInventory;
use crate::linstor::export::ExportSummary;
use crate::linstor::schema::Table;

/// The tables of a run's export and the CRD version their objects live at.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct RunSchema {
    /// The export's `data_version` (`v1-19-1`, `v1-31-1`): the CRDs' storage version.
    pub version: String,
    /// In export order.
    pub tables: Vec<Table>,
}

impl RunSchema {
    /// The schema an export describes; an error when it does not say its `data_version`.
    pub fn of(export: &ExportSummary) -> Result<Self, String> {
        let version = export
            .header
            .data_version
            .clone()
            .filter(|v| !v.is_empty())
            .ok_or("the export does not say its data_version (the k8s backend's CRD version)")?;
        Ok(Self {
            version,
            tables: export.schema(),
        })
    }

    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// Whether the backend `inventory` can hold this export: the CRD of every table exists and
    /// stores [`Self::version`] (a backend created by another LINSTOR version stores another one,
    /// and reading or writing it at ours would fail, or look empty). Returns what is wrong.
    pub fn check(&self, inventory: &K8sBackendInventory) -> Result<(), String> {
        let mut missing = Vec::new();
        let mut other = Vec::new();
        for t in &self.tables {
            match inventory.crd(t.plural()) {
                None => missing.push(t.crd_name.clone()),
                Some(crd) if crd.storage_version != self.version => {
                    other.push(format!("{} stores {}", crd.name, crd.storage_version))
                }
                Some(_) => {}
            }
        }
        if missing.is_empty() && other.is_empty() {
            return Ok(());
        }
        let mut problems = Vec::new();
        if !missing.is_empty() {
            problems.push(format!(
                "{} table CRD(s) do not exist (e.g. {})",
                missing.len(),
                missing[0]
            ));
        }
        if !other.is_empty() {
            problems.push(format!(
                "{} table CRD(s) store another version than the export's {} (e.g. {}): the backend's schema is \
                 of another LINSTOR version",
                other.len(),
                self.version,
                other[0]
            ));
        }
        Err(problems.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::BackendCrd;
    use crate::linstor::export::tests::{doc, summary_of};

    fn crd(plural: &str, version: &str) -> BackendCrd {
        BackendCrd {
            name: format!("{plural}.internal.linstor.linbit.com"),
            plural: plural.into(),
            storage_version: version.into(),
            ..BackendCrd::default()
        }
    }

    #[test]
    fn the_schema_is_the_exports_and_must_match_the_stored_version() {
        let schema = RunSchema::of(&summary_of(&doc("etcd"))).unwrap();
        assert_eq!(schema.version, "v1-31-1");
        assert_eq!(schema.tables.len(), 3);
        assert_eq!(schema.table("SEC_ROLES").unwrap().plural(), "secroles");

        let mut inv = K8sBackendInventory {
            crds: ["nodes", "secroles", "files"]
                .iter()
                .map(|p| crd(p, "v1-31-1"))
                .collect(),
            ..K8sBackendInventory::default()
        };
        schema.check(&inv).unwrap();
        inv.crds[1].storage_version = "v1-19-1".into();
        inv.crds.pop();
        let err = schema.check(&inv).unwrap_err();
        assert!(err.contains("files.internal.linstor.linbit.com"), "{err}");
        assert!(
            err.contains("secroles.internal.linstor.linbit.com stores v1-19-1"),
            "{err}"
        );
    }

    #[test]
    fn an_export_without_data_version_has_no_schema() {
        let mut s = summary_of(&doc("etcd"));
        s.header.data_version = None;
        assert!(RunSchema::of(&s).unwrap_err().contains("data_version"));
    }
}

#[cfg(test)]
mod sim_tests;
