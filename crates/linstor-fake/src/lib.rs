//! The one model of LINSTOR in this workspace, of every recorded release ([`Release`]: 1.25.1, the
//! Piraeus v1.10.8 chart's default, and 1.33.3). The demo's simulated cluster
//! (`linstor_migrator::cluster::sim`) and the cluster suite's stand-in binaries
//! (`tests/cluster/standins`) are thin users of it; they supply the world (files, etcd, the
//! Kubernetes API, time) through the traits here, so that the tool, its faults, the `k8s` backend
//! and the REST views exist once. Every behaviour is replayed against both recording sets of the
//! real software in `tests/fixtures/linstor-<version>` (see `tests/replay_*.rs`).
//!
//! - [`release`]: the recorded releases and the facts of each that an export cannot give.
//! - [`schema`]: each release's tables, from its recorded export.
//! - [`dataset`]: databases in the export format of a release: the recorded one, and generated
//!   ones that follow what the real controller requires of a database (`dataset-rules.txt`).
//! - [`tool`]: `linstor-database`: arguments, log lines, exit codes, stack traces, import and
//!   export against a [`tool::Host`].
//! - [`k8s`]: the `k8s` backend's CRDs and objects, an in-memory store with RBAC, and the import's
//!   request sequence (schema migrations, truncate, one create per row).
//! - [`rest`]: the REST API's views of a database (`/v1/nodes`, `/v1/view/storage-pools`, ...).
//! - [`recorded`]: reading the recordings (tool transcripts).
//!
//! Depends on `linstor-model` (pure facts) and never on the service.

pub mod config;
pub mod dataset;
pub mod k8s;
pub mod recorded;
pub mod release;
pub mod rest;
pub mod schema;
pub mod tool;

pub use linstor_model::{export, naming};
pub use release::Release;
