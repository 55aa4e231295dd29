//! The pages as a newcomer meets them, at a desktop's width and a phone's (issue 19): a start form
//! whose default is the safe choice and that shows only the chosen kind's options, a dashboard that
//! offers only what can pass its checks (and says why not) and fits a phone, a preflight that says
//! what the migration would do, a rollback after success reported as its own phase, the Helm
//! command of the release's own chart, quiet pages for what is not an error, and the demo's
//! scenarios walked to their end.

use std::time::{Duration, Instant};

use linstor_migrator::cluster::sim::{SimCluster, SimTiming};
use linstor_migrator::engine::{EngineSettings, RetryPolicy};
use serde_json::{Value, json};

use super::{Browser, HEIGHT, ONE_BROWSER, PATIENCE, PHONE, WIDTH, common, sign_in, timing};

/// Both widths every page is checked at.
const WIDTHS: [(u32, u32); 2] = [(WIDTH, HEIGHT), PHONE];

/// The server on a simulated cluster whose rollbacks give up quickly.
async fn app_with(timing: SimTiming) -> common::TestApp {
    let dir = std::sync::Arc::new(tempfile::tempdir().expect("temp dir"));
    let path = dir.path().to_path_buf();
    let mut engine = EngineSettings::new(path.clone());
    engine.rollback_retry = RetryPolicy {
        attempts: 3,
        min_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(200),
    };
    let mut app = common::spawn_app_in(
        &path,
        engine,
        common::settings(),
        std::sync::Arc::new(SimCluster::new(timing)),
    )
    .await;
    app._dir = Some(dir);
    app
}

impl Browser {
    /// Runs `script` (which returns a value) in the page.
    async fn eval(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap_or_default()
    }

    /// Whether the first element matching `selector` is rendered.
    async fn shown(&self, selector: &str) -> bool {
        let script = format!(
            "const e = document.querySelector({}); return !!e && e.checkVisibility();",
            json!(selector)
        );
        self.eval(&script).await == json!(true)
    }

    /// The text of the first element matching `selector` ("" when there is none).
    async fn text_of(&self, selector: &str) -> String {
        let script = format!(
            "const e = document.querySelector({}); return e ? e.textContent : '';",
            json!(selector)
        );
        self.eval(&script).await.as_str().unwrap_or_default().to_string()
    }

    /// The page does not scroll sideways, and every element matching `selector` is within the
    /// viewport's width.
    async fn fits(&self, what: &str, selector: &str) {
        let script = format!(
            "const w = window.innerWidth;
             const out = [...document.querySelectorAll({})].filter(e => e.checkVisibility())
               .map(e => e.getBoundingClientRect())
               .filter(r => r.left < -1 || r.right > w + 1)
               .map(r => [r.left, r.right]);
             return {{ width: w, scroll: document.documentElement.scrollWidth, out }};",
            json!(selector)
        );
        let v = self.eval(&script).await;
        let (w, scroll) = (
            v["width"].as_i64().unwrap_or(0),
            v["scroll"].as_i64().unwrap_or(-1),
        );
        assert!(w > 0 && scroll <= w, "{what} at {w} px scrolls sideways: {v}");
        assert_eq!(v["out"], json!([]), "{what} at {w} px: elements off-screen: {v}");
    }

    async fn open(&self, app: &common::TestApp, path: &str) {
        self.client.goto(&app.url(path)).await.expect("open a page");
        self.css("main").await;
    }

    /// Waits until the run page shows the state `label` (it reloads itself on changes).
    async fn wait_run_state(&self, label: &str) {
        let deadline = Instant::now() + PATIENCE * 3;
        loop {
            let shown = self.text_of("#run-state").await;
            if shown.trim() == label {
                // and the page rendered for it (the script reloads after a state event)
                if self
                    .eval("return document.getElementById('run').dataset.final;")
                    .await
                    == json!("true")
                    || ![
                        "succeeded",
                        "failed",
                        "rolled back",
                        "rollback failed",
                        "cancelled",
                    ]
                    .contains(&label)
                {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the run page never showed {label:?}; it shows {shown:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Submits an action form of the run page and confirms it in the dialog.
    async fn act(&self, action: &str) {
        self.css(&format!("form[action$='/{action}'] button[type=submit]"))
            .await
            .click()
            .await
            .expect("the action's button");
        self.css("#confirm-ok").await.click().await.expect("confirm");
    }
}

fn id_of(run: &Value) -> String {
    run["id"].as_str().expect("run id").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_offer_what_can_succeed_and_fit_a_phone() {
    let _one = ONE_BROWSER.lock().await;
    // Arrange: one controller on the cluster's k8s backend, and the runs whose pages are looked at
    let app = app_with(SimTiming::instant()).await;
    let migration = id_of(&app.start("migrate", common::CONTROLLER, json!({})).await);
    app.wait_state(&migration, "succeeded").await;
    let blocked = id_of(&app.start("preflight", common::PLAIN_CONTROLLER, json!({})).await);
    app.wait_state(&blocked, "failed").await;
    let plan = id_of(&app.start("upgrade-plan", common::CONTROLLER, json!({})).await);
    app.wait_state(&plan, "succeeded").await;
    let backup = id_of(
        &app.start(
            "backup",
            common::PLAIN_CONTROLLER,
            json!({"approve_before_downtime": true}),
        )
        .await,
    );
    app.wait_state(&backup, "waiting").await;
    let res = app
        .post(&format!("/api/v1/runs/{backup}/cancel"), &json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    app.wait_state(&backup, "cancelled").await;
    let browser = Browser::start().await;
    sign_in(&browser, &app).await;

    for (width, height) in WIDTHS {
        browser.resize(width, height).await;

        // the start form: a preflight preselected, only its options shown, the gate on for the
        // kinds that stop the controller, the demo's scenarios only for those
        browser.open(&app, "/").await;
        assert!(
            browser
                .css(".start-form input[name=kind][value=preflight]")
                .await
                .is_selected()
                .await
                .unwrap()
        );
        assert!(
            browser.shown("#opts-migration").await,
            "a preflight checks a migration's options"
        );
        for hidden in ["#opts-downtime", "#opts-plan", "#opts-demo"] {
            assert!(
                !browser.shown(hidden).await,
                "{hidden} shown for a preflight at {width} px"
            );
        }
        browser
            .css(".start-form input[name=kind][value=migrate]")
            .await
            .click()
            .await
            .unwrap();
        for shown in ["#opts-downtime", "#opts-migration", "#opts-demo"] {
            assert!(
                browser.shown(shown).await,
                "{shown} hidden for a migration at {width} px"
            );
        }
        assert!(
            browser
                .css("input[name=approve_before_downtime]")
                .await
                .is_selected()
                .await
                .unwrap()
        );
        browser
            .css(".start-form input[name=kind][value=upgrade-plan]")
            .await
            .click()
            .await
            .unwrap();
        assert!(browser.shown("#opts-plan").await);
        assert!(!browser.shown("#opts-downtime").await && !browser.shown("#opts-migration").await);

        // the dashboard: no migration offered where its preflight must fail, and why
        let plain_row = browser
            .eval(&format!(
                "return [...document.querySelectorAll('.table-controllers tbody tr')]
                   .find(r => r.textContent.includes({})).innerHTML;",
                json!(common::PLAIN_CONTROLLER)
            ))
            .await;
        let plain_row = plain_row.as_str().unwrap_or_default();
        assert!(!plain_row.contains("Migrate to k8s"), "{plain_row}");
        assert!(
            plain_row.contains("Not offered: Preflight and Migrate"),
            "{plain_row}"
        );
        assert!(
            plain_row.contains("already use(s) the k8s backend"),
            "{plain_row}"
        );
        browser
            .fits(
                "the dashboard",
                ".row-actions .btn, .not-offered, .start-form button",
            )
            .await;
        browser
            .client
            .execute("window.scrollTo(0, 0);", vec![])
            .await
            .unwrap();
        if width == WIDTH {
            browser.screenshot("dashboard-not-offered").await;
        } else {
            browser.screenshot("dashboard-phone").await;
        }

        // a preflight that failed its checks: what a migration would do, and no resume
        browser.open(&app, &format!("/runs/{blocked}")).await;
        assert!(
            browser
                .text_of("#plan-title")
                .await
                .contains("What a migrate would do")
        );
        assert!(
            !browser.shown("form[action$='/resume']").await,
            "a resume cannot help"
        );
        assert!(browser.text_of("#next-step").await.contains("start a new run"));
        browser
            .fits("the failed preflight", "#plan, .checks, #next-step")
            .await;

        // the migration: the Helm command of the release's own chart, etcd kept
        browser.open(&app, &format!("/runs/{migration}")).await;
        assert_eq!(browser.text_of("#helm-chart").await, "piraeus-1.10.8");
        let command = browser.text_of("#helm-command").await;
        assert!(
            command.contains("--branch v1.10.8") && !command.contains("etcd.enabled"),
            "{command}"
        );
        assert!(browser.text_of("#helm-changes").await.contains("etcd stays"));
        assert!(browser.text_of("#drop-etcd").await.contains("etcd.enabled=false"));
        browser
            .fits("the migration", "#helm, .steps, .results .card")
            .await;

        // the upgrade plan: no source → k8s, no downtime legend
        browser.open(&app, &format!("/runs/{plan}")).await;
        let meta = browser.text_of(".run-head .meta").await;
        assert!(!meta.contains("→"), "{meta}");
        assert!(!browser.shown(".legend").await, "an upgrade plan has no downtime");
        browser.fits("the upgrade plan", ".run-head, .steps").await;

        // a cancel before the downtime is no error
        browser.open(&app, &format!("/runs/{backup}")).await;
        let class = browser
            .eval("return document.getElementById('run-error').className;")
            .await;
        assert_eq!(class, json!("flash flash-note"), "at {width} px");
        assert!(browser.text_of("#run-error").await.starts_with("Cancelled:"));
    }

    // a rollback after success: its own phase; the migration's figures stay
    browser.resize(WIDTH, HEIGHT).await;
    browser.open(&app, &format!("/runs/{migration}")).await;
    let before = app.get_json(&format!("/api/v1/runs/{migration}")).await;
    browser.act("rollback").await;
    browser.wait_run_state("rolled back").await;
    for (width, height) in WIDTHS {
        browser.resize(width, height).await;
        browser.open(&app, &format!("/runs/{migration}")).await;
        assert!(browser.shown("#rollback-phase").await, "the rollback's own phase");
        assert!(
            browser
                .text_of("#rollback-phase")
                .await
                .contains("Manual rollback")
        );
        let start = browser
            .text_of(".step[data-step='start_controller'] .step-msg")
            .await;
        assert!(
            !start.contains("controller running") && start.contains("undone"),
            "{start}"
        );
        let after = app.get_json(&format!("/api/v1/runs/{migration}")).await;
        assert_eq!(after["downtime"], before["downtime"]);
        let clock = browser.text_of("#downtime-clock").await;
        assert_eq!(
            clock.trim(),
            "00:00:00",
            "the migration's downtime, not the rollback's end"
        );
        browser
            .fits("the rolled back migration", "#rollback-phase, .steps")
            .await;
    }
    browser.close().await;
    app.stop().await;
}

/// Starts a migration of `controller` from the dashboard's form with a demo scenario, the gate
/// off and `import`; returns the run's id.
async fn start_scenario(browser: &Browser, app: &common::TestApp, scenario: &str, import: &str) -> String {
    browser.open(app, "/").await;
    browser
        .css("#controller")
        .await
        .select_by_value(common::CONTROLLER)
        .await
        .expect("choose the controller");
    browser
        .css(".start-form input[name=kind][value=migrate]")
        .await
        .click()
        .await
        .unwrap();
    browser
        .css("input[name=approve_before_downtime]")
        .await
        .click()
        .await
        .unwrap();
    browser
        .css("#import")
        .await
        .select_by_value(import)
        .await
        .unwrap();
    browser
        .css("#demo_scenario")
        .await
        .select_by_value(scenario)
        .await
        .unwrap();
    let timeout = browser.css("#controller_timeout_seconds").await;
    timeout.clear().await.unwrap();
    timeout.send_keys("5").await.unwrap();
    browser
        .css("form.start-form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    let path = browser
        .wait_path("the run page", |p| {
            p.starts_with("/runs/") && p.len() > "/runs/".len()
        })
        .await;
    path.trim_start_matches("/runs/").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_scenarios_fail_roll_back_and_give_up_in_the_browser() {
    let _one = ONE_BROWSER.lock().await;
    let app = app_with(timing()).await;
    let browser = Browser::start().await;
    sign_in(&browser, &app).await;

    // the import fails inside the downtime: rolled back, with what the import left
    let id = start_scenario(&browser, &app, "import-fails", "tool").await;
    browser.wait_run_state("rolled back").await;
    let run = app.get_json(&format!("/api/v1/runs/{id}")).await;
    assert_eq!(run["options"]["demo_scenario"], "import-fails");
    assert!(
        browser
            .text_of(".results")
            .await
            .contains("Import into k8s failed"),
        "{run:#}"
    );
    browser
        .fits("a rolled back run", ".steps, .results .card, #run-error")
        .await;

    // the controller does not start on k8s (at a phone's width): rolled back after the timeout
    browser.resize(PHONE.0, PHONE.1).await;
    let id = start_scenario(&browser, &app, "controller-does-not-start", "tool").await;
    browser.wait_run_state("rolled back").await;
    let run = app.get_json(&format!("/api/v1/runs/{id}")).await;
    assert!(
        run["rollback_cause"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Start controller failed"),
        "{run:#}"
    );
    browser
        .fits("a rolled back run", ".steps, .results .card, #run-error")
        .await;

    // a rollback that cannot finish: the alarm with its commands, then a retry that finishes it
    browser.resize(WIDTH, HEIGHT).await;
    let id = start_scenario(&browser, &app, "rollback-fails", "tool").await;
    browser.wait_run_state("rollback failed").await;
    assert!(browser.text_of("#alarm-title").await.contains("rollback gave up"));
    assert!(browser.text_of("#manual-steps").await.contains("kubectl"));
    browser.screenshot("rollback-failed").await;
    browser.resize(PHONE.0, PHONE.1).await;
    browser.fits("the alarm", ".alarm, #manual-steps").await;
    browser.act("resume").await;
    browser.wait_run_state("rolled back").await;
    assert_eq!(
        app.get_json(&format!("/api/v1/runs/{id}")).await["state"],
        "rolled_back"
    );

    browser.close().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_slow_demo_scenario_migrates_100k_rows_in_the_browser() {
    let _one = ONE_BROWSER.lock().await;
    let app = app_with(SimTiming::instant()).await;
    let browser = Browser::start_at(PHONE.0, PHONE.1).await;
    sign_in(&browser, &app).await;
    let id = start_scenario(&browser, &app, "slow-100k", "delta").await;
    browser.wait_run_state("succeeded").await;
    let run = app.get_json(&format!("/api/v1/runs/{id}")).await;
    assert!(
        run["backups"][0]["rows"].as_i64().unwrap_or(0) >= 90_000,
        "{run:#}"
    );
    browser
        .fits("a migration of 100k rows", ".steps, .results .card")
        .await;
    browser.close().await;
    app.stop().await;
}
