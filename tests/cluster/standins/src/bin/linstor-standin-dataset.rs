//! Writes a generated etcd dataset (an export file) for `LINSTOR_STANDIN_ETCD_DATA` and
//! `linstor-rest --etcd-data`.

use std::path::PathBuf;

use clap::Parser;
use linstor_standins::dataset::{self, Preset};

/// Writes the etcd data of one of the simulated cluster's controllers as an export file.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Which controller's data.
    #[arg(long, value_enum, default_value = "piraeus")]
    preset: Preset,
    /// The LINSTOR release of the `piraeus` preset (a recorded one: 1.25.1, 1.33.3).
    #[arg(long, default_value = linstor_standins::DEFAULT_VERSION)]
    linstor_version: String,
    /// Where to write it.
    file: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let release = linstor_fake::Release::of(&args.linstor_version).ok_or_else(|| {
        anyhow::anyhow!(
            "LINSTOR {} has no recordings (1.25.1, 1.33.3)",
            args.linstor_version
        )
    })?;
    let doc = dataset::generate(args.preset, release);
    dataset::write(&doc, &args.file)?;
    let rows: usize = doc.tables.iter().map(|t| t.data.len()).sum();
    println!(
        "wrote {} ({} tables, {rows} rows, LINSTOR {})",
        args.file.display(),
        doc.tables.len(),
        doc.linstor_version
    );
    Ok(())
}
