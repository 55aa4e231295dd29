//! Signing in (a token, or with `--auth kubernetes` a Kubernetes token, typed once) and out.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{CsrfForm, Layout, render};
use crate::http::AppState;
use crate::http::auth::{AuthMode, Caller, cookie_value, secure_cookie, set_cookie};
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

/// Only local paths: never redirect to another site after login.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/".into(),
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
    let signed_in = cookie_value(&headers)
        .and_then(|id| state.auth.sessions.get(&id))
        .is_some();
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
    match state.auth.verify_token(form.token.trim()).await {
        Ok(actor) => {
            let session = state.auth.sessions.create(actor);
            let secure = secure_cookie(state.settings.secure_cookies, &uri, &headers);
            let cookie = set_cookie(Some(&session), state.auth.sessions.ttl(), secure);
            ([(header::SET_COOKIE, cookie)], Redirect::to(&next)).into_response()
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
    if let Some(s) = &caller.session {
        state.auth.sessions.remove(&s.id);
    }
    let secure = secure_cookie(state.settings.secure_cookies, &uri, &headers);
    let cookie = set_cookie(None, state.auth.sessions.ttl(), secure);
    ([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response()
}
