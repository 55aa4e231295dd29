//! Databases in the export format of a release: the recorded one (216 rows in 41 or 39 tables,
//! built through the real controller's REST API with the same calls in both releases:
//! `tests/fixtures/linstor-<version>/dataset/export-etcd.json`), and generated ones with
//! satellites, storage pools and CSI volumes ([`piraeus`], [`plain`]) that follow what the real
//! controller requires of a database (dataset-rules.txt) and have the release's shape (its
//! tables and columns, header versions and property instance names), and ones of a chosen size
//! for benchmarks ([`sized`]).

mod generate;
mod nodes;
mod security;
mod sized;

pub use generate::{PIRAEUS_NODES, PLAIN_VERSION, piraeus, plain};
pub use sized::sized;

use linstor_model::export::ExportDocument;

use crate::Release;

/// The recorded dataset of `release` (as the real tool exported it from etcd).
pub fn recorded(release: Release) -> ExportDocument {
    release.recorded_export()
}
