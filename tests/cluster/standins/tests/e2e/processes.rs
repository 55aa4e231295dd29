//! One process per controller (11): the service (through the fault-injecting proxy) and the CLI
//! (`linstor-migrator migrate` from a terminal: its own data directory, straight to the API
//! server, the same ServiceAccount) on one controller. The CLI is refused while the service's run
//! waits at the approval gate, after it failed inside the downtime, and while its rollback has
//! given up; when the service's Lease renewals hang, it stops holding the controller within the
//! Lease's duration and the CLI takes over after it.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::faults::{DEADLINE_SECONDS, Proxy};
use super::install::{Installation, Shape};
use super::migrate::RUN_TIMEOUT;
use super::service::Service;
use super::suite::suite;

const NS: &str = "e2e-processes";
/// The Lease's duration for both processes (`--lease-seconds`).
const LEASE: Duration = Duration::from_secs(9);

/// The service with a short Lease and call deadline.
async fn service(inst: &Installation) -> Service {
    Service::start_with(
        inst,
        &[
            ("LINSTOR_MIGRATOR_KUBE_TIMEOUT", &DEADLINE_SECONDS.to_string()),
            ("LINSTOR_MIGRATOR_LEASE_SECONDS", &LEASE.as_secs().to_string()),
        ],
    )
    .await
}

/// Runs the CLI with `args` on `data`; its exit code and what it printed.
async fn cli(inst: &Installation, data: &Path, args: &[&str]) -> (i32, String) {
    let s = suite();
    let path = |p: &Path| p.display().to_string();
    let out = tokio::process::Command::new(&s.bins.migrator)
        .arg("--data-dir")
        .arg(data)
        .args(["--linstor-url", &inst.rest_url])
        .args(["--tool-path", &path(&inst.tool)])
        .args(["--source-config-dir", &path(&inst.source_config_dir)])
        .args(["--target-config-dir", &path(&inst.target_config_dir)])
        .args(["--backup-dir", &path(&inst.backup_dir)])
        .args(["--lease-seconds", &LEASE.as_secs().to_string()])
        .args(args)
        .env("KUBECONFIG", &s.direct_kubeconfig)
        .env_remove("POD_NAME")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), said)
}

/// The CLI's migration of the same controller is refused because of the service's Lease.
async fn assert_cli_refused(inst: &Installation, data: &Path, while_: &str) {
    let (code, said) = cli(
        inst,
        data,
        &["migrate", "--controller", &inst.reference(), "--yes"],
    )
    .await;
    assert_eq!(code, 1, "the CLI must be refused while {while_}: {said}");
    assert!(
        said.contains("holds Lease"),
        "refused because of the Lease while {while_}: {said}"
    );
}

/// The CLI's run started: no Lease of the service stood in its way. (Its preflight may still
/// fail: the CLI has its own database, so it cannot account for what the service's runs left in
/// the `k8s` backend, and says so.)
fn got_in(said: &str) -> bool {
    !said.contains("holds Lease") && said.contains("the run started")
}

/// A read-only run of the CLI goes through: the service no longer holds the controller.
async fn assert_cli_let_in(inst: &Installation, data: &Path) {
    let (_, said) = cli(inst, data, &["preflight", "--controller", &inst.reference()]).await;
    assert!(got_in(&said), "{said}");
}

/// Test 11a: waiting at the gate, the service keeps the controller, also past the Lease's
/// duration; when its renewals hang, it stops holding within the duration and the CLI takes over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the loopback control plane: tests/cluster/e2e"]
async fn the_cli_is_refused_while_the_service_waits_and_takes_over_when_its_renewals_hang() {
    let inst = Installation::new(NS, Shape::Piraeus, 1).await;
    let proxy = Proxy::get();
    proxy.rules(json!([])).await;
    let svc = service(&inst).await;
    let cli_data = inst.dir.join("cli-data");
    let (status, body) = svc
        .start_run(
            "migrate",
            &inst.reference(),
            json!({"approve_before_downtime": true}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    svc.wait_state(&id, "waiting", RUN_TIMEOUT).await;

    assert_cli_refused(&inst, &cli_data, "the service's run waits at the gate").await;
    tokio::time::sleep(LEASE).await;
    assert_cli_refused(
        &inst,
        &cli_data,
        "the service's run still waits, a Lease duration later",
    )
    .await;

    // from now on every Lease call of the service hangs
    proxy
        .rules(json!([{"path": "/leases", "fault": "hang", "count": 100000}]))
        .await;
    let hung: DateTime<Utc> = Utc::now();
    let taken = loop {
        let (_, said) = cli(
            &inst,
            &cli_data,
            &["preflight", "--controller", &inst.reference()],
        )
        .await;
        if got_in(&said) {
            break Utc::now();
        }
        assert!(said.contains("holds Lease"), "{said}");
        assert!(
            (Utc::now() - hung).to_std().unwrap() < LEASE * 6,
            "the CLI never got the Lease: {said}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    proxy.rules(json!([])).await;
    let stats = proxy.take_stats().await;

    let stopped = stopped_holding(&inst).expect("the service says it stopped holding the Lease");
    let lost_after = (stopped - hung).as_seconds_f64();
    let taken_after = (taken - hung).as_seconds_f64();
    assert!(
        lost_after <= LEASE.as_secs_f64(),
        "stopped holding {lost_after:.1} s after its renewals began to hang (Lease {} s)",
        LEASE.as_secs()
    );
    assert!(
        stopped < taken,
        "the CLI took over before the service stopped holding"
    );
    suite().report(&format!(
        "test 11a Lease renewals hung (proxy, {} requests held, longest {:.1} s): the service stopped holding \
         the controller after {lost_after:.1} s (Lease {} s), the CLI took over after {taken_after:.1} s",
        stats.stalls.len(),
        stats.longest_stall().as_secs_f64(),
        LEASE.as_secs()
    ));

    // the service holds its waiting run's controller again: the CLI is refused again
    let again = tokio::time::Instant::now() + LEASE * 3;
    loop {
        let (code, said) = cli(
            &inst,
            &cli_data,
            &["migrate", "--controller", &inst.reference(), "--yes"],
        )
        .await;
        if code == 1 && said.contains("holds Lease") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < again,
            "the service did not take its Lease back: {said}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (status, _) = svc.post(&format!("/api/v1/runs/{id}/cancel")).await;
    assert_eq!(status, 200);
    let run = svc.wait_final(&id, RUN_TIMEOUT).await;
    assert_eq!(run["state"], "cancelled", "{run:#}");
    assert_cli_let_in(&inst, &cli_data).await;
}

/// When the service's log says it stopped holding a Lease because it could not renew it.
fn stopped_holding(inst: &Installation) -> Option<DateTime<Utc>> {
    let log = std::fs::read_to_string(inst.dir.join("logs/linstor-migrator.log")).ok()?;
    log.lines()
        .filter(|l| l.contains("could not be renewed"))
        .find_map(|l| l.split_whitespace().next()?.parse().ok())
}

/// Test 11b: failed inside the downtime (automatic rollback off) and rollback_failed, the service
/// keeps the controller from the CLI; once rolled back, the CLI may.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the loopback control plane: tests/cluster/e2e"]
async fn the_cli_is_refused_after_a_failure_in_the_downtime_and_while_a_rollback_gave_up() {
    let inst = Installation::new(NS, Shape::Piraeus, 1).await;
    let proxy = Proxy::get();
    proxy.rules(json!([])).await;
    let svc = service(&inst).await;
    let cli_data = inst.dir.join("cli-data");

    // failed inside the downtime (the tool's import, which the fault makes fail there; the delta
    // import, the default, writes its rows before the stop): the controller stays stopped
    inst.arm_fault("import:exit1");
    let (status, body) = svc
        .start_run(
            "migrate",
            &inst.reference(),
            json!({"auto_rollback": false, "import": "tool"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    let run = svc.wait_final(&id, RUN_TIMEOUT).await;
    assert_eq!(run["state"], "failed", "{run:#}");
    assert!(
        run["downtime"]["ended_at"].is_null(),
        "the controller stays stopped: {run:#}"
    );
    assert_cli_refused(&inst, &cli_data, "the service's run failed inside the downtime").await;
    let (status, _) = svc.start_run("backup", &inst.reference(), json!({})).await;
    assert_eq!(status, 409, "a second run of the service itself is refused too");
    let (status, _) = svc.post(&format!("/api/v1/runs/{id}/rollback")).await;
    assert_eq!(status, 200);
    let run = svc.wait_final(&id, RUN_TIMEOUT).await;
    assert_eq!(run["state"], "rolled_back", "{run:#}");

    // a rollback that gives up: after the stop's patch, every patch of the LinstorController
    // fails (the rollback's restore of URL and replicas among them)
    inst.arm_fault("import:exit1");
    proxy
        .rules(json!([{
            "method": "PATCH", "path": "/linstorcontrollers/", "fault": "status500", "skip": 1, "count": 100000
        }]))
        .await;
    let (status, body) = svc
        .start_run("migrate", &inst.reference(), json!({"import": "tool"}))
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    let run = svc.wait_final(&id, RUN_TIMEOUT * 2).await;
    assert_eq!(run["state"], "rollback_failed", "{run:#}");
    assert_cli_refused(&inst, &cli_data, "the service's rollback gave up").await;

    proxy.rules(json!([])).await;
    let (status, _) = svc.post(&format!("/api/v1/runs/{id}/resume")).await;
    assert_eq!(status, 200);
    let run: Value = svc.wait_final(&id, RUN_TIMEOUT).await;
    assert_eq!(run["state"], "rolled_back", "{run:#}");
    inst.wait_controller_up(Duration::from_secs(60)).await;
    assert_cli_let_in(&inst, &cli_data).await;
    suite().report(&format!(
        "test 11b the CLI was refused after a failure in the downtime and while the rollback had given up ({} \
         faults injected); let in after the rollbacks",
        proxy.take_stats().await.faults()
    ));
}
