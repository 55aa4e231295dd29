//! `linstor-database` in a simulated pod: the tool is `linstor_fake::tool` (the one model of
//! LINSTOR's tool, replayed against the recordings); this file is the Kubernetes side it runs
//! in: the pod's files (ConfigMap and Secret volumes, emptyDirs), the etcd cluster its
//! `connection_url` names (reachable while its StatefulSet has a ready pod), the cluster's `k8s`
//! backend with the rights of the pod's ServiceAccount, the faults injected for the step, and
//! the simulated time things take. The tool is the LINSTOR release of the pod's image: 1.25.1's
//! lives on for its recorded minute after its last line on `k8s` (each such linger is recorded
//! in [`super::SimEffects::tool_lingered`], by the simulation's clock).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use linstor_fake::k8s::{ApiError, CRD_GROUP, Denied, GROUP, K8sApi, K8sStore, StoreApi, WithStore};
use linstor_fake::tool::cli::{self, Command, Invocation};
use linstor_fake::tool::{self as fake_tool, Fault as ToolFault, Host, Wait};
use serde_json::Value;

use super::SimCluster;
use super::faults::{Fault, Site};
use super::fs;
use super::shell::Out;
use super::state::key;
use crate::cluster::{ClusterError, ClusterResult};
use crate::linstor::export::ExportDocument;
use crate::linstor::toml::{Backend, LinstorConfig};
use crate::model::StepName;

/// The cluster's `k8s` backend, reached through the simulated cluster's lock.
#[derive(Clone)]
struct SimStore(SimCluster);

impl WithStore for SimStore {
    fn with_store<R>(&self, f: impl FnOnce(&mut K8sStore) -> R) -> R {
        let mut st = self.0.lock();
        let r = f(&mut st.k8s);
        st.touch();
        r
    }
}

/// The API server as the tool's client sees it; counts imports (their first truncation).
struct SimApi {
    inner: StoreApi<SimStore>,
    truncating: AtomicBool,
}

#[async_trait]
impl K8sApi for SimApi {
    fn server(&self) -> String {
        self.inner.server()
    }
    fn user(&self) -> String {
        self.inner.user()
    }
    fn config_user(&self) -> String {
        self.inner.config_user()
    }
    async fn schema_version(&self) -> Result<Option<i64>, ApiError> {
        self.inner.schema_version().await
    }
    async fn apply_crd(&self, crd: &Value) -> Result<(), ApiError> {
        self.inner.apply_crd(crd).await
    }
    async fn put_schema_version(&self, version: i64) -> Result<(), ApiError> {
        self.inner.put_schema_version(version).await
    }
    async fn delete_collection(&self, plural: &str, version: &str) -> Result<(), ApiError> {
        let r = self.inner.delete_collection(plural, version).await;
        if r.is_ok() && !self.truncating.swap(true, Ordering::SeqCst) {
            self.inner.store.0.lock().effects.imports += 1;
        }
        r
    }
    async fn create(&self, plural: &str, version: &str, object: Value) -> Result<(), ApiError> {
        self.inner.create(plural, version, object).await
    }
    async fn list(&self, plural: &str, version: &str) -> Result<Vec<Value>, ApiError> {
        self.inner.list(plural, version).await
    }
}

/// One run of the tool in a pod.
struct PodHost<'a> {
    sim: &'a SimCluster,
    ns: &'a str,
    pod: &'a str,
    container: &'a str,
    out: &'a Out,
    version: String,
    fault: Option<ToolFault>,
    api: SimApi,
    /// The source an export read (`etcd`, `k8s`), counted when the file is written.
    source: std::sync::Mutex<Option<&'static str>>,
    /// Simulated time not slept yet.
    owed: std::sync::Mutex<Duration>,
}

#[async_trait]
impl Host for PodHost<'_> {
    async fn out(&self, line: String) {
        self.out.out(line).await;
    }
    async fn err(&self, line: String) {
        self.out.err(line).await;
    }
    fn absolute(&self, path: &str) -> String {
        // the image sets no WORKDIR: relative paths are relative to /
        fs::normalize(path)
    }
    async fn read(&self, path: &str) -> Result<Vec<u8>, String> {
        let st = self.sim.lock();
        let p = st
            .pods
            .get(&key(self.ns, self.pod))
            .ok_or("No such file or directory")?;
        fs::read(&st, self.ns, p, self.container, path)
    }
    async fn write(&self, path: &str, bytes: Vec<u8>) -> Result<(), String> {
        let mut st = self.sim.lock();
        let p = st
            .pods
            .get_mut(&key(self.ns, self.pod))
            .ok_or("No such file or directory")?;
        let norm = fs::check_writable(p, self.container, path)?;
        p.files.insert(norm, Bytes::from(bytes));
        if let Some(source) = *self.source.lock().unwrap_or_else(|e| e.into_inner()) {
            *st.effects.exports.entry(source.into()).or_insert(0) += 1;
        }
        st.touch();
        Ok(())
    }
    async fn etcd(&self, url: &str) -> Option<ExportDocument> {
        let st = self.sim.lock();
        let e = st.etcd_for(url, self.ns)?;
        let data = st.etcd_running(e).then(|| e.data.clone())?;
        *self.source.lock().unwrap_or_else(|e| e.into_inner()) = Some("etcd");
        Some(data)
    }
    fn k8s(&self) -> Option<&dyn K8sApi> {
        *self.source.lock().unwrap_or_else(|e| e.into_inner()) = Some("k8s");
        Some(&self.api)
    }
    fn version(&self) -> String {
        self.version.clone()
    }
    fn fault(&self, _: Command) -> Option<ToolFault> {
        self.fault
    }
    async fn wait(&self, what: Wait) {
        if what == Wait::ExitDelay {
            // the release's recorded minute, whatever the timing: the service must never wait for it
            let _linger = Linger {
                sim: self.sim,
                since: tokio::time::Instant::now(),
            };
            let delay = self.release().recorded().k8s_exit_delay_s;
            tokio::time::sleep(Duration::from_secs(u64::from(delay))).await;
            return;
        }
        let t = self.sim.timing();
        let d = match what {
            Wait::Export => t.export,
            Wait::Row => t.import_per_row,
            Wait::SlowRow => t.import_per_row * 10,
            Wait::EtcdGiveUp => t.etcd_give_up,
            Wait::Start | Wait::Migrations | Wait::ExitDelay => Duration::ZERO,
        };
        // rows are paced in slices of at least a millisecond: a timer sleeps no shorter, and a
        // sleep per row of a few microseconds would make an import of 1,000 rows take seconds
        let due = {
            let mut owed = self.owed.lock().unwrap_or_else(|e| e.into_inner());
            *owed += d;
            if *owed >= Duration::from_millis(1) {
                std::mem::take(&mut *owed)
            } else {
                Duration::ZERO
            }
        };
        if !due.is_zero() {
            tokio::time::sleep(due).await;
        }
    }
}

/// Records how long a tool lived after its last line, when it ends or is killed.
struct Linger<'a> {
    sim: &'a SimCluster,
    since: tokio::time::Instant,
}

impl Drop for Linger<'_> {
    fn drop(&mut self) {
        let mut st = self.sim.lock();
        st.effects.tool_lingered.push(self.since.elapsed());
        st.touch();
    }
}

/// The rights of `system:serviceaccount:<ns>:<sa>` the tool needs, as the simulated RBAC says.
fn rights(sim: &SimCluster, ns: &str, sa: &str) -> Denied {
    let st = sim.lock();
    let mut denied = Denied::none();
    for verb in ["list", "patch", "create"] {
        if st
            .access
            .service_account_may(ns, sa, CRD_GROUP, "customresourcedefinitions", &[verb])
            .is_err()
        {
            denied = denied.deny(CRD_GROUP, "customresourcedefinitions", verb);
        }
    }
    for verb in ["get", "list", "create", "deletecollection"] {
        if st
            .access
            .service_account_may(ns, sa, GROUP, "*", &[verb])
            .is_err()
        {
            denied = denied.deny(GROUP, "*", verb);
        }
    }
    denied
}

/// Runs `linstor-database ARGS` in the pod.
pub(crate) async fn linstor_database(
    sim: &SimCluster,
    ns: &str,
    pod: &str,
    container: &str,
    args: &[String],
    out: &Out,
) -> ClusterResult<i32> {
    // counted while it runs: two at once in one pod is what the tool guard prevents
    let _running = super::processes::ToolRunning::start(sim, ns, pod);
    let (version, sa, fault) = {
        let mut st = sim.lock();
        let p = st
            .pods
            .get(&key(ns, pod))
            .ok_or_else(|| ClusterError::Api(format!("pod {pod} is gone")))?;
        let spec = p.pod.spec.as_ref();
        let image = spec
            .and_then(|s| fs::container(s, container))
            .and_then(|c| c.image.clone())
            .unwrap_or_default();
        let sa = spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_else(|| "default".into());
        // the run the pod was made for: its scenario's faults fire here
        let run = p
            .pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(crate::cluster::pod::RUN_LABEL))
            .cloned()
            .unwrap_or_default();
        // which step this run belongs to, for the injected faults: the command and its target;
        // the pre-copy export and the schema-only import of step 4 are told apart by their files
        let prepare = |file: &str| {
            ["precopy.json", "schema-only.json"]
                .iter()
                .any(|f| file.ends_with(&format!("/{f}")))
        };
        let step = match cli::parse(args) {
            Invocation::Run { file, .. } if prepare(&file) => Some(StepName::PrepareTarget),
            Invocation::Run {
                command: Command::Import,
                ..
            } => Some(StepName::Import),
            Invocation::Run {
                command: Command::Export,
                config_dir,
                ..
            } => {
                let toml = format!("{}/linstor.toml", config_dir.trim_end_matches('/'));
                let target_k8s = fs::read(&st, ns, p, container, &toml)
                    .ok()
                    .and_then(|b| LinstorConfig::parse(&String::from_utf8_lossy(&b)).ok())
                    .is_some_and(|c| c.backend() == Backend::K8s);
                Some(if target_k8s {
                    StepName::VerifyData
                } else {
                    StepName::Export
                })
            }
            Invocation::Usage { .. } => None,
        };
        let all = [
            Fault::Error,
            Fault::ExitOne,
            Fault::UsageExitZero,
            Fault::Hang,
            Fault::PartialImport,
        ];
        let fault = step.and_then(|s| {
            let possible = if s == StepName::Import {
                &all[..]
            } else {
                &all[..4]
            };
            st.take_fault(s, possible, Site::RunPod(&run))
        });
        let version = fs::linstor_version(&image);
        (version, sa, fault)
    };
    let fault = match fault {
        Some(Fault::Error) => {
            return Err(ClusterError::Api(
                "error dialing backend: EOF (simulated fault)".into(),
            ));
        }
        Some(Fault::ExitOne) => Some(ToolFault::Exit1),
        Some(Fault::UsageExitZero) => Some(ToolFault::Usage),
        Some(Fault::Hang) => Some(ToolFault::Hang),
        Some(Fault::PartialImport) => Some(ToolFault::Partial),
        _ => None,
    };
    let api = SimApi {
        inner: StoreApi {
            store: SimStore(sim.clone()),
            server: "https://10.96.0.1:443".into(),
            user: format!("system:serviceaccount:{ns}:{sa}"),
            config_user: None,
            denied: rights(sim, ns, &sa),
        },
        truncating: AtomicBool::new(false),
    };
    let host = PodHost {
        sim,
        ns,
        pod,
        container,
        out,
        version,
        fault,
        api,
        source: std::sync::Mutex::new(None),
        owed: std::sync::Mutex::new(Duration::ZERO),
    };
    Ok(fake_tool::run(args, &host).await)
}
