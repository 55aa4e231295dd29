//! The tool guard: every `linstor-database` in the migration pod runs under a small bash script
//! (`tool_guard.sh`) that keeps one running at a time. Kubernetes does not stop an exec'd process
//! when its exec connection goes away (a cancel, a timeout, a killed service), so an interrupted
//! export or import keeps running in the container; the guard stops it, and waits until it is
//! gone, before the next command runs. The simulated cluster models the same contract.

/// The script, run as `bash -c SCRIPT tool-guard PIDFILE [COMMAND...]`.
pub const SCRIPT: &str = include_str!("tool_guard.sh");

/// `$0` of the script: how the guard shows up in `ps`.
pub const NAME: &str = "tool-guard";

/// Exit status of the guard when an old tool process does not stop.
pub const EXIT_CANNOT_STOP: i32 = 125;

/// The pid file of the guard in the pod's backup directory (an emptyDir).
pub fn pid_file(backup_dir: &str) -> String {
    format!("{}/.linstor-database.pid", backup_dir.trim_end_matches('/'))
}

/// The exec command that runs `command` under the guard.
pub fn wrap(pid_file: &str, command: &[String]) -> Vec<String> {
    let mut argv = vec![
        "bash".to_string(),
        "-c".to_string(),
        SCRIPT.to_string(),
        NAME.to_string(),
        pid_file.to_string(),
    ];
    argv.extend(command.iter().cloned());
    argv
}

/// The exec command that only stops a tool left running (and waits until it is gone).
pub fn stop(pid_file: &str) -> Vec<String> {
    wrap(pid_file, &[])
}

/// `(pid file, command)` when `argv` is a guard invocation made by [`wrap`] or [`stop`].
pub fn parse(argv: &[String]) -> Option<(&str, &[String])> {
    match argv {
        [bash, c, script, name, pid_file, rest @ ..]
            if bash.rsplit('/').next() == Some("bash") && c == "-c" && script == SCRIPT && name == NAME =>
        {
            Some((pid_file.as_str(), rest))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    //! The real script under the machine's bash, flock and /proc, with a stand-in "tool" that
    //! hangs: the second guard must stop the first tool before it runs its own command.

    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use super::*;

    /// Alive by the kernel's state of the process: neither zombie nor dead (a zombie is gone as
    /// far as the guard is concerned). Not by a non-empty `/proc/<pid>/cmdline`: a process inside
    /// its `execve` (the guard's `exec` of the tool) has none for a moment, which under load is
    /// long enough to be seen.
    fn alive(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            // `pid (comm) state ...`: comm may hold spaces and parentheses, the state follows the
            // last ')'
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .is_some_and(|state| state != "Z" && state != "X")
        })
    }

    fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn spawn(argv: &[String]) -> std::process::Child {
        Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("bash runs")
    }

    #[test]
    fn parse_recognises_only_guard_invocations() {
        let cmd = wrap(
            "/backup/.linstor-database.pid",
            &["linstor-database".into(), "export-db".into()],
        );
        let (pid, rest) = parse(&cmd).expect("a guard invocation");
        assert_eq!(pid, "/backup/.linstor-database.pid");
        assert_eq!(rest, ["linstor-database".to_string(), "export-db".to_string()]);
        assert_eq!(parse(&stop("/b/p")).map(|(_, r)| r.len()), Some(0));
        let other: Vec<String> = ["bash", "-c", "echo hi", NAME, "/p"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(parse(&other).is_none());
    }

    #[test]
    fn a_second_guard_stops_the_first_tool_before_running() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("p.pid").display().to_string();
        let marker = dir.path().join("second-ran").display().to_string();
        // a "tool" that ignores nothing and hangs, like an export stuck on etcd
        let hang: Vec<String> = ["sleep", "300"].iter().map(|s| s.to_string()).collect();
        let mut first = spawn(&wrap(&pid_file, &hang));
        let first_pid = first.id();
        wait_until("the first tool to hold the lock", || {
            std::fs::read_to_string(&pid_file).is_ok_and(|p| p.trim() == first_pid.to_string())
        });
        // the exec connection goes away: nobody reads its output any more, the process lives on
        drop(first.stdout.take());
        drop(first.stderr.take());
        assert!(alive(first_pid));

        let touch: Vec<String> = ["touch", marker.as_str()].iter().map(|s| s.to_string()).collect();
        let second = spawn(&wrap(&pid_file, &touch)).wait_with_output().unwrap();
        let said = String::from_utf8_lossy(&second.stderr);
        assert!(second.status.success(), "{said}");
        assert!(
            said.contains(&format!("stopping linstor-database (pid {first_pid})")),
            "{said}"
        );
        let _ = first.wait();
        assert!(!alive(first_pid), "the first tool is gone");
        assert!(std::path::Path::new(&marker).exists(), "the second command ran");
    }

    #[test]
    fn stop_only_returns_at_once_when_nothing_runs_and_waits_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("p.pid").display().to_string();
        let out = spawn(&stop(&pid_file)).wait_with_output().unwrap();
        assert!(out.status.success());
        assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));

        // a tool that ignores SIGTERM is killed after the grace period... too slow for a unit
        // test; one that honours it is gone at once
        let hang: Vec<String> = ["sleep", "300"].iter().map(|s| s.to_string()).collect();
        let mut first = spawn(&wrap(&pid_file, &hang));
        let first_pid = first.id();
        wait_until("the tool to hold the lock", || {
            std::fs::read_to_string(&pid_file).is_ok_and(|p| p.trim() == first_pid.to_string())
        });
        let out = spawn(&stop(&pid_file)).wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let _ = first.wait();
        assert!(!alive(first_pid));
    }
}
