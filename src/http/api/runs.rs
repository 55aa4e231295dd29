//! Runs: start one, list them, read one, and act on it (cancel, resume, roll back, approve).
//! Every action is recorded with its caller in the run's audit trail.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::bounded::Bounded;
use super::idempotency::IdempotencyKey;
use super::{Path, Query};
use crate::engine::{CreateRun, RunSummary, RunView};
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::http::error::{ApiResult, ErrorBody, Json};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_run, list_runs))
        .routes(routes!(get_run))
        .routes(routes!(cancel_run))
        .routes(routes!(resume_run))
        .routes(routes!(rollback_run))
        .routes(routes!(approve_run))
}

/// Starts a run. With an `Idempotency-Key` used before for the same request, returns that run
/// with 200 instead of starting another.
#[utoipa::path(
    post,
    path = "/api/v1/runs",
    tag = "runs",
    request_body = CreateRun,
    params(("Idempotency-Key" = inline(Option<IdempotencyKey>), Header, nullable = false, description = "Makes retries return the same run")),
    responses(
        (status = 201, description = "Run started", body = RunView,
            headers(("Location" = String, description = "The run's URL"))),
        (status = 200, description = "The run this Idempotency-Key started before", body = RunView,
            headers(("Location" = String, description = "The run's URL"))),
        (status = 400, description = "Malformed JSON or Idempotency-Key", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 409, description = "The controller has an active run, or the key was used for another request", body = ErrorBody),
        (status = 413, description = "Request body larger than the limit", body = ErrorBody),
        (status = 415, description = "No body, or not Content-Type: application/json", body = ErrorBody),
        (status = 422, description = "Invalid input (e.g. the controller does not exist)", body = ErrorBody),
        (status = 502, description = "The Kubernetes API failed", body = ErrorBody),
    )
)]
pub async fn create_run(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Json(req): Json<CreateRun>,
) -> ApiResult<Response> {
    let key = IdempotencyKey::from_headers(&headers)?.map(IdempotencyKey::into_string);
    let (run, created) = state.engine.create_run(req, &caller.actor, key).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut res = (status, Json(run.clone())).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/runs/{}", run.id)) {
        res.headers_mut().insert(header::LOCATION, location);
    }
    Ok(res)
}

/// Paging of the run list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// At most this many runs, newest first (default 100).
    #[param(inline, nullable = false)]
    pub limit: Option<Bounded<1, 1000>>,
}

/// Runs, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/runs",
    tag = "runs",
    params(ListParams),
    responses(
        (status = 200, description = "Runs", body = Vec<RunSummary>),
        (status = 400, description = "Bad paging parameters", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
    )
)]
pub async fn list_runs(
    State(state): State<AppState>,
    Query(p): Query<ListParams>,
) -> ApiResult<Json<Vec<RunSummary>>> {
    let limit = p.limit.map_or(100, Bounded::get);
    Ok(Json(state.engine.runs(limit).await?))
}

/// A run with its steps, backups, report and audit trail.
#[utoipa::path(
    get,
    path = "/api/v1/runs/{id}",
    tag = "runs",
    params(("id" = String, Path, description = "Run id")),
    responses(
        (status = 200, description = "The run", body = RunView),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "No such run", body = ErrorBody),
    )
)]
pub async fn get_run(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<RunView>> {
    Ok(Json(state.engine.run(&id).await?))
}

/// What can be done to a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Cancel,
    Resume,
    Rollback,
    Approve,
}

impl Action {
    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "cancel" => Some(Action::Cancel),
            "resume" => Some(Action::Resume),
            "rollback" => Some(Action::Rollback),
            "approve" => Some(Action::Approve),
            _ => None,
        }
    }

    /// Does the action on behalf of `caller`.
    pub async fn apply(self, state: &AppState, id: &str, caller: &Caller) -> ApiResult<RunView> {
        let e = &state.engine;
        let run = match self {
            Action::Cancel => e.cancel(id, &caller.actor).await?,
            Action::Resume => e.resume(id, &caller.actor).await?,
            Action::Rollback => e.rollback(id, &caller.actor).await?,
            Action::Approve => e.approve(id, &caller.actor).await?,
        };
        Ok(run)
    }
}

macro_rules! action_handler {
    ($name:ident, $action:expr, $path:literal, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(
            post,
            path = $path,
            tag = "runs",
            params(("id" = String, Path, description = "Run id")),
            responses(
                (status = 200, description = "The run after the action", body = RunView),
                (status = 401, description = "Not authenticated", body = ErrorBody),
                (status = 404, description = "No such run", body = ErrorBody),
                (status = 409, description = "The action does not fit the run's state", body = ErrorBody),
            )
        )]
        pub async fn $name(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<RunView>> {
            Ok(Json($action.apply(&state, &id, &caller).await?))
        }
    };
}

action_handler!(
    cancel_run,
    Action::Cancel,
    "/api/v1/runs/{id}/cancel",
    "Asks an active run to stop at its next safe point and roll back."
);
action_handler!(
    resume_run,
    Action::Resume,
    "/api/v1/runs/{id}/resume",
    "Continues a failed run from its failed step."
);
action_handler!(
    rollback_run,
    Action::Rollback,
    "/api/v1/runs/{id}/rollback",
    "Rolls back a finished run that changed the cluster (changes made in LINSTOR since are lost)."
);
action_handler!(
    approve_run,
    Action::Approve,
    "/api/v1/runs/{id}/approve",
    "Releases a run waiting at the approval gate: the controller's downtime begins."
);
