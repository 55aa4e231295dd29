//! The `linstor-migrator` binary: parses the command line and runs the service or one run.

use std::process::ExitCode;

use clap::Parser;
use linstor_migrator::config::{Cli, Command};
use linstor_migrator::model::RunKind;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    linstor_migrator::app::init_tracing(cli.common.log_format);
    let result = match &cli.command {
        Command::Serve(args) => linstor_migrator::serve::run(&cli.common, args)
            .await
            .map_err(|e| (1, format!("{e:#}"))),
        Command::Migrate(args) => one(&cli, RunKind::Migrate, args).await,
        Command::Backup(args) => one(&cli, RunKind::Backup, args).await,
        Command::Preflight(args) => one(&cli, RunKind::Preflight, args).await,
        Command::UpgradePlan(args) => linstor_migrator::cli_upgrade_plan::run(&cli.common, args)
            .await
            .map_err(|e| (e.exit_code() as u8, e.to_string())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, message)) => {
            eprintln!("error: {message}");
            ExitCode::from(code)
        }
    }
}

async fn one(cli: &Cli, kind: RunKind, args: &linstor_migrator::config::RunArgs) -> Result<(), (u8, String)> {
    linstor_migrator::cli::run(&cli.common, kind, args)
        .await
        .map_err(|e| (e.exit_code() as u8, e.to_string()))
}
