//! Request observation: a request id for every request (in the `x-request-id` header, the
//! tracing span and the body of server errors), the `http_requests` metric by route template,
//! and the fallback for unknown paths.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use tracing::Instrument as _;

use super::AppState;
use super::error::ApiError;
use crate::metrics::HttpLabels;

const REQUEST_ID: &str = "x-request-id";

tokio::task_local! {
    static CURRENT_REQUEST_ID: String;
}

/// The id of the request being handled on this task, if any.
pub fn current_request_id() -> Option<String> {
    CURRENT_REQUEST_ID.try_with(Clone::clone).ok()
}

/// Middleware: request id, span, metric and a log line per request.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let request_id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let method = req.method().clone();
    let span = tracing::info_span!("http", %method, route = route.as_deref().unwrap_or("-"), request_id);
    let started = Instant::now();
    let mut res = CURRENT_REQUEST_ID
        .scope(request_id.clone(), next.run(req).instrument(span.clone()))
        .await;
    let status = res.status();
    span.in_scope(|| {
        tracing::debug!(
            status = status.as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "request"
        )
    });
    state
        .engine
        .metrics()
        .http_requests
        .get_or_create(&HttpLabels {
            method: method.to_string(),
            route: route.unwrap_or_else(|| "unmatched".into()),
            status: status.as_u16().to_string(),
        })
        .inc();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert(REQUEST_ID, v);
    }
    res
}

/// Unknown paths: JSON under `/api`, a small page elsewhere.
pub async fn not_found(uri: Uri) -> Response {
    if uri.path().starts_with("/api/") {
        return ApiError::NotFound(format!("path {}", uri.path())).into_response();
    }
    let body = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Not found</title>\
        <link rel=\"stylesheet\" href=\"/static/app.css\"></head><body><main class=\"page\"><h1>Not found</h1>\
        <p>There is nothing at this address. <a href=\"/\">Back to the dashboard</a>.</p></main></body></html>";
    (StatusCode::NOT_FOUND, Html(body)).into_response()
}
