//! Signing in (a token, or with `--auth kubernetes` a Kubernetes token, typed once) and out.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use url::Url;

use super::{CsrfForm, Layout, render};
use crate::http::AppState;
use crate::http::auth::{
    AuthMode, Caller, ClientAddr, Grant, cookie_value, limiter, secure_cookie, set_cookie,
};
use crate::http::error::ApiError;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    next: String,
    error: String,
    kubernetes: bool,
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// Where to go after signing in: a path on this server, never another site (`/` otherwise).
/// `next` is resolved the way a browser resolves a link (the WHATWG URL parser, which drops tabs
/// and newlines and reads `\` as `/`) against a placeholder origin, and kept only when it is an
/// absolute path there, free of control characters and backslashes, and its result is not
/// `//host` (which a browser would read as another site). What comes back is the parser's
/// serialization: percent-encoded, so always a valid `Location`.
pub fn safe_next(next: Option<&str>) -> String {
    const ORIGIN: &str = "http://this-server.invalid/";
    let fallback = || "/".to_string();
    let Some(next) = next else {
        return fallback();
    };
    if !next.starts_with('/') || next.chars().any(|c| c.is_control() || c == '\\') {
        return fallback();
    }
    let base = Url::parse(ORIGIN).expect("placeholder origin");
    let Ok(url) = base.join(next) else {
        return fallback();
    };
    if url.origin() != base.origin() || url.path().starts_with("//") {
        return fallback();
    }
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    }
}

fn page(state: &AppState, next: String, error: String, status: StatusCode) -> Response {
    let p = LoginPage {
        layout: Layout::anonymous(state, "Sign in"),
        next,
        error,
        kubernetes: state.auth.mode() == AuthMode::Kubernetes,
    };
    render(status, &p)
}

pub async fn login_page(
    State(state): State<AppState>,
    Query(q): Query<LoginQuery>,
    headers: HeaderMap,
) -> Response {
    let next = safe_next(q.next.as_deref());
    let signed_in = match cookie_value(&headers) {
        Some(id) => state.auth.session(&id).await.ok().flatten().is_some(),
        None => false,
    };
    if signed_in || state.auth.mode() == AuthMode::None {
        return Redirect::to(&next).into_response();
    }
    page(&state, next, String::new(), StatusCode::OK)
}

#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
    next: Option<String>,
}

pub async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    uri: Uri,
    headers: HeaderMap,
    axum::Form(form): axum::Form<LoginForm>,
) -> Response {
    // a login form posted from another site would sign the browser in as someone else
    if headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) == Some("cross-site") {
        return page(
            &state,
            "/".into(),
            "Cross-site sign-in is not accepted.".into(),
            StatusCode::FORBIDDEN,
        );
    }
    let next = safe_next(form.next.as_deref());
    match state.auth.authenticate(client, form.token.trim()).await {
        Ok(Grant::Caller { actor, credential }) => {
            let session = match state.auth.start_session(actor, &credential).await {
                Ok(s) => s,
                Err(e) => return page(&state, next, e.body().error, e.status()),
            };
            let secure = secure_cookie(state.settings.secure_cookies, &uri, &headers);
            let cookie = set_cookie(Some(&session), state.auth.sessions.ttl(), secure);
            ([(header::SET_COOKIE, cookie)], Redirect::to(&next)).into_response()
        }
        Ok(Grant::Metrics) => page(
            &state,
            next,
            "That token may only read /metrics.".into(),
            StatusCode::FORBIDDEN,
        ),
        Err(ApiError::TooManyRequests(wait)) => {
            let secs = limiter::retry_after_secs(wait);
            let mut res = page(
                &state,
                next,
                format!("Too many failed sign-ins. Try again in {secs} s."),
                StatusCode::TOO_MANY_REQUESTS,
            );
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            res
        }
        Err(ApiError::Unauthorized) => page(
            &state,
            next,
            "That token is not valid.".into(),
            StatusCode::UNAUTHORIZED,
        ),
        Err(e) => {
            let status = e.status();
            page(&state, next, e.body().error, status)
        }
    }
}

#[derive(Deserialize)]
pub struct LogoutForm {}

pub async fn logout(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    caller: Caller,
    CsrfForm(_): CsrfForm<LogoutForm>,
) -> Response {
    if let Some(s) = &caller.session
        && let Err(e) = state.auth.sessions.remove(&s.id).await
    {
        return ApiError::from(e).into_response();
    }
    let secure = secure_cookie(state.settings.secure_cookies, &uri, &headers);
    let cookie = set_cookie(None, state.auth.sessions.ttl(), secure);
    ([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response()
}
