//! Follows the controller Deployment's pods in the API server and decides what the REST API
//! answers from. A pod's database is fixed when the pod is first seen: the `linstor.toml` of the
//! controller's ConfigMap at that moment (a running LINSTOR never rereads it), and the data loaded
//! then (the controller loads its database once at start-up), as the LINSTOR release of the pod's
//! image loads it. The Piraeus operator's CONTROLLER node of each controller pod is kept in
//! [`super::registry`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use linstor_fake::Release;
use linstor_fake::config::{self, DEFAULT_H2_URL, Database};
use linstor_migrator::linstor::export::ExportDocument;
use linstor_migrator::linstor::rest::ErrorReport;
use serde::Serialize;
use tokio::sync::watch;

use super::view::{self, DatabaseView};
use crate::backend;

/// What the stand-in needs to know to load a controller's database.
#[derive(Debug, Clone)]
pub struct Sources {
    /// The export file standing for etcd's data.
    pub etcd_data: Option<PathBuf>,
    /// The controller's ConfigMap when its Deployment does not say (mounted at `/etc/linstor`).
    pub config_map: Option<String>,
}

/// What a controller pod loaded at start.
#[derive(Debug, Clone)]
pub enum Loaded {
    /// Still starting (reading its database).
    Starting,
    /// Running on this data.
    Running(Arc<DatabaseView>),
    /// Could not start (a real controller would crash-loop): why.
    Failed(String),
}

/// One controller pod.
#[derive(Debug, Clone)]
pub struct ControllerPod {
    pub name: String,
    pub ready: bool,
    pub started_at_ms: i64,
    /// `[db] connection_url` when it started (LINSTOR's default H2 URL without one).
    pub connection_url: String,
    pub loaded: Loaded,
}

/// Everything the REST server needs: the controller pods and the error reports so far.
#[derive(Debug, Default)]
pub struct ControllerState {
    /// By pod uid.
    pub pods: BTreeMap<String, ControllerPod>,
    pub error_reports: Vec<ErrorReport>,
    /// The Deployment being followed, once found.
    pub deployment: Option<String>,
    /// The operator's CONTROLLER nodes of the controller pods.
    pub controller_nodes: super::registry::Registry,
}

/// What the API can answer from right now.
pub enum Serving {
    Up { pod: String, view: Arc<DatabaseView> },
    Down(String),
}

impl ControllerState {
    /// The Ready, loaded controller pod, or why there is none.
    pub fn serving(&self) -> Serving {
        let mut why = "no controller pod is Ready".to_string();
        for p in self.pods.values().filter(|p| p.ready) {
            match &p.loaded {
                Loaded::Running(view) => {
                    return Serving::Up {
                        pod: p.name.clone(),
                        view: view.clone(),
                    };
                }
                Loaded::Starting => why = format!("controller pod {} is still starting", p.name),
                Loaded::Failed(e) => why = format!("controller pod {} failed to start: {e}", p.name),
            }
        }
        Serving::Down(why)
    }
}

/// A summary for `GET /standin/state`.
#[derive(Debug, Serialize)]
pub struct StateSummary {
    pub deployment: Option<String>,
    pub up: bool,
    pub reason: Option<String>,
    pub pods: Vec<PodSummary>,
    pub error_reports: usize,
}

/// One pod in [`StateSummary`].
#[derive(Debug, Serialize)]
pub struct PodSummary {
    pub name: String,
    pub ready: bool,
    pub connection_url: String,
    pub backend: String,
    pub state: String,
    pub nodes: usize,
    pub resources: usize,
    pub problems: Vec<String>,
}

impl ControllerState {
    pub fn summary(&self) -> StateSummary {
        let (up, reason) = match self.serving() {
            Serving::Up { .. } => (true, None),
            Serving::Down(why) => (false, Some(why)),
        };
        let pods = self
            .pods
            .values()
            .map(|p| {
                let (state, view) = match &p.loaded {
                    Loaded::Starting => ("starting".to_string(), None),
                    Loaded::Running(v) => ("running".to_string(), Some(v)),
                    Loaded::Failed(e) => (format!("failed: {e}"), None),
                };
                PodSummary {
                    name: p.name.clone(),
                    ready: p.ready,
                    connection_url: p.connection_url.clone(),
                    backend: backend_name(&p.connection_url).into(),
                    state,
                    nodes: view.map_or(0, |v| v.nodes.len()),
                    resources: view.map_or(0, |v| v.resources.len()),
                    problems: view.map(|v| v.problems.clone()).unwrap_or_default(),
                }
            })
            .collect();
        StateSummary {
            deployment: self.deployment.clone(),
            up,
            reason,
            pods,
            error_reports: self.error_reports.len(),
        }
    }
}

/// `etcd`, `k8s`, `h2`, `sql` or `unknown`: the kind of database a connection URL names.
pub fn backend_name(url: &str) -> &'static str {
    match Database::of_url(url) {
        Some(Database::Etcd(_)) => "etcd",
        Some(Database::K8s) => "k8s",
        Some(Database::H2(_)) => "h2",
        Some(Database::Sql(_)) => "sql",
        None => "unknown",
    }
}

/// The shared state and a channel that says whether the API is up.
#[derive(Clone)]
pub struct Controller {
    pub state: Arc<RwLock<ControllerState>>,
    pub up: watch::Sender<bool>,
}

impl Default for Controller {
    fn default() -> Self {
        Self {
            state: Arc::default(),
            up: watch::Sender::new(false),
        }
    }
}

impl Controller {
    /// Changes the state and republishes whether the API is up.
    pub fn update(&self, f: impl FnOnce(&mut ControllerState)) {
        let up = {
            let mut st = self.state.write().expect("controller state poisoned");
            f(&mut st);
            matches!(st.serving(), Serving::Up { .. })
        };
        self.up.send_if_modified(|v| std::mem::replace(v, up) != up);
    }
}

/// An error report as the controller writes it.
pub fn error_report(pod: &str, at_ms: i64, message: &str) -> ErrorReport {
    ErrorReport {
        error_time: at_ms,
        node_name: pod.into(),
        filename: format!("ErrorReport-{:08X}-00000-000000.log", (at_ms / 1000) as u32),
        module: "CONTROLLER".into(),
        exception: "LinStorDBRuntimeException".into(),
        exception_message: message.into(),
    }
}

/// Finds the Deployment `name` (or `<name>-controller`, the Deployment of a LinstorController).
async fn find_deployment(client: &kube::Client, ns: &str, name: &str) -> Option<Deployment> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    for candidate in [name.to_string(), format!("{name}-controller")] {
        if let Ok(Some(d)) = api.get_opt(&candidate).await {
            return Some(d);
        }
    }
    None
}

/// `k=v,...` from the Deployment's `matchLabels`.
pub fn label_selector(d: &Deployment) -> Option<String> {
    let labels = d.spec.as_ref()?.selector.match_labels.as_ref()?;
    Some(
        labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// The ConfigMap mounted at `/etc/linstor` in the Deployment's pod template.
pub fn config_map_of(d: &Deployment) -> Option<String> {
    let pod = d.spec.as_ref()?.template.spec.as_ref()?;
    let volume = pod
        .containers
        .iter()
        .flat_map(|c| c.volume_mounts.iter().flatten())
        .find(|m| m.mount_path.trim_end_matches('/') == "/etc/linstor")
        .map(|m| m.name.clone())?;
    pod.volumes
        .iter()
        .flatten()
        .find(|v| v.name == volume)?
        .config_map
        .as_ref()
        .map(|c| c.name.clone())
}

fn is_ready(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_none()
        && p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Follows the controller `ns/name` forever.
pub async fn follow(client: kube::Client, ctl: Controller, ns: String, name: String, sources: Sources) {
    let deployment = loop {
        match find_deployment(&client, &ns, &name).await {
            Some(d) => break d,
            None => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    };
    let dep_name = deployment.metadata.name.clone().unwrap_or_default();
    let selector = label_selector(&deployment).unwrap_or_default();
    let config_map = config_map_of(&deployment).or(sources.config_map.clone());
    println!("following Deployment {ns}/{dep_name} (pods {selector:?}, config {config_map:?})");
    ctl.update(|st| st.deployment = Some(format!("{ns}/{dep_name}")));
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let loader = Loader {
        client: client.clone(),
        ns: ns.clone(),
        config_map,
        sources,
    };
    let mut events = watcher::watcher(pods, watcher::Config::default().labels(&selector))
        .default_backoff()
        .boxed();
    let mut listed: BTreeSet<String> = BTreeSet::new();
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Init) => listed.clear(),
            Ok(Event::InitApply(p)) => {
                listed.insert(p.metadata.uid.clone().unwrap_or_default());
                observe(&ctl, &loader, p).await;
            }
            Ok(Event::InitDone) => ctl.update(|st| st.pods.retain(|uid, _| listed.contains(uid))),
            Ok(Event::Apply(p)) => observe(&ctl, &loader, p).await,
            Ok(Event::Delete(p)) => {
                let uid = p.metadata.uid.unwrap_or_default();
                ctl.update(|st| {
                    st.pods.remove(&uid);
                    st.controller_nodes
                        .gone(&uid, chrono::Utc::now().timestamp_millis());
                });
            }
            Err(e) => eprintln!("watching controller pods: {e}"),
        }
    }
}

async fn observe(ctl: &Controller, loader: &Loader, p: Pod) {
    let uid = p.metadata.uid.clone().unwrap_or_default();
    let name = p.metadata.name.clone().unwrap_or_default();
    let ready = is_ready(&p);
    let known = ctl
        .state
        .read()
        .expect("controller state poisoned")
        .pods
        .contains_key(&uid);
    if known {
        ctl.update(|st| {
            if let Some(pod) = st.pods.get_mut(&uid) {
                pod.ready = ready;
            }
            if ready {
                let now = chrono::Utc::now().timestamp_millis();
                st.controller_nodes.ready(&uid, &name, now);
            }
        });
        return;
    }
    if p.metadata.deletion_timestamp.is_some() {
        return;
    }
    let started_at_ms = chrono::Utc::now().timestamp_millis();
    let connection_url = loader.connection_url().await;
    let version = linstor_version(&p);
    let pod = ControllerPod {
        name: name.clone(),
        ready,
        started_at_ms,
        connection_url: connection_url.clone(),
        loaded: Loaded::Starting,
    };
    ctl.update(|st| {
        st.pods.insert(uid.clone(), pod);
    });
    let loaded = loader.load(&connection_url, &version).await;
    println!(
        "controller pod {name} (LINSTOR {version}) started with {connection_url:?}: {}",
        describe(&loaded)
    );
    ctl.update(|st| {
        match &loaded {
            Loaded::Running(view) => {
                for problem in &view.problems {
                    st.error_reports.push(error_report(&name, started_at_ms, problem));
                }
            }
            Loaded::Failed(why) => st.error_reports.push(error_report(&name, started_at_ms, why)),
            Loaded::Starting => {}
        }
        if let Some(pod) = st.pods.get_mut(&uid) {
            pod.loaded = loaded;
        }
        if ready {
            st.controller_nodes
                .ready(&uid, &name, chrono::Utc::now().timestamp_millis());
        }
    });
}

/// The LINSTOR version of a controller pod: its image's.
fn linstor_version(p: &Pod) -> String {
    p.spec
        .as_ref()
        .and_then(|s| {
            s.containers
                .iter()
                .find(|c| c.name == crate::operator::render::CONTAINER)
                .or(s.containers.first())
        })
        .and_then(|c| c.image.as_deref())
        .and_then(crate::image_version)
        .unwrap_or_else(|| crate::DEFAULT_VERSION.into())
}

fn describe(l: &Loaded) -> String {
    match l {
        Loaded::Starting => "starting".into(),
        Loaded::Running(v) => format!(
            "{} nodes, {} storage pools, {} resources, {} problems",
            v.nodes.len(),
            v.storage_pools.len(),
            v.resources.len(),
            v.problems.len()
        ),
        Loaded::Failed(e) => format!("failed: {e}"),
    }
}

/// Reads a controller's configuration and database.
struct Loader {
    client: kube::Client,
    ns: String,
    config_map: Option<String>,
    sources: Sources,
}

impl Loader {
    /// `[db] connection_url` of the ConfigMap now; `Err`-like values are reported as URLs that
    /// fail to load (`invalid:` prefix).
    async fn connection_url(&self) -> String {
        let Some(name) = &self.config_map else {
            return DEFAULT_H2_URL.into();
        };
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.ns);
        let toml = match api.get_opt(name).await {
            Ok(cm) => cm.and_then(|cm| cm.data?.get("linstor.toml").cloned()),
            Err(e) => return format!("invalid: reading ConfigMap {name}: {e}"),
        };
        match toml.map(|t| config::connection_url(&t)) {
            None | Some(Ok(None)) => DEFAULT_H2_URL.into(),
            Some(Ok(Some(url))) => url.trim().to_string(),
            Some(Err(e)) => format!("invalid: {e}"),
        }
    }

    async fn load(&self, url: &str, version: &str) -> Loaded {
        if let Some(why) = url.strip_prefix("invalid: ") {
            return Loaded::Failed(why.into());
        }
        match Database::of_url(url) {
            Some(Database::Etcd(_)) => self.load_etcd(url, version),
            Some(Database::K8s) => self.load_k8s(version).await,
            Some(Database::H2(_)) => Loaded::Running(Arc::new(DatabaseView {
                version: version.into(),
                ..DatabaseView::default()
            })),
            Some(Database::Sql(_)) => {
                Loaded::Failed(format!("Could not connect to {url}: Connection refused"))
            }
            None => Loaded::Failed(format!("Unsupported database connection URL \"{url}\"")),
        }
    }

    fn load_etcd(&self, url: &str, version: &str) -> Loaded {
        let Some(path) = &self.sources.etcd_data else {
            return Loaded::Failed(format!("etcd at {url} is unreachable (no --etcd-data)"));
        };
        let doc: Result<ExportDocument, String> = std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()));
        match doc {
            Ok(doc) => Loaded::Running(Arc::new(view::derive(version, &view::doc_tables(&doc)))),
            Err(e) => Loaded::Failed(format!("etcd at {url} is unreachable: {e}")),
        }
    }

    async fn load_k8s(&self, version: &str) -> Loaded {
        let release = Release::modelling(version);
        let content = match backend::read_all(&self.client, release).await {
            Ok(c) => c,
            Err(e) => return Loaded::Failed(format!("reading the k8s database: {e}")),
        };
        if content.rollback_objects > 0 {
            return Loaded::Failed(format!(
                "The database could not be restored: {} Rollback objects are left from an interrupted transaction",
                content.rollback_objects
            ));
        }
        let own = release.recorded().k8s_schema_version;
        if let Some(found) = content.schema_version.filter(|v| *v > own) {
            return Loaded::Failed(format!(
                "The database was created with a newer version of Linstor than currently installed \
                 (LinstorVersion {found}, LINSTOR {version} knows {own})"
            ));
        }
        Loaded::Running(Arc::new(view::derive_k8s(version, &content)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, ready: bool, loaded: Loaded) -> ControllerPod {
        ControllerPod {
            name: name.into(),
            ready,
            started_at_ms: 1,
            connection_url: "k8s".into(),
            loaded,
        }
    }

    #[test]
    fn only_a_ready_loaded_pod_serves() {
        let mut st = ControllerState::default();
        assert!(matches!(st.serving(), Serving::Down(w) if w.contains("no controller pod")));
        st.pods
            .insert("a".into(), pod("c-1", false, Loaded::Running(Arc::default())));
        assert!(matches!(st.serving(), Serving::Down(_)));
        st.pods.insert("b".into(), pod("c-2", true, Loaded::Starting));
        assert!(matches!(st.serving(), Serving::Down(w) if w.contains("starting")));
        st.pods
            .insert("c".into(), pod("c-3", true, Loaded::Failed("boom".into())));
        assert!(matches!(st.serving(), Serving::Down(_)));
        st.pods
            .insert("d".into(), pod("c-4", true, Loaded::Running(Arc::default())));
        assert!(matches!(st.serving(), Serving::Up { pod, .. } if pod == "c-4"));
        let summary = st.summary();
        assert!(summary.up);
        assert_eq!(summary.pods.len(), 4);
    }

    #[test]
    fn up_is_published_on_change() {
        let ctl = Controller::default();
        let rx = ctl.up.subscribe();
        ctl.update(|st| {
            st.pods
                .insert("x".into(), pod("c", true, Loaded::Running(Arc::default())));
        });
        assert!(*rx.borrow());
        ctl.update(|st| st.pods.clear());
        assert!(!*rx.borrow());
    }

    #[test]
    fn selector_and_config_map_come_from_the_deployment() {
        let d: Deployment = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "piraeus-op-cs-controller", "namespace": "piraeus"},
            "spec": {
                "selector": {"matchLabels": {"app.kubernetes.io/instance": "piraeus-op-cs",
                                             "app.kubernetes.io/name": "piraeus-controller"}},
                "template": {"spec": {
                    "containers": [{"name": "linstor-controller", "image": "x",
                        "volumeMounts": [{"name": "linstor-conf", "mountPath": "/etc/linstor"}]}],
                    "volumes": [{"name": "linstor-conf", "configMap": {"name": "piraeus-op-cs-controller-config"}}],
                }},
            },
        }))
        .unwrap();
        assert_eq!(
            label_selector(&d).as_deref(),
            Some("app.kubernetes.io/instance=piraeus-op-cs,app.kubernetes.io/name=piraeus-controller")
        );
        assert_eq!(
            config_map_of(&d).as_deref(),
            Some("piraeus-op-cs-controller-config")
        );
    }
}
