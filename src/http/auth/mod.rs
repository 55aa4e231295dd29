//! Who is calling: bearer tokens (`--auth token`), Kubernetes TokenReview plus a
//! SubjectAccessReview (`--auth kubernetes`), or nobody in particular (`--auth none`); browser
//! sessions on top of either. Two middlewares put a [`Caller`] into every protected request:
//! [`require_api`] answers 401 JSON, [`require_page`] redirects to the login page;
//! [`require_metrics`] guards `/metrics`. Failed tokens are rate limited ([`limiter`]). With
//! `--auth none`, [`require_loopback_host`] keeps DNS-rebinding pages out.

mod cookie;
mod host;
pub mod limiter;
mod middleware;
mod session;
mod tokens;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

pub use cookie::{COOKIE, cookie_value, secure_cookie, set_cookie};
pub use host::{LOOPBACK_HOSTS, is_loopback_host, require_loopback_host};
pub use limiter::{FailureLimits, Rate};
pub use middleware::{require_api, require_metrics, require_page, urlencode};
pub use session::{Flash, SessionInfo, SessionStore};
pub use tokens::{MIN_TOKEN_CHARS, check_strength};

use super::error::ApiError;
use super::{HttpSettings, METRICS_TOKEN_ENV, TOKEN_ENV};
use crate::cluster::{AccessQuestion, Cluster};
use crate::db::Db;
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

/// The address of the client that sent the request (unspecified when the server did not record
/// it).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    pub fn of(parts_extensions: &axum::http::Extensions) -> Self {
        let ip = parts_extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
        Self(ip)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::of(&parts.extensions))
    }
}

/// What a presented token proves.
#[derive(Debug, Clone)]
pub enum Grant {
    /// A caller of the API and the pages; `credential` is what a session signed in with it
    /// records (see [`Authenticator::accepts`]).
    Caller { actor: Actor, credential: String },
    /// The metrics token: `/metrics` and nothing else.
    Metrics,
}

/// Checks credentials and keeps browser sessions.
pub struct Authenticator {
    mode: AuthMode,
    /// `(name, token)` for `--auth token`.
    tokens: Vec<(String, String)>,
    /// A token that may read `/metrics` only.
    metrics_token: Option<String>,
    access: AccessQuestion,
    cluster: Arc<dyn Cluster>,
    /// sha256(token) -> (user, valid until) for `--auth kubernetes`.
    reviewed: Mutex<HashMap<[u8; 32], (Actor, Instant)>>,
    failures: limiter::FailureLimiter,
    pub sessions: SessionStore,
}

/// The session credential of `--auth none`.
const NO_CREDENTIAL: &str = "none";

/// The configured tokens of `settings`, parsed and checked: well-formed, strong enough, and a
/// metrics token that is no API token.
fn configured_tokens(settings: &HttpSettings) -> anyhow::Result<Vec<(String, String)>> {
    let tokens = match (settings.auth, &settings.tokens) {
        (AuthMode::Token, Some(spec)) => tokens::parse_tokens(spec)?,
        _ => Vec::new(),
    };
    if let Some(t) = &settings.metrics_token {
        check_strength(t, &format!("{METRICS_TOKEN_ENV} (--metrics-token)"))?;
        if tokens.iter().any(|(_, api)| api == t) {
            anyhow::bail!("{METRICS_TOKEN_ENV} must differ from every API token");
        }
    }
    Ok(tokens)
}

/// See [`HttpSettings::check_tokens`].
pub fn check_configured_tokens(settings: &HttpSettings) -> anyhow::Result<()> {
    configured_tokens(settings).map(drop)
}

impl Authenticator {
    /// Refuses a configured token that is malformed or too weak (a clear start-up error).
    pub fn new(settings: &HttpSettings, cluster: Arc<dyn Cluster>, db: &Db) -> anyhow::Result<Self> {
        let mut tokens = configured_tokens(settings)?;
        if settings.auth == AuthMode::Token && settings.tokens.is_none() {
            let token = hex::encode(rand::random::<[u8; 24]>());
            // stderr only, once: a secret does not belong in the structured logs
            eprintln!("{TOKEN_ENV} is not set; generated an API token for this process: {token}");
            tokens.push(("admin".into(), token));
        }
        Ok(Self {
            mode: settings.auth,
            tokens,
            metrics_token: settings.metrics_token.clone(),
            access: settings.access.clone(),
            cluster,
            reviewed: Mutex::new(HashMap::new()),
            failures: limiter::FailureLimiter::new(settings.auth_failures),
            sessions: SessionStore::new(db, settings.session_ttl),
        })
    }

    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    /// What `token`, presented by `client`, proves. A client (or everybody) with too many failed
    /// attempts gets [`ApiError::TooManyRequests`] before the token is looked at; a wrong token
    /// counts as a failure.
    pub async fn authenticate(&self, client: IpAddr, token: &str) -> Result<Grant, ApiError> {
        if self.mode == AuthMode::None {
            return Ok(Grant::Caller {
                actor: Actor::new("anonymous"),
                credential: NO_CREDENTIAL.into(),
            });
        }
        self.failures.check(client).map_err(ApiError::TooManyRequests)?;
        if let Some(m) = &self.metrics_token
            && bool::from(m.as_bytes().ct_eq(token.as_bytes()))
        {
            return Ok(Grant::Metrics);
        }
        let verified = match self.mode {
            AuthMode::Token => self.verify_token(token),
            _ => self.review(token).await.map(|actor| Grant::Caller {
                actor,
                credential: self.kubernetes_credential(),
            }),
        };
        if matches!(verified, Err(ApiError::Unauthorized)) {
            self.failures.failed(client);
        }
        verified
    }

    fn verify_token(&self, token: &str) -> Result<Grant, ApiError> {
        // compare with every token so that timing does not tell which one nearly matched
        let mut found = None;
        for (name, expected) in &self.tokens {
            if bool::from(expected.as_bytes().ct_eq(token.as_bytes())) {
                found = Some(name);
            }
        }
        found
            .map(|name| Grant::Caller {
                actor: Actor::new(name.as_str()),
                credential: format!("token:{}", tokens::fingerprint(name, token)),
            })
            .ok_or(ApiError::Unauthorized)
    }

    /// The session credential of `--auth kubernetes`: the user was reviewed against the access
    /// question when signing in, so a session ends when the question changes.
    fn kubernetes_credential(&self) -> String {
        let a = &self.access;
        let question = format!("{}\0{}\0{}\0{}", a.group, a.resource, a.verb, a.namespace);
        format!("kubernetes:{}", tokens::fingerprint("kubernetes", &question))
    }

    /// Whether a session signed in with `credential` is still good: the same auth mode and, for
    /// tokens, a token that is still configured for the same name; for Kubernetes, the same access
    /// question.
    pub fn accepts(&self, credential: &str) -> bool {
        match self.mode {
            AuthMode::None => credential == NO_CREDENTIAL,
            AuthMode::Kubernetes => credential == self.kubernetes_credential(),
            AuthMode::Token => credential.strip_prefix("token:").is_some_and(|fp| {
                self.tokens
                    .iter()
                    .any(|(name, token)| tokens::fingerprint(name, token) == fp)
            }),
        }
    }

    /// The valid session `id` (unexpired, and signed in with a credential still accepted).
    pub async fn session(&self, id: &str) -> Result<Option<SessionInfo>, ApiError> {
        let Some(session) = self.sessions.get(id).await? else {
            return Ok(None);
        };
        if self.accepts(&session.credential) {
            return Ok(Some(session));
        }
        self.sessions.remove(id).await?;
        Ok(None)
    }

    /// Starts a browser session.
    pub async fn start_session(&self, actor: Actor, credential: &str) -> Result<SessionInfo, ApiError> {
        Ok(self.sessions.create(actor, credential).await?)
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
