//! What the run page shows of an upgrade plan (`templates/upgrade_plan.html`): the checks with
//! their outcome, the v2 YAML, the values not converted, the commands of steps 2-4 with their
//! checks, and the downloads; and, on a migration that succeeded, the way to the plan.

use crate::cluster::controller::ControllerKind;
use crate::engine::RunView;
use crate::model::{RunKind, RunState};
use crate::upgrade::{CheckOutcome, FieldOutcome, Outcome, UpgradePlan};

pub struct PlanCheckRow {
    /// `pass`, `warn` or `block` (CSS classes).
    pub outcome: &'static str,
    pub icon: &'static str,
    /// For screen readers.
    pub outcome_text: &'static str,
    pub title: String,
    pub message: String,
    pub action: String,
}

pub struct FieldRow {
    pub resource: String,
    pub field: String,
    pub value: String,
    pub detail: String,
}

pub struct CommandRow {
    pub id: String,
    /// `cmd-3-2`: the code block's element id (for the copy button).
    pub anchor: String,
    pub title: String,
    pub command: String,
    pub explains: String,
    pub verify: String,
    pub verify_command: String,
    pub changes_cluster: bool,
}

pub struct PhaseRow {
    pub title: &'static str,
    pub commands: Vec<CommandRow>,
}

pub struct UpgradeView {
    pub namespace: String,
    pub controller: String,
    pub satellite_sets: String,
    pub csi_drivers: String,
    pub release: String,
    pub backend: String,
    pub target_namespace: String,
    pub v2_version: String,
    pub blocking: usize,
    pub warnings: usize,
    pub passed: usize,
    pub checks: Vec<PlanCheckRow>,
    pub yaml: String,
    pub converted: Vec<FieldRow>,
    pub defaults: Vec<FieldRow>,
    pub not_converted: Vec<FieldRow>,
    pub behaviour_changes: Vec<String>,
    pub phases: Vec<PhaseRow>,
    pub json_url: String,
    pub yaml_url: String,
    pub script_url: String,
    pub script_name: String,
}

fn rows(fields: &[FieldOutcome], outcome: Outcome) -> Vec<FieldRow> {
    fields
        .iter()
        .filter(|f| f.outcome == outcome)
        .map(|f| FieldRow {
            resource: f.resource.clone(),
            field: format!("spec.{}", f.field),
            value: f.value.clone(),
            detail: f.detail.clone(),
        })
        .collect()
}

fn phase_title(phase: u8) -> &'static str {
    match phase {
        2 => "Step 2: collect and back up (changes nothing)",
        3 => "Step 3: remove Piraeus Operator v1 (volumes keep working)",
        _ => "Step 4: install Piraeus Operator v2",
    }
}

pub fn upgrade_view(run_id: &str, plan: &UpgradePlan) -> UpgradeView {
    let i = &plan.installation;
    let count = |o: CheckOutcome| plan.checks.iter().filter(|c| c.outcome == o).count();
    let mut phases: Vec<PhaseRow> = Vec::new();
    for step in &plan.steps {
        if phases.last().is_none_or(|p| p.title != phase_title(step.phase)) {
            phases.push(PhaseRow {
                title: phase_title(step.phase),
                commands: Vec::new(),
            });
        }
        if let Some(p) = phases.last_mut() {
            p.commands.push(CommandRow {
                id: step.id.clone(),
                anchor: format!("cmd-{}", step.id.replace('.', "-")),
                title: step.title.clone(),
                command: step.command.clone(),
                explains: step.explains.clone(),
                verify: step.verify.clone(),
                verify_command: step.verify_command.clone(),
                changes_cluster: step.changes_cluster,
            });
        }
    }
    let base = format!("/api/v1/runs/{run_id}/upgrade-plan");
    UpgradeView {
        namespace: i.namespace.clone(),
        controller: i.linstor_controller.clone(),
        satellite_sets: i.satellite_sets.join(", "),
        csi_drivers: i.csi_drivers.join(", "),
        release: i.helm_release.clone().unwrap_or_else(|| "none found".into()),
        backend: i.backend.clone(),
        target_namespace: i.target_namespace.clone(),
        v2_version: i.v2_version.clone(),
        blocking: count(CheckOutcome::Blocking),
        warnings: count(CheckOutcome::Warning),
        passed: count(CheckOutcome::Passed),
        checks: plan
            .checks
            .iter()
            .map(|c| {
                let (outcome, icon, outcome_text) = match c.outcome {
                    CheckOutcome::Passed => ("pass", "✓", "passed"),
                    CheckOutcome::Warning => ("warn", "!", "warning"),
                    CheckOutcome::Blocking => ("block", "✗", "blocking"),
                };
                PlanCheckRow {
                    outcome,
                    icon,
                    outcome_text,
                    title: c.title.clone(),
                    message: c.message.clone(),
                    action: c.action.clone(),
                }
            })
            .collect(),
        yaml: plan.yaml(),
        converted: rows(&plan.fields, Outcome::Converted),
        defaults: rows(&plan.fields, Outcome::V2Default),
        not_converted: rows(&plan.fields, Outcome::NotConverted),
        behaviour_changes: plan.behaviour_changes.clone(),
        phases,
        json_url: base.clone(),
        yaml_url: format!("{base}.yaml"),
        script_url: format!("{base}.sh"),
        script_name: format!("piraeus-v2-upgrade-{}.sh", i.namespace),
    }
}

/// The controller whose v2 upgrade a finished run may lead to: a migration of a LinstorController
/// that succeeded (the database is on k8s now, step 1 is done).
pub fn plan_next(run: &RunView) -> Option<String> {
    let managed_by_cr = run
        .report
        .controller
        .as_ref()
        .is_some_and(|c| c.kind == ControllerKind::LinstorController);
    (run.kind == RunKind::Migrate && run.state == RunState::Succeeded && managed_by_cr)
        .then(|| run.controller.clone())
}
