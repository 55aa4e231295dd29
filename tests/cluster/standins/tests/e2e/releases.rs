//! The core cases on both recorded LINSTOR releases (issue 17): a full migration with each import
//! mode, a failed import rolled back, and the delta import equal to the tool's object by object,
//! on a controller of the Piraeus v1.10.8 chart's default image (LINSTOR 1.25.1, whose stand-ins
//! take the version from that image: 41 tables, CRDs at v1-19-1, a tool that lingers a minute
//! after its last line on `k8s`) as on 1.33.3 (tests 1, 2 and 13 there). They share the control
//! plane with the rest of the suite; each starts on a cluster without LINSTOR's `k8s` backend.

use linstor_fake::Release;
use serde_json::{Value, json};

use super::delta::delta_import_equals_the_tools_import_on;
use super::install::Installation;
use super::migrate::{failed_import_rolls_back_on, migrate_ok};
use super::observe;
use super::service::Service;

/// The import report of a finished run.
fn import_report(run: &Value) -> &Value {
    &run["report"]["import_report"]
}

/// Lines of the run's log that say a lingering tool was stopped, by step.
async fn stopped_lingering(svc: &Service, run: &Value) -> usize {
    svc.log_text(run["id"].as_str().unwrap())
        .await
        .lines()
        .filter(|l| l.contains("has not exited") && l.contains("stopping it"))
        .count()
}

/// A full migration of a controller of `release` with `options`; returns the run.
async fn full_migration(ns: &str, release: Release, options: Value) -> (Installation, Service, Value) {
    let inst = Installation::of_release(ns, release).await;
    let svc = Service::start(&inst).await;
    let run = migrate_ok(&inst, &svc, options).await;
    // the controller that came back on k8s is the image's LINSTOR
    let version = observe::rest_version(&inst.rest_url).await;
    assert_eq!(version, inst.version);
    (inst, svc, run)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the loopback control plane: tests/cluster/e2e"]
async fn the_chart_default_1_25_1_migrates_with_the_default_options_by_the_delta_import() {
    let (_inst, svc, run) = full_migration("e2e-v1-25-1", Release::V1_25_1, json!({})).await;
    let report = import_report(&run);
    assert_eq!(report["mode"], "delta", "{run:#}");
    assert!(report["fallback"].is_null(), "{run:#}");
    // the schema-only import before the stop lingered after `Import finished` and was stopped
    assert_eq!(stopped_lingering(&svc, &run).await, 1, "{run:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the loopback control plane: tests/cluster/e2e"]
async fn the_chart_default_1_25_1_migrates_with_the_tools_import() {
    let (_inst, svc, run) =
        full_migration("e2e-v1-25-1-tool", Release::V1_25_1, json!({"import": "tool"})).await;
    assert_eq!(import_report(&run)["mode"], "tool", "{run:#}");
    // the schema-only import and the downtime's import: each stopped 2 s after its finished
    // line instead of a minute later
    assert_eq!(stopped_lingering(&svc, &run).await, 2, "{run:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the loopback control plane: tests/cluster/e2e"]
async fn linstor_1_33_3_migrates_with_the_tools_import() {
    let (_inst, svc, run) =
        full_migration("e2e-v1-33-3-tool", Release::V1_33_3, json!({"import": "tool"})).await;
    assert_eq!(import_report(&run)["mode"], "tool", "{run:#}");
    assert_eq!(stopped_lingering(&svc, &run).await, 0, "1.33.3 exits at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the loopback control plane: tests/cluster/e2e"]
async fn a_failed_import_on_1_25_1_rolls_back() {
    failed_import_rolls_back_on("e2e-v1-25-1-rollback", Release::V1_25_1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the loopback control plane: tests/cluster/e2e"]
async fn the_delta_import_on_1_25_1_equals_the_tools_import() {
    delta_import_equals_the_tools_import_on("e2e-v1-25-1-delta-equal", Release::V1_25_1).await;
}
