//! The plan of an upgrade-plan run: as JSON, the v2 resources as YAML, and the bundle script
//! (the YAML and every command of steps 2-4, see `upgrade::bundle`). 409 while the run has not
//! made it yet (ask again), 404 for a run that makes none or ended without one.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Path;
use crate::http::AppState;
use crate::http::error::{ApiError, ApiResult, ErrorBody, Json};
use crate::model::RunKind;
use crate::upgrade::UpgradePlan;
use crate::upgrade::bundle::{self, Origin};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_plan))
        .routes(routes!(get_yaml))
        .routes(routes!(get_script))
}

/// The run's plan and when it was made.
async fn plan_of(state: &AppState, id: &str) -> ApiResult<(UpgradePlan, String)> {
    let run = state.engine.run(id).await?;
    let made_at = run.finished_at.unwrap_or(run.created_at).to_rfc3339();
    if let Some(plan) = run.report.upgrade_plan {
        return Ok((plan, made_at));
    }
    if run.kind != RunKind::UpgradePlan {
        return Err(ApiError::NotFound(format!(
            "upgrade plan of run {id} (a {} run makes none)",
            run.kind
        )));
    }
    // "wait" is not "wrong id": a plan that is still being made is a conflict with the run's state
    if !run.state.is_final() {
        return Err(ApiError::Conflict {
            message: format!(
                "the upgrade plan of run {id} is not ready yet: the run is {}; ask again when it has succeeded",
                run.state
            ),
            run_id: Some(id.to_string()),
        });
    }
    Err(ApiError::NotFound(format!(
        "upgrade plan of run {id} (the run ended {} without one)",
        run.state
    )))
}

/// A download: its type, file name and body.
fn download(content_type: &'static str, file_name: String, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file_name}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        body,
    )
        .into_response()
}

/// The plan for the rest of the Piraeus Operator v1 -> v2 upgrade that an upgrade-plan run made.
#[utoipa::path(
    get,
    path = "/api/v1/runs/{id}/upgrade-plan",
    tag = "runs",
    params(("id" = String, Path, description = "Run id")),
    responses(
        (status = 200, description = "The plan", body = UpgradePlan),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "No such run, a run of another kind, or one that ended without a plan", body = ErrorBody),
        (status = 409, description = "The run has not made its plan yet (queued or running): ask again later; `run_id` names it", body = ErrorBody),
    )
)]
pub async fn get_plan(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<UpgradePlan>> {
    Ok(Json(plan_of(&state, &id).await?.0))
}

/// The v2 resources of the plan (`v2-resources.yaml`): apply with `kubectl apply --server-side`.
#[utoipa::path(
    get,
    path = "/api/v1/runs/{id}/upgrade-plan.yaml",
    tag = "runs",
    params(("id" = String, Path, description = "Run id")),
    responses(
        (status = 200, description = "LinstorCluster and LinstorSatelliteConfigurations", content_type = "application/yaml", body = String),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "No such run, a run of another kind, or one that ended without a plan", body = ErrorBody),
        (status = 409, description = "The run has not made its plan yet (queued or running): ask again later; `run_id` names it", body = ErrorBody),
    )
)]
pub async fn get_yaml(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let (plan, _) = plan_of(&state, &id).await?;
    Ok(download(
        "application/yaml",
        "v2-resources.yaml".into(),
        plan.yaml(),
    ))
}

/// The plan as one bash script: the YAML and the commands of steps 2-4, each confirmed and checked.
#[utoipa::path(
    get,
    path = "/api/v1/runs/{id}/upgrade-plan.sh",
    tag = "runs",
    params(("id" = String, Path, description = "Run id")),
    responses(
        (status = 200, description = "The bundle script", content_type = "text/x-shellscript", body = String),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "No such run, a run of another kind, or one that ended without a plan", body = ErrorBody),
        (status = 409, description = "The run has not made its plan yet (queued or running): ask again later; `run_id` names it", body = ErrorBody),
    )
)]
pub async fn get_script(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let (plan, made_at) = plan_of(&state, &id).await?;
    let name = format!("piraeus-v2-upgrade-{}.sh", plan.installation.namespace);
    let text = bundle::script(
        &plan,
        &Origin {
            run_id: &id,
            made_at: &made_at,
        },
    );
    Ok(download("text/x-shellscript; charset=utf-8", name, text))
}
