//! Demo scenarios of the engine's side: which scenario a new run gets (`--demo-scenario` for runs
//! that name none, where it applies), and arming it on the simulated cluster when a task drives
//! the run (once per process) and ending it when the run has ended, so that what is left of it (a
//! refusal that made the rollback give up) no longer stands in the way of a retry.

use super::{CreateRun, EngineError, EngineResult, Inner};
use crate::cluster::Cluster;
use crate::model::DemoScenario;

/// Checks the request's scenario, or gives it the default one.
pub(super) fn scenario_of(
    req: &mut CreateRun,
    cluster: &dyn Cluster,
    default: Option<DemoScenario>,
) -> EngineResult<()> {
    match req.options.demo_scenario {
        None => {
            req.options.demo_scenario =
                default.filter(|d| *d != DemoScenario::None && d.applies_to(req.kind));
        }
        Some(s) if s != DemoScenario::None && !cluster.is_simulated() => {
            return Err(EngineError::Invalid(format!(
                "options.demo_scenario {s} needs the simulated cluster (serve --demo)"
            )));
        }
        Some(s) if !s.applies_to(req.kind) => {
            return Err(EngineError::Invalid(format!(
                "options.demo_scenario {s} does not apply to a {} run",
                req.kind
            )));
        }
        Some(_) => {}
    }
    Ok(())
}

/// Arms the run's scenario on the simulated cluster (a no-op for a run armed before).
pub(super) async fn arm(inner: &Inner, id: &str) {
    let Ok(Some(run)) = inner.db.run(id).await else {
        return;
    };
    let Some(scenario) = run.options.demo_scenario.filter(|s| *s != DemoScenario::None) else {
        return;
    };
    if run.state.is_final() {
        return;
    }
    if let Err(e) = inner
        .cluster
        .arm_demo_scenario(&run.id, &run.controller, scenario)
    {
        tracing::warn!(run = id, "cannot play demo scenario {scenario}: {e}");
    }
}

/// Ends the run's scenario once no task drives it and it has ended (or gave up its rollback).
pub(super) async fn end_if_final(inner: &Inner, id: &str) {
    if let Ok(Some(run)) = inner.db.run(id).await
        && run.state.is_final()
        && run.options.demo_scenario.is_some()
    {
        inner.cluster.end_demo_scenario(id);
    }
}
