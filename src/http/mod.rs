//! The HTTP face of the engine: the JSON API under `/api/v1` (with its OpenAPI document), the
//! Server-Sent Events stream of a run, backup downloads, the server-rendered pages, health and
//! metrics endpoints, and the authentication in front of all of them.
//!
//! [`router`] builds the whole application from an [`AppState`]; [`serve`] runs it on a listener
//! ([`server`]: deadlines and a connection limit) until a shutdown signal, letting open requests
//! finish.

pub mod api;
mod assets;
pub mod auth;
pub mod error;
mod observe;
mod pages;
pub mod server;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use tokio_util::sync::CancellationToken;
use tower_http::timeout::RequestBodyDeadlineLayer;

pub use auth::{AuthMode, FailureLimits, Rate};
pub use error::ApiError;

use crate::cluster::AccessQuestion;
use crate::engine::Engine;

/// Environment variable holding the bearer token(s) for `--auth token`.
pub const TOKEN_ENV: &str = "LINSTOR_MIGRATOR_TOKEN";
/// Environment variable holding the token that may read `/metrics` only.
pub const METRICS_TOKEN_ENV: &str = "LINSTOR_MIGRATOR_METRICS_TOKEN";

/// How the HTTP layer behaves; built from the command line.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// How callers prove who they are.
    pub auth: AuthMode,
    /// For `--auth token`: a bare token (actor `admin`) or `name:token` pairs separated by commas.
    /// `None` generates a token at start-up and prints it once on stderr.
    pub tokens: Option<String>,
    /// For `--auth kubernetes`: what a SubjectAccessReview must allow for a caller.
    pub access: AccessQuestion,
    /// How long a browser session lasts.
    pub session_ttl: Duration,
    /// Always mark the session cookie `Secure`; without it, only answers to requests that came
    /// over TLS (directly or as `X-Forwarded-Proto: https`) set it.
    pub secure_cookies: bool,
    /// Answer only requests for `localhost`, `127.0.0.1` or `[::1]` (any port), 421 otherwise:
    /// on by default with `--auth none`, where a DNS-rebinding page could otherwise drive the API.
    pub loopback_hosts_only: bool,
    /// Largest request body accepted.
    pub body_limit: usize,
    /// Time a connection gets for a complete request head, from opening or from the end of its
    /// previous response (so also the keep-alive idle timeout).
    pub header_timeout: Duration,
    /// Time a request body gets to arrive in full.
    pub body_timeout: Duration,
    /// Most connections at once (lowered to fit the open-file limit); at the limit the longest
    /// idle connection is closed to make room ([`server::connections`]).
    pub max_connections: usize,
    /// Serve `/metrics` without authentication. Off: `/metrics` needs the metrics token or any
    /// credential the API accepts.
    pub public_metrics: bool,
    /// A token that may read `/metrics` and nothing else (for Prometheus).
    pub metrics_token: Option<String>,
    /// Failed authentications allowed per client address and overall.
    pub auth_failures: FailureLimits,
    /// Interval of keep-alive comments on event streams.
    pub sse_keep_alive: Duration,
    /// How long `/readyz` trusts a successful cluster check before it asks the cluster again.
    pub ready_ok_for: Duration,
    /// How long `/readyz` repeats a failed cluster check's answer before it asks again.
    pub ready_retry_after: Duration,
}

impl HttpSettings {
    /// Defaults for `auth`, with the tokens taken from [`TOKEN_ENV`].
    pub fn new(auth: AuthMode) -> Self {
        Self {
            auth,
            tokens: std::env::var(TOKEN_ENV).ok().filter(|t| !t.trim().is_empty()),
            access: AccessQuestion::new("linstor-migrator.piraeus.io", "runs", "create", ""),
            session_ttl: Duration::from_secs(12 * 3600),
            secure_cookies: false,
            loopback_hosts_only: auth == AuthMode::None,
            body_limit: 64 * 1024,
            header_timeout: Duration::from_secs(15),
            body_timeout: Duration::from_secs(30),
            max_connections: 1000,
            public_metrics: false,
            metrics_token: std::env::var(METRICS_TOKEN_ENV)
                .ok()
                .filter(|t| !t.trim().is_empty()),
            auth_failures: FailureLimits::default(),
            sse_keep_alive: Duration::from_secs(15),
            ready_ok_for: Duration::from_secs(10),
            ready_retry_after: Duration::from_secs(2),
        }
    }
}

impl HttpSettings {
    /// Refuses configured tokens that are malformed or too weak (a start-up error, before
    /// anything is opened).
    pub fn check_tokens(&self) -> anyhow::Result<()> {
        auth::check_configured_tokens(self)
    }
}

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub auth: Arc<auth::Authenticator>,
    pub settings: Arc<HttpSettings>,
    /// Cancelled when the server stops accepting requests: event streams end.
    pub closing: CancellationToken,
    /// The cluster half of `/readyz`, shared by every probe.
    pub readiness: Arc<api::readiness::ReadinessCache>,
}

impl AppState {
    /// Builds the state. With `--auth token` and no token configured, generates one and prints
    /// it once on stderr (never into the logs).
    pub fn new(engine: Engine, settings: HttpSettings) -> anyhow::Result<AppState> {
        let auth = auth::Authenticator::new(&settings, engine.cluster().clone(), engine.db())?;
        let readiness =
            api::readiness::ReadinessCache::new(settings.ready_ok_for, settings.ready_retry_after);
        Ok(AppState {
            engine,
            auth: Arc::new(auth),
            settings: Arc::new(settings),
            closing: CancellationToken::new(),
            readiness: Arc::new(readiness),
        })
    }

    /// True when the pages must say that nothing touches a real cluster.
    pub fn demo(&self) -> bool {
        self.engine.cluster().is_simulated()
    }
}

/// The whole application: API, pages, assets, health and metrics.
pub fn router(state: AppState) -> Router {
    let (api, openapi) = api::router().split_for_parts();
    let api = api.route_layer(from_fn_with_state(state.clone(), auth::require_api));
    let pages = pages::router().route_layer(from_fn_with_state(state.clone(), auth::require_page));
    let metrics =
        api::health::metrics_router().route_layer(from_fn_with_state(state.clone(), auth::require_metrics));
    Router::new()
        .merge(api)
        .merge(pages)
        .merge(metrics)
        .merge(api::public_router(&openapi))
        .merge(pages::public_router())
        .merge(assets::router())
        .fallback(observe::not_found)
        .layer(DefaultBodyLimit::max(state.settings.body_limit))
        .layer(RequestBodyDeadlineLayer::new(state.settings.body_timeout))
        .layer(from_fn_with_state(state.clone(), auth::require_loopback_host))
        .layer(from_fn_with_state(state.clone(), observe::track))
        .with_state(state)
}

/// Serves `state` on `listener` until `shutdown` completes, then lets open requests finish.
/// Event streams end when the server stops (`state.closing`) or their run ends; the caller stops
/// the engine after this returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener.local_addr().context("listener has no address")?;
    tracing::info!(%addr, auth = ?state.settings.auth, demo = state.demo(), "serving HTTP");
    let closing = state.closing.clone();
    let signal = closing.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = shutdown => signal.cancel(),
            () = signal.cancelled() => {}
        }
    });
    let settings = server::ConnectionSettings {
        header_timeout: state.settings.header_timeout,
        max_connections: state.settings.max_connections,
    };
    server::run(listener, router(state), settings, closing).await;
    Ok(())
}
