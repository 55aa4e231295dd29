//! A verified plan for the rest of the Piraeus Operator v1 -> v2 upgrade (REFERENCE.md §8): after
//! the database (step 1, the migration), step 2 collects the installation and backs up what v2
//! needs, step 3 removes v1, step 4 installs v2 and applies the generated resources.
//!
//! [`plan`] is a pure function of a [`v1::V1Installation`]: the v2 resources (LinstorCluster, one
//! LinstorSatelliteConfiguration per LinstorSatelliteSet plus host networking and node labels),
//! the fate of every v1 value that is set ([`FieldOutcome`], from the table in `catalogue`), the
//! checks that decide whether the upgrade can go ahead, and the ordered commands with this
//! installation's names. [`bundle::script`] turns a plan into one shell script. Nothing here
//! talks to a cluster; the engine's `upgrade_plan` step reads the cluster.

pub mod bundle;
pub mod catalogue;
mod checks;
mod commands;
mod ledger;
mod linstor_cluster;
pub mod patches;
pub mod render;
mod satellites;
pub mod v1;

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_bundle;
#[cfg(test)]
mod tests_fields;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use checks::HA_CHARTS;
pub use v1::V1Installation;

/// The Piraeus Operator v2 release the plan targets (its CRDs are the ones the YAML is
/// validated against) and the LINSTOR version it runs by default.
pub const V2_VERSION: &str = "v2.6.0";
pub const V2_LINSTOR_VERSION: &str = "1.29.0";

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckOutcome {
    /// Blocks the upgrade until it is dealt with.
    Blocking,
    Warning,
    Passed,
}

/// One check of the installation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PlanCheck {
    /// Stable identifier, e.g. `database`, `passphrase`.
    pub id: String,
    pub outcome: CheckOutcome,
    pub title: String,
    /// What was found, and why it matters.
    pub message: String,
    /// What to do about it (empty when nothing).
    pub action: String,
}

/// What became of one v1 value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Carried into the v2 resources.
    Converted,
    /// Equal to what v2 does anyway: nothing to carry.
    V2Default,
    /// Not converted: needs the action in `detail` if it matters.
    NotConverted,
}

/// A v1 value that is set, and what the plan did with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldOutcome {
    /// `LinstorController piraeus-op-cs`.
    pub resource: String,
    /// Path under `spec`, e.g. `storagePools.lvmPools[0].volumeGroup`.
    pub field: String,
    /// The value (JSON for anything but a string).
    pub value: String,
    pub outcome: Outcome,
    /// Where it went, why nothing is needed, or what to do.
    pub detail: String,
}

/// One command of steps 2-4.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PlanStep {
    /// `2`, `3` or `4` (the upstream guide's steps).
    pub phase: u8,
    /// `3.2`.
    pub id: String,
    pub title: String,
    /// Shell commands (bash), with this installation's names.
    pub command: String,
    /// What it does, and why.
    pub explains: String,
    /// How to tell it worked.
    pub verify: String,
    /// A shell command that fails when the step did not work (the script runs it).
    pub verify_command: String,
    /// True when the step changes the cluster (the script asks first).
    pub changes_cluster: bool,
}

/// The installation a plan is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InstallationSummary {
    pub namespace: String,
    pub linstor_controller: String,
    pub satellite_sets: Vec<String>,
    pub csi_drivers: Vec<String>,
    pub helm_release: Option<String>,
    pub operator_deployment: Option<String>,
    pub passphrase_secret: Option<String>,
    /// `k8s`, `etcd`, ... as the controller's `linstor.toml` says.
    pub backend: String,
    pub connection_url: Option<String>,
    pub linstor_version: Option<String>,
    /// Where Piraeus Operator v2 will run.
    pub target_namespace: String,
    pub v2_version: String,
}

/// The plan: what to apply, what was not converted, the checks and the commands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UpgradePlan {
    pub installation: InstallationSummary,
    pub checks: Vec<PlanCheck>,
    /// The v2 objects in apply order (see [`UpgradePlan::yaml`]).
    #[schema(value_type = Vec<Object>)]
    pub resources: Vec<serde_json::Value>,
    /// Every v1 value that is set, converted or not.
    pub fields: Vec<FieldOutcome>,
    /// What v2 does differently whatever the values.
    pub behaviour_changes: Vec<String>,
    pub steps: Vec<PlanStep>,
}

impl UpgradePlan {
    /// The resources as one YAML stream (`v2-resources.yaml`).
    pub fn yaml(&self) -> String {
        render::documents(&self.resources)
    }

    /// The values that were not converted.
    pub fn not_converted(&self) -> impl Iterator<Item = &FieldOutcome> {
        self.fields.iter().filter(|f| f.outcome == Outcome::NotConverted)
    }

    /// Checks that block the upgrade.
    pub fn blocking(&self) -> impl Iterator<Item = &PlanCheck> {
        self.checks.iter().filter(|c| c.outcome == CheckOutcome::Blocking)
    }
}

/// Makes the plan for `inst`.
pub fn plan(inst: &V1Installation) -> UpgradePlan {
    let mut ledger = ledger::Ledger::default();
    let mut resources = vec![linstor_cluster::linstor_cluster(inst, &mut ledger)];
    resources.extend(satellites::configurations(inst, &mut ledger));
    let mut checks = checks::checks(inst, &ledger);
    // blocking first, then warnings, then what passed; stable within each
    checks.sort_by_key(|c| c.outcome);
    UpgradePlan {
        installation: summary(inst),
        checks,
        resources,
        fields: ledger.into_fields(),
        behaviour_changes: behaviour_changes(),
        steps: commands::steps(inst),
    }
}

fn summary(inst: &V1Installation) -> InstallationSummary {
    InstallationSummary {
        namespace: inst.namespace.clone(),
        linstor_controller: inst.controller.name.clone(),
        satellite_sets: inst.satellite_sets.iter().map(|s| s.name.clone()).collect(),
        csi_drivers: inst.csi_drivers.iter().map(|s| s.name.clone()).collect(),
        helm_release: inst.helm.as_ref().map(|h| h.release.clone()),
        operator_deployment: inst.operator.as_ref().map(|o| o.name.clone()),
        passphrase_secret: inst.controller.text("luksSecret").map(str::to_string),
        backend: inst.backend.to_string(),
        connection_url: inst.config_url.clone(),
        linstor_version: inst.linstor_version.clone(),
        target_namespace: inst.target_namespace.clone(),
        v2_version: V2_VERSION.into(),
    }
}

/// REFERENCE.md §8 "Behaviour changes", and what v2 adds by itself.
fn behaviour_changes() -> Vec<String> {
    vec![
        "v2 keeps only the node labels kubernetes.io/hostname, topology.kubernetes.io/region and \
         topology.kubernetes.io/zone in sync (as Aux/topology/<label>); v1 copied every label into Aux/<label>. The \
         generated LinstorSatelliteConfiguration node-labels keeps v1's copies in sync; delete it if nothing uses \
         them."
            .into(),
        "v2 sets cluster-wide DRBD options on the controller: rr-conflict retry-connect, on-suspended-primary-outdated \
         force-secondary, on-no-data-accessible suspend-io, auto-quorum suspend-io; and disables LINSTOR's own \
         eviction (AutoEvictAllowEviction false)."
            .into(),
        "v2 deploys the LINSTOR High Availability Controller itself (LinstorCluster spec.highAvailabilityController); \
         a separately installed one must be gone first."
            .into(),
        "v2 names its objects linstor-controller, linstor-satellite, linstor-csi-controller and linstor-csi-node; the \
         LINSTOR API is at http://linstor-controller.<namespace>.svc:3370 (https on 3371), no longer at the v1 \
         Service <release>-cs."
            .into(),
        "v2 applies every LinstorSatelliteConfiguration whose nodeSelector and nodeAffinity match a node to that \
         node's satellite; a configuration without them applies to every node."
            .into(),
    ]
}
