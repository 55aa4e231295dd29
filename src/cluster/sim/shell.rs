//! The commands an exec can run in a simulated pod besides `linstor-database`: the few coreutils
//! the engine uses to look into the migration pod (`cat`, `test`, `rm`, `sha256sum`, ...),
//! `sh -c`, and `sh: 1: X: not found` (exit 127) for anything else.

use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::SimCluster;
use super::fs::{self, Entry};
use super::state::key;
use super::{processes, tool};
use crate::cluster::{ClusterError, ClusterResult, ExecLine, Stream};

/// Where an exec'd command prints, paced like a real process, and which process it is. The
/// process only holds a weak handle of the exec's stream: once the exec is gone (cancelled,
/// timed out, its client killed), what it prints goes nowhere, and it runs on.
pub(crate) struct Out {
    pub tx: mpsc::WeakSender<ExecLine>,
    pub interval: Duration,
    pub pid: u64,
}

impl Out {
    async fn send(&self, stream: Stream, line: String) {
        // a caller that stopped listening must not stop the command
        if let Some(tx) = self.tx.upgrade() {
            let _ = tx.send(ExecLine { stream, line }).await;
        }
        if !self.interval.is_zero() {
            tokio::time::sleep(self.interval).await;
        }
    }

    pub async fn out(&self, line: impl Into<String>) {
        self.send(Stream::Stdout, line.into()).await;
    }

    pub async fn err(&self, line: impl Into<String>) {
        self.send(Stream::Stderr, line.into()).await;
    }
}

/// Splits a `sh -c` script into words (single and double quotes, no expansion).
fn words(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    for ch in script.chars() {
        match (quote, ch) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(ch);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

/// A pod's file or a "No such file" message.
fn read(sim: &SimCluster, ns: &str, pod: &str, container: &str, path: &str) -> Result<Vec<u8>, String> {
    let st = sim.lock();
    let p = st.pods.get(&key(ns, pod)).ok_or("No such file or directory")?;
    fs::read(&st, ns, p, container, path)
}

fn stat(sim: &SimCluster, ns: &str, pod: &str, container: &str, path: &str) -> Option<Entry> {
    let st = sim.lock();
    let p = st.pods.get(&key(ns, pod))?;
    fs::stat(&st, ns, p, container, path)
}

/// Runs `argv` in the container; returns the exit code.
pub(crate) async fn run(
    sim: &SimCluster,
    ns: &str,
    pod: &str,
    container: &str,
    argv: &[String],
    out: &Out,
) -> ClusterResult<i32> {
    let Some(first) = argv.first() else {
        return Err(ClusterError::Api("exec: no command given".into()));
    };
    if let Some((pid_file, command)) = crate::cluster::tool_guard::parse(argv) {
        return processes::guard(sim, ns, pod, container, pid_file, command, out).await;
    }
    if let Some((path, content)) = crate::cluster::pod_write::parse(argv) {
        let failure = {
            let mut st = sim.lock();
            let Some(p) = st.pods.get_mut(&key(ns, pod)) else {
                return Ok(1);
            };
            match fs::check_writable(p, container, path) {
                Ok(norm) => {
                    p.files.insert(norm, bytes::Bytes::from(content.to_string()));
                    st.touch();
                    None
                }
                Err(e) => Some(e),
            }
        };
        if let Some(e) = failure {
            out.err(format!("bash: line 1: {path}: {e}")).await;
            return Ok(1);
        }
        return Ok(0);
    }
    let program = first.rsplit('/').next().unwrap_or(first);
    let args = &argv[1..];
    match program {
        _ if first == fs::TOOL => {
            if stat(sim, ns, pod, container, fs::TOOL) != Some(Entry::Executable) {
                out.err(format!("sh: 1: {first}: not found")).await;
                return Ok(127);
            }
            tool::linstor_database(sim, ns, pod, container, args, out).await
        }
        "sh" | "bash" if args.first().map(String::as_str) == Some("-c") => {
            let script = args.get(1).cloned().unwrap_or_default();
            let mut code = 0;
            for part in script.split("&&") {
                let w = words(part);
                if w.is_empty() {
                    continue;
                }
                code = Box::pin(run(sim, ns, pod, container, &w, out)).await?;
                if code != 0 {
                    break;
                }
            }
            Ok(code)
        }
        "true" => Ok(0),
        "false" => Ok(1),
        "cat" => {
            let mut code = 0;
            for path in args {
                match read(sim, ns, pod, container, path) {
                    Ok(bytes) => {
                        for line in String::from_utf8_lossy(&bytes).lines() {
                            out.out(line.to_string()).await;
                        }
                    }
                    Err(e) => {
                        out.err(format!("cat: {path}: {e}")).await;
                        code = 1;
                    }
                }
            }
            Ok(code)
        }
        "sha256sum" => {
            let mut code = 0;
            for path in args {
                match read(sim, ns, pod, container, path) {
                    Ok(bytes) => {
                        out.out(format!("{}  {path}", hex::encode(Sha256::digest(&bytes))))
                            .await
                    }
                    Err(e) => {
                        out.err(format!("sha256sum: {path}: {e}")).await;
                        code = 1;
                    }
                }
            }
            Ok(code)
        }
        "test" | "[" => {
            let args: Vec<&str> = args.iter().map(String::as_str).filter(|a| *a != "]").collect();
            let (negate, args) = match args.split_first() {
                Some((&"!", rest)) => (true, rest.to_vec()),
                _ => (false, args),
            };
            let ok = match args.as_slice() {
                [flag, path] => {
                    let e = stat(sim, ns, pod, container, path);
                    match *flag {
                        "-e" | "-r" => e.is_some(),
                        "-f" => matches!(e, Some(Entry::File(_) | Entry::Executable)),
                        "-s" => {
                            matches!(&e, Some(Entry::File(b)) if !b.is_empty())
                                || e == Some(Entry::Executable)
                        }
                        "-d" => e == Some(Entry::Dir),
                        "-x" => matches!(e, Some(Entry::Executable | Entry::Dir)),
                        "-w" => {
                            let st = sim.lock();
                            st.pods
                                .get(&key(ns, pod))
                                .is_some_and(|p| fs::check_writable(p, container, path).is_ok())
                        }
                        _ => false,
                    }
                }
                [s] => !s.is_empty(),
                _ => false,
            };
            Ok(if ok != negate { 0 } else { 1 })
        }
        "rm" => {
            let force = args.iter().any(|a| a.starts_with('-') && a.contains('f'));
            let mut code = 0;
            for path in args.iter().filter(|a| !a.starts_with('-')) {
                let failure = {
                    let mut st = sim.lock();
                    let Some(p) = st.pods.get_mut(&key(ns, pod)) else {
                        return Ok(1);
                    };
                    match fs::check_writable(p, container, path) {
                        Err(e) => Some(e),
                        Ok(norm) if p.files.remove(&norm).is_some() => {
                            st.touch();
                            None
                        }
                        Ok(_) if force => None,
                        Ok(_) => Some("No such file or directory".to_string()),
                    }
                };
                if let Some(e) = failure {
                    out.err(format!("rm: cannot remove '{path}': {e}")).await;
                    code = 1;
                }
            }
            Ok(code)
        }
        "mkdir" => Ok(0),
        "sleep" => {
            let secs: f64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(f64::INFINITY);
            if secs.is_finite() {
                tokio::time::sleep(Duration::from_secs_f64(secs.max(0.0))).await;
            } else {
                // `sleep infinity`: until the caller cancels
                std::future::pending::<()>().await;
            }
            Ok(0)
        }
        _ => {
            out.err(format!("sh: 1: {first}: not found")).await;
            Ok(127)
        }
    }
}
