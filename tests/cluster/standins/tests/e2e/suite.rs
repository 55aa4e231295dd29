//! What all cluster tests share, set up once per test process: the loopback control plane that
//! `tests/cluster/e2e` started (its `env` file's variables), the three Piraeus v1 CRDs as the chart
//! ships them, and the RBAC that the project's Helm chart renders, applied for real. The service
//! authenticates with its ServiceAccount's token, so a rule the chart lacks fails a test.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The chart's release name and namespace (the service's ServiceAccount and Lease live there).
pub const RELEASE: &str = "linstor-migrator";
pub const RELEASE_NS: &str = "linstor-migrator";
/// The ClusterRoleBinding that gives the controllers' ServiceAccounts the k8s-backend rights.
pub const K8S_BACKEND_BINDING: &str = "linstor-migrator-k8s-backend";
/// One namespace per test; the chart binds the k8s-backend rights to `linstor-controller` in each.
pub const NAMESPACES: [&str; 23] = [
    "piraeus-datastore",
    "e2e-rollback",
    "e2e-resume",
    "e2e-rbac",
    "e2e-concurrent",
    "e2e-foreign",
    "e2e-backup",
    "storage",
    "e2e-operator",
    "e2e-crash-stop",
    "e2e-crash-import",
    "e2e-crash-start",
    "e2e-upgrade",
    "e2e-delta-equal",
    "e2e-delta-changed",
    "e2e-delta-fallback",
    "e2e-v1-25-1",
    "e2e-v1-25-1-tool",
    "e2e-v1-33-3-tool",
    "e2e-v1-25-1-rollback",
    "e2e-v1-25-1-delta-equal",
    "e2e-faults",
    "e2e-processes",
];

/// The binaries under test.
pub struct Bins {
    pub migrator: PathBuf,
    pub tool: PathBuf,
    pub rest: PathBuf,
    pub operator: PathBuf,
}

pub struct Suite {
    pub api_server: String,
    pub ca_cert: PathBuf,
    pub admin_kubeconfig: PathBuf,
    pub helm: PathBuf,
    pub kubectl: PathBuf,
    pub repo: PathBuf,
    /// Where tests keep their files (pod "filesystems", logs, data dirs).
    pub work: PathBuf,
    /// Kubeconfig with the service ServiceAccount's token, through the fault-injecting proxy
    /// when start.sh started one (`CLUSTER_FAULT_PROXY`).
    pub service_kubeconfig: PathBuf,
    /// The same ServiceAccount, straight to the API server (a CLI beside the service).
    pub direct_kubeconfig: PathBuf,
    /// The control API of the fault-injecting proxy, when there is one.
    pub fault_proxy_control: Option<String>,
    pub bins: Bins,
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the cluster tests with tests/cluster/e2e (or source a start.sh env file)"
        )
    })
}

/// Runs a command, feeding `stdin`; panics with its output when it fails.
pub fn run(cmd: &mut Command, stdin: Option<&str>) -> String {
    use std::io::Write;
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(input.as_bytes())
            .expect("writing stdin");
    }
    let out = child.wait_with_output().expect("waiting for a command");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

impl Suite {
    pub fn kubectl(&self) -> Command {
        let mut c = Command::new(&self.kubectl);
        c.env("KUBECONFIG", &self.admin_kubeconfig);
        c
    }

    /// A kubeconfig for a bearer token (the CA by path: every client here runs on this machine).
    pub fn write_token_kubeconfig(&self, path: &Path, token: &str, namespace: &str) {
        let cluster = serde_json::json!({"server": self.api_server, "certificate-authority": self.ca_cert});
        Self::write_kubeconfig(path, cluster, token, namespace);
    }

    fn write_kubeconfig(path: &Path, cluster: serde_json::Value, token: &str, namespace: &str) {
        let config = serde_json::json!({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "e2e", "cluster": cluster}],
            "users": [{"name": "token", "user": {"token": token}}],
            "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": "token", "namespace": namespace}}],
            "current-context": "e2e",
        });
        std::fs::write(path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    }

    /// A fresh token of a ServiceAccount.
    pub fn token(&self, ns: &str, service_account: &str) -> String {
        run(
            self.kubectl()
                .args(["-n", ns, "create", "token", service_account, "--duration=4h"]),
            None,
        )
        .trim()
        .to_string()
    }

    /// The chart's templates `files`, rendered with one controller ServiceAccount per test namespace.
    /// Cluster-wide (`rbac.clusterWide`): every test deletes and recreates its namespace, which
    /// would take a namespaced Role with it.
    pub fn render_chart(&self, files: &[&str]) -> String {
        let mut cmd = Command::new(&self.helm);
        cmd.args(["template", RELEASE])
            .arg(self.repo.join("deploy/linstor-migrator"))
            .args(["--namespace", RELEASE_NS])
            .args(["--set", "rbac.clusterWide=true"]);
        for (i, ns) in NAMESPACES.iter().enumerate() {
            cmd.arg("--set")
                .arg(format!("controllerRbac.serviceAccounts[{i}].namespace={ns}"));
            cmd.arg("--set").arg(format!(
                "controllerRbac.serviceAccounts[{i}].name=linstor-controller"
            ));
        }
        for f in files {
            cmd.args(["--show-only", f]);
        }
        run(&mut cmd, None)
    }

    /// Applies the chart's k8s-backend ClusterRole and its binding (again).
    pub fn apply_controller_rbac(&self) {
        let manifest = self.render_chart(&["templates/rbac-controller.yaml"]);
        run(self.kubectl().args(["apply", "-f", "-"]), Some(&manifest));
    }

    fn setup() -> Suite {
        let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let repo = manifest_dir
            .join("../../..")
            .canonicalize()
            .expect("the repository root");
        let cluster_dir = PathBuf::from(env("CLUSTER_DIR"));
        let work = std::env::var_os("E2E_WORK_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| cluster_dir.join("e2e"));
        std::fs::create_dir_all(&work).unwrap();
        let work = work.canonicalize().unwrap();
        // the root crate's binary is not this package's: next to this test's deps directory
        let target = std::env::current_exe()
            .unwrap()
            .parent()
            .and_then(Path::parent)
            .unwrap()
            .to_path_buf();
        let migrator = std::env::var_os("E2E_MIGRATOR_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| target.join("linstor-migrator"));
        assert!(
            migrator.is_file(),
            "{} is missing: cargo build --workspace --bins",
            migrator.display()
        );
        let suite = Suite {
            api_server: env("CLUSTER_API_SERVER"),
            ca_cert: PathBuf::from(env("CLUSTER_CA_CERT")),
            admin_kubeconfig: PathBuf::from(env("KUBECONFIG")),
            helm: PathBuf::from(env("CLUSTER_BIN")).join("helm"),
            kubectl: PathBuf::from(std::env::var("KUBECTL").unwrap_or_else(|_| "/usr/bin/kubectl".into())),
            repo,
            service_kubeconfig: work.join("service.kubeconfig"),
            direct_kubeconfig: work.join("direct.kubeconfig"),
            fault_proxy_control: std::env::var("CLUSTER_FAULT_PROXY_CONTROL").ok(),
            work,
            bins: Bins {
                migrator,
                tool: PathBuf::from(env!("CARGO_BIN_EXE_linstor-database")),
                rest: PathBuf::from(env!("CARGO_BIN_EXE_linstor-rest")),
                operator: PathBuf::from(env!("CARGO_BIN_EXE_piraeus-operator")),
            },
        };
        // the chart's own v1 CRDs (server-side: the LinstorCSIDriver CRD is too large for the
        // last-applied annotation of a client-side apply)
        run(
            suite
                .kubectl()
                .args(["apply", "--server-side", "--force-conflicts", "-f"])
                .arg(suite.repo.join("tests/fixtures/piraeus-v1.10.8/crds")),
            None,
        );
        run(
            suite
                .kubectl()
                .args(["wait", "--for=condition=Established", "--timeout=60s"])
                .args(V1_CRDS.map(|c| format!("crd/{c}"))),
            None,
        );
        let ns = format!(
            "{{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{{\"name\":\"{RELEASE_NS}\"}}}}"
        );
        run(suite.kubectl().args(["apply", "-f", "-"]), Some(&ns));
        let rbac = suite.render_chart(&[
            "templates/serviceaccount.yaml",
            "templates/rbac.yaml",
            "templates/rbac-controller.yaml",
        ]);
        std::fs::write(suite.work.join("chart-rbac.yaml"), &rbac).unwrap();
        run(suite.kubectl().args(["apply", "-f", "-"]), Some(&rbac));
        let token = suite.token(RELEASE_NS, RELEASE);
        suite.write_token_kubeconfig(&suite.direct_kubeconfig, &token, RELEASE_NS);
        match std::env::var("CLUSTER_FAULT_PROXY") {
            // plain HTTP on loopback to the proxy, which speaks TLS to the API server
            Ok(proxy) => Self::write_kubeconfig(
                &suite.service_kubeconfig,
                serde_json::json!({"server": proxy}),
                &token,
                RELEASE_NS,
            ),
            Err(_) => suite.write_token_kubeconfig(&suite.service_kubeconfig, &token, RELEASE_NS),
        }
        suite
    }

    /// Appends a line to the measurement report (`E2E_REPORT`) and prints it.
    /// Lifts every rule of the fault-injecting proxy, when there is one.
    pub async fn clear_faults(&self) {
        let Some(control) = &self.fault_proxy_control else {
            return;
        };
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let r = http
            .put(format!("{control}/rules"))
            .json(&serde_json::json!([]))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "PUT /rules: {}", r.status());
    }

    pub fn report(&self, line: &str) {
        use std::io::Write;
        eprintln!("REPORT {line}");
        if let Some(path) = std::env::var_os("E2E_REPORT") {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .unwrap();
            writeln!(f, "{line}").unwrap();
        }
    }
}

/// The suite, set up on first use.
pub fn suite() -> &'static Suite {
    static SUITE: OnceLock<Suite> = OnceLock::new();
    SUITE.get_or_init(Suite::setup)
}

/// The v1 CRDs, as chart 1.10.8 ships them (`tests/fixtures/piraeus-v1.10.8/crds`).
const V1_CRDS: [&str; 3] = [
    "linstorcontrollers.piraeus.linbit.com",
    "linstorsatellitesets.piraeus.linbit.com",
    "linstorcsidrivers.piraeus.linbit.com",
];
