//! The model's `linstor-database`, given each recorded scenario (tests/fixtures/linstor-1.33.3/
//! tool/*.txt), prints the same stdout and stderr lines (clock times, identity hashes and MAC
//! bytes aside) and exits with the same code; its export has the recorded shape.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use linstor_fake::export::ExportDocument;
use linstor_fake::k8s::{CRD_GROUP, Denied, GROUP, K8sApi, K8sStore, StoreApi};
use linstor_fake::recorded::{Transcript, normalize};
use linstor_fake::tool::cli::Command;
use linstor_fake::tool::{self, Fault, Host, Wait};

/// The recording machine: paths relative to its work dir, shown under `/fixture`.
struct Recording {
    files: Mutex<BTreeMap<String, Vec<u8>>>,
    etcd: BTreeMap<String, ExportDocument>,
    k8s: Option<StoreApi<Arc<Mutex<K8sStore>>>>,
    out: Mutex<Vec<String>>,
    err: Mutex<Vec<String>>,
}

#[async_trait]
impl Host for Recording {
    async fn out(&self, line: String) {
        self.out.lock().unwrap().push(line);
    }
    async fn err(&self, line: String) {
        self.err.lock().unwrap().push(line);
    }
    fn absolute(&self, path: &str) -> String {
        format!("/fixture/{path}")
    }
    async fn read(&self, path: &str) -> Result<Vec<u8>, String> {
        self.files
            .lock()
            .unwrap()
            .get(path)
            .cloned()
            .ok_or_else(|| "No such file or directory".into())
    }
    async fn write(&self, path: &str, bytes: Vec<u8>) -> Result<(), String> {
        self.files.lock().unwrap().insert(path.into(), bytes);
        Ok(())
    }
    async fn etcd(&self, url: &str) -> Option<ExportDocument> {
        self.etcd.get(url).cloned()
    }
    fn k8s(&self) -> Option<&dyn K8sApi> {
        self.k8s.as_ref().map(|k| k as &dyn K8sApi)
    }
    fn fault(&self, _: Command) -> Option<Fault> {
        None
    }
    async fn wait(&self, _: Wait) {}
}

fn recorded_export() -> Vec<u8> {
    std::fs::read(linstor_fake::recorded::fixtures().join("linstor-1.33.3/dataset/export-etcd.json")).unwrap()
}

/// The kube-apiserver of a scenario: fresh or with the data of an earlier import, as `user`.
fn api_server(store: Arc<Mutex<K8sStore>>, user: &str, denied: Denied) -> StoreApi<Arc<Mutex<K8sStore>>> {
    StoreApi {
        store,
        server: "https://127.0.0.1:6443".into(),
        user: user.into(),
        denied,
    }
}

fn imported_store() -> Arc<Mutex<K8sStore>> {
    let doc = linstor_fake::dataset::recorded();
    let mut s = K8sStore::default();
    let tables: Vec<_> = doc
        .tables
        .iter()
        .map(|t| (linstor_fake::schema::table(&t.name).unwrap(), t.data.as_slice()))
        .collect();
    s.load(&tables);
    Arc::new(Mutex::new(s))
}

fn scenario(name: &str) -> Recording {
    let mut files = BTreeMap::new();
    for (dir, url) in [
        ("cfg-etcd", Some("etcd://127.0.0.1:2379")),
        ("cfg-k8s", Some("k8s")),
        ("cfg-badetcd", Some("etcd://127.0.0.1:2999")),
        ("cfg-empty", None),
    ] {
        if let Some(u) = url {
            files.insert(
                format!("{dir}/linstor.toml"),
                format!("[db]\n  connection_url = \"{u}\"\n").into_bytes(),
            );
        }
    }
    let export = recorded_export();
    files.insert("inputs/truncated.json".into(), export[..20000].to_vec());
    let mut newer: serde_json::Value = serde_json::from_slice(&export).unwrap();
    newer["linstor_version"] = "1.99.0".into();
    files.insert(
        "inputs/export-v1.99.0.json".into(),
        serde_json::to_vec(&newer).unwrap(),
    );
    if name.starts_with("02") || name.starts_with("04") || name.starts_with("1") {
        files.insert("dataset/export-etcd.json".into(), export);
    }
    let crd_readonly = Denied::none()
        .deny(CRD_GROUP, "customresourcedefinitions", "create")
        .deny(CRD_GROUP, "customresourcedefinitions", "update")
        .deny(CRD_GROUP, "customresourcedefinitions", "patch")
        .deny(CRD_GROUP, "customresourcedefinitions", "delete");
    let k8s = match &name[..2] {
        "02" | "13" | "14" => {
            let fresh = Arc::new(Mutex::new(K8sStore::default()));
            Some(match &name[..2] {
                "13" => api_server(fresh, "nocrd", crd_readonly),
                "14" => api_server(
                    fresh,
                    "nocrd",
                    Denied::none().deny(CRD_GROUP, "customresourcedefinitions", "create"),
                ),
                _ => api_server(fresh, "admin", Denied::none()),
            })
        }
        "12" => Some(api_server(
            imported_store(),
            "nodelete",
            Denied::none().deny(GROUP, "*", "deletecollection"),
        )),
        "15" => Some(api_server(imported_store(), "nocrd", crd_readonly)),
        _ => Some(api_server(imported_store(), "admin", Denied::none())),
    };
    Recording {
        files: Mutex::new(files),
        etcd: [(
            "etcd://127.0.0.1:2379".to_string(),
            linstor_fake::dataset::recorded(),
        )]
        .into(),
        k8s,
        out: Mutex::default(),
        err: Mutex::default(),
    }
}

fn normalized(lines: &[String]) -> Vec<String> {
    lines.iter().map(|l| normalize(l)).collect()
}

#[tokio::test]
async fn every_recorded_scenario_prints_and_exits_like_the_real_tool() {
    let all = Transcript::all().unwrap();
    assert_eq!(all.len(), 17);
    for (name, t) in all {
        assert!(
            !t.stdout.is_empty() || !t.stderr.is_empty(),
            "{name}: an empty recording"
        );
        let host = scenario(&name);
        let code = tool::run(&t.args, &host).await;
        let out = host.out.lock().unwrap().clone();
        let err = host.err.lock().unwrap().clone();
        assert_eq!(normalized(&out), normalized(&t.stdout), "{name}: stdout");
        assert_eq!(normalized(&err), normalized(&t.stderr), "{name}: stderr");
        assert_eq!(code, t.exit_code, "{name}: exit code");
    }
}

#[tokio::test]
async fn the_export_from_etcd_is_the_recorded_file_but_for_its_timestamp() {
    let t = Transcript::load("01-export-etcd-ok.txt").unwrap();
    let host = scenario("01");
    assert_eq!(tool::run(&t.args, &host).await, 0);
    let written = host.files.lock().unwrap()["dataset/export-etcd.json"].clone();
    let mut ours: serde_json::Value = serde_json::from_slice(&written).unwrap();
    let mut real: serde_json::Value = serde_json::from_slice(&recorded_export()).unwrap();
    assert!(ours["export_timestamp_ms"].as_i64().unwrap() > real["export_timestamp_ms"].as_i64().unwrap());
    ours["export_timestamp_ms"] = 0.into();
    real["export_timestamp_ms"] = 0.into();
    // same header, same tables in the same order, same rows in the same (etcd key) order
    assert_eq!(ours, real);
    assert!(!written.contains(&b'\n'), "one line, as the real tool writes it");
}
