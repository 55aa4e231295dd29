//! The steps. Each one looks at the cluster before it acts and only does what is still missing,
//! so a step that is run again after an interruption does no harm.

mod backup;
mod controller;
mod pod;
mod preflight;
mod tool;
mod verify;

use tokio_util::sync::CancellationToken;

use super::log::RunLog;
use super::{Inner, RunContext};
use crate::cluster::controller::ControllerInfo;
use crate::cluster::{Cluster, ClusterError};
use crate::db::RunRecord;
use crate::model::StepName;

pub(super) use controller::rollback_controller;
pub(super) use pod::remove_migration_objects;

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
    pub stop: CancellationToken,
    /// Log lines of a rollback belong to no step.
    pub rolling_back: bool,
}

impl StepCtx<'_> {
    pub fn log_step(&self) -> Option<StepName> {
        (!self.rolling_back).then_some(self.step)
    }

    pub fn cluster(&self) -> &dyn Cluster {
        self.inner.cluster.as_ref()
    }

    pub async fn info(&self, msg: &str) -> Result<(), StepError> {
        Ok(self.log.line(self.log_step(), "info", msg).await?)
    }

    pub async fn warn(&self, msg: &str) -> Result<(), StepError> {
        Ok(self.log.line(self.log_step(), "warn", msg).await?)
    }

    /// The controller as found by preflight.
    pub fn controller(&self) -> Result<&ControllerInfo, StepError> {
        self.ctx
            .controller
            .as_ref()
            .ok_or_else(|| StepError::Failed("preflight has not found the controller".into()))
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
        StepName::PreparePod => pod::prepare(c).await,
        StepName::Snapshot => verify::snapshot(c).await,
        StepName::StopController => controller::stop(c).await,
        StepName::Export => tool::export(c).await,
        StepName::CopyBackup => backup::copy(c).await,
        StepName::Import => tool::import(c).await,
        StepName::VerifyData => backup::verify_data(c).await,
        StepName::Switch => controller::switch(c).await,
        StepName::StartController => controller::start(c).await,
        StepName::VerifyCluster => verify::cluster(c).await,
        StepName::Cleanup => pod::cleanup(c).await,
    }
}
