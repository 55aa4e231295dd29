//! Crash anywhere: for seeded random points inside the steps and the rollback (before an
//! operation's effect, after it but before the engine recorded it, while `linstor-database`
//! runs), the engine is killed there and a new one starts on the same database and cluster.
//! Every run must end `succeeded` or `rolled_back` (a scenario's injected fault fires once: when
//! an orphaned tool run consumed it before the crash, the run may well succeed), with the cluster
//! in the migrated state after a success and in the original state after a rollback, no tool run overlapping another, the migration pod made
//! once, one recorded backup whose file matches its record, and no leftover objects.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use linstor_migrator::cluster::sim::{Fault, SimFingerprint};
use linstor_migrator::engine::Engine;
use linstor_migrator::metrics::Metrics;
use linstor_migrator::model::{Actor, ImportMode, RunKind, RunState, StepName};

use super::crashing::{CrashPoint, CrashingCluster};
use super::{Bench, engine_with, request, settings, settle, sha256_file};

#[derive(Debug, Clone, Copy)]
struct Scenario {
    name: &'static str,
    kind: RunKind,
    /// The import a migration makes (`auto`: the delta import on the simulated LINSTOR 1.33.3).
    import: ImportMode,
    fault: Option<(StepName, Fault)>,
    /// The outcome without a crash.
    outcome: RunState,
}

const SCENARIOS: [Scenario; 6] = [
    Scenario {
        name: "migration",
        kind: RunKind::Migrate,
        import: ImportMode::Auto,
        fault: None,
        outcome: RunState::Succeeded,
    },
    Scenario {
        name: "migration with the tool's import",
        kind: RunKind::Migrate,
        import: ImportMode::Tool,
        fault: None,
        outcome: RunState::Succeeded,
    },
    Scenario {
        name: "import fails",
        kind: RunKind::Migrate,
        import: ImportMode::Tool,
        fault: Some((StepName::Import, Fault::ExitOne)),
        outcome: RunState::RolledBack,
    },
    Scenario {
        name: "partial import",
        kind: RunKind::Migrate,
        import: ImportMode::Tool,
        fault: Some((StepName::Import, Fault::PartialImport)),
        outcome: RunState::RolledBack,
    },
    Scenario {
        name: "start fails",
        kind: RunKind::Migrate,
        import: ImportMode::Auto,
        fault: Some((StepName::StartController, Fault::Error)),
        outcome: RunState::RolledBack,
    },
    Scenario {
        name: "backup",
        kind: RunKind::Backup,
        import: ImportMode::Auto,
        fault: None,
        outcome: RunState::Succeeded,
    },
];

fn request_of(scenario: &Scenario) -> linstor_migrator::engine::CreateRun {
    let mut req = request(scenario.kind);
    req.options.import = scenario.import;
    req
}

/// What one run of a scenario does, measured without a crash.
struct Reference {
    points: u64,
    after: SimFingerprint,
}

async fn engine_on(bench: &Bench, cluster: Arc<dyn linstor_migrator::cluster::Cluster>) -> Engine {
    engine_with(
        bench,
        cluster,
        settings(bench.dir.path()),
        Arc::new(Metrics::default()),
    )
    .await
}

fn arm(bench: &Bench, scenario: &Scenario) {
    if let Some((step, fault)) = scenario.fault {
        bench.sim.inject(step, fault);
    }
}

async fn reference(scenario: &Scenario) -> Reference {
    let bench = Bench::new();
    arm(&bench, scenario);
    let point = CrashPoint::at(0);
    let engine = engine_on(
        &bench,
        Arc::new(CrashingCluster {
            sim: bench.sim.clone(),
            point: point.clone(),
        }),
    )
    .await;
    let (run, _) = engine
        .create_run(request_of(scenario), &Actor::new("test"), None)
        .await
        .unwrap();
    let run = settle(&engine, &run.id).await;
    assert_eq!(run.state, scenario.outcome, "{}: {:?}", scenario.name, run.error);
    if std::env::var("CRASH_DEBUG").is_ok() {
        for s in &run.steps {
            eprintln!("  {} {:?} ms", s.name, s.duration_ms);
        }
    }
    engine.shutdown(Duration::from_secs(5)).await;
    Reference {
        points: point.passed(),
        after: bench.sim.fingerprint(),
    }
}

/// Splitmix64: the seeds pick the scenario and the point.
fn random(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One crash: returns how the run ended.
async fn crash_once(
    seed: u64,
    scenario: &Scenario,
    reference: &Reference,
    migrated: &SimFingerprint,
) -> String {
    let bench = Bench::new();
    let before = bench.sim.fingerprint();
    arm(&bench, scenario);
    let target = 1 + random(seed) % reference.points;
    let point = CrashPoint::at(target);
    let first = engine_on(
        &bench,
        Arc::new(CrashingCluster {
            sim: bench.sim.clone(),
            point: point.clone(),
        }),
    )
    .await;
    let create = {
        let first = first.clone();
        let req = request_of(scenario);
        tokio::spawn(async move { first.create_run(req, &Actor::new("test"), None).await })
    };
    // run until the point is reached (or the run ends before it)
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if point.fired() {
            break;
        }
        let runs = first.runs(10).await.unwrap();
        if create.is_finished()
            && runs.iter().all(|r| r.state.is_final())
            && !runs.iter().any(|r| first.is_driving(&r.id))
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "seed {seed}: the first engine neither crashed nor finished"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let at = point.description();
    first.kill();
    create.abort();
    drop(first);

    // a new process on the same data directory and the same cluster
    let second = engine_on(&bench, Arc::new(bench.sim.clone())).await;
    let runs = second.runs(10).await.unwrap();
    let context = format!("seed {seed}, {}, crash at {at}", scenario.name);
    let Some(summary) = runs.first() else {
        // killed inside the request, before the run was stored: nothing may have changed
        assert_eq!(
            bench.sim.fingerprint(),
            before,
            "{context}: no run, yet the cluster changed"
        );
        second.shutdown(Duration::from_secs(5)).await;
        return "no run (killed inside the request)".into();
    };
    let run = settle(&second, &summary.id).await;
    let log = second.events(&run.id, 0, 10_000, false).await.unwrap();
    let said: Vec<String> = log.iter().map(|e| e.message.clone()).collect();
    assert!(
        run.state == scenario.outcome || (run.state == RunState::Succeeded && scenario.fault.is_some()),
        "{context}: ended {}: {:?}\n{}",
        run.state,
        run.error,
        said.join("\n")
    );

    // the cluster is in the migrated or the original state
    let mut after = bench.sim.fingerprint();
    let expected = if run.state == RunState::Succeeded {
        if scenario.kind == RunKind::Migrate {
            migrated.clone()
        } else {
            reference.after.clone()
        }
    } else {
        // an import's (partial) data stays in the k8s backend after a rollback
        after.k8s_backend_digest = before.k8s_backend_digest.clone();
        before.clone()
    };
    assert_eq!(after, expected, "{context}: the cluster is in neither state");

    // no effect twice that must happen once, no tool run beside another
    let e = bench.sim.effects();
    assert_eq!(
        e.tool_overlaps, 0,
        "{context}: linstor-database ran twice at once: {e:?}"
    );
    assert!(e.pods_created <= 1, "{context}: {e:?}");
    let backup_name = if scenario.kind == RunKind::Migrate {
        "backup-before-migration.json"
    } else {
        "backup.json"
    };
    let backups: Vec<_> = run.backups.iter().filter(|b| b.name == backup_name).collect();
    assert!(backups.len() <= 1, "{context}: {backups:?}");
    for b in &run.backups {
        let (record, path) = second.backup(&b.id).await.unwrap();
        assert_eq!(
            sha256_file(&path),
            record.sha256,
            "{context}: {} differs from its record",
            b.name
        );
    }
    if run.state == RunState::Succeeded {
        assert_eq!(backups.len(), 1, "{context}: the backup is recorded");
    }
    // every step the run did is in its log, and the log's order is the store's
    assert!(log.windows(2).all(|w| w[0].seq < w[1].seq));
    for s in run.steps.iter().filter(|s| s.started_at.is_some()) {
        assert!(
            log.iter().any(|e| e.step == Some(s.name)),
            "{context}: no log line of step {}",
            s.name
        );
    }
    second.shutdown(Duration::from_secs(5)).await;
    format!("{} {}", scenario.name, run.state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_anywhere_ends_succeeded_or_rolled_back_with_nothing_twice() {
    let mut references = Vec::new();
    for s in &SCENARIOS {
        let r = reference(s).await;
        eprintln!("{}: {} crash points", s.name, r.points);
        references.push(r);
    }
    let runs: u64 = std::env::var("CRASH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(220);
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    for seed in 0..runs {
        let i = (random(seed ^ 0xc0ffee) % SCENARIOS.len() as u64) as usize;
        let outcome = crash_once(seed, &SCENARIOS[i], &references[i], &references[0].after).await;
        *outcomes.entry(outcome).or_default() += 1;
    }
    eprintln!("crash anywhere, {runs} crashes, outcomes:");
    for (outcome, n) in &outcomes {
        eprintln!("  {n:4}  {outcome}");
    }
    assert_eq!(outcomes.values().sum::<u64>(), runs);
}
