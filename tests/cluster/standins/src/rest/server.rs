//! The HTTP side of `linstor-rest`: the endpoints of REFERENCE.md §5 in the shapes of
//! `linstor_migrator::linstor::rest`, `offset`/`limit` paging, and 503 (or a closed port) while
//! no controller is up. `GET /standin/state` tells the tests what the stand-in believes.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use linstor_migrator::linstor::rest::{ControllerVersion, ErrorReport};
use serde::Deserialize;
use serde_json::json;

use super::controller::{Controller, Serving, StateSummary};
use super::view::DatabaseView;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub controller: Controller,
}

/// What the API does while no controller is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WhenDown {
    /// Answer every call with 503 Service Unavailable.
    #[value(name = "503")]
    Unavailable,
    /// Close the port: connections are refused, as with a Service without endpoints.
    Refuse,
}

/// The API: the LINSTOR endpoints and `/standin/state`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/controller/version", get(version))
        .route("/v1/nodes", get(nodes))
        .route("/v1/view/storage-pools", get(storage_pools))
        .route("/v1/view/resources", get(resources))
        .route("/v1/error-reports", get(error_reports))
        .route("/standin/state", get(standin_state))
        .with_state(state)
}

/// 503 with a LINSTOR-style `ApiCallRc` list.
struct Unavailable(String);

impl IntoResponse for Unavailable {
    fn into_response(self) -> Response {
        let body = json!([{
            "ret_code": -4611686018427387904_i64,
            "message": "The LINSTOR controller is not available",
            "cause": self.0,
        }]);
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}

/// `offset` and `limit` (0 or absent: everything).
#[derive(Debug, Default, Deserialize)]
pub struct Paging {
    offset: Option<usize>,
    limit: Option<usize>,
}

/// The page of `items` that `p` asks for.
pub fn page<T>(items: Vec<T>, p: &Paging) -> Vec<T> {
    let rest = items.into_iter().skip(p.offset.unwrap_or(0));
    match p.limit {
        Some(limit) if limit > 0 => rest.take(limit).collect(),
        _ => rest.collect(),
    }
}

fn running(state: &AppState) -> Result<Arc<DatabaseView>, Unavailable> {
    match state
        .controller
        .state
        .read()
        .expect("controller state poisoned")
        .serving()
    {
        Serving::Up { view, .. } => Ok(view),
        Serving::Down(why) => Err(Unavailable(why)),
    }
}

/// The version of the controller serving, as its LINSTOR release's build answers.
async fn version(State(state): State<AppState>) -> Result<Json<ControllerVersion>, Unavailable> {
    let view = running(&state)?;
    let release = linstor_fake::Release::modelling(&view.version);
    let answer = linstor_fake::rest::controller_version(release, &view.version);
    serde_json::from_value(answer)
        .map(Json)
        .map_err(|e| Unavailable(e.to_string()))
}

/// The database's nodes and the operator's CONTROLLER nodes of the controller pods.
async fn nodes(State(state): State<AppState>, Query(p): Query<Paging>) -> Result<Response, Unavailable> {
    let mut nodes = running(&state)?.nodes.clone();
    let now = chrono::Utc::now().timestamp_millis();
    let controllers = state
        .controller
        .state
        .write()
        .expect("controller state poisoned")
        .controller_nodes
        .listed(now);
    nodes.extend(controllers);
    Ok(Json(page(nodes, &p)).into_response())
}

async fn storage_pools(
    State(state): State<AppState>,
    Query(p): Query<Paging>,
) -> Result<Response, Unavailable> {
    Ok(Json(page(running(&state)?.storage_pools.clone(), &p)).into_response())
}

async fn resources(State(state): State<AppState>, Query(p): Query<Paging>) -> Result<Response, Unavailable> {
    Ok(Json(page(running(&state)?.resources.clone(), &p)).into_response())
}

/// `since`/`to` in Unix milliseconds, plus paging (not flattened: serde's `flatten` breaks
/// number parsing in query strings).
#[derive(Debug, Deserialize)]
struct ReportQuery {
    since: Option<i64>,
    to: Option<i64>,
    offset: Option<usize>,
    limit: Option<usize>,
}

async fn error_reports(
    State(state): State<AppState>,
    Query(q): Query<ReportQuery>,
) -> Result<Json<Vec<ErrorReport>>, Unavailable> {
    running(&state)?;
    let mut reports: Vec<ErrorReport> = state
        .controller
        .state
        .read()
        .expect("controller state poisoned")
        .error_reports
        .iter()
        .filter(|r| q.since.is_none_or(|s| r.error_time >= s) && q.to.is_none_or(|t| r.error_time <= t))
        .cloned()
        .collect();
    reports.sort_by_key(|r| r.error_time);
    Ok(Json(page(
        reports,
        &Paging {
            offset: q.offset,
            limit: q.limit,
        },
    )))
}

async fn standin_state(State(state): State<AppState>) -> Json<StateSummary> {
    Json(
        state
            .controller
            .state
            .read()
            .expect("controller state poisoned")
            .summary(),
    )
}

/// Serves on `listen` until the process ends; with [`WhenDown::Refuse`] the port is open only
/// while a controller is up.
pub async fn serve(listen: SocketAddr, state: AppState, when_down: WhenDown) -> std::io::Result<()> {
    if when_down == WhenDown::Unavailable {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        println!(
            "linstor-rest stand-in listening on http://{}",
            listener.local_addr()?
        );
        return axum::serve(listener, router(state)).await;
    }
    let mut up = state.controller.up.subscribe();
    loop {
        let _ = up.wait_for(|u| *u).await;
        let listener = tokio::net::TcpListener::bind(listen).await?;
        println!(
            "controller up: linstor-rest stand-in listening on http://{}",
            listener.local_addr()?
        );
        let mut down = up.clone();
        axum::serve(listener, router(state.clone()))
            .with_graceful_shutdown(async move {
                let _ = down.wait_for(|u| !*u).await;
            })
            .await?;
        println!("controller down: port closed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_skips_and_limits() {
        let items: Vec<u32> = (0..10).collect();
        assert_eq!(
            page(
                items.clone(),
                &Paging {
                    offset: Some(8),
                    limit: Some(5)
                }
            ),
            [8, 9]
        );
        assert_eq!(
            page(
                items.clone(),
                &Paging {
                    offset: None,
                    limit: Some(3)
                }
            ),
            [0, 1, 2]
        );
        assert_eq!(
            page(
                items.clone(),
                &Paging {
                    offset: Some(2),
                    limit: Some(0)
                }
            )
            .len(),
            8
        );
        assert!(
            page(
                items,
                &Paging {
                    offset: Some(20),
                    limit: None
                }
            )
            .is_empty()
        );
    }
}
