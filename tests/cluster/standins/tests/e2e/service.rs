//! The service under test as a process: `linstor-migrator serve` with token auth, authenticated
//! to the API server as its chart ServiceAccount, pointed at the test's REST stand-in and the
//! test's pod paths. Plus a small client of its JSON API.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::process::{Child, Command};

use super::install::Installation;
use super::observe;
use super::process::{free_port, spawn};
use super::suite::suite;

const TOKEN: &str = "e2e-token-3c9f1a";

pub struct Service {
    pub base: String,
    dir: PathBuf,
    command: Vec<String>,
    env: Vec<(String, String)>,
    child: Option<Child>,
    http: reqwest::Client,
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.start_kill();
        }
    }
}

impl Service {
    /// Starts the service for `inst`; returns once `/livez` answers.
    pub async fn start(inst: &Installation) -> Service {
        Self::start_with(inst, &[]).await
    }

    /// [`Service::start`] with more environment (e.g. `LINSTOR_MIGRATOR_KUBE_TIMEOUT`).
    pub async fn start_with(inst: &Installation, more_env: &[(&str, &str)]) -> Service {
        let s = suite();
        let port = free_port();
        let path = |p: &PathBuf| p.display().to_string();
        let command = vec![
            "serve".to_string(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--data-dir".into(),
            path(&inst.dir.join("data")),
            "--auth".into(),
            "token".into(),
            "--linstor-url".into(),
            inst.rest_url.clone(),
            "--tool-path".into(),
            path(&inst.tool),
            "--source-config-dir".into(),
            path(&inst.source_config_dir),
            "--target-config-dir".into(),
            path(&inst.target_config_dir),
            "--backup-dir".into(),
            path(&inst.backup_dir),
        ];
        let mut env = vec![
            ("KUBECONFIG".to_string(), path(&s.service_kubeconfig)),
            ("LINSTOR_MIGRATOR_TOKEN".into(), TOKEN.into()),
            // the same identity after a restart, as a restarted container of one pod has
            ("POD_NAME".into(), format!("linstor-migrator-e2e-{}", inst.ns)),
            (
                "RUST_LOG".into(),
                std::env::var("E2E_SERVICE_LOG").unwrap_or_else(|_| "info,kube=warn,hyper=warn".into()),
            ),
        ];
        env.extend(more_env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let mut svc = Service {
            base: format!("http://127.0.0.1:{port}"),
            dir: inst.dir.clone(),
            command,
            env,
            child: None,
            http,
        };
        svc.spawn().await;
        svc
    }

    async fn spawn(&mut self) {
        let mut cmd = Command::new(&suite().bins.migrator);
        cmd.args(&self.command).envs(self.env.iter().map(|(k, v)| (k, v)));
        self.child = Some(spawn(&self.dir, "linstor-migrator", &mut cmd));
        let url = format!("{}/livez", self.base);
        let http = self.http.clone();
        observe::wait_for(Duration::from_secs(30), "the service answers /livez", || {
            let (http, url) = (http.clone(), url.clone());
            async move { http.get(&url).send().await.is_ok_and(|r| r.status().is_success()) }
        })
        .await;
    }

    /// The process id of the running service.
    #[allow(dead_code)] // the downtime benchmark reads its peak memory
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// SIGKILL, as an OOM kill or a node failure would.
    pub async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.start_kill().unwrap();
            c.wait().await.unwrap();
        }
    }

    /// Starts the process again with the same data directory and flags.
    pub async fn restart(&mut self) {
        self.kill().await;
        self.spawn().await;
    }

    /// Sends `request` with the token; its status and JSON body (null when it has none).
    async fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let r = request.bearer_auth(TOKEN).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.http.get(format!("{}{path}", self.base))).await
    }

    /// `POST` without a body (an action such as `/api/v1/runs/{id}/approve`).
    pub async fn post(&self, path: &str) -> (u16, Value) {
        self.send(self.http.post(format!("{}{path}", self.base))).await
    }

    /// Waits until the run is in `state`; returns it.
    pub async fn wait_state(&self, id: &str, state: &str, timeout: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let run = self.run(id).await;
            if run["state"] == state {
                return run;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "run {id} not {state} after {timeout:?}: {run:#}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn bytes(&self, path: &str) -> Vec<u8> {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.bytes().await.unwrap().to_vec()
    }

    /// `POST /api/v1/runs`; returns the status and the body.
    pub async fn start_run(&self, kind: &str, controller: &str, options: Value) -> (u16, Value) {
        let body = json!({"kind": kind, "controller": controller, "options": options});
        self.send(self.http.post(format!("{}/api/v1/runs", self.base)).json(&body))
            .await
    }

    /// Starts a run and asserts 201; returns its id.
    pub async fn start_ok(&self, kind: &str, controller: &str) -> String {
        let (status, body) = self.start_run(kind, controller, json!({})).await;
        assert_eq!(status, 201, "POST /api/v1/runs: {body}");
        body["id"].as_str().expect("a run id").to_string()
    }

    pub async fn run(&self, id: &str) -> Value {
        let (status, body) = self.get(&format!("/api/v1/runs/{id}")).await;
        assert_eq!(status, 200, "GET run {id}: {body}");
        body
    }

    /// Waits until the run is in a final state; returns it.
    pub async fn wait_final(&self, id: &str, timeout: Duration) -> Value {
        let final_states = [
            "succeeded",
            "failed",
            "cancelled",
            "rolled_back",
            "rollback_failed",
        ];
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let run = self.run(id).await;
            if final_states.contains(&run["state"].as_str().unwrap_or_default()) {
                return run;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "run {id} not final after {timeout:?}: {run:#}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until `step` of the run is running.
    pub async fn wait_step_running(&self, id: &str, step: &str, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let run = self.run(id).await;
            if step_state(&run, step) == "running" {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "step {step} of run {id} not running: {run:#}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The whole log of a run as text (for failure messages).
    pub async fn log_text(&self, id: &str) -> String {
        let r = self
            .http
            .get(format!("{}/api/v1/runs/{id}/logs.txt", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await;
        match r {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(e) => format!("(no log: {e})"),
        }
    }
}

/// The state of one step in a run's JSON.
pub fn step_state(run: &Value, step: &str) -> String {
    step_json(run, step)["state"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

pub fn step_json<'a>(run: &'a Value, step: &str) -> &'a Value {
    run["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == step))
        .unwrap_or(&Value::Null)
}
