//! Exec and copy in the simulated cluster: commands run in `shell.rs`/`tool.rs` against the pod's
//! simulated filesystem; the copy streams in chunks like `kubectl cp` over a tar stream.

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::faults::Fault;
use super::shell::Out;
use super::state::key;
use super::{SimCluster, fs};
use crate::cluster::{ClusterError, ClusterResult, ExecLine, ExecOutcome};
use crate::model::StepName;

/// Size of the writes of `copy_from_pod`.
const CHUNK: usize = 64 * 1024;

impl SimCluster {
    pub(crate) async fn exec_impl(
        &self,
        ns: &str,
        pod: &str,
        container: &str,
        command: &[String],
        lines: mpsc::Sender<ExecLine>,
        cancel: CancellationToken,
    ) -> ClusterResult<ExecOutcome> {
        let interval = {
            let st = self.lock();
            let p = st.pods.get(&key(ns, pod)).ok_or_else(|| ClusterError::NotFound {
                kind: "Pod",
                namespace: ns.into(),
                name: pod.into(),
            })?;
            if p.pod
                .spec
                .as_ref()
                .and_then(|s| fs::container(s, container))
                .is_none()
            {
                return Err(ClusterError::Api(format!(
                    "container {container} is not valid for pod {pod}"
                )));
            }
            if !p.running || p.terminating {
                return Err(ClusterError::Api(format!(
                    "unable to upgrade connection: container not found (\"{container}\")"
                )));
            }
            st.timing.exec_line_interval
        };
        // the exec holds the stream; the process only a weak handle of it
        let out = Out {
            tx: lines.downgrade(),
            interval,
            pid: 0,
        };
        // the command is a process of the pod: a cancelled exec leaves it running
        let done = self.spawn_process(ns, pod, container, command.to_vec(), out);
        let result = tokio::select! {
            biased;
            () = cancel.cancelled() => Err(ClusterError::Cancelled),
            code = done => match code {
                Ok(code) => code.map(|exit_code| ExecOutcome { exit_code }),
                Err(_) => Err(ClusterError::Api(format!("exec in pod {pod}: the stream ended without a status"))),
            },
        };
        // the stream closes with the exec, whatever the process does
        drop(lines);
        result
    }

    pub(crate) async fn copy_from_pod_impl(
        &self,
        ns: &str,
        pod: &str,
        container: &str,
        path: &str,
        dest: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> ClusterResult<u64> {
        let (bytes, fault) = {
            let mut st = self.lock();
            let p = st.pods.get(&key(ns, pod)).ok_or_else(|| ClusterError::NotFound {
                kind: "Pod",
                namespace: ns.into(),
                name: pod.into(),
            })?;
            if !p.running || p.terminating {
                return Err(ClusterError::Api(format!(
                    "unable to upgrade connection: container not found (\"{container}\")"
                )));
            }
            let norm = fs::normalize(path);
            let bytes = match p.files.get(&norm) {
                Some(b) => b.clone(),
                None => Bytes::from(fs::read(&st, ns, p, container, path).map_err(|e| {
                    ClusterError::Api(format!("tar: {}: Cannot stat: {e}", path.trim_start_matches('/')))
                })?),
            };
            // the pre-copy of step 4 is told apart by its file
            let step = if path.ends_with("/precopy.json") {
                StepName::PrepareTarget
            } else {
                StepName::CopyBackup
            };
            let fault = st.faults.take(step, &[Fault::Error]);
            (bytes, fault)
        };
        // an injected fault breaks the stream after half of the bytes
        let limit = if fault.is_some() {
            bytes.len() / 2
        } else {
            bytes.len()
        };
        let mut written = 0u64;
        for chunk in bytes[..limit].chunks(CHUNK) {
            dest.write_all(chunk)
                .await
                .map_err(|e| ClusterError::Api(format!("writing the copy: {e}")))?;
            written += chunk.len() as u64;
            tokio::task::yield_now().await;
        }
        if fault.is_some() {
            let _ = dest.flush().await;
            return Err(ClusterError::Api(format!(
                "error reading from error stream after {written} bytes: read tcp 10.244.0.1:41922->10.244.1.7:10250: \
                 read: connection reset by peer (simulated fault)"
            )));
        }
        dest.flush()
            .await
            .map_err(|e| ClusterError::Api(format!("writing the copy: {e}")))?;
        let mut st = self.lock();
        st.effects.copies += 1;
        st.touch();
        Ok(written)
    }
}
