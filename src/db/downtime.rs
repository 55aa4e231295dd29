//! Controllers that a run stopped and has not started again: what the gauge
//! `linstor_migrator_controller_downtime_seconds` shows, so that an alert can fire when a
//! controller stays down (a run waiting on a slow step, a failed run without rollback, a rollback
//! that gave up).

use chrono::{DateTime, Utc};
use sqlx::Row as _;

use super::{Db, DbResult, parse};
use crate::model::ControllerRef;

impl Db {
    /// Each controller whose latest run stopped it and has not started it again, with the moment
    /// it was stopped. A newer run of the same controller means someone dealt with it since.
    pub async fn stopped_controllers(&self) -> DbResult<Vec<(ControllerRef, DateTime<Utc>)>> {
        let rows = sqlx::query(
            "SELECT controller, downtime_started_at FROM runs AS r \
             WHERE downtime_started_at IS NOT NULL AND downtime_ended_at IS NULL \
             AND NOT EXISTS (SELECT 1 FROM runs AS n WHERE n.controller = r.controller AND n.created_at > r.created_at)",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let controller: ControllerRef = parse(r.try_get("controller")?)?;
                Ok((controller, r.try_get("downtime_started_at")?))
            })
            .collect()
    }
}
