//! A flaky API server (10): the service reaches the API server through the fault-injecting proxy
//! that start.sh starts with the control plane (`kube-fault-proxy`; the service's kubeconfig
//! points at it). During the downtime of a migration one request gets a 500, in another run one
//! connection is reset, in a third one request is never answered: each run succeeds without a
//! rollback, and the unanswered request costs at most the calls' deadline. A fault that lasts
//! fails the run, which rolls back cleanly and names the call. The proxy's figures go to the
//! report.

use std::time::Duration;

use chrono::{DateTime, Utc};
use linstor_standins::faultproxy::Stats;
use serde_json::{Value, json};

use super::install::{Installation, Shape};
use super::migrate::{RUN_TIMEOUT, assert_migrated};
use super::observe;
use super::service::Service;
use super::suite::suite;

/// The namespace of these tests (and of the two-process test's installation).
pub const NS: &str = "e2e-faults";
/// `LINSTOR_MIGRATOR_KUBE_TIMEOUT` of the services here: the deadline of one attempt.
pub const DEADLINE_SECONDS: u64 = 4;

/// The control API of the fault-injecting proxy.
pub struct Proxy {
    control: String,
    http: reqwest::Client,
}

impl Proxy {
    pub fn get() -> Proxy {
        let control = suite()
            .fault_proxy_control
            .clone()
            .expect("no kube-fault-proxy: start.sh starts it when target/debug/kube-fault-proxy exists");
        Proxy {
            control,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
        }
    }

    /// Replaces the rules.
    pub async fn rules(&self, rules: Value) {
        let r = self
            .http
            .put(format!("{}/rules", self.control))
            .json(&rules)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "PUT /rules: {}", r.status());
    }

    /// The figures so far, which start again from zero.
    pub async fn take_stats(&self) -> Stats {
        let r = self
            .http
            .post(format!("{}/stats/reset", self.control))
            .send()
            .await
            .unwrap();
        r.json().await.unwrap()
    }
}

/// The moments the run's downtime began and ended.
fn downtime(run: &Value) -> (DateTime<Utc>, DateTime<Utc>) {
    let at = |k: &str| {
        run["downtime"][k]
            .as_str()
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("downtime {k} of {run:#}"))
    };
    (at("started_at"), at("ended_at"))
}

/// A migration with `rule` in force from its start; it must succeed without a rollback, the
/// rule must have fired once, inside the downtime. Returns the proxy's figures.
async fn migrate_through(rule: Value) -> Stats {
    let inst = Installation::new(NS, Shape::Piraeus, 1).await;
    let etcd_sha = observe::sha256_hex(&std::fs::read(&inst.dataset).unwrap());
    let proxy = Proxy::get();
    proxy.rules(json!([])).await;
    let svc = Service::start_with(
        &inst,
        &[("LINSTOR_MIGRATOR_KUBE_TIMEOUT", &DEADLINE_SECONDS.to_string())],
    )
    .await;
    proxy.take_stats().await;
    proxy.rules(json!([rule])).await;

    let id = svc.start_ok("migrate", &inst.reference()).await;
    let run = svc.wait_final(&id, RUN_TIMEOUT).await;
    proxy.rules(json!([])).await;
    let stats = proxy.take_stats().await;

    assert_migrated(&inst, &svc, &run, &etcd_sha).await;
    assert!(run["rollback_cause"].is_null(), "no rollback: {run:#}");
    assert_eq!(stats.faults(), 1, "the fault was injected once: {stats:?}");
    let (from, to) = downtime(&run);
    let at = stats.injections[0].at;
    assert!(
        from <= at && at <= to,
        "injected at {at}, inside the downtime {from} .. {to}"
    );
    suite().report(&format!(
        "test 10 {:?} on {}: run succeeded without rollback, downtime {:.1} s, {} requests through the proxy, \
         longest stall {:.2} s",
        stats.injections[0].fault,
        stats.injections[0].request,
        (to - from).as_seconds_f64(),
        stats.requests,
        stats.longest_stall().as_secs_f64()
    ));
    stats
}

/// Test 10a: the stop's patch of the LinstorController gets a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the loopback control plane: tests/cluster/e2e"]
async fn a_500_in_the_downtime_is_tried_again() {
    migrate_through(json!({"method": "PATCH", "path": "/linstorcontrollers/", "fault": "status500"})).await;
}

/// Test 10b: the connection of the switch's patch of the LinstorController is reset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the loopback control plane: tests/cluster/e2e"]
async fn a_reset_connection_in_the_downtime_is_tried_again() {
    migrate_through(json!({"method": "PATCH", "path": "/linstorcontrollers/", "fault": "reset", "skip": 1}))
        .await;
}

/// Test 10c: the list that starts the switch's wait for the ConfigMap is never answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the loopback control plane: tests/cluster/e2e"]
async fn a_request_never_answered_costs_at_most_its_deadline() {
    let stats = migrate_through(json!({
        "method": "GET", "path": "/configmaps", "query": "fieldSelector=metadata.name", "fault": "hang"
    }))
    .await;
    assert_eq!(stats.stalls.len(), 1, "{stats:?}");
    let stall = stats.longest_stall();
    assert!(
        stall >= Duration::from_secs(DEADLINE_SECONDS) - Duration::from_millis(100),
        "held until the client gave up: {stall:?}"
    );
    assert!(
        stall <= Duration::from_secs(DEADLINE_SECONDS + 2),
        "the client gave up at its deadline of {DEADLINE_SECONDS} s: {stall:?}"
    );
}

/// Test 10d: from the import on, every read of the `k8s` backend's objects gets a 500: the
/// verification fails after its attempts, the run rolls back, and the cluster is as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the loopback control plane: tests/cluster/e2e"]
async fn a_lasting_fault_ends_in_a_clean_rollback_that_names_the_call() {
    let inst = Installation::new(NS, Shape::Piraeus, 1).await;
    let etcd_sha = observe::sha256_hex(&std::fs::read(&inst.dataset).unwrap());
    let proxy = Proxy::get();
    proxy.rules(json!([])).await;
    let svc = Service::start_with(
        &inst,
        &[("LINSTOR_MIGRATOR_KUBE_TIMEOUT", &DEADLINE_SECONDS.to_string())],
    )
    .await;
    let id = svc.start_ok("migrate", &inst.reference()).await;
    svc.wait_step_running(&id, "import", RUN_TIMEOUT).await;
    proxy.take_stats().await;
    proxy
        .rules(json!([{
            "method": "GET", "path": "/apis/internal.linstor.linbit.com/", "fault": "status500", "count": 100000
        }]))
        .await;

    let run = svc.wait_final(&id, RUN_TIMEOUT).await;
    proxy.rules(json!([])).await;
    let stats = proxy.take_stats().await;

    let log = svc.log_text(&id).await;
    assert_eq!(run["state"], "rolled_back", "run: {run:#}\nlog:\n{log}");
    let error = run["error"].as_str().unwrap_or_default();
    for part in ["HTTP 500", "internal.linstor.linbit.com", "5 attempts"] {
        assert!(error.contains(part), "{part:?} missing in the error: {error}");
    }
    let cr = inst.linstor_controller().await;
    assert_eq!(cr.spec.db_connection_url.as_deref(), Some(inst.etcd_url.as_str()));
    assert_eq!(cr.spec.replicas, Some(inst.replicas));
    inst.wait_controller_up(Duration::from_secs(60)).await;
    assert!(
        inst.config_toml().await.contains(&inst.etcd_url),
        "the ConfigMap names etcd again"
    );
    assert_eq!(inst.migration_objects().await, Vec::<String>::new());
    let etcd = observe::sha256_hex(&std::fs::read(&inst.dataset).unwrap());
    assert_eq!(etcd, etcd_sha, "the etcd data changed");
    suite().report(&format!(
        "test 10d lasting 500 on reads of the k8s backend: {} faults injected, the run rolled back cleanly: {error}",
        stats.faults()
    ));
    assert!(stats.faults() >= 5, "{stats:?}");
}
