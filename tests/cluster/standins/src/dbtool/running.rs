//! Which stand-in tool processes of one pod run at the same time. The migration pod must never
//! run two `linstor-database` processes at once (DESIGN.md "Failure, resume, rollback"; the
//! service's tool guard enforces it), so the stand-in records every start in its state directory
//! (`LINSTOR_STANDIN_STATE_DIR`) and names the ones still alive at that moment:
//!
//! - `running/<pid>`: one file per live run (pid, start time in clock ticks, arguments), written
//!   before the scan and removed at a normal exit; a killed run leaves its file behind,
//! - `runs.log`: one JSON line per start ([`Start`]) with `concurrent_with`, the other runs alive
//!   then.
//!
//! A run counts as alive while `/proc/<pid>/stat` shows the recorded start time (so a recycled
//! pid is not mistaken for it) and a state other than zombie or dead. (Not by an empty
//! `/proc/<pid>/cmdline`, which a zombie has, but so has a process in the middle of `execve`.)
//! Every process registers before it scans, so of two that start together at least the later
//! one sees the other.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Environment variable: the directory of `running/` and `runs.log` (unset: nothing recorded).
pub const STATE_DIR_ENV: &str = "LINSTOR_STANDIN_STATE_DIR";
/// The log of starts in the state directory.
pub const RUNS_LOG: &str = "runs.log";
/// The directory of live runs in the state directory.
pub const RUNNING_DIR: &str = "running";

/// A process as the kernel knows it: its pid and its start time (clock ticks after boot, field
/// 22 of `/proc/<pid>/stat`), which together never repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessId {
    pub pid: u32,
    pub start_ticks: u64,
}

impl ProcessId {
    /// This process.
    pub fn current() -> std::io::Result<Self> {
        Self::of(std::process::id())?
            .ok_or_else(|| std::io::Error::other("/proc/self/stat has no start time"))
    }

    /// `pid` as it is now, if it exists.
    pub fn of(pid: u32) -> std::io::Result<Option<Self>> {
        let stat = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(start_ticks(&stat).map(|start_ticks| ProcessId { pid, start_ticks }))
    }

    /// The process still runs: same pid, same start time, and neither a zombie nor dead.
    pub fn alive(&self) -> bool {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) else {
            return false;
        };
        start_ticks(&stat) == Some(self.start_ticks) && !matches!(state(&stat), Some('Z' | 'X' | 'x'))
    }
}

/// Field 3 (`state`) of a `/proc/<pid>/stat` line: `R`, `S`, `D`, `Z` (zombie), `X` (dead)...
pub fn state(stat: &str) -> Option<char> {
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .next()?
        .chars()
        .next()
}

/// Field 22 (`starttime`) of a `/proc/<pid>/stat` line. The command name (field 2) is in
/// parentheses and may itself contain spaces and parentheses: fields are counted after the last `)`.
pub fn start_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // after ")" come field 3 (state) onwards: starttime is the 20th of them
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// One live run, as its file in `running/` says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningTool {
    #[serde(flatten)]
    pub process: ProcessId,
    pub args: Vec<String>,
}

/// One start of the tool: a line of `runs.log`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Start {
    #[serde(flatten)]
    pub process: ProcessId,
    pub args: Vec<String>,
    /// When it started (RFC 3339, this machine's clock).
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// The other runs of this pod that were alive when it started: empty unless the
    /// one-at-a-time rule was broken.
    pub concurrent_with: Vec<RunningTool>,
}

/// This run's file in `running/`; removed when dropped (a killed run's stays and is ignored).
#[derive(Debug)]
pub struct Registration {
    file: PathBuf,
    /// What was recorded for this start.
    pub start: Start,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
    }
}

/// Records the start of this process with `args` in `state_dir`.
pub fn register(state_dir: &Path, args: &[String]) -> std::io::Result<Registration> {
    register_as(state_dir, ProcessId::current()?, args)
}

/// Records the start of process `me` with `args` in `state_dir`: writes `running/<pid>` first,
/// then lists the other live runs and appends the start to `runs.log`.
pub fn register_as(state_dir: &Path, me: ProcessId, args: &[String]) -> std::io::Result<Registration> {
    let running = state_dir.join(RUNNING_DIR);
    std::fs::create_dir_all(&running)?;
    let mine = RunningTool {
        process: me,
        args: args.to_vec(),
    };
    let file = running.join(me.pid.to_string());
    // written whole or not at all: a scan never reads half a file
    let tmp = running.join(format!(".{}.tmp", me.pid));
    std::fs::write(&tmp, serde_json::to_vec(&mine)?)?;
    std::fs::rename(&tmp, &file)?;
    let registration = Registration {
        file,
        start: Start {
            process: me,
            args: args.to_vec(),
            started_at: chrono::Utc::now(),
            concurrent_with: alive_except(&running, me)?,
        },
    };
    let mut line = serde_json::to_vec(&registration.start)?;
    line.push(b'\n');
    // one write of one line with O_APPEND: concurrent starts do not interleave
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(state_dir.join(RUNS_LOG))?
        .write_all(&line)?;
    Ok(registration)
}

/// The runs in `running` that are alive, except `me`, by pid.
fn alive_except(running: &Path, me: ProcessId) -> std::io::Result<Vec<RunningTool>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(running)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue; // temporary files
        };
        if pid == me.pid {
            continue;
        }
        // a file removed by its exiting run in the meantime, or one that does not parse, is no
        // live run
        let Ok(bytes) = std::fs::read(entry.path()) else {
            continue;
        };
        let Ok(other) = serde_json::from_slice::<RunningTool>(&bytes) else {
            continue;
        };
        if other.process.alive() {
            out.push(other);
        }
    }
    out.sort_by_key(|r| r.process.pid);
    Ok(out)
}

/// Every start recorded in `state_dir`, oldest first (lines that do not parse are skipped).
pub fn starts(state_dir: &Path) -> Vec<Start> {
    std::fs::read_to_string(state_dir.join(RUNS_LOG))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use std::process::{Child, Command};

    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    struct Killed(Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// The state letter of `pid` now (`None` once it is gone).
    fn state_of(pid: u32) -> Option<char> {
        state(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
    }

    #[test]
    fn start_time_is_field_22_even_with_parentheses_in_the_name() {
        let stat = "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 \
                    1000 200 18446744073709551615";
        assert_eq!(start_ticks(stat), Some(987654));
        assert_eq!(state(stat), Some('S'));
        assert_eq!(start_ticks("garbage"), None);
        assert_eq!(state("garbage"), None);
        let me = ProcessId::current().unwrap();
        assert_eq!(me.pid, std::process::id());
        assert!(me.alive());
        let recycled = ProcessId {
            start_ticks: me.start_ticks + 1,
            ..me
        };
        assert!(!recycled.alive(), "same pid, other start time: another process");
    }

    #[test]
    fn a_live_run_is_named_and_dead_or_broken_files_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let running = dir.path().join(RUNNING_DIR);
        std::fs::create_dir_all(&running).unwrap();

        // a run that is still alive (an export left hanging by a dropped exec)
        let hanging = Killed(Command::new("sleep").arg("30").spawn().unwrap());
        // alive from the moment it exists, also while its `execve` is under way (its command
        // line reads empty then, as a zombie's does)
        let hanging_id = ProcessId::of(hanging.0.id()).unwrap().unwrap();
        assert!(hanging_id.alive());
        let left = RunningTool {
            process: hanging_id,
            args: args(&["export-db", "/backup/b.json"]),
        };
        std::fs::write(
            running.join(hanging_id.pid.to_string()),
            serde_json::to_vec(&left).unwrap(),
        )
        .unwrap();
        // a run that was killed and left its file, and a zombie: neither is alive
        let mut dead = Command::new("true").spawn().unwrap();
        let dead_id = ProcessId::of(dead.id()).unwrap().unwrap();
        let zombie = Killed(Command::new("true").spawn().unwrap());
        let zombie_id = ProcessId::of(zombie.0.id()).unwrap().unwrap();
        dead.wait().unwrap();
        for id in [dead_id, zombie_id] {
            let r = RunningTool {
                process: id,
                args: args(&["import-db", "f"]),
            };
            std::fs::write(running.join(id.pid.to_string()), serde_json::to_vec(&r).unwrap()).unwrap();
        }
        // wait until the zombie is one: `true` has exited and nobody reaped it. (Not until it
        // stops looking alive: on a loaded machine it may still be inside its `execve` then,
        // and then run, and be alive at the next scan.)
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while state_of(zombie_id.pid) != Some('Z') {
            assert!(std::time::Instant::now() < deadline, "true did not exit");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(!zombie_id.alive());
        // garbage and a temporary file
        std::fs::write(running.join("999999999"), "not json").unwrap();
        std::fs::write(running.join(".123.tmp"), "{").unwrap();

        let me = ProcessId::current().unwrap();
        let reg = register_as(
            dir.path(),
            me,
            &args(&["import-db", "-c", "/t", "/backup/b.json"]),
        )
        .unwrap();
        assert_eq!(reg.start.concurrent_with, vec![left.clone()]);
        assert!(running.join(me.pid.to_string()).exists());

        let logged = starts(dir.path());
        assert_eq!(logged, vec![reg.start.clone()]);
        drop(reg);
        assert!(
            !running.join(me.pid.to_string()).exists(),
            "a normal exit removes its file"
        );

        // the hanging run ends: the next start overlaps nothing
        drop(hanging);
        let reg = register_as(dir.path(), me, &args(&["export-db", "f"])).unwrap();
        assert!(
            reg.start.concurrent_with.is_empty(),
            "{:?}",
            reg.start.concurrent_with
        );
        assert_eq!(starts(dir.path()).len(), 2);
    }
}
