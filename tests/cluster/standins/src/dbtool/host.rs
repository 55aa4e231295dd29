//! The world a stand-in run of `linstor_fake::tool` lives in: this process's stdout and stderr
//! (plus `./logs/linstor-db.log`), the pod's files under `LINSTOR_STANDIN_ROOT`, etcd as an export
//! file (`LINSTOR_STANDIN_ETCD_DATA`, read-only), the real API server, the fault taken for the
//! run, the recorded durations when paced ([`crate::pace`]), and the release's minute of
//! lingering after the last line (1.25.1 on `k8s`) unless switched off.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use linstor_fake::export::ExportDocument;
use linstor_fake::k8s::K8sApi;
use linstor_fake::tool::cli::Command;
use linstor_fake::tool::{Fault, Host, Wait};

use super::ToolEnv;
use super::k8s::KubeApi;
use crate::pace::Pace;
use crate::rooting::rooted;

/// The pause before each further row of an `import:slow` run (about 5 s more for the
/// `piraeus` dataset's 1,054 rows).
pub const SLOW_ROW: Duration = Duration::from_millis(5);
/// What the stand-in writes to its log file (not stdout) once an import creates rows: the
/// cluster suite waits for it to interrupt an import in the middle.
pub const WRITING_ROWS: &str = "stand-in: import writing rows";

/// One run's world.
pub struct ProcessHost {
    pub env: ToolEnv,
    pub fault: Option<Fault>,
    pub pace: Option<Pace>,
    pub api: Option<KubeApi>,
    log: Mutex<Option<std::fs::File>>,
    /// Rows read (export) or created (import), and when the first one was.
    rows: AtomicUsize,
    since: Mutex<Option<Instant>>,
}

impl ProcessHost {
    pub fn new(env: ToolEnv, fault: Option<Fault>, pace: Option<Pace>, api: Option<KubeApi>) -> Self {
        let dir = env.workdir.join("logs");
        // best effort, as logback's file appender
        let log = std::fs::create_dir_all(&dir).ok().and_then(|_| {
            std::fs::File::options()
                .create(true)
                .append(true)
                .open(dir.join("linstor-db.log"))
                .ok()
        });
        Self {
            env,
            fault,
            pace,
            api,
            log: Mutex::new(log),
            rows: AtomicUsize::new(0),
            since: Mutex::new(None),
        }
    }

    fn local(&self, path: &str) -> PathBuf {
        rooted(self.env.root.as_deref(), path)
    }

    fn log_line(&self, line: &str) {
        if let Some(f) = self.log.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            let _ = writeln!(f, "{line}");
        }
    }

    /// Counts `n` rows; when paced, waits until they took their time at `rate` rows/s.
    async fn rows_at(&self, n: usize, rate: impl Fn(&Pace) -> f64) {
        let done = self.rows.fetch_add(n, Ordering::SeqCst) + n;
        let since = *self
            .since
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert_with(Instant::now);
        crate::pace::rows(self.pace, rate, done, since).await;
    }
}

#[async_trait]
impl Host for ProcessHost {
    async fn out(&self, line: String) {
        self.log_line(&line);
        // as Java's System.out: an output nobody reads any more (an exec connection that went
        // away) does not stop the tool, where println! would panic on EPIPE
        let _ = writeln!(std::io::stdout().lock(), "{line}");
    }

    async fn err(&self, line: String) {
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }

    fn absolute(&self, path: &str) -> String {
        if path.starts_with('/') {
            return path.to_string();
        }
        let cwd = std::env::current_dir().unwrap_or_default();
        cwd.join(path).display().to_string()
    }

    async fn read(&self, path: &str) -> Result<Vec<u8>, String> {
        std::fs::read(self.local(path)).map_err(|e| e.to_string())
    }

    async fn write(&self, path: &str, bytes: Vec<u8>) -> Result<(), String> {
        // an export has read its source when it writes: pace the reading before the file appears
        if self.pace.is_some()
            && let Ok(doc) = serde_json::from_slice::<ExportDocument>(&bytes)
        {
            let rows = doc.tables.iter().map(|t| t.data.len()).sum();
            let from_k8s = doc.exported_from == "k8s";
            self.rows_at(rows, |p| {
                if from_k8s {
                    p.export_k8s_rows_per_s
                } else {
                    p.export_etcd_rows_per_s
                }
            })
            .await;
        }
        std::fs::write(self.local(path), bytes).map_err(|e| e.to_string())
    }

    async fn etcd(&self, _url: &str) -> Option<ExportDocument> {
        let bytes = std::fs::read(self.env.etcd_data.as_ref()?).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    fn k8s(&self) -> Option<&dyn K8sApi> {
        self.api.as_ref().map(|a| a as &dyn K8sApi)
    }

    fn version(&self) -> String {
        self.env.version.clone()
    }

    fn fault(&self, _command: Command) -> Option<Fault> {
        self.fault
    }

    async fn wait(&self, what: Wait) {
        let pace = self.pace;
        match what {
            Wait::Start => crate::pace::sleep(pace, |p| p.start).await,
            Wait::Migrations => crate::pace::sleep(pace, |p| p.fresh_schema).await,
            Wait::EtcdGiveUp => crate::pace::sleep(pace, |_| Duration::from_secs(60)).await,
            Wait::ExitDelay if self.env.linger => {
                let delay = self.release().recorded().k8s_exit_delay_s;
                tokio::time::sleep(Duration::from_secs(u64::from(delay))).await;
            }
            Wait::ExitDelay => {}
            Wait::Export => {
                *self.since.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
            }
            Wait::Row | Wait::SlowRow => {
                if self.rows.load(Ordering::SeqCst) == 0 {
                    self.log_line(WRITING_ROWS);
                }
                if what == Wait::SlowRow {
                    tokio::time::sleep(SLOW_ROW).await;
                }
                self.rows_at(1, |p| p.import_k8s_rows_per_s).await;
            }
        }
    }
}
