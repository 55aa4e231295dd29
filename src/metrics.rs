//! Prometheus metrics. The engine observes step durations; the HTTP layer counts requests and
//! fills the gauges that are read from the database at scrape time.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepLabels {
    pub kind: String,
    pub step: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    /// `namespace/name`, as in the API. One label: a `namespace` label would clash with the
    /// scrape target's own (Prometheus would rename it `exported_namespace`).
    pub controller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    /// The matched route template, never the raw path (bounded cardinality).
    pub route: String,
    pub status: String,
}

/// All metrics of the process.
pub struct Metrics {
    pub registry: Registry,
    pub step_duration_seconds: Family<StepLabels, Histogram>,
    pub runs: Family<StateLabels, Gauge>,
    pub active_runs: Gauge,
    pub backup_bytes: Gauge,
    pub sse_subscribers: Gauge,
    pub http_requests: Family<HttpLabels, Counter>,
    /// Rollbacks that gave up (runs now `rollback_failed`): an alarm.
    pub rollbacks_failed: Counter,
    /// Seconds since a run stopped a controller that no run has started again; a controller
    /// appears only while it is down (refilled at every scrape).
    pub controller_downtime_seconds: Family<ControllerLabels, Gauge<f64, AtomicU64>>,
    /// Tasks started to drive runs (one per run at a time).
    pub run_tasks_started: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("linstor_migrator");
        let step_duration_seconds = Family::<StepLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0])
        });
        registry.register(
            "step_duration_seconds",
            "Duration of run steps",
            step_duration_seconds.clone(),
        );
        let runs = Family::<StateLabels, Gauge>::default();
        registry.register("runs", "Runs by state", runs.clone());
        let active_runs = Gauge::default();
        registry.register(
            "active_runs",
            "Runs queued, running or waiting",
            active_runs.clone(),
        );
        let backup_bytes = Gauge::default();
        registry.register(
            "backup_bytes",
            "Bytes of all backups in the data directory",
            backup_bytes.clone(),
        );
        let sse_subscribers = Gauge::default();
        registry.register(
            "sse_subscribers",
            "Live event stream subscribers",
            sse_subscribers.clone(),
        );
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests served", http_requests.clone());
        let rollbacks_failed = Counter::default();
        registry.register(
            "rollbacks_failed",
            "Rollbacks that gave up after their retries and need a person",
            rollbacks_failed.clone(),
        );
        let controller_downtime_seconds = Family::<ControllerLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "controller_downtime_seconds",
            "Seconds since a run stopped the controller, while no run has started it again",
            controller_downtime_seconds.clone(),
        );
        let run_tasks_started = Counter::default();
        registry.register(
            "run_tasks_started",
            "Tasks started to drive runs",
            run_tasks_started.clone(),
        );
        Self {
            registry,
            rollbacks_failed,
            controller_downtime_seconds,
            run_tasks_started,
            step_duration_seconds,
            runs,
            active_runs,
            backup_bytes,
            sse_subscribers,
            http_requests,
        }
    }
}

impl Metrics {
    pub fn observe_step(&self, kind: &str, step: &str, outcome: &str, seconds: f64) {
        self.step_duration_seconds
            .get_or_create(&StepLabels {
                kind: kind.into(),
                step: step.into(),
                outcome: outcome.into(),
            })
            .observe(seconds);
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String");
        out
    }
}
