//! Running `linstor-database` in the migration pod, always under the tool guard
//! (`cluster::tool_guard`): one tool process at a time, a leftover of an interrupted exec stopped
//! and gone before the next one starts. Its output is streamed into the run log. Success is
//! exit 0 **and** the `... finished` line (REFERENCE.md §3: the tool exits 0 on bad arguments),
//! judged by [`tool_output::judge`], which tells a failure in one line (the innermost `Caused by:`
//! of the stack trace); the export file itself is validated when it is copied out, an import by
//! the verification that follows it.
//!
//! Nothing waits for an idle tool: LINSTOR 1.25.1's process lives on for about 60 s after its
//! `... finished` line on the `k8s` backend (its HTTP client's idle threads; recorded in
//! `fixtures/linstor-1.25.1/timing.txt`), with its work complete. A process that has not exited
//! [`LINGER`] after that line is stopped by the guard, and gone, before anything else runs; the
//! line, with no stack trace, then decides. It lingers after a failure too (recorded: tool/17,
//! the failed import over 1.33.3's objects): once the main thread's stack trace
//! ([`FAILURE_HEADER`]) has been followed by [`LINGER`] of silence, the tool is stopped the same
//! way and the run fails on that trace instead of waiting for the tool timeout.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{StepCtx, StepError};
use crate::cluster::{ClusterError, ExecLine, Stream, pod, tool_guard};
use crate::linstor::tool_output::{self, ToolOutput};
use crate::model::RunKind;

/// Longest the guard may take to stop a leftover tool (it escalates to SIGKILL after 20 s).
const STOP_PATIENCE: Duration = Duration::from_secs(60);

/// How long a tool may stay silent and alive after its `... finished` line (or its failure's
/// stack trace) before it is stopped (the tools that do not linger exit within a fraction of a
/// second).
const LINGER: Duration = Duration::from_secs(2);

/// The first line of the stack trace of a failure that ended the tool's main thread; only its
/// idle HTTP client threads may keep the process alive after it.
const FAILURE_HEADER: &str = "Exception in thread \"main\"";

/// What the tool's output has said so far: how many lines, and whether its last word (the
/// `... finished` line or the main thread's stack trace) has come.
#[derive(Debug, Clone, Copy, Default)]
struct Said {
    lines: u64,
    finished: bool,
    failed: bool,
}

/// Resolves once the tool has said its last word and then printed nothing for [`LINGER`].
async fn silent_after_last_word(mut said: tokio::sync::watch::Receiver<Said>) -> Said {
    if said.wait_for(|s| s.finished || s.failed).await.is_err() {
        // the output ended without it: the exec's own end decides
        std::future::pending::<()>().await;
    }
    loop {
        let before = *said.borrow_and_update();
        tokio::time::sleep(LINGER).await;
        let now = *said.borrow();
        if now.lines == before.lines {
            return now;
        }
    }
}

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
    let log = c.log.clone();
    let step = c.step;
    // what the output has said so far (told once its lines are stored)
    let (said_tx, said_rx) = tokio::sync::watch::channel(Said::default());
    let marker = finished.to_string();
    // Group commit: every line that arrived while the previous batch was being stored goes into
    // the next one (one transaction, one fsync), so a chatty tool does not wait on the disk line
    // by line. No line waits for a batch to fill: a lone line is stored at once. Crash window:
    // the lines of the batch being stored (at most BATCH) are lost if the process dies then.
    let writer = tokio::spawn(async move {
        const BATCH: usize = 512;
        let mut output = ToolOutput::default();
        let mut batch: Vec<ExecLine> = Vec::with_capacity(BATCH);
        while let Some(first) = rx.recv().await {
            batch.push(first);
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(line) => batch.push(line),
                    Err(_) => break,
                }
            }
            let lines: Vec<(&str, &str)> = batch
                .iter()
                .map(|l| (stream_level(l.stream), l.line.as_str()))
                .collect();
            // a lost log line must not fail the tool run; the database error goes to stderr
            log.say_batch(Some(step), &lines).await;
            said_tx.send_modify(|s| {
                s.lines += batch.len() as u64;
                for line in &batch {
                    match line.stream {
                        Stream::Stdout if line.line.trim_end().ends_with(&marker) => s.finished = true,
                        Stream::Stderr if line.line.starts_with(FAILURE_HEADER) => s.failed = true,
                        _ => {}
                    }
                }
            });
            for line in batch.drain(..) {
                let kept = match line.stream {
                    Stream::Stdout => &mut output.stdout,
                    Stream::Stderr => &mut output.stderr,
                };
                // kept for the verdict (bounded: the whole output is in the log)
                if kept.len() < KEPT_LINES {
                    kept.push(line.line);
                }
            }
        }
        output
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
    let ended = tokio::time::timeout(timeout, async {
        tokio::select! {
            r = exec => Ok(r),
            said = silent_after_last_word(said_rx) => Err(said),
        }
    })
    .await;
    let outcome = match ended {
        Ok(Ok(r)) => r,
        Ok(Err(said)) => {
            // done, but not gone: the dropped exec's process is stopped, and gone, before
            // anything else runs
            let what = if said.finished {
                format!("printed {finished:?}")
            } else {
                "failed (its stack trace is above)".to_string()
            };
            c.info(&format!(
                "linstor-database {what} and has not exited {} s later (LINSTOR 1.25.1's HTTP client keeps its \
                 process alive for about 60 s on the k8s backend); it has ended its work: stopping it",
                LINGER.as_secs()
            ))
            .await?;
            stop_tool(c, &pod_name).await?;
            let mut output = drain(writer).await;
            output.stopped_after_finish = true;
            output.exit_code = -1;
            return tool_output::judge(args[0], &output).map_err(|f| StepError::Failed(f.to_string()));
        }
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
                // best effort: the step fails anyway, and the next tool run's guard stops it too
                let _ = stop_tool(c, &pod_name).await;
            }
            drain(writer).await;
            return Err(e.into());
        }
    };
    // all lines are stored before the verdict
    let mut output = drain(writer).await;
    if outcome.exit_code == tool_guard::EXIT_CANNOT_STOP {
        return Err(StepError::Failed(
            "a linstor-database left running by an interrupted run does not stop; see the log".into(),
        ));
    }
    output.exit_code = outcome.exit_code;
    debug_assert_eq!(tool_output::finished_marker(args[0]), finished);
    tool_output::judge(args[0], &output).map_err(|f| {
        // the full stack trace is in the log above; the step's error is its one-line reason
        StepError::Failed(f.to_string())
    })
}

/// The log level of a tool's stream.
fn stream_level(stream: Stream) -> &'static str {
    match stream {
        Stream::Stdout => "stdout",
        Stream::Stderr => "stderr",
    }
}

/// Lines of each stream kept for the verdict.
const KEPT_LINES: usize = 5000;

/// Waits for the log writer to store what the exec delivered (it ends when the exec's stream
/// closes; bounded, so that a stream that never closes cannot hold the step); returns what it kept.
async fn drain(writer: tokio::task::JoinHandle<ToolOutput>) -> ToolOutput {
    let abort = writer.abort_handle();
    match tokio::time::timeout(Duration::from_secs(10), writer).await {
        Ok(Ok(output)) => output,
        Ok(Err(_)) => ToolOutput::default(),
        Err(_) => {
            tracing::warn!(
                "the tool's output stream did not close; its last lines may be missing from the log"
            );
            abort.abort();
            ToolOutput::default()
        }
    }
}

/// Stops a tool left running in the migration pod and waits until it is gone; an error says
/// what it could not do (also in the log). Used after a dropped exec, after a tool that lingers,
/// and before a resumed import touches the backend.
pub(in crate::engine) async fn stop_tool(c: &StepCtx<'_>, pod_name: &str) -> Result<(), StepError> {
    let info = c.controller()?;
    let (stopped, said) = stop_tool_in(
        c.cluster(),
        &info.namespace,
        pod_name,
        &c.inner.settings.pod_paths.backup_dir,
    )
    .await;
    let last = said.last().map(|(_, l)| l.clone());
    for (level, line) in said {
        c.log.say(Some(c.step), level, &line).await;
    }
    if stopped {
        Ok(())
    } else {
        Err(StepError::Failed(format!(
            "a linstor-database in the migration pod could not be stopped: {}",
            last.unwrap_or_else(|| "see the log".into())
        )))
    }
}

/// Runs the guard without a command in `pod`: returns whether no tool runs there any more, and
/// what it said, as log lines.
pub(in crate::engine) async fn stop_tool_in(
    cluster: &dyn crate::cluster::Cluster,
    ns: &str,
    pod_name: &str,
    backup_dir: &str,
) -> (bool, Vec<(&'static str, String)>) {
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
    let stopped = matches!(result, Ok(Ok(o)) if o.exit_code == 0);
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
    (stopped, said)
}
