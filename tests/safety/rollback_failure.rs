//! Rollbacks that meet trouble: a cluster that refuses the CR patch (retries, then
//! `rollback_failed` with instructions; a resume finishes it once the refusal stops), an etcd that
//! was scaled down (restored before the controller starts), and a failure with automatic
//! rollback off (nothing switched, the message says what starting the controller would do; a
//! controller scaled up by hand meanwhile makes the resume roll back).

use std::sync::Arc;
use std::time::Duration;

use linstor_migrator::cluster::Cluster;
use linstor_migrator::cluster::sim::{Fault, Refusal};
use linstor_migrator::engine::{Engine, EngineError};
use linstor_migrator::metrics::Metrics;
use linstor_migrator::model::{Actor, RunKind, RunState, StepName};

use super::{Bench, CR, engine, engine_with, poll, request, settings, settle, step_running};

fn actor() -> Actor {
    Actor::new("operator")
}

async fn controller_backend(engine: &Engine) -> String {
    engine
        .controllers()
        .await
        .unwrap()
        .into_iter()
        .find(|c| (c.namespace.as_str(), c.name.as_str()) == CR)
        .unwrap()
        .backend
        .as_str()
        .to_string()
}

#[tokio::test]
async fn a_refused_rollback_ends_rollback_failed_with_instructions_and_a_resume_finishes_it() {
    let bench = Bench::new();
    let before = bench.sim.fingerprint();
    bench.sim.inject(StepName::VerifyData, Fault::Hang);
    let mut s = settings(bench.dir.path());
    s.tool_timeout = Duration::from_secs(1);
    let metrics = Arc::new(Metrics::default());
    let engine = engine_with(&bench, Arc::new(bench.sim.clone()), s, metrics.clone()).await;
    let mut req = request(RunKind::Migrate);
    // a re-export with the tool, which hangs
    req.options.verify = linstor_migrator::model::VerifyMode::Tool;
    let (run, _) = engine.create_run(req, &actor(), None).await.unwrap();
    poll("the verification export", async || {
        step_running(&engine, &run.id, StepName::VerifyData).await
    })
    .await;
    // from now on the cluster refuses every change of the LinstorController
    bench.sim.refuse(Refusal::CrPatch, true);

    let failed = settle(&engine, &run.id).await;
    assert_eq!(failed.state, RunState::RollbackFailed, "{:?}", failed.error);
    let error = failed.error.clone().unwrap_or_default();
    assert!(
        error.starts_with("Verify data failed"),
        "the first cause comes first: {error}"
    );
    assert!(error.contains("the rollback then failed"), "{error}");
    assert!(
        error.contains("failed 3 times"),
        "retried within its bound: {error}"
    );
    let failure = failed.report.rollback_failure.clone().expect("instructions");
    let commands = failure.commands.join("\n");
    assert!(
        commands.contains("\"dbConnectionURL\":\"etcd://") && commands.contains("\"replicas\":1"),
        "{commands}"
    );
    assert!(
        failure.observed.iter().any(|o| o.contains("database URL is k8s")),
        "{:?}",
        failure.observed
    );
    assert!(
        failed
            .helm_advice
            .as_deref()
            .unwrap_or("")
            .contains("Do not change the Helm values")
    );
    assert!(failed.report.helm_command.is_none());
    assert_eq!(metrics.rollbacks_failed.get(), 1);
    let logs = engine.events(&run.id, 0, 10_000, true).await.unwrap();
    assert!(
        logs.iter().any(|l| l.message.contains("retrying in")),
        "the retries are in the log"
    );

    // the controller stays held: no new run, no other action than resume/rollback
    assert!(matches!(
        engine.create_run(request(RunKind::Backup), &actor(), None).await,
        Err(EngineError::Conflict { .. })
    ));
    for refused in [
        engine.approve(&run.id, &actor()).await,
        engine.cancel(&run.id, &actor()).await,
    ] {
        assert!(
            matches!(refused, Err(EngineError::Conflict { .. })),
            "{refused:?}"
        );
    }

    bench.sim.refuse(Refusal::CrPatch, false);
    engine.resume(&run.id, &actor()).await.unwrap();
    let done = settle(&engine, &run.id).await;
    assert_eq!(done.state, RunState::RolledBack, "{:?}", done.error);
    assert!(done.error.unwrap_or_default().starts_with("Verify data failed"));
    let mut after = bench.sim.fingerprint();
    after.k8s_backend_digest = before.k8s_backend_digest.clone();
    assert_eq!(after, before);
    assert_eq!(controller_backend(&engine).await, "etcd");
    assert!(
        done.audit
            .iter()
            .any(|a| a.action == "resume" && a.detail.as_deref() == Some("rollback"))
    );
}

#[tokio::test]
async fn a_manual_rollback_after_scale_down_etcd_brings_etcd_back_first() {
    let bench = Bench::new();
    let before = bench.sim.fingerprint();
    let engine = engine(&bench, settings(bench.dir.path())).await;
    let mut req = request(RunKind::Migrate);
    req.options.scale_down_etcd = true;
    let (run, _) = engine.create_run(req, &actor(), None).await.unwrap();
    let done = settle(&engine, &run.id).await;
    assert_eq!(done.state, RunState::Succeeded, "{:?}", done.error);
    assert!(
        done.report.helm_command.is_some(),
        "a successful migration says how to persist it"
    );
    assert!(done.helm_advice.is_none());
    let etcd = done
        .original
        .as_ref()
        .and_then(|o| o.etcd_stateful_set.clone())
        .expect("etcd found");
    let key = format!("{}/{etcd}", CR.0);
    assert_eq!(bench.sim.fingerprint().stateful_set_replicas[&key], 0);

    engine.rollback(&run.id, &actor()).await.unwrap();
    let back = settle(&engine, &run.id).await;
    assert_eq!(back.state, RunState::RolledBack, "{:?}", back.error);
    assert_eq!(controller_backend(&engine).await, "etcd");
    let mut after = bench.sim.fingerprint();
    after.k8s_backend_digest = before.k8s_backend_digest.clone();
    assert_eq!(after, before, "etcd and the controller are as before");
    // the controller runs on etcd: it started after etcd was back
    let urls = bench
        .sim
        .controller_connection_urls(CR.0, "piraeus-op-cs-controller");
    assert!(urls.iter().all(|u| u.starts_with("etcd://")), "{urls:?}");
    assert!(
        back.report.helm_command.is_none(),
        "no Helm command after a rollback"
    );
    assert!(
        back.helm_advice
            .unwrap_or_default()
            .contains("Keep the Helm values")
    );
    assert!(
        back.error
            .unwrap_or_default()
            .starts_with("manual rollback requested by operator")
    );
}

#[tokio::test]
async fn without_automatic_rollback_nothing_is_switched_and_a_hand_started_controller_makes_the_resume_roll_back()
 {
    let bench = Bench::new();
    let before = bench.sim.fingerprint();
    bench.sim.inject(StepName::Import, Fault::PartialImport);
    let engine = engine(&bench, settings(bench.dir.path())).await;
    let mut req = request(RunKind::Migrate);
    req.options.auto_rollback = false;
    req.options.import = linstor_migrator::model::ImportMode::Tool;
    let (run, _) = engine.create_run(req, &actor(), None).await.unwrap();
    let failed = settle(&engine, &run.id).await;
    assert_eq!(failed.state, RunState::Failed);
    let error = failed.error.clone().unwrap_or_default();
    assert!(error.starts_with("Import into k8s failed"), "{error}");
    assert!(
        error.contains("configured for etcd://"),
        "the switch waits for the verification: {error}"
    );
    assert!(error.contains("k8s backend holds"), "{error}");
    assert!(error.contains("patch linstorcontroller piraeus-op-cs"), "{error}");
    let cr = bench
        .sim
        .get_linstor_controller(CR.0, CR.1)
        .await
        .unwrap()
        .unwrap();
    assert!(
        cr.spec
            .db_connection_url
            .unwrap_or_default()
            .starts_with("etcd://")
    );
    assert_eq!(cr.spec.replicas, Some(0), "the controller is left stopped");

    // someone starts the controller by hand, then resumes the run
    bench
        .sim
        .patch_linstor_controller(CR.0, CR.1, serde_json::json!({"spec": {"replicas": 1}}))
        .await
        .unwrap();
    engine.resume(&run.id, &actor()).await.unwrap();
    let back = settle(&engine, &run.id).await;
    assert_eq!(back.state, RunState::RolledBack, "{:?}", back.error);
    let error = back.error.unwrap_or_default();
    assert!(error.contains("the controller was scaled to 1"), "{error}");
    let mut after = bench.sim.fingerprint();
    after.k8s_backend_digest = before.k8s_backend_digest.clone();
    assert_eq!(after, before);
    // the schema-only import before the stop and the failed one: none again under a live controller
    assert_eq!(
        bench.sim.effects().imports,
        2,
        "the import did not run again under a live controller"
    );
}

/// The database refuses the record of the rollback's start (a trigger that aborts setting the
/// phase, as a full disk would): the rollback must not act on the cluster from memory (a crash
/// would then resume the run forward over a half-restored controller); it retries the record and
/// acts once the database takes it.
#[tokio::test]
async fn a_rollback_whose_start_cannot_be_recorded_acts_only_once_it_is() {
    let bench = Bench::new();
    bench.sim.inject(StepName::Import, Fault::ExitOne);
    let engine = engine(&bench, settings(bench.dir.path())).await;
    let db = sqlx::SqlitePool::connect(&format!(
        "sqlite:{}",
        bench.dir.path().join(linstor_migrator::db::DB_FILE).display()
    ))
    .await
    .unwrap();
    sqlx::query(
        "CREATE TRIGGER refuse_rollback BEFORE UPDATE OF phase ON runs WHEN NEW.phase = 'rolling_back' \
         BEGIN SELECT RAISE(ABORT, 'simulated: the disk is full'); END",
    )
    .execute(&db)
    .await
    .unwrap();
    let mut req = request(RunKind::Migrate);
    req.options.import = linstor_migrator::model::ImportMode::Tool;
    let (run, _) = engine.create_run(req, &actor(), None).await.unwrap();
    poll("the failed import", async || {
        engine
            .events(&run.id, 0, 10_000, true)
            .await
            .unwrap()
            .iter()
            .any(|l| l.message.contains("import-db exited with 1"))
    })
    .await;
    let patches = bench.sim.effects().cr_patches;
    // the rollback would patch the CR at once: nothing may happen while its start is not recorded
    // (a window of a few retries; the fixed engine never acts, so this cannot fail spuriously)
    let until = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < until {
        assert_eq!(
            bench.sim.effects().cr_patches,
            patches,
            "acted before the rollback was recorded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(engine.run(&run.id).await.unwrap().state, RunState::Running);

    // the database takes writes again: the rollback is recorded, then done
    sqlx::query("DROP TRIGGER refuse_rollback")
        .execute(&db)
        .await
        .unwrap();
    let done = settle(&engine, &run.id).await;
    assert_eq!(done.state, RunState::RolledBack, "{:?}", done.error);
    assert_eq!(controller_backend(&engine).await, "etcd");
    assert!(bench.sim.effects().cr_patches > patches);
    db.close().await;
}
