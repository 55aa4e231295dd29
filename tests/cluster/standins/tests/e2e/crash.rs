//! The service SIGKILLed inside the downtime (9): while the controller stops, while the import
//! writes, while the controller starts again; each time restarted with the same data directory.
//! Whatever the engine then decides (finish the migration or roll it back), the cluster must end
//! consistent: the run final and `succeeded` or `rolled_back` (killed during the tool's import:
//! `succeeded`, with the orphaned import stopped and gone before the resumed one deletes
//! anything), the controller Ready on the
//! database the CR and its ConfigMap name, one `linstor-database` at a time in the migration pod
//! (the restarted service stops what the killed one left running), nothing of the run left.
//!
//! The moments are made long enough to hit by the stand-ins, not by sleeps: KWOK stops or starts
//! the controller pod slowly ([`ControllerPace`], as a real controller takes seconds to shut
//! down and to come up), and the import is slowed down by the stand-in's `import:slow` fault.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use serde_json::{Value, json};

use super::install::{ControllerPace, Installation, Shape};
use super::migrate::{RUN_TIMEOUT, assert_migrated};
use super::observe;
use super::service::{Service, step_state};
use super::suite::suite;

/// How long the widened moment lasts: long enough for a 100 ms poll and a kill on a loaded
/// machine, short enough to keep the test quick.
const WINDOW: Duration = Duration::from_secs(4);

/// Where in the downtime the service is killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KillPoint {
    /// `stop_controller` running, the controller pod terminating.
    Stop,
    /// `import` running, the stand-in's import writing rows into the `k8s` backend.
    Import,
    /// `start_controller` running, the new controller pod created but not Ready yet.
    Start,
}

impl KillPoint {
    fn namespace(self) -> &'static str {
        match self {
            KillPoint::Stop => "e2e-crash-stop",
            KillPoint::Import => "e2e-crash-import",
            KillPoint::Start => "e2e-crash-start",
        }
    }

    fn step(self) -> &'static str {
        match self {
            KillPoint::Stop => "stop_controller",
            KillPoint::Import => "import",
            KillPoint::Start => "start_controller",
        }
    }

    fn pace(self) -> ControllerPace {
        match self {
            KillPoint::Stop => ControllerPace {
                stop: WINDOW,
                ..Default::default()
            },
            KillPoint::Import => ControllerPace::default(),
            KillPoint::Start => ControllerPace {
                start: WINDOW,
                ..Default::default()
            },
        }
    }
}

fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The controller's pods (the Deployment's selector).
async fn controller_pods(inst: &Installation) -> Vec<Pod> {
    let selector = inst
        .deployment()
        .await
        .spec
        .and_then(|s| s.selector.match_labels)
        .unwrap_or_default()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let pods: Api<Pod> = Api::namespaced(inst.client.clone(), &inst.ns);
    pods.list(&ListParams::default().labels(&selector))
        .await
        .unwrap()
        .items
}

/// The line the stand-in adds to its log (`./logs/linstor-db.log` of the migration pod's
/// commands) once an import creates rows: the import truncated the backend and writes rows.
fn import_writing(inst: &Installation) -> bool {
    std::fs::read_to_string(inst.dir.join("work/logs/linstor-db.log"))
        .unwrap_or_default()
        .contains(linstor_standins::dbtool::host::WRITING_ROWS)
}

/// Whether the cluster is at `point` now (the step itself is checked by the caller).
async fn at(inst: &Installation, point: KillPoint) -> bool {
    match point {
        KillPoint::Stop => controller_pods(inst)
            .await
            .iter()
            .any(|p| p.metadata.deletion_timestamp.is_some()),
        KillPoint::Import => import_writing(inst),
        KillPoint::Start => {
            let pods = controller_pods(inst).await;
            pods.iter()
                .any(|p| p.metadata.deletion_timestamp.is_none() && !is_ready(p))
        }
    }
}

/// Polls until the run's `point.step()` runs and the cluster is at `point`; panics when the
/// step is over before that (the window was missed) or after `RUN_TIMEOUT`.
async fn wait_for_point(svc: &Service, inst: &Installation, id: &str, point: KillPoint) {
    let deadline = tokio::time::Instant::now() + RUN_TIMEOUT;
    loop {
        let run = svc.run(id).await;
        let state = step_state(&run, point.step());
        if state == "running" && at(inst, point).await {
            return;
        }
        assert!(
            matches!(state.as_str(), "pending" | "running" | ""),
            "missed the moment {point:?}: step {} is {state} already: {run:#}",
            point.step()
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "never reached {point:?}: {run:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The controller pods that serve, as the REST stand-in sees them: their backends.
async fn serving_backends(inst: &Installation) -> Vec<String> {
    let state = observe::rest_state(&inst.rest_url).await;
    state["pods"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["ready"] == true)
        .map(|p| p["backend"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// A rolled-back run left the controller as it was: etcd URL and replicas in the CR, etcd in
/// the ConfigMap, a Ready controller serving from etcd, nothing of the run left.
async fn assert_rolled_back(inst: &Installation, svc: &Service, run: &Value, etcd_sha_before: &str) {
    let log = svc.log_text(run["id"].as_str().unwrap()).await;
    assert_eq!(run["state"], "rolled_back", "run: {run:#}\nlog:\n{log}");
    let cr = inst.linstor_controller().await;
    assert_eq!(cr.spec.db_connection_url.as_deref(), Some(inst.etcd_url.as_str()));
    assert_eq!(cr.spec.replicas, Some(inst.replicas));
    let toml = inst.config_toml().await;
    assert!(
        toml.contains(&inst.etcd_url),
        "ConfigMap after the rollback: {toml}"
    );
    assert_eq!(
        inst.deployment().await.spec.unwrap().replicas,
        Some(inst.replicas)
    );
    inst.wait_controller_up(Duration::from_secs(60)).await;
    let backends = serving_backends(inst).await;
    assert!(
        !backends.is_empty() && backends.iter().all(|b| b == "etcd"),
        "serving controller pods' backends: {backends:?}"
    );
    assert_eq!(
        inst.migration_objects().await,
        Vec::<String>::new(),
        "migration objects left"
    );
    let etcd_sha = observe::sha256_hex(&std::fs::read(&inst.dataset).unwrap());
    assert_eq!(etcd_sha, etcd_sha_before, "the etcd data changed");
}

async fn killed_during(point: KillPoint) {
    let inst = Installation::with_pace(point.namespace(), Shape::Piraeus, 1, point.pace()).await;
    let etcd_sha = observe::sha256_hex(&std::fs::read(&inst.dataset).unwrap());
    if point == KillPoint::Import {
        inst.arm_fault("import:slow");
    }
    let mut svc = Service::start(&inst).await;
    // the import that writes rows in the downtime is the tool's (the delta import, the default on
    // a recorded LINSTOR, writes them before the stop)
    let options = match point {
        KillPoint::Import => json!({"import": "tool"}),
        _ => json!({}),
    };
    let (status, body) = svc.start_run("migrate", &inst.reference(), options).await;
    assert_eq!(status, 201, "POST /api/v1/runs: {body}");
    let id = body["id"].as_str().expect("a run id").to_string();

    wait_for_point(&svc, &inst, &id, point).await;
    svc.kill().await;
    svc.restart().await;

    let run = svc.wait_final(&id, RUN_TIMEOUT).await;
    if point == KillPoint::Import {
        // the resumed import stops the import it interrupted, and waits until it is gone, before
        // anything touches the backend; then it goes on and succeeds (issue 18, item 4)
        let log = svc.log_text(&id).await;
        assert_eq!(run["state"], "succeeded", "run: {run:#}\nlog:\n{log}");
        let gone = log
            .find("tool-guard: pid")
            .and_then(|i| log[i..].find(" is gone").map(|j| i + j))
            .unwrap_or_else(|| panic!("the guard never said the orphan is gone:\n{log}"));
        let resumed = log
            .find("resuming an interrupted import")
            .unwrap_or_else(|| panic!("no resumed import:\n{log}"));
        let first_delete = log[resumed..]
            .find("deleted the ")
            .map(|i| resumed + i)
            .unwrap_or_else(|| panic!("the resumed import deleted nothing:\n{log}"));
        assert!(
            resumed < gone && gone < first_delete,
            "the orphan must be gone before the first delete:\n{log}"
        );
    }
    match run["state"].as_str() {
        Some("succeeded") => assert_migrated(&inst, &svc, &run, &etcd_sha).await,
        Some("rolled_back") => assert_rolled_back(&inst, &svc, &run, &etcd_sha).await,
        _ => panic!(
            "killed at {point:?}: the run ended {}, not succeeded or rolled_back: {run:#}\nlog:\n{}",
            run["state"],
            svc.log_text(&id).await
        ),
    }
    inst.assert_tool_runs_one_at_a_time_and_gone();
    suite().report(&format!(
        "test 9 killed at {point:?} ({} running): the run ended {}, {} linstor-database runs",
        point.step(),
        run["state"],
        inst.tool_starts().len()
    ));
}

/// Test 9a: killed while the controller pod is terminating.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the loopback control plane: tests/cluster/e2e"]
async fn killed_while_the_controller_stops() {
    killed_during(KillPoint::Stop).await;
}

/// Test 9b: killed while the import writes into the `k8s` backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the loopback control plane: tests/cluster/e2e"]
async fn killed_while_importing() {
    killed_during(KillPoint::Import).await;
}

/// Test 9c: killed while the controller pod starts again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the loopback control plane: tests/cluster/e2e"]
async fn killed_while_the_controller_starts() {
    killed_during(KillPoint::Start).await;
}
