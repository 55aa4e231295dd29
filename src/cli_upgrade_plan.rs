//! `linstor-migrator upgrade-plan`: plans the rest of the Piraeus Operator v1 -> v2 upgrade from a
//! terminal. Runs an upgrade-plan run (read-only, no confirmation needed), prints its checks, and
//! writes the v2 resources, the bundle script and the plan as JSON into a directory.
//! Exit status: 0 when the plan has no blocking check, 1 otherwise or when the run failed.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::cli::CliError;
use crate::cluster::controller::{ControllerInfo, ControllerKind};
use crate::config::{Common, UpgradePlanArgs};
use crate::engine::{CreateRun, EngineError};
use crate::metrics::Metrics;
use crate::model::{Actor, RunKind, RunOptions, RunState};
use crate::upgrade::bundle::{self, Origin};
use crate::upgrade::{CheckOutcome, UpgradePlan};

fn failed(e: impl std::fmt::Display) -> CliError {
    CliError::Failed(e.to_string())
}

fn names(list: &[&ControllerInfo]) -> String {
    list.iter()
        .map(|c| format!("{}/{}", c.namespace, c.name))
        .collect::<Vec<_>>()
        .join(", ")
}

pub async fn run(common: &Common, args: &UpgradePlanArgs) -> Result<(), CliError> {
    let cluster = crate::app::cluster(common)
        .await
        .map_err(|e| failed(format!("{e:#}")))?;
    let engine = crate::app::engine(common, cluster, Arc::new(Metrics::default()))
        .await
        .map_err(|e| failed(format!("{e:#}")))?;
    let controllers = engine.controllers().await.map_err(failed)?;
    // only Piraeus Operator v1 installations have a v2 upgrade
    let piraeus: Vec<&ControllerInfo> = controllers
        .iter()
        .filter(|c| c.kind == ControllerKind::LinstorController)
        .collect();
    let chosen = match &args.controller {
        Some(c) => *piraeus
            .iter()
            .find(|i| i.namespace == c.namespace && i.name == c.name)
            .ok_or_else(|| {
                CliError::Usage(format!("no LinstorController {c}; found: {}", names(&piraeus)))
            })?,
        None if piraeus.len() == 1 => piraeus[0],
        None if piraeus.is_empty() => return Err(failed("no LinstorController (Piraeus Operator v1) found")),
        // the simulated cluster has several; take the first, as `migrate --demo` does
        None if common.demo => {
            println!(
                "choosing {}/{} (use --controller to pick another)",
                piraeus[0].namespace, piraeus[0].name
            );
            piraeus[0]
        }
        None => {
            return Err(CliError::Usage(format!(
                "{} LinstorControllers found; choose one with --controller: {}",
                piraeus.len(),
                names(&piraeus)
            )));
        }
    };
    let req = CreateRun {
        kind: RunKind::UpgradePlan,
        controller: chosen.reference(),
        options: RunOptions {
            v2_namespace: args.v2_namespace.clone(),
            ..RunOptions::default()
        },
    };
    let actor = Actor::new(format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    ));
    println!(
        "upgrade-plan {}{}",
        req.controller,
        if common.demo { " (simulated cluster)" } else { "" }
    );
    let (run, _) = engine.create_run(req, &actor, None).await.map_err(|e| match e {
        EngineError::Invalid(m) => CliError::Usage(m),
        other => failed(other),
    })?;
    let run = engine.wait_settled(&run.id).await.map_err(failed)?;
    engine.shutdown(Duration::from_secs(5)).await;
    engine.db().close().await;
    let plan = match (&run.state, run.report.upgrade_plan) {
        (RunState::Succeeded, Some(plan)) => plan,
        (state, _) => {
            return Err(failed(format!(
                "run {} {state}: {}",
                run.id,
                run.error.unwrap_or_default()
            )));
        }
    };
    print_checks(&plan);
    let made_at = run.finished_at.unwrap_or(run.created_at).to_rfc3339();
    write(
        &args.output,
        &plan,
        &Origin {
            run_id: &run.id,
            made_at: &made_at,
        },
    )
    .map_err(failed)?;
    println!();
    println!("written to {}:", args.output.display());
    println!("  v2-resources.yaml   the LinstorCluster and LinstorSatelliteConfigurations");
    println!("  upgrade.sh          steps 2-4 as a script (asks before each change; read it first)");
    println!("  upgrade-plan.json   the whole plan, with every v1 value and what became of it");
    match plan.blocking().count() {
        0 => Ok(()),
        n => Err(failed(format!(
            "{n} blocking check(s): deal with them before the upgrade"
        ))),
    }
}

fn print_checks(plan: &UpgradePlan) {
    println!();
    for c in &plan.checks {
        let mark = match c.outcome {
            CheckOutcome::Passed => "✔",
            CheckOutcome::Warning => "!",
            CheckOutcome::Blocking => "✘",
        };
        println!("{mark} {}: {}", c.title, c.message);
        if !c.action.is_empty() && c.outcome != CheckOutcome::Passed {
            println!("    what to do: {}", c.action);
        }
    }
    let open = plan.not_converted().count();
    if open > 0 {
        println!();
        println!("not converted ({open}):");
        for f in plan.not_converted() {
            println!("  {} spec.{} = {}", f.resource, f.field, f.value);
            println!("    {}", f.detail);
        }
    }
}

/// Writes the plan's files into `dir` (created if needed); the script is executable.
fn write(dir: &Path, plan: &UpgradePlan, origin: &Origin<'_>) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("v2-resources.yaml"), plan.yaml())?;
    let script = dir.join("upgrade.sh");
    std::fs::write(&script, bundle::script(plan, origin))?;
    #[cfg(unix)]
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let json = serde_json::to_vec_pretty(plan).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("upgrade-plan.json"), json)
}
