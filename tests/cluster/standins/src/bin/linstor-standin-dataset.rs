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
    /// Where to write it.
    file: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let doc = dataset::generate(args.preset);
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
