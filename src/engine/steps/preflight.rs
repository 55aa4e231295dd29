//! Step 1: read-only checks and the plan. Finds the controller, runs the one list of checks
//! (`preflight_checks`: for a preflight run, those of the migration it precedes), records what a
//! rollback needs (the original URL and replica count) and says what the run will do.

use super::control::etcd_stateful_set;
use super::preflight_checks::{CHECKS, checked_kind, run_check};
use super::{StepCtx, StepError, StepResult};
use crate::cluster::ClusterError;
use crate::cluster::controller::{self, ControllerInfo, ControllerKind};
use crate::db::Originals;
use crate::engine::CheckLevel;
use crate::model::RunKind;

pub(super) async fn run(c: &mut StepCtx<'_>) -> StepResult {
    let kind = c.run.kind;
    let info = match controller::find(c.cluster(), &c.run.controller).await {
        Ok(i) => i,
        Err(ClusterError::NotFound { .. }) => {
            return Err(StepError::Failed(format!(
                "controller {} does not exist",
                c.run.controller
            )));
        }
        Err(e) => return Err(e.into()),
    };
    c.info(&format!(
        "found {} {}/{} (Deployment {}, image {})",
        match info.kind {
            ControllerKind::LinstorController => "LinstorController",
            ControllerKind::Deployment => "Deployment",
        },
        info.namespace,
        info.name,
        info.deployment,
        info.image.as_deref().unwrap_or("unknown")
    ))
    .await?;
    let checked = checked_kind(kind);
    if checked != kind {
        c.info(&format!(
            "checking what a {checked} of this controller needs, with the options of this run"
        ))
        .await?;
    }
    let mut checks = Vec::new();
    for id in CHECKS {
        run_check(id, c, &info, &mut checks).await?;
    }
    for ch in &checks {
        let level = match ch.level {
            CheckLevel::Ok => "info",
            CheckLevel::Warning => "warn",
            CheckLevel::Error => "error",
        };
        c.log
            .line(Some(c.step), level, &format!("{}: {}", ch.name, ch.message))
            .await?;
    }

    // what a rollback restores, in columns of their own (frozen once the downtime begins)
    if !kind.is_read_only() {
        let originals = originals(c, &info).await?;
        c.inner.db.record_originals(&c.run.id, &originals).await?;
    }
    c.ctx
        .started_at_ms
        .get_or_insert(c.run.created_at.timestamp_millis());
    let planned = super::preflight_plan::plan(
        checked,
        &info,
        &c.run.options,
        &c.run.id,
        c.ctx.backend_to_replace,
    );
    c.ctx.plan = planned
        .steps
        .iter()
        .map(|s| format!("{}. {}: {}", s.number, s.title, s.what))
        .collect();
    c.ctx.planned = Some(planned);
    let errors = checks.iter().filter(|c| c.level == CheckLevel::Error).count();
    let warnings = checks.iter().filter(|c| c.level == CheckLevel::Warning).count();
    c.ctx.checks = checks;
    c.ctx.controller = Some(info);
    if errors > 0 {
        let what = if checked != kind {
            format!("; a {checked} would fail its preflight")
        } else {
            String::new()
        };
        return Err(StepError::Failed(format!(
            "{errors} preflight check(s) failed{what}; nothing was changed"
        )));
    }
    Ok(match (kind == RunKind::Preflight, warnings) {
        (true, 0) => "all checks of a migration passed".into(),
        (true, n) => format!("all checks of a migration passed, {n} warning(s)"),
        (false, 0) => "all checks passed".into(),
        (false, n) => format!("all checks passed, {n} warning(s)"),
    })
}

/// The controller as it is now, before the run changes anything.
async fn originals(c: &StepCtx<'_>, info: &ControllerInfo) -> Result<Originals, StepError> {
    let connection_url = match info.kind {
        ControllerKind::LinstorController => c
            .cluster()
            .get_linstor_controller(&info.namespace, &info.name)
            .await?
            .and_then(|cr| cr.spec.db_connection_url)
            .filter(|u| !u.is_empty())
            .or(info.connection_url.clone()),
        ControllerKind::Deployment => info.connection_url.clone(),
    };
    let config_toml = match &info.config_map {
        Some(cm) => c
            .cluster()
            .get_config_map(&info.namespace, cm)
            .await?
            .and_then(|m| m.data)
            .and_then(|d| d.get("linstor.toml").cloned()),
        None => None,
    };
    let etcd = connection_url.as_deref().and_then(etcd_stateful_set);
    let etcd_replicas = match &etcd {
        // a StatefulSet that cannot be read is not scaled and not restored (the permission
        // check says what is missing)
        Some(sts) => match c.cluster().get_stateful_set(&info.namespace, sts).await {
            Ok(s) => s.and_then(|s| s.spec.and_then(|s| s.replicas)),
            Err(e) => {
                c.warn(&format!(
                    "cannot read the etcd StatefulSet {}/{sts}: {e}",
                    info.namespace
                ))
                .await?;
                None
            }
        },
        None => None,
    };
    Ok(Originals {
        connection_url,
        replicas: info.replicas,
        config_toml,
        // only a StatefulSet that exists next to the controller is ever scaled
        etcd_stateful_set: etcd.filter(|_| etcd_replicas.is_some()),
        etcd_replicas,
        target: info.clone(),
    })
}
