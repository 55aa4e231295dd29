//! `GET /api/v1/runs/{id}/events`: the events of a run as Server-Sent Events.
//!
//! The stream subscribes to live events first, then sends the stored history after the
//! `Last-Event-ID` (or `?after=`), then the live events with a higher sequence number: no gap and
//! no duplicate. Each event carries its sequence number as `id:`. A subscriber that falls behind
//! the bounded live channel (`Lagged`) catches up from the database instead of being buffered
//! for, so a slow client never slows the engine. After the run reaches a final state an `end`
//! event follows and the stream closes. A stream opened with a browser session closes when the
//! session expires: the page's reconnect is then refused, and the page says so.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::bounded::Seq;
use super::stream_event::{self, StreamEvent};
use super::{Path, Query};
use crate::db::{EventKind, EventRecord};
use crate::engine::Engine;
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::model::RunState;

/// Events read from the database at a time.
const PAGE: i64 = 500;
/// How often a live stream re-reads the database anyway (a safety net for missed wake-ups).
const RECHECK: Duration = Duration::from_secs(5);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(run_events))
}

/// Where to start when there is no `Last-Event-ID`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventParams {
    /// Only events with a sequence number above this.
    #[param(inline, nullable = false)]
    pub after: Option<Seq>,
}

/// The run's events: history, then live. Event types `log`, `step`, `run` (data: the event as
/// JSON) and a final `end` (data: `{"state": ...}`); `Last-Event-ID` resumes after that event.
#[utoipa::path(
    get,
    path = "/api/v1/runs/{id}/events",
    tag = "runs",
    params(
        ("id" = String, Path, description = "Run id"),
        ("Last-Event-ID" = inline(Option<Seq>), Header, nullable = false, description = "Resume after this event (wins over `after`)"),
        EventParams,
    ),
    responses(
        (status = 200, description = "Server-Sent Events",
            content(("text/event-stream", item_schema = StreamEvent)),
            headers(("X-Accel-Buffering" = String, description = "`no`: proxies must not buffer the stream"))),
        (status = 400, description = "Bad Last-Event-ID or after", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "No such run", body = ErrorBody),
    )
)]
pub async fn run_events(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(p): Query<EventParams>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let last_event_id = match headers.get("last-event-id") {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| "not text".to_string())
                .and_then(|s| Seq::parse(s.trim()))
                .map_err(|e| {
                    ApiError::BadRequest(format!("Last-Event-ID must be an event sequence number: {e}"))
                })?,
        ),
        None => None,
    };
    let after = last_event_id.or(p.after).map_or(0, Seq::get);
    state.engine.run(&id).await?;
    // subscribe before reading the history: nothing published in between is lost
    let live = state.engine.subscribe(&id);
    let ended = ended_by(&state.engine, &id, after).await?;
    let expires = caller
        .session
        .map(|s| tokio::time::Instant::now() + s.remaining());
    let stream = event_stream(
        state.engine.clone(),
        id,
        after,
        ended,
        live,
        state.closing.clone(),
        expires,
    );
    let sse = Sse::new(stream).keep_alive(
        KeepAlive::new()
            .interval(state.settings.sse_keep_alive)
            .text("keep-alive"),
    );
    let mut res = sse.into_response();
    res.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(res)
}

/// The final state, when the latest run transition up to `seq` is one.
async fn ended_by(engine: &Engine, id: &str, seq: i64) -> ApiResult<Option<RunState>> {
    let level: Option<String> = sqlx::query_scalar(
        "SELECT level FROM events WHERE run_id = ? AND kind = 'run' AND seq <= ? ORDER BY seq DESC LIMIT 1",
    )
    .bind(id)
    .bind(seq)
    .fetch_optional(engine.db().pool())
    .await
    .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(level.as_deref().and_then(final_state))
}

/// The state a run event's level names, when it is a final one.
fn final_state(level: &str) -> Option<RunState> {
    level.parse::<RunState>().ok().filter(|s| s.is_final())
}

enum Wake {
    Closing,
    Recheck,
    Live(Result<EventRecord, RecvError>),
}

fn event_stream(
    engine: Engine,
    id: String,
    after: i64,
    ended: Option<RunState>,
    mut live: crate::engine::Subscription,
    closing: CancellationToken,
    expires: Option<tokio::time::Instant>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    async_stream::stream! {
        let mut last = after;
        let mut finished = ended;
        let mut recheck = tokio::time::interval(RECHECK);
        recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        'outer: loop {
            // history (or catching up) from the database
            loop {
                let page = match engine.events(&id, last, PAGE, false).await {
                    Ok(page) => page,
                    Err(e) => {
                        tracing::warn!(run = %id, "event stream stopped: {e}");
                        break 'outer;
                    }
                };
                for e in &page {
                    last = e.seq;
                    if e.kind == EventKind::Run {
                        finished = final_state(&e.level);
                    }
                    yield Ok(stream_event::stored(e));
                }
                if (page.len() as i64) < PAGE {
                    break;
                }
            }
            if let Some(state) = finished {
                yield Ok(stream_event::end(last, state));
                break;
            }
            recheck.reset();
            loop {
                let session_ends = async {
                    match expires {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                };
                let wake = tokio::select! {
                    _ = closing.cancelled() => Wake::Closing,
                    () = session_ends => Wake::Closing,
                    _ = recheck.tick() => Wake::Recheck,
                    r = live.recv() => Wake::Live(r),
                };
                match wake {
                    Wake::Closing | Wake::Live(Err(RecvError::Closed)) => break 'outer,
                    Wake::Recheck => continue 'outer,
                    Wake::Live(Err(RecvError::Lagged(n))) => {
                        tracing::debug!(run = %id, skipped = n, "slow event subscriber catches up from the database");
                        continue 'outer;
                    }
                    Wake::Live(Ok(e)) if e.seq <= last => {}
                    Wake::Live(Ok(e)) => {
                        last = e.seq;
                        yield Ok(stream_event::stored(&e));
                        if let Some(state) = final_state(&e.level).filter(|_| e.kind == EventKind::Run) {
                            yield Ok(stream_event::end(last, state));
                            break 'outer;
                        }
                    }
                }
            }
        }
    }
}
