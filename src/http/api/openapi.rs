//! The OpenAPI document, assembled from the handlers' `#[utoipa::path]` annotations and
//! served at `/api/v1/openapi.json`. OpenAPI 3.2, for `itemSchema`: the shape of each event of
//! the `text/event-stream` of a run.

use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::routing::get;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::http::AppState;

/// The parts of the document that no handler describes.
#[derive(OpenApi)]
#[openapi(
    version = "3.2.0",
    info(
        title = "linstor-migrator",
        description = "Moves a LINSTOR controller's database from etcd to the Kubernetes backend."
    ),
    components(schemas(super::stream_event::StreamEvent)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "controllers", description = "LINSTOR controllers found in the cluster"),
        (name = "runs", description = "Preflights, backups and migrations"),
        (name = "backups", description = "Backup files"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The whole document: the handlers' parts and the links between them.
pub fn document(handlers: &utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let mut doc = handlers.clone();
    super::links::add(&mut doc);
    super::limit_responses::add(&mut doc);
    doc
}

/// Serves the [`document`] of `openapi`, serialized once.
pub fn router(openapi: &utoipa::openapi::OpenApi) -> Router<AppState> {
    let json: Arc<str> = document(openapi)
        .to_pretty_json()
        .expect("the OpenAPI document serializes")
        .into();
    Router::new().route(
        "/api/v1/openapi.json",
        get(move || {
            let json = json.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], json.to_string()) }
        }),
    )
}
