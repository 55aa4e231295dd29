//! The HTTP/1.1 server loop. It accepts connections itself rather than through `axum::serve`,
//! which offers neither a header-read deadline nor a connection limit:
//!
//! - every connection runs on hyper's HTTP/1 connection with its `header_read_timeout`: a request
//!   head must be complete within [`ConnectionSettings::header_timeout`] of the connection opening
//!   or of its previous response ending, so half-sent requests and idle keep-alive connections
//!   are closed after that time (a response being sent, such as an event stream, is not idle);
//! - request bodies have a deadline of their own (tower-http's `RequestBodyDeadlineLayer`, in
//!   [`super::router`]);
//! - at most [`ConnectionSettings::max_connections`] connections, kept below the open-file limit
//!   ([`fd_limit`]); at the limit the longest-idle connection makes room ([`connections`]).

pub mod connections;
pub mod fd_limit;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

use connections::{Admission, Connections, Slot};

/// How connections are limited.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionSettings {
    /// Time a connection gets for a complete request head, from opening or from the end of its
    /// previous response: the deadline for half-sent heads and the keep-alive idle timeout.
    pub header_timeout: Duration,
    /// Most connections at once (lowered to fit the open-file limit).
    pub max_connections: usize,
}

/// Serves `app` on `listener` until `stop` is cancelled, then lets the requests in flight finish
/// (connections with none close at once) and returns.
pub async fn run(listener: TcpListener, app: Router, settings: ConnectionSettings, stop: CancellationToken) {
    let open_files = fd_limit::open_files_limit();
    let limit = fd_limit::fit_connection_limit(settings.max_connections, open_files);
    if limit < settings.max_connections {
        tracing::warn!(
            wanted = settings.max_connections,
            limit,
            open_files,
            "connection limit lowered to stay below the open-file limit"
        );
    }
    tracing::info!(
        max_connections = limit,
        header_timeout_s = settings.header_timeout.as_secs_f64(),
        "accepting connections"
    );
    let connections = Connections::new(limit);
    let tracker = TaskTracker::new();
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_timeout);
    let mut saturated = false;
    loop {
        let (stream, peer) = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
        };
        let slot = match connections.admit(&stop) {
            Admission::Admitted(slot) => {
                saturated = false;
                Arc::new(slot)
            }
            Admission::Full => {
                if !saturated {
                    tracing::warn!(
                        limit,
                        "every connection is busy: new connections are closed until one ends"
                    );
                    saturated = true;
                }
                drop(stream);
                continue;
            }
        };
        tracker.spawn(serve_connection(http1.clone(), stream, peer, app.clone(), slot));
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
}

/// One connection until it ends, is evicted, or the server stops.
async fn serve_connection(
    http1: hyper::server::conn::http1::Builder,
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    slot: Arc<Slot>,
) {
    let _ = stream.set_nodelay(true);
    let close = slot.close_signal().clone();
    let in_service = slot.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let busy = in_service.begin_request();
        let mut req = req.map(Body::new);
        req.extensions_mut().insert(ConnectInfo(peer));
        let app = app.clone();
        async move {
            let res = app.oneshot(req).await.unwrap_or_else(|e: Infallible| match e {});
            // the connection stays busy until the whole body has been sent (or dropped)
            Ok::<_, Infallible>(res.map(|body| {
                Body::new(body.map_frame(move |frame| {
                    let _in_flight = &busy;
                    frame
                }))
            }))
        }
    });
    let conn = http1.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(%peer, "connection ended: {e}");
            }
            return;
        }
        () = close.cancelled() => {}
    }
    // evicted or stopping: nothing asked yet means nothing to finish
    if slot.never_used() {
        return;
    }
    conn.as_mut().graceful_shutdown();
    if let Err(e) = conn.await {
        tracing::debug!(%peer, "connection ended: {e}");
    }
}

/// An accept error: a connection that went away before it was accepted is nothing; anything
/// else (no file descriptors left) is logged and retried after a pause instead of spinning.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(e.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        return;
    }
    tracing::error!("cannot accept a connection: {e}; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
