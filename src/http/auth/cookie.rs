//! The session cookie: its name, how a request carries it and how an answer sets it (HttpOnly,
//! SameSite=Strict, `Secure` behind TLS).

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, Uri, header};

use super::session::SessionInfo;

/// The name of the session cookie.
pub const COOKIE: &str = "lm_session";

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
