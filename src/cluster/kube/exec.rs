//! Commands in a pod over the exec subresource: output forwarded line by line as it arrives,
//! and files streamed out with `cat` (what `kubectl cp` does with `tar`, minus the archive).
//!
//! kube-rs hands stdout and stderr over through pipes of 1 KiB: a pipe nobody reads stalls the
//! whole stream, status included, so both are always drained concurrently.

use std::pin::pin;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{Api, AttachParams, AttachedProcess};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::errors::{error_chain, map_kube_error, object_ref};
use super::lines::LineSplitter;
use crate::cluster::{ClusterError, ClusterResult, ExecLine, ExecOutcome, Stream};

/// How long the output may take to end after the exit status arrived. kube-rs closes the pipes
/// right after the status, so this only matters when its connection task failed.
const DRAIN_GRACE: Duration = Duration::from_secs(5);
/// How much of `cat`'s stderr an error message keeps.
const MAX_STDERR_BYTES: usize = 4 * 1024;

/// The exit code in an exec status: `Success` is 0; `NonZeroExitCode` carries the code in the
/// `ExitCode` cause; anything else (the command could not start, the container is gone) is an
/// error with the API server's message.
pub(super) fn exit_code(status: Option<&Status>) -> Result<i32, String> {
    let Some(status) = status else {
        return Err("the connection closed without an exit status".into());
    };
    if status.status.as_deref() == Some("Success") {
        return Ok(0);
    }
    let message = status.message.as_deref().unwrap_or_default();
    if status.reason.as_deref() == Some("NonZeroExitCode") {
        let code = status
            .details
            .iter()
            .flat_map(|d| d.causes.iter().flatten())
            .find(|c| c.reason.as_deref() == Some("ExitCode"))
            .and_then(|c| c.message.as_deref()?.trim().parse::<i32>().ok());
        return code.ok_or_else(|| format!("non-zero exit without a readable code: {message}"));
    }
    let what = if message.is_empty() {
        status.reason.as_deref().unwrap_or_default()
    } else {
        message
    };
    Err(if what.is_empty() {
        "the command failed without a message".into()
    } else {
        what.to_string()
    })
}

/// kube-rs buffers 1 KiB per pipe by default; a larger stdout buffer lets a file copy stream
/// at several times the speed (measured against `kubectl cp` in the cluster suite).
const STDOUT_BUFFER: usize = 256 * 1024;

fn attach_params(container: &str) -> AttachParams {
    AttachParams::default()
        .container(container)
        .stdin(false)
        .stdout(true)
        .stderr(true)
        .tty(false)
        .max_stdout_buf_size(STDOUT_BUFFER)
}

async fn start(
    client: &kube::Client,
    ns: &str,
    pod: &str,
    container: &str,
    command: Vec<String>,
) -> ClusterResult<AttachedProcess> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    tracing::debug!(pod = %object_ref(ns, pod), container, ?command, "exec");
    api.exec(pod, command, &attach_params(container))
        .await
        .map_err(|e| map_kube_error("exec in", "Pod", ns, pod, e))
}

/// Reads `pipe` to its end and sends its lines to `lines`; a closed receiver only stops the
/// forwarding, never the reading (the command must not stall).
async fn forward_lines(mut pipe: impl AsyncRead + Unpin, stream: Stream, lines: &mpsc::Sender<ExecLine>) {
    let mut splitter = LineSplitter::default();
    let mut buf = vec![0u8; 8 * 1024];
    loop {
        let n = match pipe.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                tracing::debug!(error = %e, "exec output ended with an error");
                break;
            }
        };
        for line in splitter.push(&buf[..n]) {
            let _ = lines.send(ExecLine { stream, line }).await;
        }
    }
    if let Some(line) = splitter.finish() {
        let _ = lines.send(ExecLine { stream, line }).await;
    }
}

/// Waits for the exit status while `drain` reads the output, then gives the output a moment
/// to end. Returns the status and whether the output was read to its end.
async fn finish(process: &mut AttachedProcess, drain: impl Future<Output = ()>) -> (Option<Status>, bool) {
    let Some(status) = process.take_status() else {
        return (None, false);
    };
    let mut drain = pin!(drain);
    let mut status = pin!(status);
    tokio::select! {
        () = &mut drain => ((&mut status).await, true),
        status = &mut status => {
            let drained = tokio::time::timeout(DRAIN_GRACE, &mut drain).await.is_ok();
            (status, drained)
        }
    }
}

/// Runs `command`; see [`crate::cluster::Cluster::exec`].
pub(super) async fn exec(
    client: &kube::Client,
    ns: &str,
    pod: &str,
    container: &str,
    command: &[String],
    lines: mpsc::Sender<ExecLine>,
    cancel: CancellationToken,
) -> ClusterResult<ExecOutcome> {
    let mut process = tokio::select! {
        biased;
        () = cancel.cancelled() => return Err(ClusterError::Cancelled),
        process = start(client, ns, pod, container, command.to_vec()) => process?,
    };
    let (stdout, stderr) = pipes(&mut process)?;
    let drain = async {
        tokio::join!(
            forward_lines(stdout, Stream::Stdout, &lines),
            forward_lines(stderr, Stream::Stderr, &lines)
        );
    };
    let (status, _) = tokio::select! {
        biased;
        () = cancel.cancelled() => {
            // Dropping the connection ends the exec session; the process in the container
            // may run on (Kubernetes has no signal for it), which is why callers cancel only
            // at safe points.
            process.abort();
            return Err(ClusterError::Cancelled);
        }
        done = finish(&mut process, drain) => done,
    };
    exit_code(status.as_ref())
        .map(|exit_code| ExecOutcome { exit_code })
        .map_err(|m| {
            ClusterError::Api(format!(
                "{} in pod {}: {m}",
                command_name(command),
                object_ref(ns, pod)
            ))
        })
}

/// Streams the file at `path` into `dest`; see [`crate::cluster::Cluster::copy_from_pod`].
pub(super) async fn copy_from_pod(
    client: &kube::Client,
    ns: &str,
    pod: &str,
    container: &str,
    path: &str,
    dest: &mut (dyn AsyncWrite + Unpin + Send),
) -> ClusterResult<u64> {
    let command = vec!["cat".to_string(), "--".to_string(), path.to_string()];
    let mut process = start(client, ns, pod, container, command).await?;
    let (mut stdout, mut stderr) = pipes(&mut process)?;
    let mut copied: std::io::Result<u64> = Ok(0);
    let mut errors = Vec::new();
    let drain = async {
        let read_errors = async {
            // Read all of it (so `cat` never blocks) but keep only the start.
            let mut buf = [0u8; 1024];
            while let Ok(n @ 1..) = stderr.read(&mut buf).await {
                let room = MAX_STDERR_BYTES.saturating_sub(errors.len());
                errors.extend_from_slice(&buf[..n.min(room)]);
            }
        };
        let mut reader = tokio::io::BufReader::with_capacity(STDOUT_BUFFER, &mut stdout);
        let (result, ()) = tokio::join!(tokio::io::copy_buf(&mut reader, dest), read_errors);
        copied = result;
    };
    let (status, drained) = finish(&mut process, drain).await;
    let where_ = format!("{path} in pod {}", object_ref(ns, pod));
    let bytes = copied.map_err(|e| ClusterError::Api(format!("copying {where_}: {}", error_chain(&e))))?;
    let stderr_text = String::from_utf8_lossy(&errors).trim().to_string();
    match exit_code(status.as_ref()) {
        Ok(0) if drained => {}
        Ok(0) => {
            return Err(ClusterError::Api(format!(
                "copying {where_}: the output did not end after cat exited"
            )));
        }
        Ok(code) => {
            return Err(ClusterError::Api(format!(
                "cat {where_} exited with {code}: {stderr_text}"
            )));
        }
        Err(m) => {
            return Err(ClusterError::Api(
                format!("cat {where_}: {m} {stderr_text}").trim_end().to_string(),
            ));
        }
    }
    dest.flush()
        .await
        .map_err(|e| ClusterError::Api(format!("copying {where_}: {}", error_chain(&e))))?;
    Ok(bytes)
}

fn pipes(
    process: &mut AttachedProcess,
) -> ClusterResult<(impl AsyncRead + Unpin + use<>, impl AsyncRead + Unpin + use<>)> {
    match (process.stdout(), process.stderr()) {
        (Some(stdout), Some(stderr)) => Ok((stdout, stderr)),
        _ => Err(ClusterError::Api("exec session without stdout/stderr".into())),
    }
}

/// The program name of a command, for messages (arguments may be long).
fn command_name(command: &[String]) -> &str {
    command
        .first()
        .map(|c| c.rsplit('/').next().unwrap_or(c))
        .unwrap_or("command")
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{StatusCause, StatusDetails};

    use super::*;

    fn status(status: &str, reason: &str, message: &str, exit: Option<&str>) -> Status {
        Status {
            status: Some(status.into()),
            reason: Some(reason.into()),
            message: Some(message.into()),
            details: exit.map(|code| StatusDetails {
                causes: Some(vec![StatusCause {
                    reason: Some("ExitCode".into()),
                    message: Some(code.into()),
                    field: None,
                }]),
                ..StatusDetails::default()
            }),
            ..Status::default()
        }
    }

    fn non_zero(code: &str) -> Status {
        status(
            "Failure",
            "NonZeroExitCode",
            "command terminated with non-zero exit code",
            Some(code),
        )
    }

    #[test]
    fn exit_codes_come_from_the_status() {
        assert_eq!(exit_code(Some(&status("Success", "", "", None))), Ok(0));
        assert_eq!(exit_code(Some(&non_zero("2"))), Ok(2));
        assert!(exit_code(Some(&non_zero("two"))).is_err());
        assert!(exit_code(None).unwrap_err().contains("without an exit status"));
        let failed = status("Failure", "InternalError", "container not found (\"x\")", None);
        assert_eq!(
            exit_code(Some(&failed)),
            Err("container not found (\"x\")".to_string())
        );
    }

    #[test]
    fn command_names_drop_the_path() {
        let cmd = vec![
            "/usr/share/linstor-server/bin/linstor-database".to_string(),
            "export-db".into(),
        ];
        assert_eq!(command_name(&cmd), "linstor-database");
        assert_eq!(command_name(&[]), "command");
    }
}
