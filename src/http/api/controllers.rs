//! `GET /api/v1/controllers`: the LINSTOR controllers found in the cluster.

use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::cluster::controller::ControllerInfo;
use crate::http::AppState;
use crate::http::error::{ApiResult, ErrorBody, Json};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_controllers))
}

/// Discovered controllers (LinstorController resources and unowned Deployments) with their
/// database backend.
#[utoipa::path(
    get,
    path = "/api/v1/controllers",
    tag = "controllers",
    responses(
        (status = 200, description = "Controllers", body = Vec<ControllerInfo>),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 502, description = "The Kubernetes API failed", body = ErrorBody),
    )
)]
pub async fn list_controllers(State(state): State<AppState>) -> ApiResult<Json<Vec<ControllerInfo>>> {
    Ok(Json(state.engine.controllers().await?))
}
