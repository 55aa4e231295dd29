//! `linstor-database` of each recorded release (recorded: `tests/fixtures/linstor-<version>/tool`):
//! its arguments ([`cli`]), its output (all log lines on stdout in `HH:MM:SS.mmm [main] INFO
//! LINSTOR/linstor-db -- SYSTEM - ...`, the first line `Loading configuration file "..."` when a
//! `linstor.toml` exists), its exit codes (0 also on argument errors, 1 with one Java stack trace on
//! stderr for every runtime failure, [`trace`]), and what it does ([`run`], its database work in
//! `database.rs`): an export writes one line of JSON in the release's shape; an import reads and
//! checks the file before it connects (an export of a newer LINSTOR is refused), then runs
//! [`crate::k8s::import`]. A missing
//! `linstor.toml` falls back without a word to H2 and fails there. An unreachable etcd fails after
//! about 60 s. On the `k8s` backend 1.25.1's process lives on for about 60 s after its last line,
//! finished or failed ([`Wait::ExitDelay`]). The world (files, etcd, the API server, time) comes
//! from a [`Host`]; which release the tool is, from the host's version (the image's).

pub mod cli;
mod database;
pub mod trace;

use async_trait::async_trait;
use linstor_model::export::ExportDocument;

use crate::Release;
use crate::config::{self, DEFAULT_H2_URL, Database};
use crate::k8s::K8sApi;
use cli::{Command, Invocation};
use database::Run;

/// Injected failures (the cluster suite's and the engine tests' faults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A runtime failure after the configuration was read (stack trace, exit 1).
    Exit1,
    /// As if `linstor.toml` did not parse: exit 2.
    Exit2,
    /// The usage trap: usage on stderr, exit 0, nothing done.
    Usage,
    /// Runs until killed, after the connection URL line.
    Hang,
    /// Import: half the rows, then a failure (exit 1); export: half a file, exit 1.
    Partial,
    /// Export: half a file, but `Export finished` and exit 0.
    Corrupt,
    /// Import: a pause before every row after the first ([`Wait::SlowRow`]).
    Slow,
}

/// Time passing in the tool, for the host to pace (or not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// The JVM and Guice starting (3-5 s on the recording machine).
    Start,
    /// The etcd client giving up on an unreachable server (about 60 s).
    EtcdGiveUp,
    /// A cluster's CRDs and schema migrations (1.33.3: about 35-40 s on a fresh cluster).
    Migrations,
    /// One created object (180-340 rows/s).
    Row,
    /// One more row of a `Slow` import.
    SlowRow,
    /// Reading the source of an export (etcd 1-2 s, k8s one LIST per CRD).
    Export,
    /// The process living on after its last line on the `k8s` backend, its work done (1.25.1:
    /// about 60 s, [`linstor_model::versions::Recorded::k8s_exit_delay_s`]).
    ExitDelay,
}

/// The world the tool runs in.
#[async_trait]
pub trait Host: Send + Sync {
    /// One line on stdout.
    async fn out(&self, line: String);
    /// One line on stderr.
    async fn err(&self, line: String);
    /// `HH:MM:SS.mmm` now.
    fn clock(&self) -> String {
        chrono::Utc::now().format("%H:%M:%S%.3f").to_string()
    }
    /// The absolute path of a path given on the command line (the JVM prints those).
    fn absolute(&self, path: &str) -> String;
    /// A file's content; `Err` when it cannot be read.
    async fn read(&self, path: &str) -> Result<Vec<u8>, String>;
    /// Writes a file.
    async fn write(&self, path: &str, bytes: Vec<u8>) -> Result<(), String>;
    /// The data of the etcd cluster `url`; `None` when nothing answers there.
    async fn etcd(&self, url: &str) -> Option<ExportDocument>;
    /// The API server as the tool's client reaches it (`KUBECONFIG` or in-cluster).
    fn k8s(&self) -> Option<&dyn K8sApi>;
    /// The LINSTOR version of the tool (the image's).
    fn version(&self) -> String;
    /// The release that behaves as that version.
    fn release(&self) -> Release {
        Release::modelling(&self.version())
    }
    /// The fault armed for this run of `command`, if any.
    fn fault(&self, command: Command) -> Option<Fault>;
    /// Lets time pass.
    async fn wait(&self, what: Wait);
}

fn info(host: &dyn Host, thread: &str, level: &str, logger: &str, message: &str) -> String {
    format!("{} [{thread}] {level} {logger} -- {message}", host.clock())
}

async fn log(host: &dyn Host, message: &str) {
    let line = info(
        host,
        "main",
        "INFO",
        "LINSTOR/linstor-db",
        &format!("SYSTEM - {message}"),
    );
    host.out(line).await;
}

/// The netty warning every gRPC (etcd) and vert.x (`k8s` of 1.33.3) client start prints.
async fn mac_warning(host: &dyn Host, db: &Database) {
    let thread = match db {
        Database::Etcd(_) => "grpc-default-executor-0",
        Database::K8s if host.release().facts().k8s_client_mac_warning => "vert.x-eventloop-thread-1",
        _ => return,
    };
    let bytes: Vec<String> = uuid::Uuid::new_v4().as_bytes()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let line = info(
        host,
        thread,
        "WARN",
        "io.netty.util.internal.MacAddressUtil",
        &format!(
            "Failed to find a usable hardware address from the network interfaces; using random bytes: {}",
            bytes.join(":")
        ),
    );
    host.out(line).await;
}

/// The error reporter's database in the working directory: the first run there creates it
/// (recorded: 1.25.1's tool/01, `new files in <cwd>/logs: ['error-report.mv.db']`).
const ERROR_REPORT_DB: &str = "logs/error-report.mv.db";

const STARTUP: [&str; 7] = [
    "Log directory set to: './logs'",
    "Attempting dynamic load of extension module \"com.linbit.linstor.modularcrypto.FipsCryptoModule\"",
    "Extension module \"com.linbit.linstor.modularcrypto.FipsCryptoModule\" is not installed",
    "Attempting dynamic load of extension module \"com.linbit.linstor.modularcrypto.JclCryptoModule\"",
    "Dynamic load of extension module \"com.linbit.linstor.modularcrypto.JclCryptoModule\" was successful",
    "Attempting dynamic load of extension module \"com.linbit.linstor.spacetracking.ControllerSpaceTrackingModule\"",
    "Extension module \"com.linbit.linstor.spacetracking.ControllerSpaceTrackingModule\" is not installed",
];

async fn start_up(host: &dyn Host) {
    if host.read(ERROR_REPORT_DB).await.is_ok() {
        log(host, "ErrorReporter DB version 1 found.").await;
    } else {
        log(host, "ErrorReporter DB first time init.").await;
        // best effort, as H2 creating its file
        let _ = host.write(ERROR_REPORT_DB, Vec::new()).await;
    }
    for line in STARTUP {
        log(host, line).await;
    }
}

/// Runs `linstor-database ARGS` (without the program name); returns the exit code.
pub async fn run(args: &[String], host: &dyn Host) -> i32 {
    let (command, config_dir, file) = match cli::parse(args) {
        Invocation::Usage { message, command } => {
            usage(host, message, command).await;
            return 0;
        }
        Invocation::Run {
            command,
            config_dir,
            file,
        } => (command, config_dir, file),
    };
    let fault = host.fault(command);
    if fault == Some(Fault::Usage) {
        usage(host, None, Some(command)).await;
        return 0;
    }
    host.wait(Wait::Start).await;
    let toml_path = format!("{}/linstor.toml", config_dir.trim_end_matches('/'));
    let toml = host.read(&toml_path).await.ok();
    if toml.is_some() {
        let shown = host.absolute(&toml_path);
        host.out(format!("Loading configuration file \"{shown}\"")).await;
    }
    start_up(host).await;
    let url = match toml.map(|t| config::connection_url(&String::from_utf8_lossy(&t))) {
        None => None,
        Some(Ok(url)) => url,
        Some(Err(e)) => {
            host.err(format!(
                "Unable to parse configuration file \"{}\": {e}",
                host.absolute(&toml_path)
            ))
            .await;
            return 2;
        }
    };
    let url = url.unwrap_or_else(|| DEFAULT_H2_URL.to_string());
    let Some(db) = Database::of_url(&url) else {
        host.err(format!("Unsupported database connection URL \"{url}\""))
            .await;
        return 2;
    };
    if fault == Some(Fault::Exit2) {
        host.err(format!(
            "Unable to parse configuration file \"{}\" (injected fault)",
            host.absolute(&toml_path)
        ))
        .await;
        return 2;
    }
    match &db {
        Database::Etcd(u) => {
            log(host, "Initializing the etcd database").await;
            log(host, &format!("etcd connection URL is \"{u}\"")).await;
        }
        Database::K8s => {
            log(host, "Initializing the k8s crd database connector").await;
            log(host, "Kubernetes-CRD connection URL is \"k8s\"").await;
        }
        Database::H2(u) | Database::Sql(u) => {
            log(host, "Initializing the database connection pool").await;
            let suffix = host.release().facts().h2_url_suffix;
            log(host, &format!("SQL database connection URL is \"{u}{suffix}\"")).await;
        }
    }
    if fault == Some(Fault::Hang) {
        std::future::pending::<()>().await;
    }
    let mut run = Run {
        host,
        db: &db,
        fault,
        release: host.release(),
        client_started: false,
    };
    let result = match command {
        Command::Export => run.export(&file).await,
        Command::Import => run.import(&file).await,
    };
    let code = match result {
        Ok(()) => 0,
        Err(failure) => {
            for line in trace::lines(run.release, command, &failure) {
                host.err(line).await;
            }
            1
        }
    };
    // a client that lingers keeps the process alive after its last line, finished or failed
    if run.client_started && run.release.recorded().k8s_exit_delay_s > 0 {
        host.wait(Wait::ExitDelay).await;
    }
    code
}

async fn usage(host: &dyn Host, message: Option<String>, command: Option<Command>) {
    if let Some(m) = message {
        host.err(m).await;
    }
    for line in cli::usage(command).lines() {
        host.err(line.to_string()).await;
    }
}
