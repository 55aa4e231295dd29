//! The proxy's two listeners: the one the service talks to (each client connection gets its own
//! TLS connection to the API server, requests pass one after the other, upgrades are spliced),
//! and the control API of the tests.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::routing::{get, post};
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use rustls_pki_types::pem::PemObject;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;

use super::{Book, Fault, Rule, Seen, Stall, Stats};

// io::Error, not a boxed error: hyper's server needs the service's error type to be `Into` a
// boxed one for every lifetime, which a boxed error itself is not (a higher-ranked bound)
type BoxError = std::io::Error;
type Body = BoxBody<Bytes, BoxError>;

fn boxed<E: std::error::Error + Send + Sync + 'static>(e: E) -> BoxError {
    std::io::Error::other(e)
}

fn failed(message: &'static str) -> BoxError {
    std::io::Error::other(message)
}

/// The API server behind the proxy.
pub struct Upstream {
    host: String,
    port: u16,
    server_name: ServerName<'static>,
    tls: TlsConnector,
}

impl Upstream {
    /// `https://host:port`, trusted through the CA certificate(s) in `ca_pem`.
    pub fn new(url: &str, ca_pem: &std::path::Path) -> anyhow::Result<Upstream> {
        let authority = url
            .strip_prefix("https://")
            .ok_or_else(|| anyhow::anyhow!("the upstream must be https://host:port, got {url}"))?
            .trim_end_matches('/');
        let (host, port) = authority
            .rsplit_once(':')
            .ok_or_else(|| anyhow::anyhow!("no port in {url}"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pki_types::CertificateDer::pem_file_iter(ca_pem)? {
            roots.add(cert?)?;
        }
        let mut config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        // HTTP/1.1 only: an exec's websocket upgrade does not exist in HTTP/2
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Upstream {
            port: port.parse()?,
            server_name: ServerName::try_from(host.clone())?,
            host,
            tls: TlsConnector::from(Arc::new(config)),
        })
    }

    async fn connect(&self) -> Result<SendRequest<Incoming>, BoxError> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(boxed)?;
        tcp.set_nodelay(true).map_err(boxed)?;
        let tls = self
            .tls
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(boxed)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(boxed)?;
        tokio::spawn(async move {
            let _ = connection.with_upgrades().await;
        });
        Ok(sender)
    }
}

/// Serves the proxied API until the process ends.
pub async fn proxy(listener: TcpListener, upstream: Arc<Upstream>, book: Arc<Mutex<Book>>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(connection(tcp, upstream.clone(), book.clone()));
    }
}

/// One client connection: its requests, in order, over one connection to the API server.
async fn connection(tcp: TcpStream, upstream: Arc<Upstream>, book: Arc<Mutex<Book>>) {
    let _ = tcp.set_nodelay(true);
    // a second handle on the socket: to reset it, and to notice the client leaving
    let Ok(probe) = tcp.as_fd().try_clone_to_owned() else {
        return;
    };
    let probe = Arc::new(probe);
    let sender = Arc::new(tokio::sync::Mutex::new(None::<SendRequest<Incoming>>));
    let service = service_fn(move |req| {
        let (upstream, book, probe, sender) = (upstream.clone(), book.clone(), probe.clone(), sender.clone());
        async move { handle(req, &upstream, &book, &probe, &sender).await }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(tcp), service)
        .with_upgrades()
        .await;
}

async fn handle(
    req: Request<Incoming>,
    upstream: &Upstream,
    book: &Mutex<Book>,
    probe: &OwnedFd,
    sender: &tokio::sync::Mutex<Option<SendRequest<Incoming>>>,
) -> Result<Response<Body>, BoxError> {
    let query = req.uri().query().unwrap_or_default().to_string();
    let upgrade = req.headers().contains_key(hyper::header::UPGRADE);
    let watch = query.split('&').any(|p| p == "watch=true" || p == "watch=1");
    let what = format!("{} {}", req.method(), req.uri().path());
    let seen = Seen {
        method: req.method().as_str(),
        path: req.uri().path(),
        query: &query,
        streams: upgrade || watch,
    };
    let fault = book.lock().expect("proxy book").decide(&seen);
    match fault {
        None => forward(req, upstream, sender).await,
        Some(Fault::Status500) => Ok(status_500()),
        Some(Fault::Reset) => {
            reset(probe);
            Err(failed("connection reset by kube-fault-proxy"))
        }
        Some(Fault::ResetAfterForward) => {
            // the API server has the request (and answered): the client never learns it
            let _answered = forward(req, upstream, sender).await?;
            reset(probe);
            Err(failed("connection reset by kube-fault-proxy after forwarding"))
        }
        Some(Fault::Hang) => {
            hang(probe, book, what).await;
            Err(failed("the client gave up"))
        }
    }
}

async fn forward(
    mut req: Request<Incoming>,
    upstream: &Upstream,
    sender: &tokio::sync::Mutex<Option<SendRequest<Incoming>>>,
) -> Result<Response<Body>, BoxError> {
    let client_upgrade = req
        .headers()
        .contains_key(hyper::header::UPGRADE)
        .then(|| hyper::upgrade::on(&mut req));
    let mut sender = sender.lock().await;
    if sender.as_ref().is_none_or(SendRequest::is_closed) {
        *sender = Some(upstream.connect().await?);
    }
    let s = sender.as_mut().expect("connected");
    s.ready().await.map_err(boxed)?;
    let mut response = s.send_request(req).await.map_err(boxed)?;
    if let Some(client_upgrade) = client_upgrade
        && response.status() == StatusCode::SWITCHING_PROTOCOLS
    {
        let upstream_upgrade = hyper::upgrade::on(&mut response);
        tokio::spawn(async move {
            if let (Ok(client), Ok(server)) = tokio::join!(client_upgrade, upstream_upgrade) {
                let _ =
                    tokio::io::copy_bidirectional(&mut TokioIo::new(client), &mut TokioIo::new(server)).await;
            }
        });
    }
    Ok(response.map(|b| b.map_err(boxed).boxed()))
}

fn status_500() -> Response<Body> {
    let status = serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "etcdserver: request timed out (injected by kube-fault-proxy)",
        "reason": "InternalError", "code": 500,
    });
    let body = Full::new(Bytes::from(status.to_string())).map_err(|never| -> BoxError { match never {} });
    let mut response = Response::new(body.boxed());
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        "application/json".parse().expect("a header"),
    );
    response
}

/// Makes the socket send RST instead of FIN when it is closed (the connection ends right after).
fn reset(probe: &OwnedFd) {
    let _ = socket2::SockRef::from(probe).set_linger(Some(Duration::ZERO));
}

/// Holds a request unanswered until its client closes the connection (or 10 minutes pass);
/// records how long that was, also when the connection ends otherwise.
async fn hang(probe: &OwnedFd, book: &Mutex<Book>, request: String) {
    struct Recorded<'a> {
        book: &'a Mutex<Book>,
        request: String,
        since: Instant,
    }
    impl Drop for Recorded<'_> {
        fn drop(&mut self) {
            let seconds = self.since.elapsed().as_secs_f64();
            if let Ok(mut book) = self.book.lock() {
                book.stats.stalls.push(Stall {
                    request: std::mem::take(&mut self.request),
                    seconds,
                });
            }
        }
    }
    let _recorded = Recorded {
        book,
        request,
        since: Instant::now(),
    };
    let gone = async {
        let Ok(fd) = probe.try_clone() else {
            return std::future::pending().await;
        };
        let Ok(stream) = TcpStream::from_std(std::net::TcpStream::from(fd)) else {
            return std::future::pending().await;
        };
        let mut byte = [0u8; 1];
        loop {
            match stream.peek(&mut byte).await {
                Ok(0) | Err(_) => return,
                // pipelined bytes are not the end: look again in a moment
                Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(600), gone).await;
}

/// The control API of the tests.
pub fn control(book: Arc<Mutex<Book>>) -> axum::Router {
    axum::Router::new()
        .route("/rules", get(rules).put(put_rules))
        .route("/stats", get(stats))
        .route("/stats/reset", post(reset_stats))
        .with_state(book)
}

async fn rules(State(book): State<Arc<Mutex<Book>>>) -> Json<Vec<Rule>> {
    Json(book.lock().expect("proxy book").rules.clone())
}

async fn put_rules(State(book): State<Arc<Mutex<Book>>>, Json(rules): Json<Vec<Rule>>) -> Json<Vec<Rule>> {
    book.lock().expect("proxy book").rules = rules.clone();
    Json(rules)
}

async fn stats(State(book): State<Arc<Mutex<Book>>>) -> Json<Stats> {
    Json(book.lock().expect("proxy book").stats.clone())
}

async fn reset_stats(State(book): State<Arc<Mutex<Book>>>) -> Json<Stats> {
    Json(std::mem::take(&mut book.lock().expect("proxy book").stats))
}
