//! The engine against the simulated cluster: a full migration, a fault at every step, the
//! engine dropped at every step boundary, cancel, the approval gate, concurrent starts; on the
//! 1.25.1 controller, the tool lingering after its finished line, and a backend of another
//! LINSTOR version.

use std::sync::Arc;
use std::time::Duration;

use linstor_migrator::cluster::sim::{Fault, SimCluster, SimTiming};
use linstor_migrator::db::Db;
use linstor_migrator::engine::{CreateRun, Engine, EngineError, EngineSettings, RunView};
use linstor_migrator::metrics::Metrics;
use linstor_migrator::model::{
    Actor, ControllerRef, ImportMode, RunKind, RunOptions, RunState, StepName, StepState,
};

const CR: (&str, &str) = SimCluster::CR_CONTROLLER;

struct Harness {
    dir: tempfile::TempDir,
    sim: SimCluster,
}

impl Harness {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            sim: SimCluster::new(SimTiming::instant()),
        }
    }

    async fn engine_with(&self, stop_after: Option<StepName>) -> Engine {
        let db = Db::open(self.dir.path()).await.unwrap();
        let mut settings = EngineSettings::new(self.dir.path().to_path_buf());
        settings.stop_after_step = stop_after;
        settings.tool_timeout = Duration::from_secs(20);
        Engine::start(
            db,
            Arc::new(self.sim.clone()),
            settings,
            Arc::new(Metrics::default()),
        )
        .await
        .unwrap()
    }

    async fn engine(&self) -> Engine {
        self.engine_with(None).await
    }
}

fn request(kind: RunKind) -> CreateRun {
    CreateRun {
        kind,
        controller: ControllerRef::new(CR.0, CR.1),
        options: RunOptions {
            controller_timeout_seconds: 10,
            pod_timeout_seconds: 10,
            ..RunOptions::default()
        },
    }
}

fn actor() -> Actor {
    Actor::new("test")
}

async fn settle(engine: &Engine, id: &str) -> RunView {
    tokio::time::timeout(Duration::from_secs(60), engine.wait_settled(id))
        .await
        .expect("run settles")
        .unwrap()
}

fn step_state(run: &RunView, step: StepName) -> StepState {
    run.steps.iter().find(|s| s.name == step).unwrap().state
}

#[tokio::test]
async fn full_migration_succeeds_and_leaves_a_verified_backup() {
    let h = Harness::new();
    let engine = h.engine().await;
    let (run, created) = engine
        .create_run(request(RunKind::Migrate), &actor(), None)
        .await
        .unwrap();
    assert!(created);
    let run = settle(&engine, &run.id).await;
    assert_eq!(run.state, RunState::Succeeded, "{:?}", run.error);
    assert!(run.steps.iter().all(|s| s.state == StepState::Succeeded));

    // the backup is in the data directory, with the recorded digest
    let backup = run
        .backups
        .iter()
        .find(|b| b.purpose == "before-migration")
        .expect("backup");
    let (_, path) = engine.backup(&backup.id).await.unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes.len() as i64, backup.size_bytes);
    assert_eq!(hex_sha256(&bytes), backup.sha256);
    assert_eq!(backup.exported_from, "etcd");

    // the data is in the k8s backend and the controller runs on it
    let expected: usize = h.sim.etcd_dataset().tables.iter().map(|t| t.data.len()).sum();
    let rows = h.sim.k8s_backend_rows();
    // plus the four access types a fresh cluster's schema migrations write (never exported)
    assert_eq!(rows["SEC_ACCESS_TYPES"], 4);
    assert_eq!(rows.values().sum::<usize>(), expected + 4);
    let ctrl = engine
        .controllers()
        .await
        .unwrap()
        .into_iter()
        .find(|c| (c.namespace.as_str(), c.name.as_str()) == CR)
        .unwrap();
    assert_eq!(ctrl.backend.as_str(), "k8s");
    assert_eq!(ctrl.replicas, 1);
    let verification = run.report.data_verification.expect("data verification");
    assert!(verification.is_equal() && verification.rows_compared as usize == expected);
    assert!(
        run.report
            .cluster_verification
            .expect("cluster verification")
            .is_equal()
    );
    assert!(run.downtime.unwrap().ended_at.is_some());
    // step 3's snapshot is a file of the data directory, not part of the run's context
    assert!(run.report.snapshot_before.is_none());
    assert!(
        run.report
            .snapshot_before_summary
            .as_deref()
            .is_some_and(|s| s.contains("resources"))
    );
    let snapshot = h.dir.path().join("snapshots").join(format!("{}.json", run.id));
    assert!(snapshot.is_file(), "{}", snapshot.display());

    // every action was recorded with its actor, and the log has the tool's lines
    assert_eq!(run.audit[0].actor, "test");
    let logs = engine.events(&run.id, 0, 10_000, true).await.unwrap();
    assert!(
        logs.iter()
            .any(|l| l.level == "stdout" && l.message.contains("Export finished"))
    );
    assert!(logs.iter().any(|l| l.message.contains("Import finished")));
    assert!(logs.windows(2).all(|w| w[0].seq < w[1].seq));
    let effects = h.sim.effects();
    // LINSTOR 1.33.3 is recorded: the delta import is the default; the tool only made the schema
    let import = run.report.import_report.expect("import report");
    assert_eq!(import.mode, linstor_migrator::model::ImportMode::Delta);
    assert!(
        import
            .mode_reason
            .as_deref()
            .is_some_and(|r| r.contains("LINSTOR 1.33.3 is recorded")),
        "{:?}",
        import.mode_reason
    );
    assert_eq!(effects.imports, 1);
    // the controller never started on etcd after the switch: its last start was on k8s
    let last = effects.controller_starts.last().expect("controller started");
    assert!(format!("{last:?}").contains("k8s"), "{last:?}");
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[tokio::test]
async fn a_fault_at_each_step_leaves_the_cluster_as_it_was() {
    for step in RunKind::Migrate
        .steps()
        .iter()
        .copied()
        .filter(|s| *s <= StepName::StartController)
    {
        let h = Harness::new();
        let before = h.sim.fingerprint();
        let engine = h.engine().await;
        if step == StepName::Preflight {
            // the API's own look-up of the controller meets the fault first: a clear error, no
            // run (preflight failing inside a run is covered by the RBAC test)
            h.sim.inject(step, Fault::Error);
            let refused = engine.create_run(request(RunKind::Migrate), &actor(), None).await;
            assert!(matches!(refused, Err(EngineError::Cluster(_))), "{refused:?}");
            assert!(engine.runs(10).await.unwrap().is_empty());
            assert_eq!(before, h.sim.fingerprint());
            continue;
        }
        // the switch is first asked for during the import (best effort, retried by the switch
        // step); an operator that never renders the ConfigMap is what fails the switch itself
        let fault = if step == StepName::Switch {
            Fault::Hang
        } else {
            Fault::Error
        };
        h.sim.inject(step, fault);
        let mut req = request(RunKind::Migrate);
        req.options.controller_timeout_seconds = 5;
        // the tool's import: a fault of the delta's writes is tested below
        req.options.import = ImportMode::Tool;
        let (run, _) = engine.create_run(req, &actor(), None).await.unwrap();
        let run = settle(&engine, &run.id).await;
        let expected = if step.in_downtime() {
            RunState::RolledBack
        } else {
            RunState::Failed
        };
        assert_eq!(run.state, expected, "fault at {step}: {:?}", run.error);
        assert_eq!(step_state(&run, step), StepState::Failed, "fault at {step}");
        assert!(
            run.error.as_deref().unwrap_or("").contains(step.title()),
            "fault at {step}: {:?}",
            run.error
        );
        let mut after = h.sim.fingerprint();
        if step >= StepName::PrepareTarget {
            // the schema made before the stop, or a failed import's data, stays in the k8s backend
            // (reported; the next import replaces it)
            after.k8s_backend_digest = before.k8s_backend_digest.clone();
        }
        assert_eq!(before, after, "fault at {step}: the cluster must be as it was");
        engine.shutdown(Duration::from_secs(5)).await;
    }
}

#[tokio::test]
async fn faults_after_the_start_fail_without_automatic_rollback() {
    for step in [StepName::VerifyCluster, StepName::Cleanup] {
        let h = Harness::new();
        h.sim.inject(step, Fault::Error);
        let engine = h.engine().await;
        let (run, _) = engine
            .create_run(request(RunKind::Migrate), &actor(), None)
            .await
            .unwrap();
        let run = settle(&engine, &run.id).await;
        assert_eq!(run.state, RunState::Failed, "fault at {step}");
        let ctrl = engine
            .controllers()
            .await
            .unwrap()
            .into_iter()
            .find(|c| (c.namespace.as_str(), c.name.as_str()) == CR)
            .unwrap();
        assert_eq!(
            ctrl.backend.as_str(),
            "k8s",
            "fault at {step}: no automatic rollback after the start"
        );
        // a manual rollback restores etcd
        engine.rollback(&run.id, &actor()).await.unwrap();
        let run = settle(&engine, &run.id).await;
        assert_eq!(run.state, RunState::RolledBack, "{:?}", run.error);
        let ctrl = engine
            .controllers()
            .await
            .unwrap()
            .into_iter()
            .find(|c| (c.namespace.as_str(), c.name.as_str()) == CR)
            .unwrap();
        assert_eq!(ctrl.backend.as_str(), "etcd");
    }
}

#[tokio::test]
async fn tool_faults_are_failures_even_with_exit_zero() {
    for (step, fault) in [
        (StepName::Export, Fault::UsageExitZero),
        (StepName::Export, Fault::ExitOne),
        (StepName::Import, Fault::UsageExitZero),
        (StepName::Import, Fault::PartialImport),
        (StepName::VerifyData, Fault::ExitOne),
    ] {
        let h = Harness::new();
        let before = h.sim.fingerprint();
        h.sim.inject(step, fault);
        let engine = h.engine().await;
        let mut req = request(RunKind::Migrate);
        // the verification runs the tool only when asked to, the import when asked to
        req.options.verify = linstor_migrator::model::VerifyMode::Tool;
        req.options.import = ImportMode::Tool;
        let (run, _) = engine.create_run(req, &actor(), None).await.unwrap();
        let run = settle(&engine, &run.id).await;
        assert_eq!(
            run.state,
            RunState::RolledBack,
            "{fault:?} at {step}: {:?}",
            run.error
        );
        assert_eq!(step_state(&run, step), StepState::Failed);
        let mut after = h.sim.fingerprint();
        after.k8s_backend_digest = before.k8s_backend_digest.clone();
        assert_eq!(before, after, "{fault:?} at {step}");
        if fault == Fault::PartialImport {
            let left = run.report.k8s_backend_after_rollback.expect("reported");
            assert!(left.total_objects() > 0, "partial data is reported");
        }
    }
}

#[tokio::test]
async fn pod_that_never_runs_fails_before_downtime() {
    let h = Harness::new();
    let before = h.sim.fingerprint();
    h.sim.inject(StepName::PreparePod, Fault::PodNeverRunning);
    let engine = h.engine().await;
    let (run, _) = engine
        .create_run(request(RunKind::Migrate), &actor(), None)
        .await
        .unwrap();
    let run = settle(&engine, &run.id).await;
    assert_eq!(run.state, RunState::Failed);
    assert!(run.downtime.is_none());
    assert_eq!(before, h.sim.fingerprint());
}

#[tokio::test]
async fn engine_dropped_at_each_step_boundary_finishes_without_repeating_effects() {
    for boundary in RunKind::Migrate.steps().iter().copied() {
        let h = Harness::new();
        let first = h.engine_with(Some(boundary)).await;
        let (run, _) = first
            .create_run(request(RunKind::Migrate), &actor(), None)
            .await
            .unwrap();
        for _ in 0..3000 {
            if !first.is_driving(&run.id) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let stopped = first.run(&run.id).await.unwrap();
        first.shutdown(Duration::from_secs(5)).await;
        drop(first);
        if boundary != StepName::Cleanup {
            assert_eq!(stopped.state, RunState::Running, "stopped after {boundary}");
        }
        let second = h.engine().await;
        let run = settle(&second, &run.id).await;
        assert_eq!(
            run.state,
            RunState::Succeeded,
            "resumed after {boundary}: {:?}",
            run.error
        );
        let e = h.sim.effects();
        assert_eq!(
            (
                e.exports_of("etcd"),
                e.exports_of("k8s"),
                e.imports,
                e.pods_created,
                e.cr_patches,
                e.copies
            ),
            // the tool's schema import; the delta wrote the rows
            (2, 0, 1, 1, 3, 2),
            "resumed after {boundary}: {e:?}"
        );
        second.shutdown(Duration::from_secs(5)).await;
    }
}

#[tokio::test]
async fn cancel_during_a_hanging_export_rolls_back() {
    let h = Harness::new();
    let before = h.sim.fingerprint();
    h.sim.inject(StepName::Export, Fault::Hang);
    let engine = h.engine().await;
    let (run, _) = engine
        .create_run(request(RunKind::Migrate), &actor(), None)
        .await
        .unwrap();
    // wait until the export runs
    for _ in 0..400 {
        let v = engine.run(&run.id).await.unwrap();
        if step_state(&v, StepName::Export) == StepState::Running {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    engine.cancel(&run.id, &Actor::new("operator")).await.unwrap();
    let run = settle(&engine, &run.id).await;
    assert_eq!(run.state, RunState::Cancelled, "{:?}", run.error);
    assert!(
        run.audit
            .iter()
            .any(|a| a.action == "cancel" && a.actor == "operator")
    );
    // the schema made before the stop stays in the k8s backend (reported; nothing uses it)
    let mut after = h.sim.fingerprint();
    after.k8s_backend_digest = before.k8s_backend_digest.clone();
    assert_eq!(before, after);
}

#[tokio::test]
async fn approval_gate_waits_before_downtime() {
    let h = Harness::new();
    let engine = h.engine().await;
    let mut req = request(RunKind::Migrate);
    req.options.approve_before_downtime = true;
    let (run, _) = engine.create_run(req, &actor(), None).await.unwrap();
    let waiting = settle(&engine, &run.id).await;
    assert_eq!(waiting.state, RunState::Waiting);
    assert_eq!(step_state(&waiting, StepName::Snapshot), StepState::Succeeded);
    assert_eq!(step_state(&waiting, StepName::StopController), StepState::Pending);
    assert!(matches!(
        engine.resume(&run.id, &actor()).await,
        Err(EngineError::Conflict { .. })
    ));
    engine.approve(&run.id, &Actor::new("boss")).await.unwrap();
    let run = settle(&engine, &run.id).await;
    assert_eq!(run.state, RunState::Succeeded, "{:?}", run.error);
    assert!(
        run.audit
            .iter()
            .any(|a| a.action == "approve" && a.actor == "boss")
    );
}

#[tokio::test]
async fn two_concurrent_starts_make_one_run() {
    let h = Harness::new();
    let engine = h.engine().await;
    let who = actor();
    let (a, b) = tokio::join!(
        engine.create_run(request(RunKind::Migrate), &who, None),
        engine.create_run(request(RunKind::Migrate), &who, None)
    );
    let ok = [&a, &b].iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 1, "{a:?} {b:?}");
    assert!(
        [&a, &b]
            .iter()
            .any(|r| matches!(r, Err(EngineError::Conflict { .. })))
    );
    assert_eq!(engine.runs(10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn idempotency_key_returns_the_same_run() {
    let h = Harness::new();
    let engine = h.engine().await;
    let (a, created) = engine
        .create_run(request(RunKind::Preflight), &actor(), Some("k1".into()))
        .await
        .unwrap();
    assert!(created);
    let (b, created) = engine
        .create_run(request(RunKind::Preflight), &actor(), Some("k1".into()))
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(a.id, b.id);
    let other = engine
        .create_run(request(RunKind::Backup), &actor(), Some("k1".into()))
        .await;
    assert!(matches!(other, Err(EngineError::Conflict { .. })));
}

#[tokio::test]
async fn preflight_and_backup_leave_the_controller_on_etcd() {
    let h = Harness::new();
    let engine = h.engine().await;
    let before = h.sim.fingerprint();
    let (run, _) = engine
        .create_run(request(RunKind::Preflight), &actor(), None)
        .await
        .unwrap();
    let run = settle(&engine, &run.id).await;
    assert_eq!(run.state, RunState::Succeeded, "{:?}", run.error);
    assert!(!run.report.plan.is_empty());
    assert_eq!(before, h.sim.fingerprint());

    let (run, _) = engine
        .create_run(request(RunKind::Backup), &actor(), None)
        .await
        .unwrap();
    let run = settle(&engine, &run.id).await;
    assert_eq!(run.state, RunState::Succeeded, "{:?}", run.error);
    assert_eq!(run.backups.len(), 1);
    assert_eq!(before, h.sim.fingerprint());
}

#[tokio::test]
async fn unknown_controller_and_bad_options_are_refused() {
    let h = Harness::new();
    let engine = h.engine().await;
    let mut req = request(RunKind::Migrate);
    req.controller = ControllerRef::new("nowhere", "nothing");
    assert!(matches!(
        engine.create_run(req, &actor(), None).await,
        Err(EngineError::Invalid(_))
    ));
    let mut req = request(RunKind::Migrate);
    req.options.controller_timeout_seconds = 0;
    assert!(matches!(
        engine.create_run(req, &actor(), None).await,
        Err(EngineError::Invalid(_))
    ));
    assert!(engine.runs(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn missing_controller_rbac_fails_preflight_naming_the_rule() {
    let h = Harness::new();
    h.sim.deny(
        "system:serviceaccount:piraeus-datastore:linstor-controller",
        "internal.linstor.linbit.com",
        "*",
        "deletecollection",
    );
    let engine = h.engine().await;
    let before = h.sim.fingerprint();
    let (run, _) = engine
        .create_run(request(RunKind::Migrate), &actor(), None)
        .await
        .unwrap();
    let run = settle(&engine, &run.id).await;
    assert_eq!(run.state, RunState::Failed);
    let failing: Vec<_> = run
        .report
        .checks
        .iter()
        .filter(|c| c.name == "controller-rbac")
        .collect();
    assert!(
        failing.iter().any(|c| c.message.contains("deletecollection")),
        "{failing:?}"
    );
    assert_eq!(before, h.sim.fingerprint());
}

#[tokio::test]
async fn stale_rollback_objects_fail_preflight() {
    let h = Harness::new();
    h.sim.add_rollback_objects(2);
    let engine = h.engine().await;
    let before = h.sim.fingerprint();
    let (run, _) = engine
        .create_run(request(RunKind::Migrate), &actor(), None)
        .await
        .unwrap();
    let run = settle(&engine, &run.id).await;
    assert_eq!(run.state, RunState::Failed);
    assert!(
        run.report
            .checks
            .iter()
            .any(|c| c.name == "k8s-backend" && c.message.contains("2 Rollback object(s)")),
        "{:?}",
        run.report.checks
    );
    assert_eq!(before, h.sim.fingerprint());
}

#[tokio::test]
async fn an_upgrade_plan_run_never_reaches_the_gate_or_a_rollback() {
    // Arrange: a running upgrade-plan run, even one whose downtime was (wrongly) marked
    use linstor_migrator::db::{DbError, NewRunRecord};
    use linstor_migrator::engine::lifecycle::{Action, transition};
    use linstor_migrator::model::Phase;
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).await.unwrap();
    let new = NewRunRecord {
        id: "plan".into(),
        kind: RunKind::UpgradePlan,
        controller: ControllerRef::new(CR.0, CR.1),
        options: RunOptions::default(),
        actor: actor(),
        idempotency_key: None,
        request_digest: None,
    };
    db.insert_run(&new).await.unwrap();
    let start = transition("plan", RunState::Queued, Phase::Forward, Action::Start).unwrap();
    db.apply(&start).await.unwrap();
    db.mark_downtime("plan", true).await.unwrap();

    // Act / Assert: the table's requirements refuse them inside the transaction
    for action in [Action::Gate, Action::BeginRollback] {
        let change = transition("plan", RunState::Running, Phase::Forward, action).unwrap();
        let refused = db.apply(&change).await;
        assert!(
            matches!(refused, Err(DbError::Conflict(_))),
            "{action:?}: {refused:?}"
        );
    }
    let run = db.run("plan").await.unwrap().unwrap();
    assert_eq!((run.state, run.phase), (RunState::Running, Phase::Forward));
}

/// A migration of the controller on the chart's default image (LINSTOR 1.25.1).
fn request_1_25_1(import: ImportMode) -> CreateRun {
    let mut r = request(RunKind::Migrate);
    r.controller = ControllerRef::new(
        SimCluster::CHART_DEFAULT_CONTROLLER.0,
        SimCluster::CHART_DEFAULT_CONTROLLER.1,
    );
    r.options.import = import;
    r
}

#[tokio::test]
async fn a_1_25_1_tool_lingering_after_its_finished_line_is_stopped_and_never_waited_for() {
    let h = Harness::new();
    let engine = h.engine().await;
    // the tool's import: both its schema-only import (step 4) and the downtime's linger
    let (run, _) = engine
        .create_run(request_1_25_1(ImportMode::Tool), &actor(), None)
        .await
        .unwrap();
    let run = settle(&engine, &run.id).await;
    assert_eq!(run.state, RunState::Succeeded, "{:?}", run.error);
    // each lived on after its `Import finished` only until the guard stopped it, by the
    // simulation's clock: well short of the recorded minute it would have lasted
    let effects = h.sim.effects();
    assert_eq!(effects.tool_lingered.len(), 2, "{effects:?}");
    let recorded = Duration::from_secs(u64::from(
        linstor_migrator::linstor::versions::recorded("1.25.1")
            .unwrap()
            .k8s_exit_delay_s,
    ));
    assert!(
        effects.tool_lingered.iter().all(|d| *d < recorded),
        "stopped, not waited for: {:?}",
        effects.tool_lingered
    );
    assert_eq!(effects.tool_overlaps, 0);
    let logs = engine.events(&run.id, 0, 10_000, true).await.unwrap();
    let stopped: Vec<_> = logs
        .iter()
        .filter(|l| l.message.contains("has not exited") && l.message.contains("stopping it"))
        .map(|l| l.step)
        .collect();
    assert_eq!(
        stopped,
        [Some(StepName::PrepareTarget), Some(StepName::Import)],
        "the schema import and the downtime's import"
    );
    assert!(run.report.data_verification.expect("verified").is_equal());
}

#[tokio::test]
async fn a_backend_holding_1_33_3_objects_blocks_a_1_25_1_migration_at_preflight() {
    let h = Harness::new();
    let engine = h.engine().await;
    // the 1.33.3 controller migrates first: its objects, CRDs at v1-31-1, LinstorVersion 31
    let (first, _) = engine
        .create_run(request(RunKind::Migrate), &actor(), None)
        .await
        .unwrap();
    let first = settle(&engine, &first.id).await;
    assert_eq!(first.state, RunState::Succeeded, "{:?}", first.error);
    let before = h.sim.fingerprint();
    let rows = h.sim.k8s_backend_rows();
    let tool_runs = h.sim.effects().tool_runs;

    let (run, _) = engine
        .create_run(request_1_25_1(ImportMode::Auto), &actor(), None)
        .await
        .unwrap();
    let run = settle(&engine, &run.id).await;
    assert_eq!(run.state, RunState::Failed, "{:?}", run.error);
    assert_eq!(step_state(&run, StepName::Preflight), StepState::Failed);
    let schema = run
        .report
        .checks
        .iter()
        .find(|c| c.name == "k8s-backend-schema")
        .unwrap_or_else(|| panic!("{:?}", run.report.checks));
    assert!(
        schema.message.contains("LinstorVersion 31") && schema.message.contains("LINSTOR 1.25.1"),
        "{}",
        schema.message
    );
    // every object is still there, and nothing else changed
    assert_eq!(h.sim.k8s_backend_rows(), rows);
    assert_eq!(before, h.sim.fingerprint());
    assert_eq!(h.sim.effects().tool_runs, tool_runs, "no linstor-database ran");
}

/// LINSTOR 1.25.1 on `k8s` lives on for about 60 s after a failure too (recorded:
/// `fixtures/linstor-1.25.1/timing.txt`, tool/13, 14, 17, 18): its complete stack trace on stderr
/// is as final as the `... finished` line: the run fails on it, not on the tool timeout.
#[tokio::test]
async fn a_failed_1_25_1_import_that_lingers_after_its_stack_trace_is_not_waited_for() {
    let h = Harness::new();
    // half the rows, then a failure with a stack trace; 1.25.1 on k8s then lives on for a minute
    h.sim.inject(StepName::Import, Fault::PartialImport);
    let engine = h.engine().await;
    let (run, _) = engine
        .create_run(request_1_25_1(ImportMode::Tool), &actor(), None)
        .await
        .unwrap();
    let run = settle(&engine, &run.id).await;
    assert_eq!(run.state, RunState::RolledBack, "{:?}", run.error);
    // the stack trace decides, not a timeout of the lingering process
    let error = run.error.clone().unwrap_or_default();
    assert!(
        error.contains("exited with") || error.contains("Exception"),
        "the tool's own failure: {error}"
    );
    assert!(
        !error.contains("did not finish") && !error.contains("waiting for linstor-database"),
        "{error}"
    );
    let logs = engine.events(&run.id, 0, 10_000, true).await.unwrap();
    assert!(
        logs.iter()
            .any(|l| l.step == Some(StepName::Import) && l.message.contains("stopping it")),
        "the guard stopped the lingering tool"
    );
}

#[tokio::test]
async fn a_finished_run_keeps_no_event_channel_nor_order_lock() {
    let h = Harness::new();
    let engine = h.engine().await;
    for kind in [RunKind::Backup, RunKind::Preflight, RunKind::Backup] {
        let (run, _) = engine.create_run(request(kind), &actor(), None).await.unwrap();
        // a live subscriber (as an SSE client) during the run
        let mut live = engine.subscribe(&run.id);
        assert_eq!(engine.event_channels().0, 1);
        let done = settle(&engine, &run.id).await;
        assert_eq!(done.state, RunState::Succeeded, "{:?}", done.error);
        assert!(live.recv().await.is_ok());
        drop(live);
    }
    // a page opened after the end subscribes and leaves again
    let runs = engine.runs(10).await.unwrap();
    drop(engine.subscribe(&runs[0].id));

    assert_eq!(
        engine.event_channels(),
        (0, 0),
        "channels (1,024 events each) and order locks of finished runs are freed"
    );
}
