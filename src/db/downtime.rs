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
        // the run's own downtime, or that of a rollback that stopped the controller again later
        let rows = sqlx::query(
            "SELECT controller, since FROM (SELECT controller, created_at, COALESCE( \
               CASE WHEN rollback_downtime_ended_at IS NULL THEN rollback_downtime_started_at END, \
               CASE WHEN downtime_ended_at IS NULL THEN downtime_started_at END) AS since FROM runs) AS r \
             WHERE since IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM runs AS n WHERE n.controller = r.controller AND n.created_at > r.created_at)",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let controller: ControllerRef = parse(r.try_get("controller")?)?;
                Ok((controller, r.try_get("since")?))
            })
            .collect()
    }
}
