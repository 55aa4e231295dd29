//! The one model of LINSTOR 1.33.3 in this workspace. The demo's simulated cluster
//! (`linstor_migrator::cluster::sim`) and the cluster suite's stand-in binaries
//! (`tests/cluster/standins`) are thin users of it; they supply the world (files, etcd, the
//! Kubernetes API) through the traits here, so that the tool, its faults, the `k8s` backend and
//! the REST views exist once. Every behaviour is replayed against the recordings of the real
//! software in `tests/fixtures/linstor-1.33.3` (see `tests/replay_*.rs`).
//!
//! - [`dataset`]: databases in the export format: the recorded one, and generated ones that follow
//!   what the real controller requires of a database (`dataset-rules.txt`).
//! - [`tool`]: `linstor-database`: arguments, log lines, exit codes, stack traces, import and
//!   export against a [`tool::Host`].
//! - [`k8s`]: the `k8s` backend's CRDs and objects, an in-memory store with RBAC, and the import's
//!   request sequence (CRDs on a fresh cluster, truncate, one create per row).
//! - [`rest`]: the REST API's views of a database (`/v1/nodes`, `/v1/view/storage-pools`, ...).
//! - [`recorded`]: reading the recordings (tool transcripts).
//!
//! Depends on `linstor-model` (pure facts) and never on the service.

pub mod config;
pub mod dataset;
pub mod fact_sheet;
pub mod k8s;
pub mod recorded;
pub mod rest;
pub mod tool;

pub use linstor_model::{export, naming};

/// The tables of the model's LINSTOR: the version-independent types and rules of
/// `linstor_model::schema` and the 1.33.3 fact sheet.
pub mod schema {
    pub use crate::fact_sheet::{DATA_VERSION, EXPORT_ORDER, exported_tables, table, tables};
    pub use linstor_model::schema::*;
}

/// The LINSTOR version this model is of.
pub const VERSION: &str = "1.33.3";
