//! The `Host` check of `--auth none`: without authentication, the only thing between a web page
//! and the API is that the page cannot reach it. DNS rebinding breaks that: a page from
//! `evil.example` re-resolves its own name to 127.0.0.1 and then talks to this server as a
//! same-origin site, but its requests still say `Host: evil.example`. So an unauthenticated
//! server answers only requests that name the loopback host they were sent to.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::http::AppState;
use crate::http::error::ApiError;

/// The host names a loopback-only server answers to (with any port).
pub const LOOPBACK_HOSTS: &[&str] = &["localhost", "127.0.0.1", "[::1]"];

/// The host part of an authority (`host`, `host:port`, `[v6]`, `[v6]:port`), lower case.
fn host_of(authority: &str) -> String {
    let authority = authority.trim();
    let host = match authority.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((v6, _)) => format!("[{v6}]"),
            None => authority.to_string(),
        },
        None => match authority.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host.to_string(),
            _ => authority.to_string(),
        },
    };
    host.to_ascii_lowercase()
}

/// Whether `authority` (a `Host` header or an HTTP/2 `:authority`) names the loopback host.
pub fn is_loopback_host(authority: &str) -> bool {
    LOOPBACK_HOSTS.contains(&host_of(authority).as_str())
}

/// Middleware: with [`crate::http::HttpSettings::loopback_hosts_only`], answers 421 with a JSON
/// error to every request whose host is not `localhost`, `127.0.0.1` or `[::1]`.
pub async fn require_loopback_host(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if !state.settings.loopback_hosts_only {
        return next.run(req).await;
    }
    // HTTP/2 carries the host in the URI (`:authority`), HTTP/1.1 in the Host header
    let named = req.uri().authority().map(|a| a.as_str().to_string()).or_else(|| {
        req.headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    });
    match named {
        Some(host) if is_loopback_host(&host) => next.run(req).await,
        named => {
            let shown = named.as_deref().unwrap_or("(none)");
            ApiError::Misdirected(format!(
                "this server runs without authentication and answers only requests for localhost, \
                 127.0.0.1 or [::1] (Host: {shown}); start it with --allow-unauthenticated-remote \
                 to serve other names"
            ))
            .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_with_any_port_pass() {
        for ok in [
            "localhost",
            "localhost:8080",
            "LOCALHOST:1",
            "127.0.0.1",
            "127.0.0.1:45123",
            "[::1]",
            "[::1]:8080",
        ] {
            assert!(is_loopback_host(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "localhost:80@evil.example",
            "[::2]:8080",
            "10.0.0.1:8080",
            "",
            "[::1",
        ] {
            assert!(!is_loopback_host(bad), "{bad}");
        }
    }
}
