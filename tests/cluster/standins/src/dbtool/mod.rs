//! The `linstor-database` stand-in (REFERENCE.md §3): `export-db` and `import-db` between an
//! export file and the database `linstor.toml` names. etcd is simulated by an export file
//! (`LINSTOR_STANDIN_ETCD_DATA`, never modified); `k8s` is the real API server.
//!
//! Exit codes as the real tool: 0 success, **0 on bad arguments** (usage on stderr), 1 on an
//! exception (Java stack trace on stderr, error report in `./logs`), 2 when `linstor.toml` does
//! not parse or names an unknown scheme. 97 and 96 are the stand-in's own: an invalid fault list,
//! and a state directory ([`running`]) it cannot record its start in; 95 an invalid pacing
//! ([`crate::pace`]).

pub mod cli;
pub mod config;
mod export;
mod import;
pub mod k8s;
pub mod running;

use std::path::{Path, PathBuf};

use crate::fault::{self, FaultKind, Operation};
use crate::javalog::{JavaException, JavaLog};
use crate::pace::{self, Pace};
use crate::rooting::{self, rooted};
use cli::{Invocation, Subcommand};
use config::Database;

/// Environment variable: the export file that stands for the etcd cluster's data.
pub const ETCD_DATA_ENV: &str = "LINSTOR_STANDIN_ETCD_DATA";
/// Exit code for an invalid fault specification (a test bug, not a tool behaviour).
pub const EXIT_BAD_FAULT: i32 = 97;
/// Exit code when the start cannot be recorded in `LINSTOR_STANDIN_STATE_DIR` (a test bug too).
pub const EXIT_BAD_STATE_DIR: i32 = 96;
/// Exit code for an invalid `LINSTOR_STANDIN_PACE` (a test bug too).
pub const EXIT_BAD_PACE: i32 = 95;

/// What the stand-in takes from its environment.
#[derive(Debug, Clone, Default)]
pub struct ToolEnv {
    /// `LINSTOR_STANDIN_ROOT`: where absolute paths given on the command line live.
    pub root: Option<PathBuf>,
    /// `LINSTOR_STANDIN_ETCD_DATA` (a local path, not rooted).
    pub etcd_data: Option<PathBuf>,
    /// `LINSTOR_STANDIN_VERSION`, default 1.33.3.
    pub version: String,
    /// `LINSTOR_STANDIN_FAULT`.
    pub fault: Option<String>,
    /// `LINSTOR_STANDIN_FAULT_FILE` (a local path, not rooted).
    pub fault_file: Option<PathBuf>,
    /// Where `./logs` is (the working directory).
    pub workdir: PathBuf,
    /// `LINSTOR_STANDIN_STATE_DIR` (a local path, not rooted): where starts and live runs are
    /// recorded ([`running`]); unset: not recorded.
    pub state_dir: Option<PathBuf>,
    /// `LINSTOR_STANDIN_PACE` as given ([`crate::pace`]).
    pub pace: Option<String>,
}

impl ToolEnv {
    /// Reads the process environment.
    pub fn from_process() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Self {
            root: rooting::root_from_env(),
            etcd_data: var(ETCD_DATA_ENV).map(PathBuf::from),
            version: var(crate::VERSION_ENV).unwrap_or_else(|| crate::DEFAULT_VERSION.into()),
            fault: var(fault::FAULT_ENV),
            fault_file: var(fault::FAULT_FILE_ENV).map(PathBuf::from),
            workdir: PathBuf::from("."),
            state_dir: var(running::STATE_DIR_ENV).map(PathBuf::from),
            pace: var(pace::PACE_ENV),
        }
    }
}

/// One run of a subcommand, handed to the export and import code.
pub(crate) struct Job<'a> {
    pub env: &'a ToolEnv,
    pub log: &'a mut JavaLog,
    pub database: &'a Database,
    /// The export file as given (for messages) and where it is on this machine.
    pub file_shown: &'a str,
    pub file: PathBuf,
    pub fault: Option<FaultKind>,
    /// The real tool's durations, when asked for.
    pub pace: Option<Pace>,
}

/// Runs the tool with `args` (without the program name); returns the exit code. With a state
/// directory the run is recorded there from its first moment to its end ([`running`]).
pub async fn run(args: &[String], env: &ToolEnv) -> i32 {
    let _registration = match &env.state_dir {
        Some(dir) => match running::register(dir, args) {
            Ok(r) => Some(r),
            Err(e) => {
                eprintln!(
                    "linstor-database stand-in: cannot record this run in {}: {e}",
                    dir.display()
                );
                return EXIT_BAD_STATE_DIR;
            }
        },
        None => None,
    };
    run_registered(args, env).await
}

async fn run_registered(args: &[String], env: &ToolEnv) -> i32 {
    let (command, config_dir, file) = match cli::parse(args) {
        Invocation::Help { command } => {
            print!("{}", cli::usage_text(command));
            return 0;
        }
        Invocation::Version => {
            println!("linstor-database {} (stand-in)", env.version);
            return 0;
        }
        Invocation::Usage { error, command } => {
            if let Some(e) = error {
                eprintln!("{e}");
            }
            eprint!("{}", cli::usage_text(command));
            return 0;
        }
        Invocation::Run {
            command,
            config_dir,
            file,
        } => (command, config_dir, file),
    };
    let op = match command {
        Subcommand::ExportDb => Operation::Export,
        Subcommand::ImportDb => Operation::Import,
    };
    // the pre-copy export and the schema-only import of the service's step 4 are preparation:
    // the suite's faults aim at the runs of the downtime
    let preparation = ["precopy.json", "schema-only.json"]
        .iter()
        .any(|n| std::path::Path::new(&file).file_name() == Some(std::ffi::OsStr::new(n)));
    let taken = if preparation {
        Ok(None)
    } else {
        fault::take(op, env.fault.as_deref(), env.fault_file.as_deref())
    };
    let fault = match taken {
        Ok(f) => f,
        Err(e) => {
            eprintln!("linstor-database stand-in: invalid fault: {e}");
            return EXIT_BAD_FAULT;
        }
    };
    let pace = match Pace::parse(env.pace.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("linstor-database stand-in: {e}");
            return EXIT_BAD_PACE;
        }
    };
    if fault == Some(FaultKind::Usage) {
        eprint!("{}", cli::usage_text(None));
        return 0;
    }
    let mut log = match JavaLog::open("linstor-db", &env.workdir.join("logs")) {
        Ok(log) => log,
        Err(e) => {
            let ex = JavaException::new(
                "java.nio.file.FileSystemException",
                format!("./logs: {e}"),
                &["sun.nio.fs.UnixException.translateToIOException(UnixException.java:100)"],
            );
            eprint!("{}", ex.stack_trace(command.class()));
            return 1;
        }
    };
    // the JVM starts before anything touches a database
    pace::sleep(pace, |p| p.start).await;
    match run_logged(command, &config_dir, &file, env, &mut log, fault, pace).await {
        Ok(code) => code,
        Err(ex) => {
            log.report(&ex, command.class());
            eprint!("{}", ex.stack_trace(command.class()));
            1
        }
    }
}

async fn run_logged(
    command: Subcommand,
    config_dir: &str,
    file: &str,
    env: &ToolEnv,
    log: &mut JavaLog,
    fault: Option<FaultKind>,
    pace: Option<Pace>,
) -> Result<i32, JavaException> {
    log.info("ErrorReporter DB first time init.");
    log.info("Log directory set to: './logs'");
    let cfg = match config::load(config_dir, &rooted(env.root.as_deref(), config_dir)) {
        Ok(cfg) => cfg,
        Err(message) => {
            log.error(&message);
            eprintln!("{message}");
            return Ok(2);
        }
    };
    if let Some(f) = &cfg.file {
        log.info(&format!("Loading configuration file \"{f}\""));
    }
    if fault == Some(FaultKind::Exit2) {
        let message =
            format!("Unable to parse configuration file \"{config_dir}/linstor.toml\" (injected fault)");
        log.error(&message);
        eprintln!("{message}");
        return Ok(2);
    }
    log.info(&cfg.database.url_line());
    if fault == Some(FaultKind::Exit1) {
        return Err(JavaException::new(
            "com.linbit.linstor.dbdrivers.DatabaseException",
            "Failed to initialize the database connection (injected fault exit1)",
            &["com.linbit.linstor.dbcp.DbInitializer.initialize(DbInitializer.java:88)"],
        ));
    }
    if fault == Some(FaultKind::Hang) {
        log.info("Initializing the database connection");
        hang().await;
    }
    let mut job = Job {
        env,
        log,
        database: &cfg.database,
        file_shown: file,
        file: rooted(env.root.as_deref(), file),
        fault,
        pace,
    };
    match command {
        Subcommand::ExportDb => export::run(&mut job).await?,
        Subcommand::ImportDb => import::run(&mut job).await?,
    }
    Ok(0)
}

async fn hang() -> ! {
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
    }
}

/// The exception a connection to a database the stand-in cannot reach throws.
pub(crate) fn unreachable(database: &Database, why: &str) -> JavaException {
    match database {
        Database::Etcd { url } => JavaException::new(
            "com.linbit.linstor.dbdrivers.DatabaseException",
            format!("io.etcd.jetcd.common.exception.EtcdException: UNAVAILABLE: io exception ({url}: {why})"),
            &["com.linbit.linstor.dbcp.etcd.DbEtcd.initializeDataSource(DbEtcd.java:160)"],
        ),
        other => JavaException::new(
            "java.sql.SQLNonTransientConnectionException",
            format!("Could not connect to {}: {why}", other.url()),
            &["com.linbit.linstor.dbcp.DbConnectionPool.initializeDataSource(DbConnectionPool.java:212)"],
        ),
    }
}

/// The file error the JVM throws for `shown` (the path as given).
pub(crate) fn file_exception(shown: &str, e: &std::io::Error) -> JavaException {
    let class = match e.kind() {
        std::io::ErrorKind::NotFound => "java.nio.file.NoSuchFileException",
        std::io::ErrorKind::PermissionDenied => "java.nio.file.AccessDeniedException",
        _ => "java.io.IOException",
    };
    JavaException::new(
        class,
        format!("{shown} ({e})"),
        &["sun.nio.fs.UnixException.translateToIOException(UnixException.java:92)"],
    )
}

/// Half of `bytes`, for the partial and corrupt faults.
pub(crate) fn half(bytes: &[u8]) -> &[u8] {
    &bytes[..bytes.len() / 2]
}

/// Writes `bytes` to `path`.
pub(crate) fn write_file(path: &Path, shown: &str, bytes: &[u8]) -> Result<(), JavaException> {
    std::fs::write(path, bytes).map_err(|e| file_exception(shown, &e))
}
