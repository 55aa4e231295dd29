//! [`CallPolicy`] against a scripted HTTP server on loopback: each request it receives gets the
//! next act of its script (an answer, a 500, a reset connection, no answer at all), and it records
//! what it saw.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams, WatchParams};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::cluster::kube::{KubeCluster, KubeOptions};
use crate::cluster::{Cluster, ClusterError};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Act {
    /// 200 (201 for a POST) with a ConfigMap.
    Answer,
    /// An error status with a `Status` body.
    Status(u16),
    /// The connection is reset (RST) without an answer.
    Reset,
    /// The request is never answered; the server waits until the client gives up.
    Hang,
    /// A watch: two events, the second one `gap` after the first.
    Watch(Duration),
}

#[derive(Default)]
struct Seen {
    /// "METHOD path" of every request, in order.
    requests: Vec<String>,
    /// Hung connections the client closed.
    abandoned: usize,
}

struct Server {
    url: String,
    seen: Arc<Mutex<Seen>>,
}

impl Server {
    async fn start(script: &[Act]) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let script = Arc::new(Mutex::new(script.iter().copied().collect::<VecDeque<_>>()));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let s = seen.clone();
        tokio::spawn(async move {
            loop {
                let (conn, _) = listener.accept().await.unwrap();
                tokio::spawn(serve(conn, script.clone(), s.clone()));
            }
        });
        Server { url, seen }
    }

    fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().requests.clone()
    }

    fn cluster(&self, policy: CallPolicy) -> KubeCluster {
        crate::cluster::kube::install_crypto_provider();
        let mut config = kube::Config::new(self.url.parse().unwrap());
        config.default_retry = false;
        let inner = kube::Client::try_from(config).unwrap();
        KubeCluster::new(client(inner, policy), KubeOptions::default())
    }
}

/// Reads one request (headers and a `Content-Length` body); `None` when the client closed.
async fn read_request(conn: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if conn.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().to_string())
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    conn.read_exact(&mut body).await.ok()?;
    let mut words = head.split_whitespace();
    let (method, target) = (words.next()?, words.next()?);
    Some(format!("{method} {}", target.split('?').next().unwrap_or(target)))
}

fn config_map_json() -> String {
    r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm","namespace":"ns","resourceVersion":"7"},"data":{"k":"v"}}"#.into()
}

async fn serve(mut conn: TcpStream, script: Arc<Mutex<VecDeque<Act>>>, seen: Arc<Mutex<Seen>>) {
    while let Some(request) = read_request(&mut conn).await {
        let post = request.starts_with("POST");
        seen.lock().unwrap().requests.push(request);
        let act = script.lock().unwrap().pop_front().unwrap_or(Act::Answer);
        let (code, body) = match act {
            Act::Answer => (if post { 201 } else { 200 }, config_map_json()),
            Act::Status(code) => (
                code,
                format!(
                    r#"{{"kind":"Status","apiVersion":"v1","status":"Failure","message":"etcdserver: leader changed","reason":"InternalError","code":{code}}}"#
                ),
            ),
            Act::Reset => {
                let _ = conn.set_zero_linger();
                return;
            }
            Act::Hang => {
                // until the client hangs up
                let mut rest = [0u8; 64];
                while conn.read(&mut rest).await.is_ok_and(|n| n > 0) {}
                seen.lock().unwrap().abandoned += 1;
                return;
            }
            Act::Watch(gap) => {
                let head =
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
                let _ = conn.write_all(head.as_bytes()).await;
                for (i, pause) in [Duration::ZERO, gap].into_iter().enumerate() {
                    tokio::time::sleep(pause).await;
                    let event = format!(
                        "{{\"type\":\"ADDED\",\"object\":{}}}\n",
                        config_map_json().replace("\"7\"", &format!("\"{}\"", 8 + i))
                    );
                    let _ = conn
                        .write_all(format!("{:x}\r\n{event}\r\n", event.len()).as_bytes())
                        .await;
                }
                let _ = conn.write_all(b"0\r\n\r\n").await;
                continue;
            }
        };
        let status_line = match code {
            200 => "200 OK",
            201 => "201 Created",
            404 => "404 Not Found",
            409 => "409 Conflict",
            500 => "500 Internal Server Error",
            503 => "503 Service Unavailable",
            _ => "599 Other",
        };
        let answer = format!(
            "HTTP/1.1 {status_line}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        if conn.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Quick repeats; a deadline long enough for any answer of a loaded machine.
fn policy(attempts: usize) -> CallPolicy {
    CallPolicy {
        deadline: Duration::from_secs(2),
        attempts,
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    }
}

#[tokio::test]
async fn a_500_a_reset_and_a_request_never_answered_are_each_tried_again() {
    let server = Server::start(&[Act::Status(500), Act::Reset, Act::Hang, Act::Answer]).await;
    let cluster = server.cluster(policy(5));

    let cm = cluster.get_config_map("ns", "cm").await.unwrap().unwrap();

    assert_eq!(cm.data.unwrap()["k"], "v");
    assert_eq!(
        server.requests(),
        vec!["GET /api/v1/namespaces/ns/configmaps/cm"; 4]
    );
    assert_eq!(
        server.seen.lock().unwrap().abandoned,
        1,
        "the client gave up on the request that was never answered"
    );
}

#[tokio::test]
async fn a_lasting_failure_names_the_call_and_how_often_it_was_tried() {
    let server = Server::start(&[Act::Status(500); 3]).await;
    let cluster = server.cluster(policy(3));

    let err = cluster.get_config_map("ns", "cm").await.unwrap_err();

    let ClusterError::Api(message) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        message.split(" (3 attempts, ").next(),
        Some(
            "failed to get ConfigMap ns/cm: GET /api/v1/namespaces/ns/configmaps/cm: HTTP 500 Internal Server Error: \
             etcdserver: leader changed"
        ),
        "{message}"
    );
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn a_create_is_tried_again_and_answers_that_will_not_change_are_not() {
    let server = Server::start(&[Act::Status(503), Act::Answer, Act::Status(404)]).await;
    let cluster = server.cluster(policy(5));
    let cm: ConfigMap = serde_json::from_str(&config_map_json()).unwrap();

    cluster.apply_config_map(&cm).await.unwrap();
    let absent = cluster.get_config_map("ns", "cm").await.unwrap();

    assert_eq!(absent, None, "404 is an answer");
    assert_eq!(
        server.requests(),
        vec![
            "POST /api/v1/namespaces/ns/configmaps",
            "POST /api/v1/namespaces/ns/configmaps",
            "GET /api/v1/namespaces/ns/configmaps/cm",
        ]
    );
}

#[tokio::test]
async fn a_watch_streams_past_the_deadline_and_is_never_repeated() {
    let server = Server::start(&[Act::Watch(Duration::from_millis(1500)), Act::Status(500)]).await;
    let policy = CallPolicy {
        deadline: Duration::from_millis(500),
        ..policy(5)
    };
    let cluster = server.cluster(policy);
    let api: Api<ConfigMap> = Api::namespaced(cluster.client().clone(), "ns");

    let events: Vec<_> = api
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .collect()
        .await;
    let failed = api.watch(&WatchParams::default(), "0").await;

    assert_eq!(events.len(), 2, "both events, 1.5 s apart: {events:?}");
    assert!(events.iter().all(Result::is_ok), "{events:?}");
    assert!(
        failed.is_err(),
        "a watch that fails to start is the watcher's to repeat"
    );
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn an_exec_is_never_repeated() {
    let server = Server::start(&[Act::Status(500), Act::Answer]).await;
    let cluster = server.cluster(policy(5));
    let request = http::Request::get("/api/v1/namespaces/ns/pods/p/exec?command=true&stdout=true")
        .body(Vec::new())
        .unwrap();

    let result = cluster.client().connect(request).await;

    assert!(result.is_err());
    assert_eq!(server.requests(), vec!["GET /api/v1/namespaces/ns/pods/p/exec"]);
}

#[tokio::test]
async fn a_create_that_exists_after_an_unseen_success_is_already_exists() {
    // the first create reached the server, its answer did not reach us
    let server = Server::start(&[Act::Reset, Act::Status(409)]).await;
    let cluster = server.cluster(policy(5));
    let api: Api<ConfigMap> = Api::namespaced(cluster.client().clone(), "ns");
    let cm: ConfigMap = serde_json::from_str(&config_map_json()).unwrap();

    let err = api.create(&PostParams::default(), &cm).await.unwrap_err();

    assert!(super::super::errors::is_conflict(&err), "{err:?}");
    assert_eq!(server.requests().len(), 2);
}
