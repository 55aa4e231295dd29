//! Health and metrics: `/livez` (the process answers), `/healthz` (the same), `/readyz` (the
//! database and the cluster answer; the cluster's answer is cached, see [`super::readiness`]) and
//! `/metrics` (Prometheus, gauges filled at scrape time).

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

use crate::http::AppState;
use crate::http::error::{ApiError, ApiResult, Json};
use crate::metrics::{ControllerLabels, StateLabels};
use crate::model::RunState;

/// Longest a readiness check waits for the cluster.
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(3);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/livez", get(livez))
        .route("/healthz", get(livez))
        .route("/readyz", get(readyz))
}

pub fn metrics_router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
}

async fn livez() -> Json<Health> {
    Json(Health { status: "ok" })
}

async fn readyz(State(state): State<AppState>) -> ApiResult<Json<Health>> {
    // the database is local and cheap to ask: every time
    state.engine.db().ping().await.map_err(|e| {
        tracing::warn!("readiness: database: {e}");
        ApiError::Unavailable("database is not available".into())
    })?;
    state
        .readiness
        .get(Instant::now(), || cluster_check(&state))
        .await
        .map_err(ApiError::Unavailable)?;
    Ok(Json(Health { status: "ok" }))
}

/// Whether the Kubernetes API answers a LinstorController list; the message for the probe when not.
async fn cluster_check(state: &AppState) -> Result<(), String> {
    let listed =
        tokio::time::timeout(CLUSTER_TIMEOUT, state.engine.cluster().list_linstor_controllers()).await;
    match listed {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => {
            // logged once per check, not once per cached answer
            tracing::warn!("readiness: cluster: {e}");
            Err("the Kubernetes API is not reachable".into())
        }
        Err(_) => {
            tracing::warn!("readiness: cluster: no answer within {CLUSTER_TIMEOUT:?}");
            Err("the Kubernetes API did not answer in time".into())
        }
    }
}

async fn metrics(State(state): State<AppState>) -> ApiResult<Response> {
    let engine = &state.engine;
    let m = engine.metrics();
    let counts = engine
        .db()
        .run_counts()
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    for s in RunState::ALL {
        let n = counts
            .iter()
            .find(|(state, _)| *state == s)
            .map_or(0, |(_, n)| *n);
        m.runs
            .get_or_create(&StateLabels {
                state: s.as_str().into(),
            })
            .set(n);
    }
    m.active_runs
        .set(counts.iter().filter(|(s, _)| !s.is_final()).map(|(_, n)| n).sum());
    m.backup_bytes.set(
        engine
            .db()
            .backup_bytes()
            .await
            .map_err(|e| ApiError::Internal(e.into()))?,
    );
    m.sse_subscribers.set(engine.subscribers() as i64);
    let stopped = engine
        .db()
        .stopped_controllers()
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    // a controller started again since the last scrape must disappear, not keep its last value
    m.controller_downtime_seconds.clear();
    let now = chrono::Utc::now();
    for (controller, since) in stopped {
        let labels = ControllerLabels {
            controller: controller.to_string(),
        };
        let seconds = (now - since).num_milliseconds().max(0) as f64 / 1000.0;
        m.controller_downtime_seconds.get_or_create(&labels).set(seconds);
    }
    let mut res = m.encode().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    Ok(res)
}
