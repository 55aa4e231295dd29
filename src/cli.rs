//! One run from a terminal: `linstor-migrator migrate|backup|preflight`. Prints the plan, asks
//! for confirmation, shows step progress and ends with the backup's path and SHA-256 and the
//! verification summary. A run a previous invocation left unfinished (a crash, a killed
//! terminal) is followed and finished instead of starting another. Ctrl-C cancels like the
//! cancel button (the run stops at its next safe point and rolls back); a second Ctrl-C prints
//! the controller's state and exits, the run recorded as it is. With a real cluster the CLI
//! holds the controller's Lease like the service, so the two never act on one controller.
//! Exit status: 0 success, 1 failure or rollback, 2 usage error, 130 interrupted.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::cluster::controller::ControllerKind;
use crate::config::{Common, RunArgs};
use crate::db::EventKind;
use crate::engine::{CreateRun, EngineError, RunView};
use crate::metrics::Metrics;
use crate::model::{Actor, ControllerRef, RunKind, RunOptions, RunState};

/// Why a one-shot command ended without success.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Wrong or missing input: exit 2.
    #[error("{0}")]
    Usage(String),
    /// The run failed, was rolled back or could not start: exit 1.
    #[error("{0}")]
    Failed(String),
    /// Ctrl-C twice: the run is left as recorded (exit 130, as a shell reports SIGINT).
    #[error("{0}")]
    Interrupted(String),
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Failed(_) => 1,
            CliError::Interrupted(_) => 130,
        }
    }
}

fn failed(e: impl std::fmt::Display) -> CliError {
    CliError::Failed(e.to_string())
}

/// Runs one run of `kind` to its end.
pub async fn run(common: &Common, kind: RunKind, args: &RunArgs) -> Result<(), CliError> {
    let cluster = crate::app::cluster(common)
        .await
        .map_err(|e| failed(format!("{e:#}")))?;
    let engine = crate::app::engine(common, cluster, Arc::new(Metrics::default()))
        .await
        .map_err(|e| failed(format!("{e:#}")))?;
    let controllers = engine.controllers().await.map_err(failed)?;
    let chosen = choose(&controllers, args.controller.as_ref())?;
    let reference = ControllerRef::new(&chosen.namespace, &chosen.name);
    let actor = Actor::new(format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    ));
    let mut interrupts = Interrupts::listen()?;
    // a run an earlier invocation left unfinished (Ctrl-C twice, a crash): its outcome, and
    // nothing new in the same invocation
    let earlier = unfinished(&engine, &reference).await?;
    let followed_earlier = earlier.is_some();
    let result = match earlier {
        Some(earlier) => finish_held(&engine, earlier, &actor, args, &mut interrupts).await?,
        None => {
            announce(common, kind, &reference, chosen);
            if kind != RunKind::Preflight && !args.yes && !confirm("Proceed?")? {
                return Err(CliError::Usage("not confirmed".into()));
            }
            let options = RunOptions {
                approve_before_downtime: args.approve_before_downtime,
                auto_rollback: !args.no_rollback,
                allow_non_etcd_source: args.allow_non_etcd_source,
                scale_down_etcd: args.scale_down_etcd,
                import: args.import.unwrap_or_default(),
                demo_scenario: common.demo_scenario,
                ..RunOptions::default()
            };
            let req = CreateRun {
                kind,
                controller: reference,
                options,
            };
            let (run, _) = engine.create_run(req, &actor, None).await.map_err(|e| match e {
                EngineError::Invalid(m) => CliError::Usage(m),
                other => failed(other),
            })?;
            follow(&engine, &run.id, &actor, &mut interrupts).await?
        }
    };
    let result = if result.state == RunState::Waiting {
        if !confirm("Steps 1-3 are done. Begin the downtime now?")? {
            engine.cancel(&result.id, &actor).await.map_err(failed)?;
        } else {
            engine.approve(&result.id, &actor).await.map_err(failed)?;
        }
        follow(&engine, &result.id, &actor, &mut interrupts).await?
    } else {
        result
    };
    engine.shutdown(Duration::from_secs(5)).await;
    engine.db().close().await;
    summary(common, &result);
    if followed_earlier {
        println!(
            "run {} was left unfinished by an earlier invocation; it is {} now and nothing new was started \
             (run the command again to start a new {kind})",
            result.id, result.state
        );
    }
    match result.state {
        RunState::Succeeded => Ok(()),
        state => Err(failed(format!(
            "run {} {state}: {}",
            result.id,
            result.error.unwrap_or_default()
        ))),
    }
}

/// What the run will do, before it is confirmed.
fn announce(
    common: &Common,
    kind: RunKind,
    reference: &ControllerRef,
    chosen: &crate::cluster::controller::ControllerInfo,
) {
    println!(
        "{} {reference}{}",
        kind.as_str(),
        if common.demo { " (simulated cluster)" } else { "" }
    );
    if let Some(s) = common.demo_scenario {
        println!("  demo scenario: {}", s.label());
    }
    println!(
        "  managed by {}, image {}, database {} ({}), replicas {}",
        describe_kind(chosen.kind),
        chosen.image.as_deref().unwrap_or("?"),
        chosen.backend,
        chosen.connection_url.as_deref().unwrap_or("?"),
        chosen.replicas
    );
    println!(
        "  steps: {}",
        kind.steps()
            .iter()
            .map(|s| s.title())
            .collect::<Vec<_>>()
            .join(" → ")
    );
    if kind != RunKind::Preflight {
        println!("  the controller is stopped from \"Stop controller\" to \"Start controller\"");
        println!("  data directory: {}", common.data_dir.display());
    }
}

/// The controller named with `--controller`; without it, the only one there is. Never one the
/// CLI picked among several: a wrong guess stops a controller nobody named.
fn choose<'a>(
    controllers: &'a [crate::cluster::controller::ControllerInfo],
    named: Option<&ControllerRef>,
) -> Result<&'a crate::cluster::controller::ControllerInfo, CliError> {
    match (named, controllers) {
        (Some(c), _) => controllers
            .iter()
            .find(|i| i.namespace == c.namespace && i.name == c.name)
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "controller {c} does not exist; found: {}",
                    list(controllers)
                ))
            }),
        (None, [only]) => Ok(only),
        (None, []) => Err(failed("no LINSTOR controller found")),
        (None, several) => Err(CliError::Usage(format!(
            "{} controllers found; name one with --controller NAMESPACE/NAME:\n{}",
            several.len(),
            several
                .iter()
                .map(|c| format!(
                    "  {}/{} ({}, {})",
                    c.namespace,
                    c.name,
                    c.backend,
                    describe_kind(c.kind)
                ))
                .collect::<Vec<_>>()
                .join("\n")
        ))),
    }
}

fn describe_kind(kind: ControllerKind) -> &'static str {
    match kind {
        ControllerKind::LinstorController => "LinstorController",
        ControllerKind::Deployment => "Deployment",
    }
}

/// A run of `controller` that an earlier invocation left unfinished: one this process resumed
/// at its start (it may have ended by now), or one that still holds the controller (a rollback
/// that gave up).
async fn unfinished(
    engine: &crate::engine::Engine,
    controller: &ControllerRef,
) -> Result<Option<RunView>, CliError> {
    let reference = controller.to_string();
    for id in engine.resumed_at_start() {
        let run = engine.run(id).await.map_err(failed)?;
        if run.controller == reference {
            return Ok(Some(run));
        }
    }
    engine.run_holding(controller).await.map_err(failed)
}

/// A run of this controller that an earlier invocation left unfinished: an interrupted one is
/// followed (the engine resumed it on start); a rollback that gave up is retried when confirmed.
async fn finish_held(
    engine: &crate::engine::Engine,
    held: RunView,
    actor: &Actor,
    args: &RunArgs,
    interrupts: &mut Interrupts,
) -> Result<RunView, CliError> {
    if held.state == RunState::RollbackFailed {
        println!(
            "run {} of this controller could not finish its rollback:",
            held.id
        );
        println!("  {}", held.error.as_deref().unwrap_or(""));
        if let Some(f) = &held.report.rollback_failure {
            println!("  to finish it by hand:");
            for c in &f.commands {
                println!("    {c}");
            }
        }
        if !args.yes && !confirm("Retry the rollback now?")? {
            return Err(failed(format!(
                "run {} still needs its rollback finished",
                held.id
            )));
        }
        engine.resume(&held.id, actor).await.map_err(failed)?;
    } else {
        println!(
            "following run {} ({} {}), which an earlier invocation left unfinished",
            held.id, held.kind, held.state
        );
    }
    // an interrupted run the engine finished at its start has nothing left to follow: its
    // history is shown all the same
    follow(engine, &held.id, actor, interrupts).await
}

/// Ctrl-C presses while following a run: one listener for the whole command, so that a press
/// that arrives while the output is being printed is not lost.
struct Interrupts {
    count: u32,
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
}

impl Interrupts {
    fn listen() -> Result<Self, CliError> {
        Ok(Self {
            count: 0,
            #[cfg(unix)]
            signal: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
                .map_err(|e| failed(format!("cannot listen for Ctrl-C: {e}")))?,
        })
    }

    /// The next press.
    async fn next(&mut self) {
        #[cfg(unix)]
        self.signal.recv().await;
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn list(controllers: &[crate::cluster::controller::ControllerInfo]) -> String {
    if controllers.is_empty() {
        return "none".into();
    }
    controllers
        .iter()
        .map(|c| format!("{}/{}", c.namespace, c.name))
        .collect::<Vec<_>>()
        .join(", ")
}

fn confirm(question: &str) -> Result<bool, CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Usage(
            "standard input is not a terminal: pass --yes to proceed".into(),
        ));
    }
    print!("{question} [y/N] ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(failed)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

/// Shows progress until the run settles (final or waiting). Ctrl-C cancels the run (a safe
/// point, then a rollback); a second one prints the controller's state and gives up following,
/// leaving the run recorded as it is.
async fn follow(
    engine: &crate::engine::Engine,
    id: &str,
    actor: &Actor,
    interrupts: &mut Interrupts,
) -> Result<RunView, CliError> {
    let view = engine.run(id).await.map_err(failed)?;
    let bar = ProgressBar::new(view.steps.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner:.cyan} [{pos}/{len}] {elapsed_precise} {wide_msg}")
            .expect("valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let mut rx = engine.subscribe(id);
    let mut last = 0i64;
    loop {
        // history first (covers events published before subscribing), then live
        for ev in engine.events(id, last, 1000, false).await.map_err(failed)? {
            last = ev.seq;
            show(&bar, &ev);
        }
        let v = engine.run(id).await.map_err(failed)?;
        let done = v
            .steps
            .iter()
            .filter(|s| s.state.as_str() == "succeeded" || s.state.as_str() == "skipped")
            .count();
        bar.set_position(done as u64);
        let settled = v.state.is_final() || (v.state == RunState::Waiting && !v.cancel_requested);
        if settled && !engine.is_driving(id) {
            for ev in engine.events(id, last, 10_000, false).await.map_err(failed)? {
                show(&bar, &ev);
            }
            bar.finish_and_clear();
            return Ok(v);
        }
        tokio::select! {
            _ = tokio::time::timeout(Duration::from_millis(500), rx.recv()) => {}
            () = interrupts.next() => {
                interrupts.count += 1;
                if interrupts.count >= 2 {
                    bar.finish_and_clear();
                    return Err(interrupted(engine, id).await);
                }
                let said = match engine.cancel(id, actor).await {
                    Ok(_) => "Ctrl-C: cancelling; the run stops at its next safe point and rolls back if the controller \
                              was stopped. Ctrl-C again to stop following (the run stays recorded)."
                        .to_string(),
                    Err(e) => format!(
                        "Ctrl-C: {e}. It goes on by itself; Ctrl-C again to stop following (the run stays recorded)."
                    ),
                };
                print_line(&bar, said);
            }
        }
    }
}

/// The second Ctrl-C: what the controller looks like now and how to pick the run up again.
async fn interrupted(engine: &crate::engine::Engine, id: &str) -> CliError {
    let run = engine.run(id).await;
    println!();
    match &run {
        Ok(r) => println!(
            "run {id} is recorded as {} ({:?}); it is not finished",
            r.state, r.phase
        ),
        Err(e) => println!("run {id}: {e}"),
    }
    match engine.describe_controller(id).await {
        Ok(lines) if !lines.is_empty() => {
            println!("the controller now:");
            for l in lines {
                println!("  {l}");
            }
        }
        Ok(_) => println!("the controller was not changed"),
        Err(e) => println!("cannot look at the controller: {e}"),
    }
    println!("run the same command with the same --data-dir to finish the run");
    CliError::Interrupted(format!("interrupted; run {id} is left as recorded"))
}

/// A line above the progress bar, or plainly without a terminal (the bar is hidden then).
fn print_line(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        println!("{line}")
    } else {
        bar.println(line)
    }
}

fn show(bar: &ProgressBar, ev: &crate::db::EventRecord) {
    let print = |line: String| print_line(bar, line);
    match ev.kind {
        EventKind::Step if ev.level == "running" => {
            bar.set_message(ev.message.clone());
            if bar.is_hidden() {
                println!("  • {}", ev.message);
            }
        }
        EventKind::Step => print(format!("  {} {}", mark(&ev.level), ev.message)),
        EventKind::Run => print(format!("» {}", ev.message)),
        EventKind::Log => {
            bar.set_message(ev.message.chars().take(120).collect::<String>());
            if ev.level == "warn" || ev.level == "error" {
                print(format!("    {}: {}", ev.level, ev.message));
            }
        }
    }
}

fn mark(state: &str) -> &'static str {
    match state {
        "succeeded" => "✔",
        "failed" => "✘",
        "rolled_back" => "↺",
        "skipped" => "·",
        _ => "•",
    }
}

fn summary(common: &Common, run: &RunView) {
    println!();
    println!("run {} {}", run.id, run.state);
    if let Some(d) = &run.downtime {
        println!("controller downtime: {:.1} s", d.seconds);
    }
    if let Some(r) = &run.rollback {
        println!(
            "manual rollback: {:.1} s{}",
            r.seconds,
            r.downtime
                .as_ref()
                .map(|d| format!(", controller down {:.1} s of it", d.seconds))
                .unwrap_or_default()
        );
    }
    if run.kind == RunKind::Preflight {
        for c in &run.report.checks {
            let mark = match c.level {
                crate::engine::CheckLevel::Ok => "✔",
                crate::engine::CheckLevel::Warning => "!",
                crate::engine::CheckLevel::Error => "✘",
            };
            println!("{mark} {}: {}", c.name, c.message);
        }
        if let Some(p) = &run.report.planned {
            println!("a {} would:", p.kind);
            for s in &p.steps {
                let down = if s.downtime { " [controller down]" } else { "" };
                println!("  {}. {}{down}: {}", s.number, s.title, s.what);
            }
            for c in &p.changes {
                println!("  changes: {c}");
            }
        }
    }
    for b in &run.backups {
        println!(
            "{} backup: {} ({} bytes, {} tables, {} rows)",
            b.purpose,
            common
                .data_dir
                .join("backups")
                .join(&run.id)
                .join(&b.name)
                .display(),
            b.size_bytes,
            b.tables,
            b.rows
        );
        println!("  sha256 {}", b.sha256);
    }
    if let Some(v) = &run.report.data_verification {
        println!(
            "data verification: {} tables, {} rows compared, {}",
            v.tables_compared,
            v.rows_compared,
            if v.is_equal() {
                "equal".to_string()
            } else {
                format!("{} tables differ", v.differences.len())
            }
        );
    }
    if let Some(v) = &run.report.cluster_verification {
        println!(
            "cluster verification: {} nodes, {} storage pools, {} resources, {} volumes, {}",
            v.nodes,
            v.storage_pools,
            v.resources,
            v.volumes,
            if v.is_equal() {
                "unchanged".to_string()
            } else {
                format!("{} differences", v.differences.len())
            }
        );
    }
    if let Some(cmd) = &run.report.helm_command
        && run.kind == RunKind::Migrate
        && run.state == RunState::Succeeded
    {
        let drift: Option<crate::cluster::helm::HelmDrift> = run
            .report
            .helm
            .clone()
            .and_then(|h| serde_json::from_value(h).ok());
        let chart = drift.as_ref().and_then(|d| d.chart.clone());
        println!(
            "persist the change in Helm{}:",
            chart
                .map(|c| format!(" (the release's chart {c})"))
                .unwrap_or_default()
        );
        for line in cmd.lines() {
            println!("  {line}");
        }
        for change in drift.iter().flat_map(|d| d.persist_changes.iter()) {
            println!("  - {change}");
        }
        if let Some(d) = drift
            && let (Some(drop), Some(warning)) = (d.drop_etcd_command, d.drop_etcd_warning)
        {
            println!("later, only when you will not roll back, remove etcd (it {warning}):");
            println!("  {drop}");
        }
    }
    if let Some(e) = &run.error {
        println!("error: {e}");
    }
}
