//! The one-shot CLI as a person uses it, on the simulated cluster (`--demo`, sped up): Ctrl-C
//! during the downtime cancels and rolls back; Ctrl-C twice prints the controller's state and
//! leaves the run recorded, and the next `migrate` on the same data directory shows that run's
//! outcome and starts nothing new; without `--controller` among several controllers it lists
//! them and stops; `--demo-scenario` plays a failure.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_linstor-migrator");

struct Cli {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

/// The simulated cluster's Piraeus controller.
const CONTROLLER: &str = "piraeus-datastore/piraeus-op-cs";

impl Cli {
    fn migrate(data_dir: &std::path::Path) -> Self {
        Self::start(data_dir, "0.25", &["--controller", CONTROLLER])
    }

    /// `migrate --demo --yes` on `data_dir` at `pace` with `extra` arguments.
    fn start(data_dir: &std::path::Path, pace: &str, extra: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args(["migrate", "--demo", "--yes", "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .env("LINSTOR_MIGRATOR_DEMO_PACE", pace)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let (tx, lines) = mpsc::channel();
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads output until a line contains `needle`.
    fn wait_for(&mut self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.seen.iter().any(|l| l.contains(needle)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => self.seen.push(l),
                Err(_) => panic!("never printed {needle:?}; printed:\n{}", self.seen.join("\n")),
            }
        }
    }

    fn interrupt(&self) {
        let ok = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -INT");
    }

    /// Waits for the exit; returns the exit code and everything printed.
    fn finish(mut self) -> (i32, String) {
        let deadline = Instant::now() + Duration::from_secs(90);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "the CLI did not exit:\n{}",
                self.seen.join("\n")
            );
            while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(50)) {
                self.seen.push(l);
            }
        };
        // the reader threads end with the pipes
        while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.seen.push(l);
        }
        (status.code().unwrap_or(-1), self.seen.join("\n"))
    }
}

#[test]
fn ctrl_c_during_the_downtime_cancels_and_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut cli = Cli::migrate(dir.path());
    cli.wait_for("Stop controller: succeeded");
    cli.interrupt();
    let (code, out) = cli.finish();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("Ctrl-C: cancelling"), "{out}");
    assert!(out.contains("cancelled"), "{out}");
    assert!(out.contains("rolled back"), "the controller was put back: {out}");
}

#[test]
fn ctrl_c_twice_leaves_the_run_recorded_and_the_next_migrate_follows_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut cli = Cli::migrate(dir.path());
    cli.wait_for("Stop controller: succeeded");
    cli.interrupt();
    cli.wait_for("Ctrl-C: cancelling");
    cli.interrupt();
    let (code, out) = cli.finish();
    assert_eq!(code, 130, "{out}");
    assert!(out.contains("is recorded as"), "{out}");
    assert!(out.contains("the controller now:"), "{out}");
    let run_id = out
        .lines()
        .find_map(|l| l.strip_prefix("run ").and_then(|r| r.split_whitespace().next()))
        .expect("the run's id is printed")
        .to_string();

    // a simulated cluster lives in its process: the next one starts fresh (and fast, so that the
    // interrupted run's rollback ends before the command looks), yet the recorded run is followed
    // to its end and shown, and no second run is started
    let (code, out) = Cli::start(dir.path(), "0.01", &["--controller", CONTROLLER]).finish();
    assert!(out.contains(&format!("following run {run_id}")), "{out}");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("run {run_id} cancelled")), "{out}");
    assert!(out.contains("nothing new was started"), "{out}");
    assert!(
        !out.contains("(simulated cluster)"),
        "no new run was announced: {out}"
    );
}

#[test]
fn without_a_controller_among_several_it_lists_them_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = Cli::start(dir.path(), "0.25", &[]).finish();
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("name one with --controller"), "{out}");
    assert!(out.contains(CONTROLLER), "the controllers are listed: {out}");
    assert!(!out.contains("Preflight checks"), "nothing ran: {out}");
}

#[test]
fn a_demo_scenario_plays_its_failure_and_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = Cli::start(
        dir.path(),
        "0.05",
        &["--controller", CONTROLLER, "--demo-scenario", "import-fails"],
    )
    .finish();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("demo scenario: The import fails"), "{out}");
    assert!(out.contains("rolled_back"), "{out}");
}

/// `upgrade-plan` on the simulated cluster (database still on etcd): prints the checks, writes
/// the YAML, the script and the plan, and exits 1 because the database check blocks.
#[test]
fn upgrade_plan_writes_its_files_and_fails_on_a_blocking_check() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("plan");
    let run = Command::new(BIN)
        .args(["upgrade-plan", "--demo", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--output")
        .arg(&out)
        .env("LINSTOR_MIGRATOR_DEMO_PACE", "0.05")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("✘ Database on k8s"), "{stdout}");
    assert!(stderr.contains("blocking check"), "{stderr}");
    let yaml = std::fs::read_to_string(out.join("v2-resources.yaml")).expect("the YAML");
    assert!(yaml.contains("kind: LinstorCluster"), "{yaml}");
    let script = std::fs::read_to_string(out.join("upgrade.sh")).expect("the script");
    assert!(script.contains(&yaml), "the script holds the YAML");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(out.join("upgrade.sh")).unwrap().permissions(),
    );
    assert_eq!(mode & 0o111, 0o111, "the script is executable");
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("upgrade-plan.json")).expect("the plan"))
            .expect("JSON");
    assert_eq!(plan["installation"]["linstor_controller"], "piraeus-op-cs");
}
