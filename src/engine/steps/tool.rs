//! Running `linstor-database` in the migration pod, always under the tool guard
//! (`cluster::tool_guard`): one tool process at a time, a leftover of an interrupted exec stopped
//! and gone before the next one starts. Its output is streamed into the run log. Success is
//! exit 0 **and** the `... finished` line (REFERENCE.md §3: the tool exits 0 on bad arguments);
//! the export file itself is validated when it is copied out.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{StepCtx, StepError};
use crate::cluster::{ClusterError, ExecLine, Stream, pod, tool_guard};
use crate::model::RunKind;

/// Longest the guard may take to stop a leftover tool (it escalates to SIGKILL after 20 s).
const STOP_PATIENCE: Duration = Duration::from_secs(60);

/// The export file's name for a run of this kind.
pub(super) fn backup_name(kind: RunKind) -> &'static str {
    match kind {
        RunKind::Migrate => "backup-before-migration.json",
        _ => "backup.json",
    }
}

/// The export file in the pod.
pub(super) fn backup_file(c: &StepCtx<'_>) -> String {
    format!(
        "{}/{}",
        c.inner.settings.pod_paths.backup_dir,
        backup_name(c.run.kind)
    )
}

/// Runs the tool with `args` under the guard; `finished` is the line that proves success. On a
/// timeout or a cancel the dropped exec's process is stopped (and waited for) before this
/// returns, unless the service itself is shutting down (the next start's guard does it then).
pub(super) async fn run_tool(c: &StepCtx<'_>, args: &[&str], finished: &str) -> Result<(), StepError> {
    let info = c.controller()?;
    let pod_name = c.migration_pod()?;
    let paths = &c.inner.settings.pod_paths;
    let mut command = vec![paths.tool.clone()];
    command.extend(args.iter().map(|s| s.to_string()));
    c.info(&format!("$ {}", command.join(" "))).await?;
    let guarded = tool_guard::wrap(&tool_guard::pid_file(&paths.backup_dir), &command);

    let (tx, mut rx) = tokio::sync::mpsc::channel::<ExecLine>(1024);
    let saw_finished = Arc::new(AtomicBool::new(false));
    let log = c.log.clone();
    let step = c.step;
    let seen = saw_finished.clone();
    let marker = finished.to_string();
    // Group commit: every line that arrived while the previous batch was being stored goes into
    // the next one (one transaction, one fsync), so a chatty tool does not wait on the disk line
    // by line. No line waits for a batch to fill: a lone line is stored at once. Crash window:
    // the lines of the batch being stored (at most BATCH) are lost if the process dies then.
    let writer = tokio::spawn(async move {
        const BATCH: usize = 512;
        let mut batch: Vec<ExecLine> = Vec::with_capacity(BATCH);
        while let Some(first) = rx.recv().await {
            batch.push(first);
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(line) => batch.push(line),
                    Err(_) => break,
                }
            }
            if batch.iter().any(|l| l.line.contains(marker.as_str())) {
                seen.store(true, Ordering::SeqCst);
            }
            let lines: Vec<(&str, &str)> = batch
                .iter()
                .map(|l| {
                    let level = match l.stream {
                        Stream::Stdout => "stdout",
                        Stream::Stderr => "stderr",
                    };
                    (level, l.line.as_str())
                })
                .collect();
            // a lost log line must not fail the tool run; the database error goes to stderr
            log.say_batch(Some(step), &lines).await;
            batch.clear();
        }
    });
    let exec = c.cluster().exec(
        &info.namespace,
        &pod_name,
        pod::CONTAINER,
        &guarded,
        tx,
        c.stop.clone(),
    );
    let timeout = c.inner.settings.tool_timeout;
    let outcome = match tokio::time::timeout(timeout, exec).await {
        Ok(r) => r,
        Err(_) => Err(ClusterError::Timeout {
            what: format!("linstor-database {}", args.first().unwrap_or(&"")),
            seconds: timeout.as_secs(),
        }),
    };
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            // the dropped exec's process runs on in the pod: it is stopped (and waited for)
            // before anything else runs there
            if !c.inner.shutdown.is_cancelled() {
                stop_tool(c, &pod_name).await;
            }
            drain(writer).await;
            return Err(e.into());
        }
    };
    // all lines are stored before the verdict
    drain(writer).await;
    if outcome.exit_code == tool_guard::EXIT_CANNOT_STOP {
        return Err(StepError::Failed(
            "a linstor-database left running by an interrupted run does not stop; see the log".into(),
        ));
    }
    if outcome.exit_code != 0 {
        return Err(StepError::Failed(format!(
            "linstor-database {} exited with {}",
            args[0], outcome.exit_code
        )));
    }
    if !saw_finished.load(Ordering::SeqCst) {
        return Err(StepError::Failed(format!(
            "linstor-database {} exited 0 without printing {finished:?}: it did not run (bad arguments?)",
            args[0]
        )));
    }
    Ok(())
}

/// Waits for the log writer to store what the exec delivered (it ends when the exec's stream
/// closes; bounded, so that a stream that never closes cannot hold the step).
async fn drain(writer: tokio::task::JoinHandle<()>) {
    let abort = writer.abort_handle();
    if tokio::time::timeout(Duration::from_secs(10), writer)
        .await
        .is_err()
    {
        tracing::warn!("the tool's output stream did not close; its last lines may be missing from the log");
        abort.abort();
    }
}

/// Stops a tool left running in the migration pod and waits until it is gone (best effort: it
/// says what it could not do). Used after a dropped exec and before a rollback.
pub(in crate::engine) async fn stop_tool(c: &StepCtx<'_>, pod_name: &str) {
    let Ok(info) = c.controller() else { return };
    let said = stop_tool_in(
        c.cluster(),
        &info.namespace,
        pod_name,
        &c.inner.settings.pod_paths.backup_dir,
    )
    .await;
    for (level, line) in said {
        c.log.say(Some(c.step), level, &line).await;
    }
}

/// Runs the guard without a command in `pod`: returns what it said, as log lines.
pub(in crate::engine) async fn stop_tool_in(
    cluster: &dyn crate::cluster::Cluster,
    ns: &str,
    pod_name: &str,
    backup_dir: &str,
) -> Vec<(&'static str, String)> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<ExecLine>(64);
    let command = tool_guard::stop(&tool_guard::pid_file(backup_dir));
    let collect = tokio::spawn(async move {
        let mut lines = Vec::new();
        while let Some(l) = rx.recv().await {
            lines.push(("warn", l.line));
        }
        lines
    });
    let exec = cluster.exec(
        ns,
        pod_name,
        pod::CONTAINER,
        &command,
        tx,
        CancellationToken::new(),
    );
    let result = tokio::time::timeout(STOP_PATIENCE, exec).await;
    let mut said = collect.await.unwrap_or_default();
    match result {
        Ok(Ok(o)) if o.exit_code == 0 => {}
        Ok(Ok(o)) => said.push((
            "warn",
            format!(
                "the tool guard could not stop a leftover linstor-database (exit {})",
                o.exit_code
            ),
        )),
        Ok(Err(e)) => said.push((
            "warn",
            format!("could not check for a leftover linstor-database: {e}"),
        )),
        Err(_) => said.push((
            "warn",
            format!("stopping a leftover linstor-database took longer than {STOP_PATIENCE:?}"),
        )),
    }
    said
}
