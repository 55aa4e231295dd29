//! The report part of the run page: preflight checks, plan, data and cluster verification,
//! rollback cause, and the Helm command with the drift warning.

use crate::cluster::helm::HelmDrift;
use crate::engine::{CheckLevel, RunPlan, RunView};
use crate::model::RunKind;

pub struct CheckRow {
    pub level: &'static str,
    pub icon: &'static str,
    pub name: String,
    pub message: String,
}

/// What a run (or the migration a preflight checks for) will do.
pub struct PlanView {
    pub heading: String,
    /// Import and verification mode, approval gate, downtime steps, in one line.
    pub summary: String,
    pub steps: Vec<PlanStepRow>,
    pub changes: Vec<String>,
}

pub struct PlanStepRow {
    pub number: usize,
    pub title: String,
    pub what: String,
    pub downtime: bool,
}

fn plan_view(run: &RunView, p: &RunPlan) -> PlanView {
    let mut summary = Vec::new();
    if let Some(i) = p.import {
        summary.push(format!(
            "import: {}",
            serde_json::to_value(i)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default()
        ));
    }
    if let Some(v) = p.verify {
        summary.push(format!(
            "verification: {}",
            serde_json::to_value(v)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default()
        ));
    }
    match (p.downtime.first(), p.downtime.last()) {
        (Some(a), Some(b)) => summary.push(format!("controller down from {a} to {b}")),
        _ => summary.push("the controller keeps running".into()),
    }
    if p.approval_gate {
        summary.push("waits for approval before the downtime".into());
    }
    PlanView {
        heading: if run.kind == RunKind::Preflight {
            format!("What a {} would do", p.kind)
        } else {
            "Plan".into()
        },
        summary: summary.join(" · "),
        steps: p
            .steps
            .iter()
            .map(|s| PlanStepRow {
                number: s.number,
                title: s.title.clone(),
                what: s.what.clone(),
                downtime: s.downtime,
            })
            .collect(),
        changes: p.changes.clone(),
    }
}

/// The run's findings, for the report sections.
pub struct ReportView {
    pub checks: Vec<CheckRow>,
    pub plan: Vec<String>,
    pub planned: Option<PlanView>,
    /// `(identical, summary, differences)`.
    pub data: Option<(bool, String, Vec<String>)>,
    pub cluster: Option<(bool, String, Vec<String>)>,
    pub error_reports: Vec<String>,
    pub helm_command: String,
    pub helm_drift: String,
    /// The chart the release uses, and what the persist command changes.
    pub helm_chart: String,
    pub helm_changes: Vec<String>,
    /// The separate, later command that removes etcd, and its warning.
    pub helm_drop_etcd: String,
    pub helm_drop_etcd_warning: String,
    pub rollback_cause: String,
    pub k8s_leftover: String,
    pub etcd_scaled_down: String,
    pub approved_by: String,
    /// What the Helm values must say after anything but a successful migration.
    pub helm_advice: String,
    /// A rollback that gave up: what the service saw, and the commands that finish it.
    pub rollback_failure: Option<RollbackFailureView>,
}

pub struct RollbackFailureView {
    pub error: String,
    pub observed: Vec<String>,
    /// The commands as one copyable script.
    pub commands: String,
}

pub fn report_view(run: &RunView) -> ReportView {
    let r = &run.report;
    let helm_drift = r
        .helm
        .as_ref()
        .filter(|h| h.get("says_etcd").and_then(|v| v.as_bool()) == Some(true))
        .map(|h| {
            let release = h.get("release").and_then(|v| v.as_str()).unwrap_or("the Helm release");
            format!(
                "Helm release {release} still sets the etcd database in its values: the next helm upgrade would start \
                 the controller on etcd again, without the changes made since. Persist the change with the command below."
            )
        })
        .unwrap_or_default();
    let drift: Option<HelmDrift> = r.helm.clone().and_then(|h| serde_json::from_value(h).ok());
    // the commands belong to a successful migration only (`helm_command` is cleared otherwise)
    let drift = drift.filter(|_| r.helm_command.is_some());
    ReportView {
        helm_chart: drift.as_ref().and_then(|d| d.chart.clone()).unwrap_or_default(),
        helm_changes: drift.as_ref().map(|d| d.persist_changes.clone()).unwrap_or_default(),
        helm_drop_etcd: drift.as_ref().and_then(|d| d.drop_etcd_command.clone()).unwrap_or_default(),
        helm_drop_etcd_warning: drift
            .as_ref()
            .and_then(|d| d.drop_etcd_warning.clone())
            .unwrap_or_default(),
        checks: r
            .checks
            .iter()
            .map(|c| {
                let (level, icon) = match c.level {
                    CheckLevel::Ok => ("ok", "✓"),
                    CheckLevel::Warning => ("warning", "!"),
                    CheckLevel::Error => ("error", "✗"),
                };
                CheckRow { level, icon, name: c.name.clone(), message: c.message.clone() }
            })
            .collect(),
        plan: r.plan.clone(),
        planned: r.planned.as_ref().map(|p| plan_view(run, p)),
        data: r.data_verification.as_ref().map(|d| {
            let summary = format!("{} tables, {} rows compared with the backup", d.tables_compared, d.rows_compared);
            let diffs = d
                .differences
                .iter()
                .map(|t| {
                    format!(
                        "{}: {} rows expected, {} found ({} missing, {} extra, {} changed){}",
                        t.name,
                        t.rows_expected,
                        t.rows_found,
                        t.missing,
                        t.extra,
                        t.changed,
                        if t.examples.is_empty() { String::new() } else { format!(", e.g. {}", t.examples.join(", ")) }
                    )
                })
                .collect();
            (d.is_equal(), summary, diffs)
        }),
        cluster: r.cluster_verification.as_ref().map(|c| {
            let mut summary = format!(
                "{} nodes, {} storage pools, {} resources, {} volumes compared with the snapshot",
                c.nodes, c.storage_pools, c.resources, c.volumes
            );
            for e in &c.expected_changes {
                summary.push_str(&format!("; expected: {e}"));
            }
            (c.is_equal(), summary, c.differences.clone())
        }),
        error_reports: r
            .error_reports
            .iter()
            .map(|e| format!("{} on {}: {} {}", e.filename, e.node_name, e.exception, e.exception_message))
            .collect(),
        helm_command: r.helm_command.clone().unwrap_or_default(),
        helm_drift,
        rollback_cause: run.rollback_cause.clone().unwrap_or_default(),
        k8s_leftover: r
            .k8s_backend_after_rollback
            .as_ref()
            .filter(|i| i.total_objects() > 0)
            .map(|i| {
                format!(
                    "The k8s backend still holds {} objects from the interrupted import; the next import replaces them.",
                    i.total_objects()
                )
            })
            .unwrap_or_default(),
        etcd_scaled_down: r.etcd_scaled_down.clone().unwrap_or_default(),
        approved_by: run.approved_by.clone().unwrap_or_default(),
        helm_advice: run.helm_advice.clone().unwrap_or_default(),
        rollback_failure: r
            .rollback_failure
            .as_ref()
            .filter(|_| run.state == crate::model::RunState::RollbackFailed)
            .map(|f| RollbackFailureView {
                error: f.error.clone(),
                observed: f.observed.clone(),
                commands: f.commands.join("\n"),
            }),
    }
}
