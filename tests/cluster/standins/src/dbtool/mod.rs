//! The `linstor-database` stand-in: the tool is `linstor_fake::tool` (arguments, log lines,
//! exit codes, stack traces, the import's requests, faults), run as a real process against a real
//! API server ([`host`], [`k8s`]). etcd is simulated by an export file
//! (`LINSTOR_STANDIN_ETCD_DATA`, never modified). The tool is the LINSTOR release of the image of
//! the pod it runs in: `LINSTOR_STANDIN_IMAGE_FILE` names the file where [`crate::podfs`] wrote
//! that image (`LINSTOR_STANDIN_VERSION` sets the version outright, for the stand-in's own tests).
//! As the real 1.25.1 on `k8s`, it lives on for its recorded minute after its last line, unless
//! `LINSTOR_STANDIN_LINGER=off` (a test that runs it directly and waits for its exit).
//!
//! Exit codes as the real tool: 0 success, **0 on bad arguments** (usage on stderr), 1 on an
//! exception (Java stack trace on stderr), 2 when `linstor.toml` does not parse or names an
//! unknown scheme. 97 and 96 are the stand-in's own: an invalid fault list, and a state directory
//! ([`running`]) it cannot record its start in; 95 an invalid pacing ([`crate::pace`]).

pub mod host;
pub mod k8s;
pub mod running;

use std::path::PathBuf;

use linstor_fake::tool::cli::{self, Command, Invocation};

use crate::fault::{self, Operation};
use crate::pace::{self, Pace};
use crate::rooting;
use host::ProcessHost;

/// Environment variable: the export file that stands for the etcd cluster's data.
pub const ETCD_DATA_ENV: &str = "LINSTOR_STANDIN_ETCD_DATA";
/// Exit code for an invalid fault specification (a test bug, not a tool behaviour).
pub const EXIT_BAD_FAULT: i32 = 97;
/// Exit code when the start cannot be recorded in `LINSTOR_STANDIN_STATE_DIR` (a test bug too).
pub const EXIT_BAD_STATE_DIR: i32 = 96;
/// Exit code for an invalid `LINSTOR_STANDIN_PACE` (a test bug too).
pub const EXIT_BAD_PACE: i32 = 95;
/// Environment variable: the file holding the image of the pod the tool runs in.
pub const IMAGE_FILE_ENV: &str = "LINSTOR_STANDIN_IMAGE_FILE";
/// Environment variable: `off` makes the tool exit at once after its last line.
pub const LINGER_ENV: &str = "LINSTOR_STANDIN_LINGER";

/// What the stand-in takes from its environment.
#[derive(Debug, Clone, Default)]
pub struct ToolEnv {
    /// `LINSTOR_STANDIN_ROOT`: where absolute paths given on the command line live.
    pub root: Option<PathBuf>,
    /// `LINSTOR_STANDIN_ETCD_DATA` (a local path, not rooted).
    pub etcd_data: Option<PathBuf>,
    /// `LINSTOR_STANDIN_VERSION`, else the tag of the image in `LINSTOR_STANDIN_IMAGE_FILE`,
    /// else [`crate::DEFAULT_VERSION`].
    pub version: String,
    /// Whether the tool lives on after its last line where its release does (not
    /// `LINSTOR_STANDIN_LINGER=off`).
    pub linger: bool,
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
            version: var(crate::VERSION_ENV)
                .or_else(|| {
                    let image = std::fs::read_to_string(var(IMAGE_FILE_ENV)?).ok()?;
                    crate::image_version(image.trim())
                })
                .unwrap_or_else(|| crate::DEFAULT_VERSION.into()),
            linger: var(LINGER_ENV).as_deref() != Some("off"),
            fault: var(fault::FAULT_ENV),
            fault_file: var(fault::FAULT_FILE_ENV).map(PathBuf::from),
            workdir: PathBuf::from("."),
            state_dir: var(running::STATE_DIR_ENV).map(PathBuf::from),
            pace: var(pace::PACE_ENV),
        }
    }
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
    let Invocation::Run { command, file, .. } = cli::parse(args) else {
        // the usage trap: the model prints it
        return linstor_fake::tool::run(args, &ProcessHost::new(env.clone(), None, None, None)).await;
    };
    let op = match command {
        Command::Export => Operation::Export,
        Command::Import => Operation::Import,
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
    let release = linstor_fake::Release::modelling(&env.version);
    let pace = match Pace::parse(env.pace.as_deref(), release) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("linstor-database stand-in: {e}");
            return EXIT_BAD_PACE;
        }
    };
    let api = k8s::KubeApi::connect().await;
    linstor_fake::tool::run(args, &ProcessHost::new(env.clone(), fault, pace, api)).await
}
