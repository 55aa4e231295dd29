//! Looking at the cluster and this machine from the outside: readiness, the REST stand-in's
//! view, the `k8s` backend's content, the controller pods' start times, the processes KWOK
//! started for a test.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use linstor_fake::Release;
use linstor_migrator::linstor::export::ExportDocument;
use linstor_standins::backend;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Polls `check` every 100 ms until it is true; panics after `timeout`.
pub async fn wait_for<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The Deployment's replicas are all updated and ready (zero counts as ready at zero).
pub async fn deployment_ready(client: &kube::Client, ns: &str, name: &str) -> bool {
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let Ok(Some(d)) = api.get_opt(name).await else {
        return false;
    };
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let st = d.status.unwrap_or_default();
    st.observed_generation >= d.metadata.generation
        && st.ready_replicas.unwrap_or(0) == want
        && st.updated_replicas.unwrap_or(0) == want
        && st.replicas.unwrap_or(0) == want
}

/// The StatefulSet has all its replicas ready.
pub async fn stateful_set_ready(client: &kube::Client, ns: &str, name: &str) -> bool {
    let api: Api<StatefulSet> = Api::namespaced(client.clone(), ns);
    let Ok(Some(s)) = api.get_opt(name).await else {
        return false;
    };
    let want = s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let st = s.status.unwrap_or_default();
    st.observed_generation >= s.metadata.generation && st.ready_replicas.unwrap_or(0) == want
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// The REST stand-in answers (a controller pod is Ready and loaded its database).
pub async fn rest_up(url: &str) -> bool {
    http()
        .get(format!("{url}/v1/controller/version"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

/// The `version` of `GET /v1/controller/version` of the REST stand-in.
pub async fn rest_version(url: &str) -> String {
    let v: Value = http()
        .get(format!("{url}/v1/controller/version"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["version"].as_str().unwrap_or_default().to_string()
}

/// `GET /standin/state` of the REST stand-in.
pub async fn rest_state(url: &str) -> Value {
    http()
        .get(format!("{url}/standin/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Every exported table of the `k8s` backend compared with the export's rows (as multisets of
/// rows normalised to the schema); returns the differences, empty when equal. The four tables
/// an export leaves out are not compared: a fresh import's schema migrations fill
/// `SEC_ACCESS_TYPES` (recorded: `tests/fixtures/linstor-<version>/k8s`), and no import clears it.
pub async fn k8s_backend_differences(client: &kube::Client, doc: &ExportDocument) -> Vec<String> {
    // read as the LINSTOR of the export reads it
    let release = Release::modelling(&doc.linstor_version);
    let content = backend::read_all(client, release).await.unwrap();
    let mut out = Vec::new();
    for t in release.exported_tables() {
        let canon = |rows: &[serde_json::Map<String, Value>]| {
            let mut v: Vec<String> = rows
                .iter()
                .map(|r| Value::Object(backend::normalize_row(t, r)).to_string())
                .collect();
            v.sort();
            v
        };
        let want = doc
            .tables
            .iter()
            .find(|x| x.name == t.name)
            .map(|x| canon(&x.data))
            .unwrap_or_default();
        let have = content
            .tables
            .get(&t.name)
            .map(|rows| canon(rows))
            .unwrap_or_default();
        if want != have {
            out.push(format!(
                "{}: backup has {} rows, k8s backend {}",
                t.name,
                want.len(),
                have.len()
            ));
        }
    }
    if content.rollback_objects > 0 {
        out.push(format!("{} Rollback objects left", content.rollback_objects));
    }
    out
}

/// When each controller pod appeared and became Ready, as seen by a watch (millisecond
/// timestamps of this machine; the API's own timestamps have one-second resolution).
#[derive(Default, Clone)]
pub struct PodClock {
    /// Pod name -> (appeared, became Ready).
    pub pods: Arc<Mutex<BTreeMap<String, PodTimes>>>,
}

/// When a pod appeared and when it became Ready.
pub type PodTimes = (DateTime<Utc>, Option<DateTime<Utc>>);

impl PodClock {
    pub async fn start(
        client: &kube::Client,
        ns: &str,
        selector: &str,
    ) -> (PodClock, tokio::task::JoinHandle<()>) {
        let clock = PodClock::default();
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        let mut events = watcher::watcher(pods, watcher::Config::default().labels(selector))
            .default_backoff()
            .boxed();
        let c = clock.clone();
        let handle = tokio::spawn(async move {
            while let Some(e) = events.next().await {
                let (Ok(Event::Apply(p)) | Ok(Event::InitApply(p))) = e else {
                    continue;
                };
                let now = Utc::now();
                let ready = p
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
                let mut m = c.pods.lock().unwrap();
                let entry = m
                    .entry(p.metadata.name.clone().unwrap_or_default())
                    .or_insert((now, None));
                if ready && entry.1.is_none() {
                    entry.1 = Some(now);
                }
            }
        });
        (clock, handle)
    }

    /// The first pod that appeared at or after `after`: (appeared, ready).
    pub fn first_after(
        &self,
        after: DateTime<Utc>,
    ) -> Option<(String, DateTime<Utc>, Option<DateTime<Utc>>)> {
        let m = self.pods.lock().unwrap();
        m.iter()
            .filter(|(_, (a, _))| *a >= after)
            .min_by_key(|(_, (a, _))| *a)
            .map(|(n, (a, r))| (n.clone(), *a, *r))
    }
}

/// Pids of this machine's processes whose command line contains every one of `needles`.
pub fn processes_with(needles: &[&str]) -> Vec<i32> {
    let mut out = Vec::new();
    let me = std::process::id() as i32;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        if needles.iter().all(|n| cmdline.contains(n)) {
            out.push(pid);
        }
    }
    out
}

/// SIGKILLs the given pids (processes this test caused: the stand-in tool KWOK ran for it).
pub fn kill(pids: &[i32]) {
    for pid in pids {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
}

pub fn parse_time(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .expect("an RFC 3339 time")
}
