//! The server-rendered pages (askama templates in `templates/`): dashboard, run history, run
//! page, backups, login. Everything works with plain HTML forms that POST to page routes and
//! redirect back; `static/app.js` only adds the live log, clocks and confirmation dialogs.

mod format;
mod forms;
mod home;
mod login;
mod report;
mod run;
mod run_view;
mod upgrade_view;

use askama::Template;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};

pub use forms::CsrfForm;

use super::AppState;
use super::assets::VERSION;
use super::auth::{AuthMode, Caller, Flash};
use super::error::ApiError;

/// The protected pages and their form targets.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home::dashboard))
        .route("/runs", get(home::runs).post(home::start_run))
        .route("/runs/{id}", get(run::run_page))
        .route("/runs/{id}/{action}", post(run::run_action))
        .route("/backups", get(home::backups))
        .route("/logout", post(login::logout))
}

/// The login page (no authentication needed to see it).
pub fn public_router() -> Router<AppState> {
    Router::new().route("/login", get(login::login_page).post(login::login))
}

/// What every page shows around its content.
pub struct Layout {
    pub title: String,
    /// `dashboard`, `runs`, `backups` or empty: the highlighted navigation entry.
    pub nav: &'static str,
    pub actor: String,
    /// The session's CSRF token for the forms (empty without a session).
    pub csrf: String,
    pub demo: bool,
    pub cluster: String,
    pub flash: Option<Flash>,
    /// Hide the sign-out button with `--auth none`.
    pub can_logout: bool,
    pub version: &'static str,
    pub asset_version: &'static str,
}

impl Layout {
    /// The layout for `caller`, taking the session's flash message.
    pub fn new(state: &AppState, caller: &Caller, title: impl Into<String>, nav: &'static str) -> Self {
        let session = caller.session.as_ref();
        Self {
            title: title.into(),
            nav,
            actor: caller.actor.to_string(),
            csrf: session.map(|s| s.csrf.clone()).unwrap_or_default(),
            demo: state.demo(),
            cluster: state.engine.cluster().describe(),
            flash: session.and_then(|s| state.auth.sessions.take_flash(&s.id)),
            can_logout: session.is_some() && state.auth.mode() != AuthMode::None,
            version: env!("CARGO_PKG_VERSION"),
            asset_version: VERSION.as_str(),
        }
    }

    /// The layout of pages shown before login.
    pub fn anonymous(state: &AppState, title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            nav: "",
            actor: String::new(),
            csrf: String::new(),
            demo: state.demo(),
            cluster: state.engine.cluster().describe(),
            flash: None,
            can_logout: false,
            version: env!("CARGO_PKG_VERSION"),
            asset_version: VERSION.as_str(),
        }
    }
}

/// Pages load nothing but their own assets, run no inline script and cannot be framed.
const SECURITY_HEADERS: [(&str, &str); 4] = [
    (
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
         frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    ),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
];

/// Renders a template, or a server error page when that fails.
pub fn render(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => (status, SECURITY_HEADERS, Html(html)).into_response(),
        Err(e) => PageError(ApiError::Internal(
            anyhow::Error::new(e).context("failed to render a page"),
        ))
        .into_response(),
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    status: u16,
    reason: String,
    message: String,
}

/// An error shown as a page (the same statuses and messages as the API).
#[derive(Debug)]
pub struct PageError(pub ApiError);

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        PageError(e)
    }
}

impl From<crate::engine::EngineError> for PageError {
    fn from(e: crate::engine::EngineError) -> Self {
        PageError(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let body = self.0.body();
        let mut message = body.error;
        if let Some(id) = body.request_id {
            message = format!("{message} (request id {id})");
        }
        let page = ErrorPage {
            layout: Layout {
                title: status.canonical_reason().unwrap_or("Error").to_string(),
                nav: "",
                actor: String::new(),
                csrf: String::new(),
                demo: false,
                cluster: String::new(),
                flash: None,
                can_logout: false,
                version: env!("CARGO_PKG_VERSION"),
                asset_version: VERSION.as_str(),
            },
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("Error").to_string(),
            message,
        };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, "error").into_response(),
        }
    }
}

pub type PageResult<T = Response> = Result<T, PageError>;
