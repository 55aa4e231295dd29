//! The middlewares that put a [`Caller`] into protected requests: [`require_api`] (401 JSON),
//! [`require_page`] (the login page), [`require_metrics`] (`/metrics`).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use super::{
    AuthMode, CSRF_HEADER, Caller, ClientAddr, Grant, NO_CREDENTIAL, SessionInfo, cookie_value,
    secure_cookie, set_cookie,
};
use crate::http::error::ApiError;
use crate::http::{AppState, METRICS_TOKEN_ENV};
use crate::model::Actor;

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

async fn session_of(state: &AppState, headers: &HeaderMap) -> Result<Option<SessionInfo>, ApiError> {
    match cookie_value(headers) {
        Some(id) => state.auth.session(&id).await,
        None => Ok(None),
    }
}

/// The caller a bearer token stands for on the API and the pages (the metrics token is none).
async fn bearer_caller(state: &AppState, client: std::net::IpAddr, token: &str) -> Result<Caller, ApiError> {
    match state.auth.authenticate(client, token).await? {
        Grant::Caller { actor, .. } => Ok(Caller { actor, session: None }),
        Grant::Metrics => Err(ApiError::Forbidden(format!(
            "the token of {METRICS_TOKEN_ENV} may only read /metrics"
        ))),
    }
}

/// Middleware for the API: a bearer token, or the session cookie (state-changing requests then
/// need the session's CSRF token in `X-CSRF-Token`); 401 JSON otherwise.
pub async fn require_api(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let caller = if let Some(token) = bearer(req.headers()) {
        let client = ClientAddr::of(req.extensions()).0;
        match bearer_caller(&state, client, token).await {
            Ok(caller) => caller,
            Err(e) => return e.into_response(),
        }
    } else {
        match session_of(&state, req.headers()).await {
            Err(e) => return e.into_response(),
            Ok(Some(session)) => {
                let safe = req.method().is_safe();
                let csrf = req
                    .headers()
                    .get(CSRF_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if !safe && !session.csrf_matches(csrf) {
                    return ApiError::Forbidden("missing or wrong X-CSRF-Token".into()).into_response();
                }
                Caller {
                    actor: session.actor.clone(),
                    session: Some(session),
                }
            }
            Ok(None) if state.auth.mode() == AuthMode::None => Caller {
                actor: Actor::new("anonymous"),
                session: None,
            },
            Ok(None) => return ApiError::Unauthorized.into_response(),
        }
    };
    req.extensions_mut().insert(caller);
    next.run(req).await
}

/// Middleware for `/metrics`: open with `--public-metrics` (or `--auth none`); otherwise the
/// metrics token, or whatever the API accepts (a bearer token or a session).
pub async fn require_metrics(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if state.settings.public_metrics || state.auth.mode() == AuthMode::None {
        return next.run(req).await;
    }
    let allowed = match bearer(req.headers()) {
        Some(token) => {
            let client = ClientAddr::of(req.extensions()).0;
            state.auth.authenticate(client, token).await.map(|_| ())
        }
        None => match session_of(&state, req.headers()).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(ApiError::Unauthorized),
            Err(e) => Err(e),
        },
    };
    match allowed {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

/// Middleware for pages: the session cookie (or a bearer token); without one, the login page
/// (with `--auth none` an anonymous session is started instead, so that forms carry CSRF tokens).
pub async fn require_page(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    match session_of(&state, req.headers()).await {
        Err(e) => return e.into_response(),
        Ok(Some(session)) => {
            req.extensions_mut().insert(Caller {
                actor: session.actor.clone(),
                session: Some(session),
            });
            return next.run(req).await;
        }
        Ok(None) => {}
    }
    if let Some(token) = bearer(req.headers()) {
        let client = ClientAddr::of(req.extensions()).0;
        return match bearer_caller(&state, client, token).await {
            Ok(caller) => {
                req.extensions_mut().insert(caller);
                next.run(req).await
            }
            Err(e) => e.into_response(),
        };
    }
    if state.auth.mode() == AuthMode::None {
        let session = match state
            .auth
            .start_session(Actor::new("anonymous"), NO_CREDENTIAL)
            .await
        {
            Ok(s) => s,
            Err(e) => return e.into_response(),
        };
        let secure = secure_cookie(state.settings.secure_cookies, req.uri(), req.headers());
        let cookie = set_cookie(Some(&session), state.auth.sessions.ttl(), secure);
        req.extensions_mut().insert(Caller {
            actor: session.actor.clone(),
            session: Some(session),
        });
        let mut res = next.run(req).await;
        res.headers_mut().append(header::SET_COOKIE, cookie);
        return res;
    }
    let next_url = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let target = format!("/login?next={}", urlencode(next_url));
    Redirect::to(&target).into_response()
}

/// Percent-encodes everything but unreserved characters.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urlencode_encodes_all_but_unreserved() {
        assert_eq!(urlencode("/runs/a b?x=1"), "%2Fruns%2Fa%20b%3Fx%3D1");
    }
}
