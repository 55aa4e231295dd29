//! Downtime benchmark: whole migrations on the loopback control plane (tests/cluster/start.sh)
//! per LINSTOR release and dataset size, each with the default options (`import: auto`, the
//! delta for a recorded release) and with `options.import = "tool"`, side by side. Per migration:
//! the controller's downtime (stop begun -> ready again) split per step, the `linstor-database`
//! runs inside it, the controller's own start, the service's overhead, the rows written during
//! the downtime, and the peak memory of the service's process; per size the copy-out of the backup against `kubectl cp`. The stand-in tool takes the real tool's recorded
//! time of its release (`LINSTOR_STANDIN_PACE=recorded`, `linstor_standins::pace`), and the
//! controller's pod the recorded start of its release at the dataset's size
//! (`pace::controller_start`).
//!
//! `tests/cluster/bench` starts the control plane and runs it; under `cargo test`, or without a
//! control plane (`CLUSTER_DIR` unset), it explains itself and does nothing.
//! Env: `BENCH_RELEASES` (default `1.25.1,1.33.3`), `BENCH_SIZES` (default `20k`),
//! `BENCH_IMPORTS` (default `default,tool`; also `delta`; the copy-out is measured after the
//! last), `BENCH_REPORT` (a file for the markdown).
//! It reuses the cluster tests' modules (tests/e2e): installation, service, measurements.

#[allow(dead_code)]
#[path = "../../tests/e2e/chart.rs"]
mod chart;
#[allow(dead_code)]
#[path = "../../tests/e2e/inspect.rs"]
mod inspect;
#[allow(dead_code)]
#[path = "../../tests/e2e/install.rs"]
mod install;
#[allow(dead_code)]
#[path = "../../tests/e2e/measure.rs"]
mod measure;
#[allow(dead_code)]
#[path = "../../tests/e2e/objects.rs"]
mod objects;
#[allow(dead_code)]
#[path = "../../tests/e2e/observe.rs"]
mod observe;
#[allow(dead_code)]
#[path = "../../tests/e2e/process.rs"]
mod process;
#[allow(dead_code)]
#[path = "../../tests/e2e/service.rs"]
mod service;
#[allow(dead_code)]
#[path = "../../tests/e2e/suite.rs"]
mod suite;

mod machine;
mod report;

use std::time::Duration;

use anyhow::{Context as _, bail};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use linstor_fake::Release;
use linstor_migrator::linstor::export::ExportDocument;
use linstor_standins::pace::{self, Pace};
use serde_json::{Value, json};

use install::{Contents, ControllerPace, Installation, Shape};
use observe::PodClock;
use report::{CopyOut, Measured, SizeResult};
use service::{Service, step_json};

/// The Piraeus installation's namespace (the chart's RBAC binds the controller's rights there).
const NAMESPACE: &str = "piraeus-datastore";
/// The pacing of the stand-in tool.
const PACE: &str = "recorded";
/// Longest one migration may take (the 100k tool import alone is about 5 minutes).
const RUN_TIMEOUT: Duration = Duration::from_secs(40 * 60);
/// A pod of the installation's namespace whose container `migration` KWOK's exec runs here, to
/// copy each size's backup out of once the migration pod is gone.
const COPY_POD: &str = "bench-copy";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("downtime: a benchmark; run it with tests/cluster/bench (nothing to do under cargo test)");
        return Ok(());
    }
    if std::env::var_os("CLUSTER_DIR").is_none() {
        println!(
            "downtime: needs the loopback control plane; run it with tests/cluster/bench (CLUSTER_DIR is not set)"
        );
        return Ok(());
    }
    let releases = releases(&std::env::var("BENCH_RELEASES").unwrap_or_else(|_| "1.25.1,1.33.3".into()))?;
    let sizes = sizes(&std::env::var("BENCH_SIZES").unwrap_or_else(|_| "20k".into()))?;
    let modes = modes(&std::env::var("BENCH_IMPORTS").unwrap_or_else(|_| "default,tool".into()))?;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(bench(releases, sizes, modes))
}

/// `1.25.1,1.33.3` -> the releases the model plays.
fn releases(list: &str) -> anyhow::Result<Vec<Release>> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|v| {
            Release::of(v).with_context(|| {
                format!("BENCH_RELEASES: {v:?} is not a recorded LINSTOR release (1.25.1, 1.33.3)")
            })
        })
        .collect()
}

/// `1k,20k,100k` -> labels and row counts.
fn sizes(list: &str) -> anyhow::Result<Vec<(String, usize)>> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let n = match s.strip_suffix('k') {
                Some(k) => k.parse::<usize>().map(|k| k * 1000),
                None => s.parse(),
            };
            n.map(|n| (s.to_string(), n))
                .with_context(|| format!("BENCH_SIZES: {s:?} is not a row count (1k, 20000)"))
        })
        .collect()
}

/// `default,tool` -> the import options, in that order (`default`: none given).
fn modes(list: &str) -> anyhow::Result<Vec<&'static str>> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|m| match m {
            "default" => Ok("default"),
            "tool" => Ok("tool"),
            "delta" => Ok("delta"),
            other => bail!("BENCH_IMPORTS: {other:?} is not an import option (default, tool, delta)"),
        })
        .collect()
}

async fn bench(
    releases: Vec<Release>,
    sizes: Vec<(String, usize)>,
    modes: Vec<&'static str>,
) -> anyhow::Result<()> {
    let started = chrono::Utc::now();
    let load_before = machine::load();
    let mut results = Vec::new();
    for release in releases {
        for (label, target) in &sizes {
            let doc = linstor_fake::dataset::sized(release, *target);
            let count = |t: &str| doc.table(t).map_or(0, |t| t.data.len());
            let mut result = SizeResult {
                release,
                label: label.clone(),
                rows: doc.total_rows(),
                resource_definitions: count("RESOURCE_DEFINITIONS"),
                volumes: count("VOLUMES"),
                runs: Vec::new(),
                copy: None,
            };
            for (i, mode) in modes.iter().copied().enumerate() {
                eprintln!(
                    "[bench {}] LINSTOR {} {label} ({} rows): migration with import = {mode}",
                    chrono::Utc::now().format("%H:%M:%S"),
                    release.version(),
                    result.rows
                );
                let copy = i + 1 == modes.len();
                let (measured, copy_out) = migrate(release, &doc, mode, copy).await?;
                eprintln!(
                    "[bench] {} {label} {mode}: downtime {:.2} s, service overhead {:.2} s",
                    release.version(),
                    measured.downtime.total(),
                    measured.downtime.overhead()
                );
                result.runs.push(measured);
                result.copy = result.copy.or(copy_out);
            }
            results.push(result);
            // after every size, so that an interrupted run keeps what it measured
            write_report(&results, started, &load_before, false)?;
        }
    }
    write_report(&results, started, &load_before, true)?;
    Ok(())
}

/// Writes the report so far to `BENCH_REPORT`; prints it when `print`.
fn write_report(
    results: &[SizeResult],
    started: chrono::DateTime<chrono::Utc>,
    load_before: &str,
    print: bool,
) -> anyhow::Result<()> {
    let mut lines = vec![
        format!(
            "Downtime benchmark, {} UTC, {}; load average {load_before} before, {} now.",
            started.format("%Y-%m-%d %H:%M"),
            machine::describe(),
            machine::load()
        ),
        format!("Stand-in `linstor-database` paced `{PACE}` (timing.txt of each release):"),
    ];
    let mut seen = Vec::new();
    for r in results {
        if seen.contains(&r.release) {
            continue;
        }
        seen.push(r.release);
        lines.push(format!(
            "- {}: tool: {}; controller start: {}.",
            r.release.version(),
            Pace::recorded(r.release).describe(),
            pace::describe_controller_start(r.release)
        ));
    }
    lines.extend([
        format!(
            "Service: {}.",
            std::env::var("BENCH_BINARY_LABEL").unwrap_or_else(|_| "the host's release build".into())
        ),
        "Controller: the REST stand-in; its KWOK pod becomes Ready after the release's recorded start \
         at the dataset's size, then the stand-in loads the database (its own load time adds to the \
         recorded start). Times in seconds; the step columns are the downtime's steps."
            .into(),
        String::new(),
    ]);
    lines.extend(report::markdown(results));
    let text = lines.join("\n") + "\n";
    if print {
        println!("\n{text}");
    }
    if let Some(path) = std::env::var_os("BENCH_REPORT") {
        std::fs::write(&path, &text).with_context(|| format!("writing {path:?}"))?;
    }
    Ok(())
}

/// One whole migration of `doc` with `options.import = mode` (none for `default`), in a fresh
/// installation of `release`; with `copy`, also the backup's copy-out against `kubectl cp`.
async fn migrate(
    release: Release,
    doc: &ExportDocument,
    mode: &'static str,
    copy: bool,
) -> anyhow::Result<(Measured, Option<CopyOut>)> {
    let contents = Contents {
        etcd_data: Some(doc.clone()),
        tool_pace: Some(PACE.into()),
        linstor: Some(release),
    };
    let controller = ControllerPace {
        start: pace::controller_start(release, doc.total_rows()),
        stop: Duration::ZERO,
    };
    let inst = Installation::with_contents(NAMESPACE, Shape::Piraeus, 1, controller, contents).await;
    let (clock, watch) =
        PodClock::start(&inst.client, &inst.ns, "app.kubernetes.io/instance=piraeus-op-cs").await;
    let rest_up_at = measure::rest_up_recorder(inst.rest_url.clone());
    let svc = Service::start(&inst).await;

    let options = match mode {
        "default" => json!({}),
        mode => json!({"import": mode}),
    };
    let (status, body) = svc.start_run("migrate", &inst.reference(), options).await;
    if status != 201 {
        bail!("POST /api/v1/runs: {status} {body}");
    }
    let id = body["id"].as_str().context("a run id")?.to_string();
    let run = svc.wait_final(&id, RUN_TIMEOUT).await;
    let pid = svc.pid().context("the service's pid")?;
    let peak_rss_kib = machine::peak_rss_kib(pid).map_err(anyhow::Error::msg)?;
    watch.abort();
    if run["state"] != "succeeded" {
        let log = svc.log_text(&id).await;
        bail!(
            "the {mode} migration ended {}: {}\nlog:\n{log}",
            run["state"],
            run["error"]
        );
    }
    let downtime = measure::downtime(&inst, &run, &clock, &rest_up_at);
    let import = &run["report"]["import_report"];
    let fallback = import["fallback"].as_str().map(str::to_string);
    // what `auto` chose, for `default`
    let chosen = import["mode"].as_str().unwrap_or(mode).to_string();
    let rows_written = match (chosen.as_str(), &fallback) {
        ("delta", None) => ["created", "changed", "removed"]
            .iter()
            .map(|k| import["delta"][k].as_u64().unwrap_or(0))
            .sum(),
        // the tool's import writes every row (after the delta, when it fell back)
        _ => doc.total_rows() as u64,
    };
    let copy_out = match copy {
        true => Some(copy_out(&inst, &svc, &run).await?),
        false => None,
    };
    let measured = Measured {
        mode,
        chosen,
        downtime,
        rows_written,
        fallback,
        peak_rss_kib,
    };
    Ok((measured, copy_out))
}

/// The run's backup, copied out of a pod of the installation by the service's copy code and by
/// `kubectl cp` (the migration pod is gone after the cleanup: a pod of its own stands in).
async fn copy_out(inst: &Installation, svc: &Service, run: &Value) -> anyhow::Result<CopyOut> {
    let id = run["report"]["backup_id"].as_str().context("the backup id")?;
    let backups = run["backups"].as_array().context("backups")?;
    let backup = backups
        .iter()
        .find(|b| b["id"] == id)
        .context("the backup is listed")?;
    let bytes = svc
        .bytes(backup["url"].as_str().context("the backup's url")?)
        .await;
    let file = inst.dir.join("copy-source.json");
    std::fs::write(&file, bytes)?;

    let pods: Api<Pod> = Api::namespaced(inst.client.clone(), &inst.ns);
    let pod = json!({"metadata": {"name": COPY_POD},
                     "spec": {"containers": [{"name": "migration", "image": "debian:bookworm"}]}});
    pods.create(&PostParams::default(), &install::obj(pod)).await?;
    observe::wait_for(Duration::from_secs(60), "the copy pod running", || async {
        pods.get_opt(COPY_POD)
            .await
            .ok()
            .flatten()
            .and_then(|p| p.status?.phase)
            .is_some_and(|phase| phase == "Running")
    })
    .await;
    let times = measure::copy_times(inst, COPY_POD, &file).await;
    let step_ms = step_json(run, "copy_backup")["duration_ms"].as_i64().unwrap_or(0);
    Ok(CopyOut { times, step_ms })
}
