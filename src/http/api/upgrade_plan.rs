//! The plan of an upgrade-plan run: as JSON, the v2 resources as YAML, and the bundle script
//! (the YAML and every command of steps 2-4, see `upgrade::bundle`). 404 for a run without one.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Path;
use crate::http::AppState;
use crate::http::error::{ApiError, ApiResult, ErrorBody, Json};
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
    run.report
        .upgrade_plan
        .map(|p| (p, made_at))
        .ok_or_else(|| ApiError::NotFound(format!("upgrade plan of run {id}")))
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
        (status = 404, description = "No such run, or the run has no plan (yet)", body = ErrorBody),
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
        (status = 404, description = "No such run, or the run has no plan (yet)", body = ErrorBody),
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
        (status = 404, description = "No such run, or the run has no plan (yet)", body = ErrorBody),
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
