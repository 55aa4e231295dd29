//! Databases in the export format: the recorded one (216 rows in 39 tables, built through the
//! real controller's REST API: tests/fixtures/linstor-1.33.3/dataset/export-etcd.json), and
//! generated ones with satellites, storage pools and CSI volumes ([`piraeus`], [`plain`]) that
//! follow what the real controller requires of a database (dataset-rules.txt) and have the
//! recorded export's shape, and ones of a chosen size for benchmarks ([`sized`]).

mod generate;
mod nodes;
mod security;
mod sized;

pub use generate::{PIRAEUS_NODES, piraeus, plain};
pub use sized::sized;

use linstor_model::export::ExportDocument;

/// The recorded export from etcd, byte-exact tool output.
pub const RECORDED_ETCD_JSON: &str =
    include_str!("../../../../tests/fixtures/linstor-1.33.3/dataset/export-etcd.json");

/// The recorded dataset (as the real tool exported it from etcd).
pub fn recorded() -> ExportDocument {
    serde_json::from_str(RECORDED_ETCD_JSON).expect("the recorded export parses")
}
