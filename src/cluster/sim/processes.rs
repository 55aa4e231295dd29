//! Processes in simulated pods. An exec starts one; like in Kubernetes it runs on when the exec
//! connection is dropped (a cancel, a timeout, a killed client), until it ends, is killed, or its
//! pod is deleted. The tool guard's contract (`cluster::tool_guard`) is modelled here: one
//! guarded command per pid file at a time, an old one killed and waited for first.

use std::time::Duration;

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::SimCluster;
use super::shell::{self, Out};
use super::state::{Key, SimProcess, State, key};
use crate::cluster::ClusterResult;
use crate::cluster::tool_guard;

/// Exit status of a killed process (128 + SIGKILL).
const KILLED: i32 = 137;
/// How long a guard waits for an old process to go before it gives up (like the script).
const GUARD_PATIENCE: Duration = Duration::from_secs(40);

impl SimCluster {
    /// Starts `argv` as a process of the pod; its exit status arrives on the receiver (a killed
    /// process exits 137). Dropping the receiver does not stop the process.
    pub(crate) fn spawn_process(
        &self,
        ns: &str,
        pod: &str,
        container: &str,
        argv: Vec<String>,
        out: Out,
    ) -> oneshot::Receiver<ClusterResult<i32>> {
        let kill = CancellationToken::new();
        let pid = {
            let mut st = self.lock();
            let pid = 1000 + st.next_seq();
            st.processes.insert(
                pid,
                SimProcess {
                    pod: key(ns, pod),
                    argv: argv.clone(),
                    kill: kill.clone(),
                },
            );
            st.touch();
            pid
        };
        let out = Out { pid, ..out };
        let (sim, ns, pod, container) = (
            self.clone(),
            ns.to_string(),
            pod.to_string(),
            container.to_string(),
        );
        let (tx, rx) = oneshot::channel();
        tokio::spawn(async move {
            let result = tokio::select! {
                biased;
                () = kill.cancelled() => Ok(KILLED),
                r = shell::run(&sim, &ns, &pod, &container, &argv, &out) => r,
            };
            sim.process_ended(pid);
            let _ = tx.send(result);
        });
        rx
    }

    fn process_ended(&self, pid: u64) {
        let mut st = self.lock();
        st.processes.remove(&pid);
        // the guard's lock is a descriptor of the process: it goes with it
        st.guard_locks.retain(|_, holder| *holder != pid);
        st.touch();
    }

    /// `argv` of the processes running in a pod now (tests look for leftovers).
    pub fn pod_processes(&self, namespace: &str, pod: &str) -> Vec<Vec<String>> {
        let st = self.lock();
        st.processes
            .values()
            .filter(|p| p.pod == key(namespace, pod))
            .map(|p| p.argv.clone())
            .collect()
    }
}

/// Kills every process of a pod that is deleted.
pub(crate) fn kill_pod_processes(st: &mut State, pod: &Key) {
    let mut killed = 0;
    for p in st.processes.values().filter(|p| p.pod == *pod) {
        p.kill.cancel();
        killed += 1;
    }
    st.effects.processes_killed += killed;
}

/// The tool guard: takes the pid file's lock (killing and waiting out a live holder), then runs
/// `command` holding it until the process ends; without `command` it only does the first part.
pub(crate) async fn guard(
    sim: &SimCluster,
    ns: &str,
    pod: &str,
    container: &str,
    pid_file: &str,
    command: &[String],
    out: &Out,
) -> ClusterResult<i32> {
    let lock = (key(ns, pod), pid_file.to_string());
    let deadline = tokio::time::Instant::now() + GUARD_PATIENCE;
    let mut stopped = None;
    let mut changes = sim.subscribe();
    loop {
        let holder = {
            let mut st = sim.lock();
            match st.guard_locks.get(&lock).copied() {
                Some(h) if h != out.pid && st.processes.contains_key(&h) => {
                    if stopped.is_none() {
                        if let Some(p) = st.processes.get(&h) {
                            p.kill.cancel();
                        }
                        st.effects.processes_killed += 1;
                    }
                    Some(h)
                }
                _ => {
                    st.guard_locks.insert(lock.clone(), out.pid);
                    st.touch();
                    None
                }
            }
        };
        let Some(h) = holder else { break };
        if stopped.is_none() {
            out.err(format!(
                "{}: stopping linstor-database (pid {h}) left running by an interrupted exec",
                tool_guard::NAME
            ))
            .await;
            stopped = Some(h);
        }
        if tokio::time::Instant::now() >= deadline {
            out.err(format!("{}: pid {h} does not stop; giving up", tool_guard::NAME))
                .await;
            return Ok(tool_guard::EXIT_CANNOT_STOP);
        }
        let _ = tokio::time::timeout_at(deadline, changes.changed()).await;
    }
    if let Some(h) = stopped {
        out.err(format!("{}: pid {h} is gone", tool_guard::NAME)).await;
    }
    if command.is_empty() {
        return Ok(0);
    }
    Box::pin(shell::run(sim, ns, pod, container, command, out)).await
}

/// Counts a running `linstor-database` in its pod for as long as it lives; one that starts while
/// another runs there is recorded as an overlap.
pub(crate) struct ToolRunning {
    sim: SimCluster,
    pod: Key,
}

impl ToolRunning {
    pub(crate) fn start(sim: &SimCluster, ns: &str, pod: &str) -> Self {
        let pod = key(ns, pod);
        let mut st = sim.lock();
        let running = st.tools_running.entry(pod.clone()).or_insert(0);
        *running += 1;
        let overlap = *running > 1;
        st.effects.tool_runs += 1;
        if overlap {
            st.effects.tool_overlaps += 1;
        }
        st.touch();
        Self {
            sim: sim.clone(),
            pod,
        }
    }
}

impl Drop for ToolRunning {
    fn drop(&mut self) {
        let mut st = self.sim.lock();
        if let Some(n) = st.tools_running.get_mut(&self.pod) {
            *n = n.saturating_sub(1);
        }
        st.touch();
    }
}
