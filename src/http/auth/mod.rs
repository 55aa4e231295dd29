//! Who is calling: bearer tokens (`--auth token`), Kubernetes TokenReview plus a
//! SubjectAccessReview (`--auth kubernetes`), or nobody in particular (`--auth none`); browser
//! sessions on top of either. Two middlewares put a [`Caller`] into every protected request:
//! [`require_api`] answers 401 JSON, [`require_page`] redirects to the login page. With
//! `--auth none`, [`require_loopback_host`] keeps DNS-rebinding pages out.

mod host;
mod session;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

pub use host::{LOOPBACK_HOSTS, is_loopback_host, require_loopback_host};
pub use session::{Flash, SessionInfo, SessionStore, cookie_value, secure_cookie, set_cookie};

use super::error::ApiError;
use super::{AppState, HttpSettings, TOKEN_ENV};
use crate::cluster::{AccessQuestion, Cluster};
use crate::model::Actor;

/// How callers authenticate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMode {
    /// Bearer tokens from `LINSTOR_MIGRATOR_TOKEN`.
    #[default]
    Token,
    /// Kubernetes bearer tokens, checked with TokenReview and SubjectAccessReview.
    Kubernetes,
    /// No authentication at all (explicit opt-in).
    None,
}

/// The header a cookie-authenticated API client sends with state-changing requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// How long a positive Kubernetes review is remembered.
const REVIEW_CACHE_TTL: Duration = Duration::from_secs(60);

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub actor: Actor,
    /// The browser session, when the caller came with the session cookie.
    pub session: Option<SessionInfo>,
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or(ApiError::Unauthorized)
    }
}

/// Checks credentials and keeps browser sessions.
pub struct Authenticator {
    mode: AuthMode,
    /// `(name, token)` for `--auth token`.
    tokens: Vec<(String, String)>,
    access: AccessQuestion,
    cluster: Arc<dyn Cluster>,
    /// sha256(token) -> (user, valid until) for `--auth kubernetes`.
    reviewed: Mutex<HashMap<[u8; 32], (Actor, Instant)>>,
    pub sessions: SessionStore,
}

/// Parses `token` or `name:token,name:token`.
fn parse_tokens(spec: &str) -> anyhow::Result<Vec<(String, String)>> {
    let items: Vec<&str> = spec.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    if let [single] = items.as_slice()
        && !single.contains(':')
    {
        return Ok(vec![("admin".into(), single.to_string())]);
    }
    items
        .iter()
        .map(|item| match item.split_once(':') {
            Some((name, token)) if !name.is_empty() && !token.is_empty() => {
                Ok((name.to_string(), token.to_string()))
            }
            _ => anyhow::bail!("{TOKEN_ENV} must be a token or NAME:TOKEN pairs separated by commas"),
        })
        .collect()
}

impl Authenticator {
    pub fn new(settings: &HttpSettings, cluster: Arc<dyn Cluster>) -> anyhow::Result<Self> {
        let tokens = match (settings.auth, &settings.tokens) {
            (AuthMode::Token, Some(spec)) => parse_tokens(spec)?,
            (AuthMode::Token, None) => {
                let token = hex::encode(rand::random::<[u8; 24]>());
                // stderr only, once: a secret does not belong in the structured logs
                eprintln!("{TOKEN_ENV} is not set; generated an API token for this process: {token}");
                vec![("admin".into(), token)]
            }
            _ => Vec::new(),
        };
        Ok(Self {
            mode: settings.auth,
            tokens,
            access: settings.access.clone(),
            cluster,
            reviewed: Mutex::new(HashMap::new()),
            sessions: SessionStore::new(settings.session_ttl),
        })
    }

    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    /// The caller a bearer token (or a token typed into the login form) stands for.
    pub async fn verify_token(&self, token: &str) -> Result<Actor, ApiError> {
        match self.mode {
            AuthMode::None => Ok(Actor::new("anonymous")),
            AuthMode::Token => {
                // compare with every token so that timing does not tell which one nearly matched
                let mut found = None;
                for (name, expected) in &self.tokens {
                    if bool::from(expected.as_bytes().ct_eq(token.as_bytes())) {
                        found = Some(name);
                    }
                }
                found.map(Actor::new).ok_or(ApiError::Unauthorized)
            }
            AuthMode::Kubernetes => self.review(token).await,
        }
    }

    async fn review(&self, token: &str) -> Result<Actor, ApiError> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some((actor, until)) = self.reviewed.lock().expect("review cache").get(&key)
            && *until > Instant::now()
        {
            return Ok(actor.clone());
        }
        let user = self
            .cluster
            .review_token(token)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        let decisions = self
            .cluster
            .review_subject_access(&user.username, &user.groups, std::slice::from_ref(&self.access))
            .await?;
        if !decisions.iter().all(|d| d.allowed) || decisions.is_empty() {
            let a = &self.access;
            return Err(ApiError::Forbidden(format!(
                "{} may not {} {} in API group {:?}",
                user.username, a.verb, a.resource, a.group
            )));
        }
        let actor = Actor::new(user.username);
        let mut cache = self.reviewed.lock().expect("review cache");
        if cache.len() > 1000 {
            cache.clear();
        }
        cache.insert(key, (actor.clone(), Instant::now() + REVIEW_CACHE_TTL));
        Ok(actor)
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn session_of(state: &AppState, headers: &HeaderMap) -> Option<SessionInfo> {
    cookie_value(headers).and_then(|id| state.auth.sessions.get(&id))
}

/// Middleware for the API: a bearer token, or the session cookie (state-changing requests then
/// need the session's CSRF token in `X-CSRF-Token`); 401 JSON otherwise.
pub async fn require_api(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let caller = if let Some(token) = bearer(req.headers()) {
        match state.auth.verify_token(token).await {
            Ok(actor) => Caller { actor, session: None },
            Err(e) => return e.into_response(),
        }
    } else if let Some(session) = session_of(&state, req.headers()) {
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
    } else if state.auth.mode() == AuthMode::None {
        Caller {
            actor: Actor::new("anonymous"),
            session: None,
        }
    } else {
        return ApiError::Unauthorized.into_response();
    };
    req.extensions_mut().insert(caller);
    next.run(req).await
}

/// Middleware for pages: the session cookie (or a bearer token); without one, the login page
/// (with `--auth none` an anonymous session is started instead, so that forms carry CSRF tokens).
pub async fn require_page(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if let Some(session) = session_of(&state, req.headers()) {
        req.extensions_mut().insert(Caller {
            actor: session.actor.clone(),
            session: Some(session),
        });
        return next.run(req).await;
    }
    if let Some(token) = bearer(req.headers()) {
        return match state.auth.verify_token(token).await {
            Ok(actor) => {
                req.extensions_mut().insert(Caller { actor, session: None });
                next.run(req).await
            }
            Err(e) => e.into_response(),
        };
    }
    if state.auth.mode() == AuthMode::None {
        let session = state.auth.sessions.create(Actor::new("anonymous"));
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
    fn tokens_parse() {
        assert_eq!(
            parse_tokens("s3cret").unwrap(),
            vec![("admin".into(), "s3cret".into())]
        );
        assert_eq!(
            parse_tokens("ops:a, ci-bot:b").unwrap(),
            vec![("ops".into(), "a".into()), ("ci-bot".into(), "b".into())]
        );
        assert!(parse_tokens("ops:a,b").is_err());
        assert_eq!(urlencode("/runs/a b?x=1"), "%2Fruns%2Fa%20b%3Fx%3D1");
    }
}
