//! The etcd data the tests start from: `linstor-fake`'s generated LINSTOR databases (the same
//! ones the simulated cluster serves), so that unit, API and cluster tests share one dataset.

use std::path::Path;

use linstor_fake::Release;
use linstor_migrator::linstor::export::ExportDocument;

/// Which generated database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// The Piraeus-managed controller `piraeus-datastore/piraeus-op-cs` (4 nodes, 18 volumes), of
    /// a LINSTOR release.
    Piraeus,
    /// The plain controller Deployment `storage/linstor-controller` (3 nodes, LINSTOR 1.32.3).
    Plain,
}

/// The etcd export of `preset` (the Piraeus one of `release`; the plain one is of 1.32.3).
pub fn generate(preset: Preset, release: Release) -> ExportDocument {
    match preset {
        Preset::Piraeus => linstor_fake::dataset::piraeus(release),
        Preset::Plain => linstor_fake::dataset::plain(),
    }
}

/// Writes `doc` as pretty JSON (the format `LINSTOR_STANDIN_ETCD_DATA` expects).
pub fn write(doc: &ExportDocument, path: &Path) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(doc).map_err(std::io::Error::other)?;
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_full_etcd_exports() {
        for release in Release::ALL {
            let doc = generate(Preset::Piraeus, release);
            assert_eq!(doc.exported_from, "etcd");
            // the tables a real export of the release writes (linstor-fake's generator)
            assert_eq!(doc.tables.len(), release.recorded().export_tables);
            let nodes = doc.tables.iter().find(|t| t.name == "NODES").unwrap();
            assert!(!nodes.data.is_empty());
            assert_ne!(generate(Preset::Plain, release), doc);
        }
    }
}
