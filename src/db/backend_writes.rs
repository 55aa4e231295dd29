//! What this service does with the `k8s` backend ([`BackendWrite`]): the record that lets a later
//! run prove that objects it finds there are this service's own, and see a run that is writing it
//! (REFERENCE.md §2: the backend is one per Kubernetes cluster, and another LINSTOR may use it).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::Row as _;

use super::{Db, DbResult};
use crate::cluster::K8sBackendInventory;

/// What a run does with the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendUse {
    /// The run is about to write it, and may be writing it until it records something else.
    Writing,
    /// The run ended without a controller on it, leaving what the record says.
    Left,
    /// The run's controller runs on it.
    InUse,
}

impl BackendUse {
    fn as_str(self) -> &'static str {
        match self {
            BackendUse::Writing => "writing",
            BackendUse::Left => "left",
            BackendUse::InUse => "in_use",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "left" => BackendUse::Left,
            "in_use" => BackendUse::InUse,
            _ => BackendUse::Writing,
        }
    }
}

/// The backend as a run found or left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendWrite {
    pub run_id: String,
    pub recorded_at: DateTime<Utc>,
    pub state: BackendUse,
    pub schema_version: Option<i64>,
    pub objects: u64,
    /// CRD plural -> export rows, for the CRDs that held any.
    pub counts: BTreeMap<String, u64>,
}

impl BackendWrite {
    /// What `inventory` says, as a record of `run_id` in `state`.
    pub fn of(run_id: &str, state: BackendUse, inventory: &K8sBackendInventory) -> Self {
        Self {
            run_id: run_id.to_string(),
            recorded_at: Utc::now(),
            state,
            schema_version: inventory.schema_version,
            objects: inventory.total_objects(),
            counts: counts(inventory),
        }
    }

    /// Whether the backend is still exactly as this record left it (same schema version, the same
    /// number of export rows in each CRD).
    pub fn matches(&self, inventory: &K8sBackendInventory) -> bool {
        self.schema_version == inventory.schema_version && self.counts == counts(inventory)
    }
}

fn counts(inventory: &K8sBackendInventory) -> BTreeMap<String, u64> {
    inventory
        .crds
        .iter()
        .filter(|c| c.holds_export_rows() && c.objects > 0)
        .map(|c| (c.plural.clone(), c.objects))
        .collect()
}

impl Db {
    /// Records what a run left in the backend.
    pub async fn record_backend_write(&self, write: &BackendWrite) -> DbResult<()> {
        sqlx::query(
            "INSERT INTO backend_writes (run_id, recorded_at, state, schema_version, objects, counts) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&write.run_id)
        .bind(write.recorded_at)
        .bind(write.state.as_str())
        .bind(write.schema_version)
        .bind(write.objects as i64)
        .bind(serde_json::to_string(&write.counts).expect("counts serialize"))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The newest record: what the backend held when this service last stopped writing it.
    pub async fn last_backend_write(&self) -> DbResult<Option<BackendWrite>> {
        let Some(r) = sqlx::query(
            "SELECT run_id, recorded_at, state, schema_version, objects, counts FROM backend_writes \
             ORDER BY seq DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let counts: String = r.try_get("counts")?;
        let state: String = r.try_get("state")?;
        Ok(Some(BackendWrite {
            run_id: r.try_get("run_id")?,
            recorded_at: r.try_get("recorded_at")?,
            state: BackendUse::parse(&state),
            schema_version: r.try_get("schema_version")?,
            objects: r.try_get::<i64, _>("objects")? as u64,
            counts: serde_json::from_str(&counts).unwrap_or_default(),
        }))
    }
}
