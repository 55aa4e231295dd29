//! The log of a run: paged as JSON, or whole as text.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::bounded::{Bounded, Seq};
use super::{Path, Query};
use crate::db::EventRecord;
use crate::engine::Engine;
use crate::http::AppState;
use crate::http::error::{ApiResult, ErrorBody, Json};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_logs))
        .routes(routes!(get_logs_text))
}

/// Which lines to return.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LogParams {
    /// Only lines with a sequence number above this (the `next_after` of the previous page).
    #[param(inline, nullable = false)]
    pub after: Option<Seq>,
    /// At most this many lines (default 500).
    #[param(inline, nullable = false)]
    pub limit: Option<Bounded<1, 5000>>,
}

/// One page of log lines.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogPage {
    pub lines: Vec<EventRecord>,
    /// Pass as `after` to get the next page.
    pub next_after: i64,
    /// True when more lines follow this page now.
    pub more: bool,
}

/// Log lines of a run (only `log` events; steps and run transitions are in the event stream).
#[utoipa::path(
    get,
    path = "/api/v1/runs/{id}/logs",
    tag = "runs",
    params(("id" = String, Path, description = "Run id"), LogParams),
    responses(
        (status = 200, description = "A page of log lines", body = LogPage),
        (status = 400, description = "Bad paging parameters", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "No such run", body = ErrorBody),
    )
)]
pub async fn get_logs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(p): Query<LogParams>,
) -> ApiResult<Json<LogPage>> {
    let after = p.after.map_or(0, Seq::get);
    let limit = p.limit.map_or(500, Bounded::get);
    let mut lines = state.engine.events(&id, after, limit + 1, true).await?;
    let more = lines.len() as i64 > limit;
    lines.truncate(limit as usize);
    let next_after = lines.last().map_or(after, |l| l.seq);
    Ok(Json(LogPage {
        lines,
        next_after,
        more,
    }))
}

/// One line of the text log: `time [step] level: message`.
pub fn text_line(e: &EventRecord) -> String {
    let step = e.step.map_or("run", |s| s.as_str());
    format!(
        "{} [{step}] {}: {}\n",
        e.at.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
        e.level,
        e.message
    )
}

/// The whole log as text, streamed page by page.
#[utoipa::path(
    get,
    path = "/api/v1/runs/{id}/logs.txt",
    tag = "runs",
    params(("id" = String, Path, description = "Run id")),
    responses(
        (status = 200, description = "The log as text", content_type = "text/plain", body = String),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "No such run", body = ErrorBody),
    )
)]
pub async fn get_logs_text(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    // the first page now, so that an unknown run is a 404 and not a broken stream
    let first = state.engine.events(&id, 0, 1000, true).await?;
    let body = Body::from_stream(text_stream(state.engine.clone(), id.clone(), first));
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"run-{}.log\"", safe_name(&id))) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

fn text_stream(
    engine: Engine,
    id: String,
    first: Vec<EventRecord>,
) -> impl futures::Stream<Item = Result<String, std::io::Error>> {
    async_stream::try_stream! {
        let mut page = first;
        while let Some(last) = page.last().map(|e| e.seq) {
            let text: String = page.iter().map(text_line).collect();
            yield text;
            page = engine.events(&id, last, 1000, true).await.map_err(std::io::Error::other)?;
        }
    }
}

/// Keeps only characters that are safe in a quoted header parameter.
pub fn safe_name(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect()
}
