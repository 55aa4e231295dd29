//! Browser test: headless Chromium (Debian packages `chromium` and `chromium-driver`, installed by
//! `.ci/run`) drives the pages over WebDriver as a person would: sign in with the token, start a
//! migration from the dashboard form, watch log lines arrive live on the run page, wait for
//! "succeeded", download the backup and compare its SHA-256 with the one the page shows.
//! It also takes the screenshots the README shows: into `target/tmp/screenshots/`, or with
//! `UPDATE_SCREENSHOTS=1` into `docs/screenshots/` (so that a test run leaves the tree clean).
//!
//! The server is the real one on port 0 with SQLite in a temporary directory and the simulated
//! cluster, slowed down enough that the log visibly streams while the run takes about 15 s.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use linstor_migrator::cluster::sim::{SimCluster, SimTiming};
use linstor_migrator::engine::EngineSettings;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The desktop viewport; the pages are also checked at a phone's, [`PHONE`].
const WIDTH: u32 = 1440;
const HEIGHT: u32 = 900;
/// A phone's viewport (390x844, an iPhone 12 to 15).
const PHONE: (u32, u32) = (390, 844);
/// One browser test at a time: two Chromiums and two paced runs at once on a small machine starve
/// the page of the live lines the first test watches for.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Longest the test waits for the browser or the run.
const PATIENCE: Duration = Duration::from_secs(90);

/// Slow enough to watch the log grow (a line every 25 ms from the tool), fast enough for a test.
fn timing() -> SimTiming {
    SimTiming {
        pod_start: Duration::from_millis(800),
        controller_stop: Duration::from_millis(1200),
        controller_start: Duration::from_millis(1500),
        operator_reconcile: Duration::from_millis(1000),
        export: Duration::from_millis(800),
        etcd_give_up: Duration::from_secs(5),
        // about 5 s of import: long enough to see it stream on a loaded machine
        import_per_row: Duration::from_millis(5),
        exec_line_interval: Duration::from_millis(25),
    }
}

/// Headless Chromium behind chromedriver; both die with this value.
struct Browser {
    client: Client,
    driver: tokio::process::Child,
    downloads: tempfile::TempDir,
    _profile: tempfile::TempDir,
    /// The page area now.
    size: std::sync::Mutex<(u32, u32)>,
}

impl Browser {
    async fn start() -> Browser {
        Self::start_at(WIDTH, HEIGHT).await
    }

    /// A browser whose page area is `width` x `height`.
    async fn start_at(width: u32, height: u32) -> Browser {
        for (path, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            assert!(
                Path::new(path).exists(),
                "{path} is missing: the browser test needs the Debian packages `chromium` and \
                 `chromium-driver` (`apt-get install -y chromium chromium-driver`; .ci/run installs \
                 them). Package {package} not found."
            );
        }
        let port = free_port();
        let profile = tempfile::tempdir().expect("profile dir");
        let downloads = tempfile::tempdir().expect("download dir");
        // its own process group, so that Drop also ends the Chromium it started
        let driver = tokio::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .expect("start chromedriver");
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.path().display()),
                ],
                "prefs": {
                    "download.default_directory": downloads.path(),
                    "download.prompt_for_download": false,
                    "download.directory_upgrade": true,
                    "safebrowsing.enabled": false,
                },
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => break client,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("cannot start a Chromium session through chromedriver: {e}"),
            }
        };
        let browser = Browser {
            client,
            driver,
            downloads,
            _profile: profile,
            size: std::sync::Mutex::new((width, height)),
        };
        browser.fit_viewport().await;
        browser
    }

    /// Makes the page area `width` x `height` from now on.
    async fn resize(&self, width: u32, height: u32) {
        *self.size.lock().unwrap() = (width, height);
        self.fit_viewport().await;
    }

    /// Makes the page area exactly the wanted size (the window may add a frame).
    async fn fit_viewport(&self) {
        let (width, height) = *self.size.lock().unwrap();
        for _ in 0..3 {
            let inner = self
                .client
                .execute("return [window.innerWidth, window.innerHeight];", vec![])
                .await
                .expect("viewport size");
            let (w, h) = (inner[0].as_i64().unwrap_or(0), inner[1].as_i64().unwrap_or(0));
            if (w, h) == (i64::from(width), i64::from(height)) {
                return;
            }
            let (ww, wh) = self.client.get_window_size().await.expect("window size");
            let ww = ww as i64 + i64::from(width) - w;
            let wh = wh as i64 + i64::from(height) - h;
            self.client
                .set_window_size(ww as u32, wh as u32)
                .await
                .expect("resize window");
        }
    }

    async fn css(&self, selector: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(selector))
            .await
            .unwrap_or_else(|e| panic!("no element {selector}: {e}"))
    }

    async fn path(&self) -> String {
        self.client.current_url().await.expect("URL").path().to_string()
    }

    /// Waits until the browser shows a page whose path satisfies `ok`.
    async fn wait_path(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let path = self.path().await;
            if ok(&path) {
                return path;
            }
            assert!(Instant::now() < deadline, "never reached {what}; at {path}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What the run page shows right now, in one round trip.
    async fn run_probe(&self) -> Probe {
        let v = self
            .client
            .execute(
                "const s = document.getElementById('run-state');
                 const l = document.getElementById('log-status');
                 return { marked: window.__probe === true,
                          lines: document.querySelectorAll('#log .ll').length,
                          state: s ? s.textContent.trim() : '',
                          log_status: l ? l.textContent.trim() : '',
                          running_step: (document.querySelector('.step-running') || {dataset: {}}).dataset.step || '' };",
                vec![],
            )
            .await;
        // a script can fail while the page reloads itself: then it shows nothing yet
        let v = v.unwrap_or_default();
        Probe {
            marked: v["marked"].as_bool().unwrap_or(false),
            lines: v["lines"].as_u64().unwrap_or(0),
            state: v["state"].as_str().unwrap_or("").to_string(),
            log_status: v["log_status"].as_str().unwrap_or("").to_string(),
            running_step: v["running_step"].as_str().unwrap_or("").to_string(),
        }
    }

    /// Saves a screenshot of the viewport as `<name>.png` (see the module comment for where).
    async fn screenshot(&self, name: &str) {
        // no caret or focus ring in the pictures
        let _ = self
            .client
            .execute("document.activeElement && document.activeElement.blur();", vec![])
            .await;
        let png = self.client.screenshot().await.expect("screenshot");
        let size = *self.size.lock().unwrap();
        assert_eq!(png_size(&png), size, "screenshot {name} has the wrong size");
        let dir = match std::env::var_os("UPDATE_SCREENSHOTS").is_some_and(|v| v == "1") {
            true => Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots"),
            false => Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots"),
        };
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
    }

    /// Waits for the finished download: the file `name` with exactly `size` bytes, and no partial
    /// file left beside it. Chromium writes into `.org.chromium.Chromium.*` (or `*.crdownload`)
    /// and renames at the end, so a file of the right name and size with no partial left is the
    /// complete one; anything earlier may be half written.
    async fn downloaded(&self, name: &str, size: u64) -> PathBuf {
        let target = self.downloads.path().join(name);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let files: Vec<(String, u64)> = std::fs::read_dir(self.downloads.path())
                .expect("download dir")
                .filter_map(|e| e.ok())
                .map(|e| {
                    let len = e.metadata().map_or(0, |m| m.len());
                    (e.file_name().to_string_lossy().into_owned(), len)
                })
                .collect();
            let partial = files.iter().any(|(f, _)| is_partial_download(f));
            let done = files.iter().any(|(f, len)| f == name && *len == size);
            if done && !partial {
                return target;
            }
            assert!(
                Instant::now() < deadline,
                "the backup download did not finish as {name} with {size} bytes: {files:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn close(mut self) {
        let _ = self.client.clone().close().await;
        stop_group(&self.driver);
        let _ = self.driver.wait().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        stop_group(&self.driver);
    }
}

/// Ends chromedriver and the Chromium it started (same process group).
fn stop_group(driver: &tokio::process::Child) {
    if let Some(pid) = driver.id() {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .stderr(Stdio::null())
            .status();
    }
}

struct Probe {
    /// The page was not reloaded since the marker was set.
    marked: bool,
    lines: u64,
    state: String,
    log_status: String,
    running_step: String,
}

/// A file Chromium is still writing (its names for downloads in progress).
fn is_partial_download(file_name: &str) -> bool {
    file_name.ends_with(".crdownload")
        || file_name.ends_with(".tmp")
        || file_name.starts_with(".org.chromium.")
        || file_name.starts_with(".com.google.")
}

/// The file name of `Content-Disposition: attachment; filename="..."`.
fn attachment_name(content_disposition: &str) -> Option<String> {
    content_disposition
        .split(';')
        .filter_map(|part| part.trim().strip_prefix("filename="))
        .map(|name| name.trim_matches('"').to_string())
        .next()
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
    l.local_addr().expect("address").port()
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(png.len() > 24 && &png[1..4] == b"PNG", "not a PNG");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&png[16..20]), be(&png[20..24]))
}

/// The server on a simulated cluster with `timing`; its data directory lives as long as it.
async fn app_on(timing: SimTiming) -> common::TestApp {
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let path = dir.path().to_path_buf();
    let mut app = common::spawn_app_in(
        &path,
        EngineSettings::new(path.clone()),
        common::settings(),
        Arc::new(SimCluster::new(timing)),
    )
    .await;
    app._dir = Some(dir);
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_in_the_browser_streams_its_log_and_offers_the_backup() {
    let _one = ONE_BROWSER.lock().await;
    // Arrange: the server on a simulated cluster, and a browser
    let app = app_on(timing()).await;
    let browser = Browser::start().await;
    let c = &browser.client;

    // Act: sign in through the login page
    c.goto(&app.url("/")).await.expect("open the dashboard");
    browser.wait_path("the login page", |p| p == "/login").await;
    browser
        .css("#token")
        .await
        .send_keys(common::TOKEN)
        .await
        .expect("type the token");
    browser
        .css("form[action='/login'] button[type=submit]")
        .await
        .click()
        .await
        .expect("sign in");
    browser.wait_path("the dashboard", |p| p == "/").await;
    let who = browser.css(".who").await.text().await.expect("who");
    assert!(who.contains("ops"), "signed in as {who:?}");
    browser.screenshot("dashboard").await;

    // start a migration from the dashboard's form
    browser
        .css("#controller")
        .await
        .select_by_value(common::CONTROLLER)
        .await
        .expect("choose the controller");
    browser
        .css("input[name=kind][value=migrate]")
        .await
        .click()
        .await
        .expect("choose migrate");
    // the form gates the downtime on an approval by default; this walk runs straight through
    let gate = browser.css("input[name=approve_before_downtime]").await;
    assert!(
        gate.is_selected().await.expect("checkbox state"),
        "the gate is on by default"
    );
    gate.click().await.expect("untick the approval gate");
    browser
        .css("form.start-form button[type=submit]")
        .await
        .click()
        .await
        .expect("start the run");
    let run_path = browser
        .wait_path("the run page", |p| {
            p.starts_with("/runs/") && p.len() > "/runs/".len()
        })
        .await;
    let run_id = run_path.trim_start_matches("/runs/").to_string();
    browser.css("#run #log").await;

    // Assert: log lines arrive while the run is still running, without reloading the page
    c.execute("window.__probe = true;", vec![])
        .await
        .expect("mark the page");
    let first = browser.run_probe().await;
    let started = Instant::now();
    let mut live = None;
    let mut seen = Vec::new();
    while live.is_none() {
        assert!(
            started.elapsed() < PATIENCE,
            "no log line arrived live (first {} lines); the page said (state, log status, lines): {seen:?}",
            first.lines
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        let p = browser.run_probe().await;
        let said = (p.state.clone(), p.log_status.clone(), p.lines);
        if seen.last() != Some(&said) && seen.len() < 40 {
            seen.push(said);
        }
        if !p.marked {
            // the page reloaded (a state change): mark it again and start over
            let _ = c.execute("window.__probe = true;", vec![]).await;
            continue;
        }
        if p.lines > first.lines && p.state == "running" && p.log_status == "live" {
            live = Some(p);
        }
    }
    let live = live.expect("live probe");
    let api_state = app.get_json(&format!("/api/v1/runs/{run_id}")).await["state"].clone();
    assert!(
        api_state == "running" || api_state == "queued",
        "the lines grew from {} to {} only after the run ended ({api_state})",
        first.lines,
        live.lines
    );

    // a picture in the middle of the downtime: the import streams its lines
    let deadline = Instant::now() + PATIENCE;
    loop {
        let p = browser.run_probe().await;
        if p.running_step == "import" && p.lines > 40 {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            browser.screenshot("run-page").await;
            break;
        }
        assert!(
            (p.state == "running" || p.state.is_empty()) && Instant::now() < deadline,
            "the page never showed the import running ({}, step {:?})",
            p.state,
            p.running_step
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // the run succeeds and the page shows it (after its own reload)
    let deadline = Instant::now() + PATIENCE;
    loop {
        let p = browser.run_probe().await;
        if p.state == "succeeded" && p.log_status == "complete" {
            break;
        }
        assert!(
            !["failed", "rolled back", "cancelled"].contains(&p.state.as_str()),
            "the run ended {}",
            p.state
        );
        assert!(
            Instant::now() < deadline,
            "the run page never showed succeeded: {}",
            p.state
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let run = app.get_json(&format!("/api/v1/runs/{run_id}")).await;
    assert_eq!(run["state"], "succeeded", "{run:#}");

    // the backup card: download the file and compare its digest with the page's
    let shown_sha = browser.css(".results dd.sha").await.text().await.expect("sha");
    let api_sha = run["backups"][0]["sha256"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        shown_sha.trim(),
        api_sha,
        "the page shows another digest than the API"
    );
    c.execute(
        "const r = document.querySelector('.results'); (r.previousElementSibling || r).scrollIntoView({block: 'start'}); window.scrollBy(0, -16);",
        vec![],
    )
    .await
    .expect("scroll to the results");
    browser.screenshot("run-page-final").await;
    // what the server says the download is: its name and exact size
    let link = browser.css(".results a.btn[download]").await;
    let href = link
        .attr("href")
        .await
        .expect("href")
        .expect("the link has an href");
    let path = href.strip_prefix(&app.base).unwrap_or(&href);
    let res = app.get(path).send().await.expect("fetch the backup");
    assert_eq!(res.status(), 200, "GET {href}");
    let name = res
        .headers()
        .get("content-disposition")
        .and_then(|v| v.to_str().ok())
        .and_then(attachment_name)
        .expect("Content-Disposition with a file name");
    let size: u64 = res
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Content-Length");
    drop(res);
    assert_eq!(
        name,
        run["backups"][0]["name"].as_str().unwrap_or(""),
        "file name"
    );
    assert_eq!(
        size,
        run["backups"][0]["size_bytes"].as_u64().unwrap_or(0),
        "download size"
    );
    link.click().await.expect("download the backup");
    let file = browser.downloaded(&name, size).await;
    let body = std::fs::read(&file).expect("read the download");
    assert_eq!(
        body.len() as u64,
        size,
        "{} changed after it finished",
        file.display()
    );
    let sha = hex::encode(Sha256::digest(&body));
    assert_eq!(
        sha,
        shown_sha.trim(),
        "downloaded {} has another digest",
        file.display()
    );

    // the dashboard afterwards: the run in the history, the controller on k8s
    c.goto(&app.url("/")).await.expect("open the dashboard");
    let row = browser
        .css(&format!("#recent-title + .card a[href='/runs/{run_id}']"))
        .await;
    let short = row.text().await.expect("history row");
    assert!(run_id.contains(&short), "the run in the history shows {short:?}");
    let history = browser
        .css("#recent-title + .card")
        .await
        .text()
        .await
        .expect("history");
    assert!(history.contains("succeeded"), "history: {history}");
    let controllers = browser
        .css(".table tbody tr")
        .await
        .text()
        .await
        .expect("controller row");
    assert!(
        controllers.contains("k8s"),
        "the migrated controller: {controllers}"
    );

    browser.close().await;
    app.stop().await;
}

/// Signs in through the login page with the `ops` token and waits for the dashboard.
async fn sign_in(browser: &Browser, app: &common::TestApp) {
    browser
        .client
        .goto(&app.url("/"))
        .await
        .expect("open the dashboard");
    browser.wait_path("the login page", |p| p == "/login").await;
    browser
        .css("#token")
        .await
        .send_keys(common::TOKEN)
        .await
        .expect("type the token");
    browser
        .css("form[action='/login'] button[type=submit]")
        .await
        .click()
        .await
        .expect("sign in");
    browser.wait_path("the dashboard", |p| p == "/").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_migration_the_v2_upgrade_plan_shows_checks_yaml_commands_and_downloads() {
    let _one = ONE_BROWSER.lock().await;
    // Arrange: a migration that succeeded on the simulated cluster, and a signed-in browser
    let app = app_on(SimTiming::instant()).await;
    let migrate = app.start("migrate", common::CONTROLLER, json!({})).await;
    let migrate_id = migrate["id"].as_str().expect("run id").to_string();
    app.wait_state(&migrate_id, "succeeded").await;
    let browser = Browser::start().await;
    sign_in(&browser, &app).await;

    // Act: from the migration's page, plan the v2 upgrade
    browser
        .client
        .goto(&app.url(&format!("/runs/{migrate_id}")))
        .await
        .expect("open the migration");
    browser
        .css("#plan-v2-upgrade")
        .await
        .click()
        .await
        .expect("plan the v2 upgrade");
    let plan_path = browser
        .wait_path("the plan's run page", |p| {
            p.starts_with("/runs/") && !p.ends_with(&migrate_id)
        })
        .await;
    let plan_id = plan_path.trim_start_matches("/runs/").to_string();
    let run = app.wait_state(&plan_id, "succeeded").await;
    assert_eq!(run["kind"], "upgrade-plan");
    // the page reloads itself when the run ends; then it shows the plan
    let checks = browser.css("#upgrade-checks").await;

    // Assert: checks with their outcome, the YAML, the commands in order
    let outcomes: Vec<String> = {
        let mut v = Vec::new();
        for li in checks.find_all(Locator::Css("li.check")).await.expect("checks") {
            v.push(li.attr("class").await.expect("class").unwrap_or_default());
        }
        v
    };
    assert!(outcomes.iter().any(|c| c.contains("check-pass")), "{outcomes:?}");
    assert!(outcomes.iter().any(|c| c.contains("check-warn")), "{outcomes:?}");
    let database = browser
        .css("#upgrade-checks li.check-pass")
        .await
        .text()
        .await
        .expect("a passed check");
    assert!(!database.is_empty());
    let yaml = browser.css("#upgrade-yaml").await.text().await.expect("YAML");
    let plan = app
        .get_json(&format!("/api/v1/runs/{plan_id}/upgrade-plan"))
        .await;
    assert!(
        yaml.contains("kind: LinstorCluster") && yaml.contains("name: piraeus-op-ns"),
        "{yaml}"
    );
    let steps = browser
        .client
        .find_all(Locator::Css("#upgrade-commands li.upgrade-step"))
        .await
        .expect("steps");
    assert_eq!(steps.len(), plan["steps"].as_array().map_or(0, Vec::len));
    let first = steps[0].attr("data-step").await.expect("data-step");
    assert_eq!(first.as_deref(), Some("2.1"));
    let scale = browser.css("#cmd-3-1").await.text().await.expect("step 3.1");
    assert!(
        scale.contains("scale deployment/piraeus-op-operator --replicas=0"),
        "{scale}"
    );
    browser
        .client
        .execute(
            "document.getElementById('upgrade-plan').scrollIntoView({block: 'start'});",
            vec![],
        )
        .await
        .expect("scroll to the plan");
    browser.screenshot("upgrade-plan").await;

    // the YAML downloads as a file with the name and size the server gives it
    let link = browser.css("#download-yaml").await;
    let href = link.attr("href").await.expect("href").expect("an href");
    let res = app.get(&href).send().await.expect("fetch the YAML");
    let name = res
        .headers()
        .get("content-disposition")
        .and_then(|v| v.to_str().ok())
        .and_then(attachment_name)
        .expect("a file name");
    let served = res.text().await.expect("the YAML");
    assert_eq!(
        served,
        yaml.trim_end().to_string() + "\n",
        "the page shows the YAML the server serves"
    );
    link.click().await.expect("download the YAML");
    let file = browser.downloaded(&name, served.len() as u64).await;
    assert_eq!(std::fs::read_to_string(&file).expect("read the download"), served);

    // the script: Chromium holds a downloaded shell script "unconfirmed" (a dangerous file type
    // from a site never visited before) and no preference lifts that, so the page's own session
    // fetches the link's target, as the click would
    let bundle = browser.css("#download-bundle").await;
    assert_eq!(
        bundle
            .attr("download")
            .await
            .expect("download attribute")
            .as_deref(),
        Some("piraeus-v2-upgrade-piraeus-datastore.sh")
    );
    let fetched = browser
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch(document.getElementById('download-bundle').href)
               .then(r => r.text().then(t => done([r.status, r.headers.get('content-disposition') || '', t])))
               .catch(e => done([0, String(e), '']));",
            vec![],
        )
        .await
        .expect("fetch the script in the page");
    assert_eq!(fetched[0], 200, "{fetched:?}");
    assert!(
        fetched[1]
            .as_str()
            .unwrap_or_default()
            .contains("attachment; filename=\"piraeus-v2-upgrade-piraeus-datastore.sh\""),
        "{fetched:?}"
    );
    let body = fetched[2].as_str().unwrap_or_default();
    let served = app
        .get(&format!("/api/v1/runs/{plan_id}/upgrade-plan.sh"))
        .send()
        .await
        .expect("fetch the script")
        .text()
        .await
        .expect("the script");
    assert_eq!(body, served);
    assert!(body.starts_with("#!/usr/bin/env bash") && body.contains("set -Eeuo pipefail"));
    assert!(body.contains("kind: LinstorCluster"), "the YAML is in the script");

    browser.close().await;
    app.stop().await;
}

/// What the page's log holds: lines in the page, the "earlier lines" count, the first and last
/// line numbers, and whether the page is the one `mark` was called on (it reloads itself when the
/// run's state changes).
async fn log_window(browser: &Browser, mark: bool) -> Value {
    let script = format!(
        "if ({mark}) {{ window.__window_mark = true; }}
         const lines = document.querySelectorAll('#log .ll');
         const hidden = document.getElementById('log-hidden-count');
         const state = document.getElementById('run-state');
         return {{ marked: window.__window_mark === true, lines: lines.length,
                  hidden: hidden ? Number(hidden.textContent) : -1,
                  first: lines.length ? Number(lines[0].id.substring(1)) : 0,
                  last: lines.length ? Number(lines[lines.length - 1].id.substring(1)) : 0,
                  state: state ? state.textContent.trim() : '' }};"
    );
    browser.client.execute(&script, vec![]).await.unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_log_keeps_its_last_lines_in_the_page_as_new_ones_stream_in() {
    let _one = ONE_BROWSER.lock().await;
    // Arrange: a migration waiting for approval whose log already has 6,000 more lines
    let app = app_on(timing()).await;
    let run = app
        .start(
            "migrate",
            common::CONTROLLER,
            // the tool's import: its rows stream in the downtime (the delta writes them before)
            json!({"approve_before_downtime": true, "import": "tool"}),
        )
        .await;
    let id = run["id"].as_str().expect("run id").to_string();
    app.wait_state(&id, "waiting").await;
    let db = linstor_migrator::db::Db::open(&app.data_dir)
        .await
        .expect("the database");
    let messages: Vec<String> = (0..6000).map(|i| format!("bulk line {i}.")).collect();
    let lines: Vec<(&str, &str)> = messages.iter().map(|m| ("stdout", m.as_str())).collect();
    db.append_lines(&id, None, &lines).await.expect("lines appended");
    let browser = Browser::start().await;
    sign_in(&browser, &app).await;
    browser
        .client
        .goto(&app.url(&format!("/runs/{id}")))
        .await
        .expect("open the run");
    let shown = log_window(&browser, false).await;
    assert_eq!(shown["lines"], 5000, "{shown}");
    let hidden = shown["hidden"].as_i64().unwrap();
    assert!(hidden > 1000, "{shown}");
    assert_eq!(shown["first"].as_i64(), Some(hidden + 1), "{shown}");
    assert_eq!(shown["last"].as_i64(), Some(hidden + 5000), "{shown}");

    // Act: the downtime begins; new lines stream into the page
    let res = app
        .post(&format!("/api/v1/runs/{id}/approve"), &json!({}))
        .send()
        .await
        .expect("approve");
    assert!(res.status().is_success(), "approve: {}", res.status());

    // Assert: on one page load, lines arrived live and the oldest went: still 5,000 lines in
    // the page, numbered on from the hidden ones
    let deadline = Instant::now() + PATIENCE;
    let mut mark_hidden: Option<i64> = None;
    loop {
        let w = log_window(&browser, false).await;
        match mark_hidden {
            Some(h0) if w["marked"] == true => {
                let h = w["hidden"].as_i64().unwrap_or(-1);
                if h > h0 {
                    assert_eq!(w["lines"], 5000, "{w}");
                    assert_eq!(w["first"].as_i64(), Some(h + 1), "{w}");
                    assert_eq!(w["last"].as_i64(), Some(h + 5000), "{w}");
                    break;
                }
            }
            // a fresh page (the first one, or one reloaded on a state change) that shows the
            // running run: mark it and remember how many lines it hid
            _ if w["state"] == "running" && w["lines"] == 5000 => {
                let marked = log_window(&browser, true).await;
                mark_hidden = marked["hidden"].as_i64();
            }
            _ => mark_hidden = None,
        }
        assert!(
            Instant::now() < deadline,
            "no line streamed into a page of the running run: {w}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    browser.close().await;
    app.stop().await;
}

/// The page's URL as the browser has it.
async fn current_url(browser: &Browser) -> url::Url {
    browser.client.current_url().await.expect("URL")
}

/// Waits until the browser has left `/login`, and returns where it went.
async fn left_login(browser: &Browser) -> url::Url {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let url = current_url(browser).await;
        if url.path() != "/login" {
            return url;
        }
        assert!(
            Instant::now() < deadline,
            "never landed anywhere after signing in (a navigation off-site that does not finish also stays here): {url}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_from_a_hostile_link_stays_on_this_site() {
    let _one = ONE_BROWSER.lock().await;
    // Arrange: a login link whose `next` Chromium reads as //evil.example (issue 19 item 1)
    let app = app_on(SimTiming::instant()).await;
    let browser = Browser::start().await;
    let origin = url::Url::parse(&app.base).expect("base URL").origin();
    browser
        .client
        .goto(&app.url("/login?next=%2F%09%2Fevil.example"))
        .await
        .expect("open the login link");

    // Act: sign in
    browser
        .css("#token")
        .await
        .send_keys(common::TOKEN)
        .await
        .expect("type the token");
    browser
        .css("form[action='/login'] button[type=submit]")
        .await
        .click()
        .await
        .expect("sign in");

    // Assert: the dashboard of this site, and so for every other such link once signed in
    let landed = left_login(&browser).await;
    assert_eq!(landed.origin(), origin, "left the site for {landed}");
    assert_eq!(landed.path(), "/");
    for next in [
        "%2F%5Cevil.example",
        "%2F.%2F%2Fevil.example",
        "%2F%0D%0A%2F%2Fevil.example",
        "https%3A%2F%2Fevil.example%2F",
        "%2F%09%2Fevil.example",
    ] {
        browser
            .client
            .goto(&app.url(&format!("/login?next={next}")))
            .await
            .expect("open the login link");
        let landed = left_login(&browser).await;
        assert_eq!(landed.origin(), origin, "next={next} left the site for {landed}");
        assert_eq!(landed.path(), "/", "next={next}");
    }
    browser.close().await;
    app.stop().await;
}

/// What the run page says about its live updates, in one round trip.
async fn stream_probe(browser: &Browser) -> Value {
    browser
        .client
        .execute(
            "const n = document.getElementById('stream-refused');
             const s = document.getElementById('log-status');
             const c = document.getElementById('downtime-clock');
             const d = document.getElementById('downtime');
             return { marked: window.__stream_mark === true,
                      refused: n ? n.textContent : '',
                      link: n && n.querySelector('a') ? n.querySelector('a').getAttribute('href') : '',
                      status: s ? s.textContent.trim() : '',
                      clock: c ? c.textContent.trim() : '',
                      downtime: !!d && !d.hidden,
                      lines: document.querySelectorAll('#log .ll').length };",
            vec![],
        )
        .await
        .unwrap_or_default()
}

/// Polls the run page until `ok` holds for its probe.
async fn wait_page(browser: &Browser, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let p = stream_probe(browser).await;
        if ok(&p) {
            return p;
        }
        assert!(Instant::now() < deadline, "the run page never showed {what}: {p}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How often the server refused a run's event stream (401 or 403), from its metrics.
async fn stream_refusals(app: &common::TestApp, token: &str) -> f64 {
    let text = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(token)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .filter(|l| {
            l.starts_with("linstor_migrator_http_requests_total{")
                && l.contains(r#"route="/api/v1/runs/{id}/events""#)
                && (l.contains(r#"status="401""#) || l.contains(r#"status="403""#))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The page has stopped: over more than the browser's reconnect interval and two clock ticks,
/// its clock stands still and it does not ask for the stream again.
async fn assert_page_stopped(browser: &Browser, app: &common::TestApp, token: &str) {
    let before = stream_probe(browser).await;
    let refused = stream_refusals(app, token).await;
    assert!(refused >= 1.0, "the server refused the stream: {refused}");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let after = stream_probe(browser).await;
    assert_eq!(before["clock"], after["clock"], "the downtime clock still ticks");
    assert!(!after["clock"].as_str().unwrap_or("").is_empty());
    assert_eq!(
        stream_refusals(app, token).await,
        refused,
        "the page asked for the stream again"
    );
}

/// A migration whose import takes minutes: it stays inside the downtime for the whole test.
fn long_downtime() -> SimTiming {
    SimTiming {
        import_per_row: Duration::from_millis(200),
        ..timing()
    }
}

/// Starts a migration with the tool's import (whose rows are written in the downtime; the delta
/// import, the default, writes them before the stop) and waits until it imports (the controller
/// is down).
async fn migration_in_downtime(app: &common::TestApp) -> String {
    let run = app
        .start("migrate", common::CONTROLLER, json!({"import": "tool"}))
        .await;
    let id = run["id"].as_str().expect("run id").to_string();
    app.wait_for(&id, "the import", |r| {
        r["steps"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["name"] == "import" && s["state"] == "running"))
    })
    .await;
    id
}

/// Opens the page of run `id` (in its downtime), waits until it follows the run, and marks it.
async fn open_run_page(browser: &Browser, app: &common::TestApp, id: &str) {
    browser
        .client
        .goto(&app.url(&format!("/runs/{id}")))
        .await
        .expect("open the run");
    wait_page(browser, "the live stream in the downtime", |p| {
        p["status"] == "live" && p["downtime"] == true
    })
    .await;
    browser
        .client
        .execute("window.__stream_mark = true;", vec![])
        .await
        .expect("mark the page");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_page_follows_its_run_across_restarts_until_the_token_changes() {
    let _one = ONE_BROWSER.lock().await;
    // Arrange: a signed-in browser on the page of a migration inside its downtime
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let path = dir.path().to_path_buf();
    let cluster = Arc::new(SimCluster::new(long_downtime()));
    let mut app = common::spawn_app_in(
        &path,
        EngineSettings::new(path.clone()),
        common::settings(),
        cluster.clone(),
    )
    .await;
    app._dir = Some(dir);
    let browser = Browser::start().await;
    sign_in(&browser, &app).await;
    let id = migration_in_downtime(&app).await;
    open_run_page(&browser, &app, &id).await;
    let before = stream_probe(&browser).await;

    // Act: the service restarts with the same configuration (issue 19 item 4)
    let app = common::restart_app(
        app,
        &path,
        EngineSettings::new(path.clone()),
        common::settings(),
        cluster.clone(),
    )
    .await;

    // Assert: the same page follows the run again, new log lines arrive, nothing is refused
    let lines_before = before["lines"].as_u64().unwrap_or(0);
    let p = wait_page(&browser, "new lines after the restart", |p| {
        p["status"] == "live" && p["lines"].as_u64().unwrap_or(0) > lines_before
    })
    .await;
    assert_eq!(p["marked"], true, "the same page, not a reload or the login page");
    assert_eq!(p["refused"], "", "{p}");

    // Act: the service restarts with another token for `ops` (the browser's session is void)
    let mut rotated = common::settings();
    let new_token = "rotated-token-for-ops-3e7d";
    rotated.tokens = Some(format!("ops:{new_token},ci-bot:{}", common::OTHER_TOKEN));
    let app = common::restart_app(app, &path, EngineSettings::new(path.clone()), rotated, cluster).await;

    // Assert: the page says so, stops its clock and offers to sign in, instead of reconnecting
    let p = wait_page(&browser, "the sign-in offer", |p| p["refused"] != "").await;
    assert_eq!(p["marked"], true, "the same page");
    assert!(
        p["refused"]
            .as_str()
            .unwrap_or("")
            .contains("Your session has ended"),
        "{p}"
    );
    assert_eq!(p["status"], "not updating");
    assert_eq!(p["link"], format!("/login?next=%2Fruns%2F{id}"));
    assert_page_stopped(&browser, &app, common::OTHER_TOKEN).await;
    browser.screenshot("run-page-signed-out").await;

    // Act: sign in again from the offer, with the new token
    browser
        .css("#sign-in-again")
        .await
        .click()
        .await
        .expect("sign in again");
    browser.wait_path("the login page", |p| p == "/login").await;
    browser
        .css("#token")
        .await
        .send_keys(new_token)
        .await
        .expect("type the token");
    browser
        .css("form[action='/login'] button[type=submit]")
        .await
        .click()
        .await
        .expect("sign in");

    // Assert: back on the run page, following the run
    browser
        .wait_path("the run page", |p| p == format!("/runs/{id}"))
        .await;
    wait_page(&browser, "the live stream", |p| {
        p["status"] == "live" && p["refused"] == ""
    })
    .await;
    browser.close().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_page_whose_session_expires_offers_to_sign_in_again() {
    let _one = ONE_BROWSER.lock().await;
    // Arrange: sessions of 15 s, a browser signed in on the page of a migration in its downtime
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let path = dir.path().to_path_buf();
    let mut http = common::settings();
    http.session_ttl = Duration::from_secs(15);
    let mut app = common::spawn_app_in(
        &path,
        EngineSettings::new(path.clone()),
        http,
        Arc::new(SimCluster::new(long_downtime())),
    )
    .await;
    app._dir = Some(dir);
    let id = migration_in_downtime(&app).await;
    let browser = Browser::start().await;
    sign_in(&browser, &app).await;
    let signed_in = Instant::now();
    open_run_page(&browser, &app, &id).await;
    assert!(
        signed_in.elapsed() < Duration::from_secs(15),
        "the page opened before the session expired"
    );

    // Act: the session expires (the server ends its event stream then)
    // Assert: the page's reconnect is refused; it says so and stops its clock
    let p = wait_page(&browser, "the sign-in offer", |p| p["refused"] != "").await;
    assert_eq!(p["marked"], true, "the same page, no reload");
    assert_eq!(p["status"], "not updating");
    assert!(
        p["link"].as_str().unwrap_or("").starts_with("/login?next="),
        "{p}"
    );
    assert_page_stopped(&browser, &app, common::TOKEN).await;
    // the run itself went on
    let run = app.get_json("/api/v1/runs").await;
    assert_eq!(run[0]["state"], "running", "{run}");
    browser.close().await;
    app.stop().await;
}

#[path = "browser/ui.rs"]
mod ui;
