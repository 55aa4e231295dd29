//! Every call to the API server, in one place: a deadline for each attempt, and retries with
//! backoff when a call that is safe to repeat meets a failure that may pass (HTTP 429, 500, 502,
//! 503, 504, a dropped or refused connection, a deadline). A lasting failure ends the call with an
//! error that says how often and how long it was tried; the verb that made the call then names
//! the object (`map_kube_error`).
//!
//! It is a [`tower::Service`] around a ready kube-rs [`Client`], itself made into a `Client`
//! again, so that every verb of this module (reads, writes, waits' lists, the backend's objects,
//! reviews, Leases) goes through it without knowing.
//!
//! Which calls are repeated: every request whose body can be sent again, except watches and
//! upgrades (exec), i.e. GET and LIST, DELETE of a named object, PATCH (every patch this service
//! sends sets a whole desired value: replicas, a URL, a key of a ConfigMap, a row's `spec`), PUT
//! (a replace carries the `resourceVersion` it read, so a repeat after an unseen success is a 409
//! that its caller reads again, never a stale write) and POST (named creates, whose repeat after an
//! unseen success is an `AlreadyExists` every caller handles, and access and token reviews). A
//! watch gets the deadline for its response headers and then streams under the watcher's own
//! idle bound; an exec gets the deadline for its upgrade and is never repeated (the tool is not
//! idempotent).

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use bytes::Bytes;
use futures::future::BoxFuture;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use kube::Client;
use kube::client::Body;
use tower::{BoxError, Service};

/// How calls to the API server are bounded and repeated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallPolicy {
    /// Longest one attempt may take: connect, send, the whole answer (for a watch or an exec: until
    /// its response headers).
    pub deadline: Duration,
    /// Attempts of a call that may be repeated, the first included.
    pub attempts: usize,
    /// Pause before the first repeat; doubled (with jitter) for each next one, up to `max_delay`.
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl Default for CallPolicy {
    fn default() -> Self {
        Self {
            deadline: Duration::from_secs(15),
            attempts: 5,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

/// `inner` with [`CallPolicy`] around every request. Build `inner` without kube-rs' own retries
/// (`Config::default_retry = false`): these cover more cases.
pub fn client(inner: Client, policy: CallPolicy) -> Client {
    let namespace = inner.default_namespace().to_string();
    Client::new(
        Calls {
            inner,
            policy: Arc::new(policy),
        },
        namespace,
    )
}

/// A call that ended without an answer to give: every attempt failed, or the one allowed did.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {last} ({attempts} {}, {elapsed:.1} s)", if *.attempts == 1 { "attempt" } else { "attempts" })]
pub struct CallFailed {
    /// Method and path.
    pub what: String,
    pub attempts: usize,
    pub elapsed: f64,
    /// The last failure in words.
    pub last: String,
}

#[derive(Clone)]
struct Calls {
    inner: Client,
    policy: Arc<CallPolicy>,
}

impl Service<Request<Body>> for Calls {
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Response<Body>, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // the inner client buffers requests itself
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let (inner, policy) = (self.inner.clone(), self.policy.clone());
        Box::pin(async move { call(&inner, &policy, request).await })
    }
}

/// A watch (`watch=true`) or an upgrade (exec): it streams, so only its start has a deadline.
fn streams(request: &Request<Body>) -> bool {
    request.headers().contains_key(http::header::UPGRADE)
        || request
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"))
}

/// What one attempt came to.
enum Attempt {
    Answer(Response<Body>),
    /// Worth another attempt: a status that may pass, a connection that failed, the deadline.
    Transient(String, Option<Duration>),
    /// Not worth another (an error of the client itself, e.g. its credentials).
    Fatal(BoxError),
}

async fn call(
    inner: &Client,
    policy: &CallPolicy,
    request: Request<Body>,
) -> Result<Response<Body>, BoxError> {
    let what = format!("{} {}", request.method(), request.uri().path());
    let started = Instant::now();
    if streams(&request) {
        return match tokio::time::timeout(policy.deadline, inner.send(request)).await {
            Ok(result) => result.map_err(Into::into),
            Err(_) => Err(Box::new(CallFailed {
                what,
                attempts: 1,
                elapsed: started.elapsed().as_secs_f64(),
                last: format!("no response within {} s", policy.deadline.as_secs_f64()),
            })),
        };
    }
    let mut delays = ExponentialBuilder::default()
        .with_min_delay(policy.min_delay)
        .with_max_delay(policy.max_delay)
        .with_max_times(policy.attempts.saturating_sub(1))
        .with_jitter()
        .build();
    let mut request = Some(request);
    let mut attempts = 0;
    loop {
        let current = request.take().expect("a request for every attempt");
        // kept for a repeat when its body can be sent again (kube-rs' bodies always can)
        request = clone_request(&current);
        attempts += 1;
        let (last, wait) = match attempt(inner, policy.deadline, current).await {
            Attempt::Answer(response) => return Ok(response),
            Attempt::Fatal(e) => return Err(e),
            Attempt::Transient(last, wait) => (last, wait),
        };
        let delay = match (&request, delays.next()) {
            (Some(_), Some(delay)) => wait.map_or(delay, |w| w.min(policy.max_delay).max(delay)),
            _ => {
                return Err(Box::new(CallFailed {
                    what,
                    attempts,
                    elapsed: started.elapsed().as_secs_f64(),
                    last,
                }));
            }
        };
        tracing::warn!(
            call = %what,
            attempt = attempts,
            of = policy.attempts,
            "{last}; trying again in {} ms",
            delay.as_millis()
        );
        tokio::time::sleep(delay).await;
    }
}

/// One attempt, answer read whole, within `deadline`.
async fn attempt(inner: &Client, deadline: Duration, request: Request<Body>) -> Attempt {
    let answer = async {
        let response = inner.send(request).await?;
        let (parts, body) = response.into_parts();
        let bytes: Bytes = body.collect().await?.to_bytes();
        Ok::<_, kube::Error>(Response::from_parts(parts, Body::from(bytes)))
    };
    match tokio::time::timeout(deadline, answer).await {
        Err(_) => Attempt::Transient(format!("no answer within {} s", deadline.as_secs_f64()), None),
        Ok(Ok(response)) if retryable(response.status()) => {
            let wait = retry_after(&response);
            Attempt::Transient(describe(response).await, wait)
        }
        Ok(Ok(response)) => Attempt::Answer(response),
        // the connection failed (refused, reset, closed early) or the answer broke off
        Ok(Err(e @ (kube::Error::HyperError(_) | kube::Error::Service(_)))) => {
            Attempt::Transient(super::errors::error_chain(&e), None)
        }
        Ok(Err(e)) => Attempt::Fatal(Box::new(e)),
    }
}

/// Statuses the API server (or a proxy in front of it) answers for trouble that may pass.
fn retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504)
}

/// `Retry-After` in seconds, as the API server sends it with 429 and some 503s.
fn retry_after(response: &Response<Body>) -> Option<Duration> {
    let value = response.headers().get(http::header::RETRY_AFTER)?;
    value.to_str().ok()?.trim().parse().ok().map(Duration::from_secs)
}

/// "HTTP 500 Internal Server Error: <the Status message>".
async fn describe(response: Response<Body>) -> String {
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let message = serde_json::from_slice::<kube::core::Status>(&body)
        .map(|s| s.message)
        .unwrap_or_else(|_| String::from_utf8_lossy(&body).chars().take(200).collect());
    let message = message.trim();
    if message.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {message}")
    }
}

fn clone_request(request: &Request<Body>) -> Option<Request<Body>> {
    let mut copy = Request::builder()
        .method(request.method().clone())
        .uri(request.uri().clone())
        .version(request.version())
        .body(request.body().try_clone()?)
        .ok()?;
    *copy.headers_mut() = request.headers().clone();
    *copy.extensions_mut() = request.extensions().clone();
    Some(copy)
}

#[cfg(test)]
#[path = "calls_tests.rs"]
mod tests;
