//! Steps 5 and 7: run `linstor-database` in the migration pod with its output streamed into the
//! run log. Success is exit 0 **and** the `... finished` line (REFERENCE.md §3: the tool exits 0
//! on bad arguments); the export file itself is validated when it is copied out.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{StepCtx, StepError, StepResult};
use crate::cluster::{ClusterError, Stream, pod};

/// The export file in the pod for a run of this kind.
pub(super) fn backup_file(c: &StepCtx<'_>) -> String {
    format!("{}/{}", c.inner.settings.pod_paths.backup_dir, backup_name(c))
}

pub(super) fn backup_name(c: &StepCtx<'_>) -> &'static str {
    match c.run.kind {
        crate::model::RunKind::Migrate => "backup-before-migration.json",
        _ => "backup.json",
    }
}

/// Runs the tool with `args`; `finished` is the line that proves success.
pub(super) async fn run_tool(c: &StepCtx<'_>, args: &[&str], finished: &str) -> Result<(), StepError> {
    let info = c.controller()?;
    let pod_name = c
        .ctx
        .migration_pod
        .clone()
        .ok_or_else(|| StepError::Failed("no migration pod".into()))?;
    let tool = c.inner.settings.pod_paths.tool.clone();
    let mut command = vec![tool.clone()];
    command.extend(args.iter().map(|s| s.to_string()));
    c.info(&format!("$ {}", command.join(" "))).await?;

    let (tx, mut rx) = tokio::sync::mpsc::channel::<crate::cluster::ExecLine>(1024);
    let saw_finished = Arc::new(AtomicBool::new(false));
    let log = c.log.clone();
    let step = c.step;
    let seen = saw_finished.clone();
    let marker = finished.to_string();
    let writer = tokio::spawn(async move {
        while let Some(line) = rx.recv().await {
            if line.line.contains(marker.as_str()) {
                seen.store(true, Ordering::SeqCst);
            }
            let level = match line.stream {
                Stream::Stdout => "stdout",
                Stream::Stderr => "stderr",
            };
            // a lost log line must not fail the tool run; the database error is logged
            if let Err(e) = log.line(Some(step), level, &line.line).await {
                tracing::error!("failed to store a log line: {e}");
            }
        }
    });
    let exec = c.cluster().exec(
        &info.namespace,
        &pod_name,
        pod::CONTAINER,
        &command,
        tx,
        c.stop.clone(),
    );
    let outcome = match tokio::time::timeout(c.inner.settings.tool_timeout, exec).await {
        Ok(r) => r,
        Err(_) => Err(ClusterError::Timeout {
            what: format!("{tool} {}", args.first().unwrap_or(&"")),
            seconds: c.inner.settings.tool_timeout.as_secs(),
        }),
    };
    // all lines are stored before the verdict
    let _ = writer.await;
    let outcome = outcome?;
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

pub(super) async fn export(c: &mut StepCtx<'_>) -> StepResult {
    let file = backup_file(c);
    let source = c.inner.settings.pod_paths.source_config_dir.clone();
    run_tool(c, &["export-db", "-c", &source, &file], "Export finished").await?;
    Ok(format!("exported to {file}"))
}

pub(super) async fn import(c: &mut StepCtx<'_>) -> StepResult {
    // recorded first: from here on the k8s backend may hold (partial) data
    c.ctx.import_started = true;
    c.save().await?;
    let file = backup_file(c);
    let target = c.inner.settings.pod_paths.target_config_dir.clone();
    let args = ["import-db", "-c", &target, &file];
    let (switch, imported) = tokio::join!(
        super::controller::begin_switch(c),
        run_tool(c, &args, "Import finished")
    );
    imported?;
    switch?;
    Ok("imported into the k8s backend".into())
}
