//! The run page (steps, live log, downtime clock, actions, backups, report, audit trail) and
//! the targets of its action forms, each confirmed first.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::format::{run_state_label, short_id};
use super::report::{ReportView, report_view};
use super::run_view::{ActionButton, LogGroup, RunPageView, log_groups, run_page_view};
use super::upgrade_view::{UpgradeView, plan_next, upgrade_view};
use super::{CsrfForm, Layout, PageError, PageResult, render};
use crate::http::AppState;
use crate::http::api::runs::Action;
use crate::http::auth::{Caller, Flash};
use crate::http::error::ApiError;

/// Log lines rendered into the page: the last ones (the script keeps at most as many, dropping
/// the oldest as new ones stream in; the whole log is in the download).
const PAGE_LOG_LINES: i64 = 5000;

#[derive(Template)]
#[template(path = "run.html")]
struct RunPage {
    layout: Layout,
    run: RunPageView,
    log: Vec<LogGroup>,
    /// The stream continues after this event.
    after: i64,
    /// Earlier log lines the page leaves out.
    log_hidden: i64,
    /// The page's line limit (the script's too).
    log_limit: i64,
    report: ReportView,
    /// The plan of an upgrade-plan run.
    upgrade: Option<UpgradeView>,
    /// A migration that succeeded: the controller whose v2 upgrade can be planned next.
    plan_next: Option<String>,
}

pub async fn run_page(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> PageResult {
    // the log's tail: events after `after` then only repeat what the page shows
    let (lines, total) = state.engine.log_tail(&id, PAGE_LOG_LINES).await?;
    let hidden = total - lines.len() as i64;
    let run = state.engine.run(&id).await?;
    let after = lines.last().map_or(0, |l| l.seq);
    let page = RunPage {
        layout: Layout::new(&state, &caller, format!("Run {}", short_id(&run.id)), "runs"),
        log_hidden: hidden,
        log_limit: PAGE_LOG_LINES,
        log: log_groups(&lines, hidden as usize),
        after,
        report: report_view(&run),
        upgrade: run.report.upgrade_plan.as_ref().map(|p| upgrade_view(&run.id, p)),
        plan_next: plan_next(&run),
        run: run_page_view(&run),
    };
    Ok(render(StatusCode::OK, &page))
}

#[derive(Template)]
#[template(path = "confirm.html")]
struct ConfirmPage {
    layout: Layout,
    run_id: String,
    run_title: String,
    button: ActionButton,
}

/// An action form's fields.
#[derive(Deserialize)]
pub struct ActionForm {
    /// `yes` once the person confirmed (in the dialog, or on the confirmation page).
    confirmed: Option<String>,
}

pub async fn run_action(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, action)): Path<(String, String)>,
    CsrfForm(form): CsrfForm<ActionForm>,
) -> PageResult<Response> {
    let Some(act) = Action::parse(&action) else {
        return Err(PageError(ApiError::NotFound(format!("action {action}"))));
    };
    if form.confirmed.as_deref() != Some("yes") {
        let run = state.engine.run(&id).await?;
        let view = run_page_view(&run);
        let button = ActionButton::for_action(act, &run);
        let page = ConfirmPage {
            layout: Layout::new(&state, &caller, "Confirm", "runs"),
            run_id: run.id.clone(),
            run_title: view.title,
            button,
        };
        return Ok(render(StatusCode::OK, &page));
    }
    let flash = match act.apply(&state, &id, &caller).await {
        Ok(run) => Flash::ok(format!(
            "{} requested by {}; the run is {}.",
            ActionButton::for_action(act, &run).noun,
            caller.actor,
            run_state_label(run.state)
        )),
        Err(e @ (ApiError::Conflict { .. } | ApiError::Unprocessable(_) | ApiError::Cluster(_))) => {
            Flash::error(e.body().error)
        }
        Err(e) => return Err(PageError(e)),
    };
    if let Some(s) = &caller.session {
        state.auth.sessions.set_flash(&s.id, flash);
    }
    Ok(Redirect::to(&format!("/runs/{id}")).into_response())
}
