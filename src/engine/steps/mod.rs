//! The steps, one file each, in the order of a migration (DESIGN.md "The migrate steps"). Each
//! step looks at the cluster before it acts and only does what is still missing, so a step that
//! runs again after an interruption does no harm. `control`, `tool` and `files` hold what several
//! steps (and the rollback) share.

pub(super) mod control;
pub(super) mod files;
pub(super) mod tool;

mod cleanup;
mod copy_backup;
mod export;
pub(super) mod import;
mod preflight;
mod preflight_checks;
mod preflight_data;
mod preflight_plan;
mod preflight_rules;
mod prepare_pod;
mod prepare_target;
mod snapshot;
mod start_controller;
mod stop_controller;
mod switch;
mod upgrade_plan;
mod verify_cluster;
mod verify_data;

use tokio_util::sync::CancellationToken;

use super::log::RunLog;
use super::{Inner, RunContext};
use crate::cluster::controller::ControllerInfo;
use crate::cluster::{Cluster, ClusterError};
use crate::db::RunRecord;
use crate::model::StepName;

pub use preflight_checks::{checked_kind, discovery_checks};
pub use preflight_rules::{k8s_backend_rules, own_rules};
pub(super) use prepare_pod::remove_migration_objects;
pub(super) use prepare_target::remove_precopy;

/// Why a step did not succeed.
#[derive(Debug, thiserror::Error)]
pub(super) enum StepError {
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<crate::db::DbError> for StepError {
    fn from(e: crate::db::DbError) -> Self {
        StepError::Internal(e.into())
    }
}

pub(super) type StepResult = Result<String, StepError>;

/// What a step works with.
pub(super) struct StepCtx<'a> {
    pub inner: &'a Inner,
    pub run: RunRecord,
    pub log: RunLog,
    pub step: StepName,
    pub ctx: RunContext,
    /// Ends the step's waits: a cancel, a shutdown, a lost Lease.
    pub stop: CancellationToken,
}

impl StepCtx<'_> {
    pub fn cluster(&self) -> &dyn Cluster {
        self.inner.cluster.as_ref()
    }

    pub async fn info(&self, msg: &str) -> Result<(), StepError> {
        Ok(self.log.line(Some(self.step), "info", msg).await?)
    }

    pub async fn warn(&self, msg: &str) -> Result<(), StepError> {
        Ok(self.log.line(Some(self.step), "warn", msg).await?)
    }

    /// The controller as found by preflight.
    pub fn controller(&self) -> Result<&ControllerInfo, StepError> {
        self.ctx
            .controller
            .as_ref()
            .ok_or_else(|| StepError::Failed("preflight has not found the controller".into()))
    }

    /// The migration pod's name (derived from the run, so known even before it exists).
    pub fn migration_pod(&self) -> Result<String, StepError> {
        self.ctx
            .migration_pod
            .clone()
            .ok_or_else(|| StepError::Failed("no migration pod".into()))
    }

    /// Stores the context now (before an action whose effect must be known after a crash).
    pub async fn save(&self) -> Result<(), StepError> {
        Ok(self
            .inner
            .db
            .set_context(&self.run.id, &self.ctx.to_value())
            .await?)
    }
}

/// Runs one step.
pub(super) async fn execute(c: &mut StepCtx<'_>) -> StepResult {
    match c.step {
        StepName::Preflight => preflight::run(c).await,
        StepName::UpgradePlan => upgrade_plan::run(c).await,
        StepName::PreparePod => prepare_pod::run(c).await,
        StepName::Snapshot => snapshot::run(c).await,
        StepName::PrepareTarget => prepare_target::run(c).await,
        StepName::StopController => stop_controller::run(c).await,
        StepName::Export => export::run(c).await,
        StepName::CopyBackup => copy_backup::run(c).await,
        StepName::Import => import::run(c).await,
        StepName::VerifyData => verify_data::run(c).await,
        StepName::Switch => switch::run(c).await,
        StepName::StartController => start_controller::run(c).await,
        StepName::VerifyCluster => verify_cluster::run(c).await,
        StepName::Cleanup => cleanup::run(c).await,
    }
}
