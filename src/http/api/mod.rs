//! The JSON API under `/api/v1`. Each resource module registers its handlers with
//! `utoipa-axum`, so that the OpenAPI document is generated from the same code that routes.

pub mod backups;
mod bounded;
pub mod controllers;
pub mod events;
pub mod health;
mod idempotency;
mod limit_responses;
mod links;
pub mod logs;
pub mod openapi;
pub mod readiness;
pub mod runs;
pub mod stream_event;
pub mod upgrade_plan;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::extract::rejection::QueryRejection;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;

use super::AppState;
use super::error::ApiError;

/// The protected API routes with their OpenAPI description.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(controllers::router())
        .merge(runs::router())
        .merge(logs::router())
        .merge(events::router())
        .merge(backups::router())
        .merge(upgrade_plan::router())
}

/// Routes without authentication: health checks and the OpenAPI document.
pub fn public_router(openapi: &utoipa::openapi::OpenApi) -> Router<AppState> {
    health::router().merge(openapi::router(openapi))
}

/// `axum::extract::Query` whose rejections use our error format.
#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::BadRequest(r.body_text())
    }
}

/// `axum::extract::Path` whose rejections use our error format.
#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(r: axum::extract::rejection::PathRejection) -> Self {
        ApiError::BadRequest(r.body_text())
    }
}
