//! Browser sessions: kept in memory with an expiry, identified by an HttpOnly, SameSite=Strict
//! cookie, each with its own CSRF token and a one-shot flash message for the next page.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, Uri, header};
use subtle::ConstantTimeEq as _;

use crate::model::Actor;

/// The name of the session cookie.
pub const COOKIE: &str = "lm_session";

/// Most sessions kept at once; the oldest go first beyond it.
const MAX_SESSIONS: usize = 10_000;

/// A message shown once on the next page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    /// `ok` or `error`.
    pub kind: &'static str,
    pub message: String,
}

impl Flash {
    pub fn ok(message: impl Into<String>) -> Self {
        Self {
            kind: "ok",
            message: message.into(),
        }
    }
    pub fn error(message: impl Into<String>) -> Self {
        Self {
            kind: "error",
            message: message.into(),
        }
    }
}

#[derive(Debug)]
struct Session {
    actor: Actor,
    csrf: String,
    expires: Instant,
    flash: Option<Flash>,
}

/// What a request learns from its session cookie.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub id: String,
    pub csrf: String,
    pub actor: Actor,
}

impl SessionInfo {
    /// Constant-time comparison of a submitted CSRF token with the session's.
    pub fn csrf_matches(&self, submitted: &str) -> bool {
        !submitted.is_empty() && bool::from(self.csrf.as_bytes().ct_eq(submitted.as_bytes()))
    }
}

/// The sessions of this process (a restart logs everyone out, which is fine for a tool).
pub struct SessionStore {
    ttl: Duration,
    sessions: Mutex<HashMap<String, Session>>,
}

fn random_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

impl SessionStore {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Starts a session for `actor`.
    pub fn create(&self, actor: Actor) -> SessionInfo {
        let now = Instant::now();
        let mut map = self.sessions.lock().expect("session lock");
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        let info = SessionInfo {
            id: random_token(),
            csrf: random_token(),
            actor,
        };
        let session = Session {
            actor: info.actor.clone(),
            csrf: info.csrf.clone(),
            expires: now + self.ttl,
            flash: None,
        };
        map.insert(info.id.clone(), session);
        info
    }

    /// The unexpired session `id`.
    pub fn get(&self, id: &str) -> Option<SessionInfo> {
        let mut map = self.sessions.lock().expect("session lock");
        match map.get(id) {
            Some(s) if s.expires > Instant::now() => Some(SessionInfo {
                id: id.to_string(),
                csrf: s.csrf.clone(),
                actor: s.actor.clone(),
            }),
            Some(_) => {
                map.remove(id);
                None
            }
            None => None,
        }
    }

    pub fn remove(&self, id: &str) {
        self.sessions.lock().expect("session lock").remove(id);
    }

    pub fn set_flash(&self, id: &str, flash: Flash) {
        if let Some(s) = self.sessions.lock().expect("session lock").get_mut(id) {
            s.flash = Some(flash);
        }
    }

    pub fn take_flash(&self, id: &str) -> Option<Flash> {
        self.sessions
            .lock()
            .expect("session lock")
            .get_mut(id)
            .and_then(|s| s.flash.take())
    }
}

/// The session id from the `Cookie` headers.
pub fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_string())
}

/// Whether the session cookie of this request's answer must be `Secure`: always with
/// `--secure-cookies` (`always`), otherwise when the browser reached us over TLS, directly (an
/// `https` request URI) or through a TLS-terminating proxy (`X-Forwarded-Proto: https`,
/// `Forwarded: proto=https`; the first entry is the one the browser's connection hit).
/// These headers are believed from anyone on purpose: they can only add `Secure`, and a client
/// that sends them over plain HTTP merely loses its own cookie.
pub fn secure_cookie(always: bool, uri: &Uri, headers: &HeaderMap) -> bool {
    let https = |v: &str| v.trim().trim_matches('"').eq_ignore_ascii_case("https");
    let first = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::to_string)
    };
    let forwarded_proto = first(header::FORWARDED).is_some_and(|entry| {
        entry
            .split(';')
            .filter_map(|pair| pair.split_once('='))
            .any(|(k, v)| k.trim().eq_ignore_ascii_case("proto") && https(v))
    });
    always
        || uri.scheme_str() == Some("https")
        || first(header::HeaderName::from_static("x-forwarded-proto")).is_some_and(|v| https(&v))
        || forwarded_proto
}

/// `Set-Cookie` for a new session (or, with `None`, one that deletes it).
pub fn set_cookie(session: Option<&SessionInfo>, ttl: Duration, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let value = match session {
        Some(s) => format!(
            "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            s.id,
            ttl.as_secs()
        ),
        None => format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    };
    HeaderValue::from_str(&value).expect("cookie is ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_and_csrf_is_checked() {
        let store = SessionStore::new(Duration::from_millis(0));
        let s = store.create(Actor::new("ops"));
        assert!(
            store.get(&s.id).is_none(),
            "a session with ttl 0 is expired at once"
        );
        let store = SessionStore::new(Duration::from_secs(60));
        let s = store.create(Actor::new("ops"));
        let got = store.get(&s.id).expect("session");
        assert!(got.csrf_matches(&s.csrf));
        assert!(!got.csrf_matches("") && !got.csrf_matches("nope"));
        store.set_flash(&s.id, Flash::ok("done"));
        assert_eq!(store.take_flash(&s.id), Some(Flash::ok("done")));
        assert_eq!(store.take_flash(&s.id), None);
    }

    #[test]
    fn cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; lm_session=abc ; b=2"),
        );
        assert_eq!(cookie_value(&h).as_deref(), Some("abc"));
    }

    #[test]
    fn cookies_are_secure_behind_tls() {
        let plain: Uri = "/login".parse().unwrap();
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, HeaderValue::from_static(v));
            }
            h
        };
        assert!(!secure_cookie(false, &plain, &HeaderMap::new()));
        assert!(
            secure_cookie(true, &plain, &HeaderMap::new()),
            "--secure-cookies: always"
        );
        let tls: Uri = "https://migrator.example/login".parse().unwrap();
        assert!(secure_cookie(false, &tls, &HeaderMap::new()));
        for (pairs, want) in [
            (&[("x-forwarded-proto", "https")][..], true),
            (&[("x-forwarded-proto", "HTTPS, http")][..], true),
            (&[("x-forwarded-proto", "http")][..], false),
            (&[("x-forwarded-proto", "http, https")][..], false),
            (&[("forwarded", "for=10.0.0.1;proto=https;host=x")][..], true),
            (
                &[("forwarded", "for=10.0.0.1;proto=http, proto=https")][..],
                false,
            ),
        ] {
            assert_eq!(secure_cookie(false, &plain, &headers(pairs)), want, "{pairs:?}");
        }
    }
}
