//! The dashboard (controllers, the start form, recent runs), the run history, the backups page
//! and the start-form target.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::format::{bytes, clock, run_state_label, short_id, short_time, timestamp};
use super::{CsrfForm, Layout, PageResult, render};
use crate::cluster::controller::{ControllerInfo, ControllerKind};
use crate::engine::{CheckLevel, CreateRun, RunSummary};
use crate::http::AppState;
use crate::http::auth::{Caller, Flash};
use crate::linstor::toml::Backend;
use crate::model::{DemoScenario, RunKind, RunOptions};

/// A run in a table.
pub struct RunRow {
    pub id: String,
    pub short_id: String,
    pub kind: String,
    pub controller: String,
    pub state: String,
    pub state_label: &'static str,
    pub downtime: String,
    pub started: String,
    pub started_full: String,
    pub by: String,
}

impl From<&RunSummary> for RunRow {
    fn from(r: &RunSummary) -> Self {
        Self {
            id: r.id.clone(),
            short_id: short_id(&r.id),
            kind: r.kind.to_string(),
            controller: r.controller.clone(),
            state: r.state.to_string(),
            state_label: run_state_label(r.state),
            downtime: r.downtime.as_ref().map_or("—".into(), |d| clock(d.seconds)),
            started: short_time(&r.created_at),
            started_full: timestamp(&r.created_at),
            by: r.created_by.clone(),
        }
    }
}

/// A controller in the dashboard table.
pub struct ControllerRow {
    pub reference: String,
    pub managed_by: &'static str,
    pub backend: String,
    pub connection_url: String,
    pub version: String,
    pub replicas: String,
    pub image: String,
    pub problem: Option<String>,
    /// A migration (and its preflight) can pass the checks the dashboard can tell.
    pub migratable: bool,
    /// A backup can pass them.
    pub backupable: bool,
    /// A Piraeus Operator v1 installation: its v2 upgrade can be planned.
    pub plannable: bool,
    /// The actions not offered and why, for the row's hint.
    pub not_offered: Vec<String>,
    pub active_run: Option<RunRow>,
}

/// Why a run of `kind` on `c` would fail its preflight, from the checks that need only the
/// discovered controllers (the preflight's own: `engine::discovery_checks`).
fn blocked(c: &ControllerInfo, all: &[ControllerInfo], kind: RunKind) -> Option<String> {
    // the start form offers the option that lets a SQL or H2 source through
    let options = RunOptions {
        allow_non_etcd_source: true,
        ..RunOptions::default()
    };
    let errors: Vec<String> = crate::engine::discovery_checks(c, all, kind, &options)
        .into_iter()
        .filter(|ch| ch.level == CheckLevel::Error)
        .map(|ch| ch.message)
        .collect();
    (!errors.is_empty()).then(|| errors.join("; "))
}

fn controller_row(c: &ControllerInfo, all: &[ControllerInfo], runs: &[RunSummary]) -> ControllerRow {
    let reference = c.reference().to_string();
    let migrate = blocked(c, all, RunKind::Migrate);
    let backup = blocked(c, all, RunKind::Backup);
    let plannable = c.kind == ControllerKind::LinstorController;
    let mut not_offered = Vec::new();
    match &migrate {
        // a controller on k8s is where a migration ends: nothing to explain but the next step
        Some(_) if c.backend == Backend::K8s => {}
        Some(why) => not_offered.push(format!("Preflight and Migrate: {why}")),
        None => {}
    }
    if let Some(why) = &backup {
        not_offered.push(format!("Backup: {why}"));
    }
    ControllerRow {
        managed_by: match c.kind {
            ControllerKind::LinstorController => "LinstorController",
            ControllerKind::Deployment => "Deployment",
        },
        backend: serde_json::to_value(c.backend)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        connection_url: c.connection_url.clone().unwrap_or_default(),
        version: c.linstor_version.clone().unwrap_or_else(|| "?".into()),
        replicas: format!("{}/{}", c.ready_replicas, c.replicas),
        image: c.image.clone().unwrap_or_default(),
        problem: c.config_error.clone(),
        migratable: migrate.is_none(),
        backupable: backup.is_none(),
        plannable,
        not_offered,
        active_run: runs
            .iter()
            .find(|r| r.controller == reference && !r.state.is_final())
            .map(RunRow::from),
        reference,
    }
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct Dashboard {
    layout: Layout,
    controllers: Vec<ControllerRow>,
    discovery_error: Option<String>,
    runs: Vec<RunRow>,
    form: StartDefaults,
}

/// What the start form shows preselected.
struct StartDefaults {
    controller: String,
    kind: String,
    options: RunOptions,
    idempotency_key: String,
    /// The demo scenarios (empty unless the cluster is simulated), with the preselected one.
    scenarios: Vec<(&'static str, &'static str)>,
    scenario: &'static str,
}

#[derive(Deserialize)]
pub struct DashboardQuery {
    controller: Option<String>,
    kind: Option<String>,
}

pub async fn dashboard(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<DashboardQuery>,
) -> PageResult {
    let runs = state.engine.runs(20).await?;
    let (controllers, discovery_error) = match state.engine.controllers().await {
        Ok(list) => (
            list.iter().map(|c| controller_row(c, &list, &runs)).collect(),
            None,
        ),
        Err(e) => (
            Vec::new(),
            Some(crate::http::error::ApiError::from(e).body().error),
        ),
    };
    let page = Dashboard {
        layout: Layout::new(&state, &caller, "LINSTOR controllers", "dashboard"),
        form: StartDefaults {
            // preselect the first controller that still has something to migrate
            controller: q.controller.unwrap_or_else(|| {
                controllers
                    .iter()
                    .find(|c: &&ControllerRow| c.backend != "k8s")
                    .map(|c| c.reference.clone())
                    .unwrap_or_default()
            }),
            // the safe choice: a preflight changes nothing; a migration or a backup waits for
            // an approval before it stops the controller unless someone unticks it
            kind: q
                .kind
                .filter(|k| ["preflight", "backup", "migrate", "upgrade-plan"].contains(&k.as_str()))
                .unwrap_or("preflight".into()),
            options: RunOptions {
                approve_before_downtime: true,
                ..RunOptions::default()
            },
            idempotency_key: uuid::Uuid::new_v4().to_string(),
            scenarios: if state.demo() {
                DemoScenario::ALL
                    .iter()
                    .map(|s| (s.as_str(), s.label()))
                    .collect()
            } else {
                Vec::new()
            },
            scenario: state
                .engine
                .settings()
                .demo_scenario
                .unwrap_or(DemoScenario::None)
                .as_str(),
        },
        controllers,
        discovery_error,
        runs: runs.iter().take(10).map(RunRow::from).collect(),
    };
    Ok(render(StatusCode::OK, &page))
}

#[derive(Template)]
#[template(path = "runs.html")]
struct Runs {
    layout: Layout,
    runs: Vec<RunRow>,
}

pub async fn runs(State(state): State<AppState>, caller: Caller) -> PageResult {
    let runs = state.engine.runs(500).await?;
    let page = Runs {
        layout: Layout::new(&state, &caller, "Runs", "runs"),
        runs: runs.iter().map(RunRow::from).collect(),
    };
    Ok(render(StatusCode::OK, &page))
}

/// A backup in the backups table.
pub struct BackupRow {
    pub file_name: String,
    pub url: String,
    pub run_id: String,
    pub run_short: String,
    pub controller: String,
    pub purpose: String,
    pub size: String,
    pub sha256: String,
    pub contents: String,
    pub created: String,
}

#[derive(Template)]
#[template(path = "backups.html")]
struct Backups {
    layout: Layout,
    backups: Vec<BackupRow>,
    total: String,
}

pub async fn backups(State(state): State<AppState>, caller: Caller) -> PageResult {
    let list = state.engine.backups().await?;
    let total = bytes(list.iter().map(|b| b.size_bytes).sum());
    let backups = list
        .iter()
        .map(|b| BackupRow {
            file_name: b.file_name.clone(),
            url: format!("/api/v1/backups/{}", b.id),
            run_short: short_id(&b.run_id),
            run_id: b.run_id.clone(),
            controller: b.controller.clone(),
            purpose: b.purpose.clone(),
            size: bytes(b.size_bytes),
            sha256: b.sha256.clone(),
            contents: format!(
                "{} tables, {} rows, from {} (LINSTOR {})",
                b.tables, b.rows, b.exported_from, b.linstor_version
            ),
            created: timestamp(&b.created_at),
        })
        .collect();
    let page = Backups {
        layout: Layout::new(&state, &caller, "Backups", "backups"),
        backups,
        total,
    };
    Ok(render(StatusCode::OK, &page))
}

/// The start form's fields (checkboxes are absent when unchecked). The form shows only the
/// options of the chosen kind (CSS, without script); those of other kinds are sent as well and
/// ignored here.
#[derive(Deserialize)]
pub struct StartForm {
    controller: String,
    kind: String,
    /// Present when the form carried the options (the quick buttons do not).
    with_options: Option<String>,
    approve_before_downtime: Option<String>,
    auto_rollback: Option<String>,
    allow_non_etcd_source: Option<String>,
    scale_down_etcd: Option<String>,
    controller_timeout_seconds: Option<String>,
    pod_timeout_seconds: Option<String>,
    import: Option<String>,
    verify: Option<String>,
    v2_namespace: Option<String>,
    demo_scenario: Option<String>,
    idempotency_key: Option<String>,
}

/// A select's value as the API's enum of that name.
fn choice<T: serde::de::DeserializeOwned>(v: &Option<String>, name: &str) -> Result<Option<T>, String> {
    match v.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => serde_json::from_value(serde_json::Value::String(s.into()))
            .map(Some)
            .map_err(|_| format!("{name} {s:?} is not one of the choices")),
    }
}

impl StartForm {
    fn to_request(&self) -> Result<CreateRun, String> {
        let kind: RunKind = self.kind.parse()?;
        let controller = self.controller.parse()?;
        let mut options = RunOptions::default();
        if self.with_options.is_some() {
            let seconds = |v: &Option<String>, default: u64, name: &str| match v.as_deref().map(str::trim) {
                None | Some("") => Ok(default),
                Some(s) => s
                    .parse::<u64>()
                    .map_err(|_| format!("{name} must be a whole number of seconds")),
            };
            let stops_controller = matches!(kind, RunKind::Backup | RunKind::Migrate);
            if stops_controller {
                options.approve_before_downtime = self.approve_before_downtime.is_some();
                options.auto_rollback = self.auto_rollback.is_some();
                options.controller_timeout_seconds = seconds(
                    &self.controller_timeout_seconds,
                    options.controller_timeout_seconds,
                    "controller timeout",
                )?;
                options.pod_timeout_seconds = seconds(
                    &self.pod_timeout_seconds,
                    options.pod_timeout_seconds,
                    "pod timeout",
                )?;
                options.demo_scenario = choice(&self.demo_scenario, "demo scenario")?;
            }
            // a preflight checks for the migration with these
            if matches!(kind, RunKind::Migrate | RunKind::Preflight) {
                options.allow_non_etcd_source = self.allow_non_etcd_source.is_some();
                options.import = choice(&self.import, "import")?.unwrap_or_default();
                options.verify = choice(&self.verify, "verification")?.unwrap_or_default();
            }
            if kind == RunKind::Migrate {
                options.scale_down_etcd = self.scale_down_etcd.is_some();
            }
            if kind == RunKind::UpgradePlan {
                options.v2_namespace = self
                    .v2_namespace
                    .as_deref()
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(str::to_string);
            }
        }
        Ok(CreateRun {
            kind,
            controller,
            options,
        })
    }
}

/// Starts a run from the form and shows it; on failure back to the dashboard with the reason.
pub async fn start_run(
    State(state): State<AppState>,
    caller: Caller,
    CsrfForm(form): CsrfForm<StartForm>,
) -> Response {
    let flash = |f: Flash| {
        if let Some(s) = &caller.session {
            state.auth.sessions.set_flash(&s.id, f);
        }
    };
    let req = match form.to_request() {
        Ok(r) => r,
        Err(e) => {
            flash(Flash::error(e));
            return Redirect::to("/").into_response();
        }
    };
    let key = form.idempotency_key.filter(|k| !k.is_empty());
    match state.engine.create_run(req, &caller.actor, key).await {
        Ok((run, _)) => Redirect::to(&format!("/runs/{}", run.id)).into_response(),
        Err(e) => {
            flash(Flash::error(crate::http::error::ApiError::from(e).body().error));
            Redirect::to("/").into_response()
        }
    }
}
