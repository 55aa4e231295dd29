//! The etcd data the tests start from: the simulated cluster's generated LINSTOR 1.33
//! databases (`linstor_migrator::cluster::sim`), so that unit, API and cluster tests share one
//! dataset. Reached through `SimCluster`'s public API, the only public door to the generator.

use std::path::Path;

use linstor_migrator::cluster::sim::{SimCluster, SimTiming};
use linstor_migrator::linstor::export::ExportDocument;

/// Which generated database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// The Piraeus-managed controller `piraeus-datastore/piraeus-op-cs` (4 nodes, 18 volumes).
    Piraeus,
    /// The plain controller Deployment `storage/linstor-controller` (3 nodes, LINSTOR 1.32.3).
    Plain,
}

/// The etcd export of `preset`.
pub fn generate(preset: Preset) -> ExportDocument {
    let sim = SimCluster::new(SimTiming::instant());
    let (ns, name) = match preset {
        Preset::Piraeus => SimCluster::CR_CONTROLLER,
        Preset::Plain => SimCluster::PLAIN_CONTROLLER,
    };
    sim.etcd_dataset_of(ns, name)
        .unwrap_or_else(|| sim.etcd_dataset())
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
        let doc = generate(Preset::Piraeus);
        assert_eq!(doc.exported_from, "etcd");
        assert_eq!(doc.tables.len(), 43);
        let nodes = doc.tables.iter().find(|t| t.name == "NODES").unwrap();
        assert!(!nodes.data.is_empty());
        assert_ne!(generate(Preset::Plain), doc);
    }
}
