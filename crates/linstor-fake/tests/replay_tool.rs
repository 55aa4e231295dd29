//! The model's `linstor-database`, given each recorded scenario of every recorded release
//! (`tests/fixtures/linstor-<version>/tool/*.txt`), prints the same stdout and stderr lines (clock
//! times, identity hashes and MAC bytes aside) and exits with the same code; it lingers after its
//! last line where the real one did (1.25.1 on `k8s`); its export has the recorded shape.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use linstor_fake::Release;
use linstor_fake::export::ExportDocument;
use linstor_fake::k8s::{CRD_GROUP, Denied, GROUP, K8sApi, K8sStore, StoreApi};
use linstor_fake::recorded::{Transcript, fixtures_of, normalize};
use linstor_fake::tool::cli::Command;
use linstor_fake::tool::{self, Fault, Host, Wait};

/// The recording machine: paths relative to its work dir, shown under `/fixture`.
struct Recording {
    release: Release,
    files: Mutex<BTreeMap<String, Vec<u8>>>,
    etcd: BTreeMap<String, ExportDocument>,
    k8s: Option<StoreApi<Arc<Mutex<K8sStore>>>>,
    out: Mutex<Vec<String>>,
    err: Mutex<Vec<String>>,
    waits: Mutex<Vec<Wait>>,
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
    fn version(&self) -> String {
        self.release.version().into()
    }
    fn fault(&self, _: Command) -> Option<Fault> {
        None
    }
    async fn wait(&self, what: Wait) {
        self.waits.lock().unwrap().push(what);
    }
}

fn recorded_export(release: Release) -> Vec<u8> {
    release.facts().export_etcd.as_bytes().to_vec()
}

/// The backend after a fresh import of `release`'s recorded dataset by `release`.
fn imported_store(release: Release) -> Arc<Mutex<K8sStore>> {
    let doc = release.recorded_export();
    let mut s = K8sStore::default();
    let tables: Vec<_> = doc
        .tables
        .iter()
        .map(|t| (release.table(&t.name).unwrap(), t.data.as_slice()))
        .collect();
    s.load(release, &tables);
    Arc::new(Mutex::new(s))
}

/// The kube-apiserver of a scenario of `release`: which store, which user, what is denied.
fn api_server(release: Release, name: &str, t: &Transcript) -> Option<StoreApi<Arc<Mutex<K8sStore>>>> {
    let crd_readonly = Denied::none()
        .deny(CRD_GROUP, "customresourcedefinitions", "create")
        .deny(CRD_GROUP, "customresourcedefinitions", "update")
        .deny(CRD_GROUP, "customresourcedefinitions", "patch")
        .deny(CRD_GROUP, "customresourcedefinitions", "delete");
    let no_crd_create = Denied::none().deny(CRD_GROUP, "customresourcedefinitions", "create");
    let fresh = || Arc::new(Mutex::new(K8sStore::default()));
    // 1.25.1's RBAC users come from their kubeconfig (whose user entry fabric8 names `admin`)
    let user = match t.env_var("KUBECONFIG") {
        Some(k) if k != "kubeconfig" => k.trim_start_matches("kubeconfig-").to_string(),
        _ => "admin".to_string(),
    };
    let (store, user, denied, port) = match (release, &name[..2]) {
        (_, "18") => return None,
        (Release::V1_33_3, "12") => (
            imported_store(release),
            "nodelete".to_string(),
            Denied::none().deny(GROUP, "*", "deletecollection"),
            6443,
        ),
        (Release::V1_33_3, "13") => (fresh(), "nocrd".into(), crd_readonly, 6443),
        (Release::V1_33_3, "14") => (fresh(), "nocrd".into(), no_crd_create, 6443),
        (Release::V1_33_3, "15") => (imported_store(release), "nocrd".into(), crd_readonly, 6443),
        (_, "13") => (fresh(), user, crd_readonly, 6643),
        (_, "14") => (fresh(), user, no_crd_create, 6643),
        (_, "15") => (imported_store(release), user, crd_readonly, 6643),
        // 1.33.3's schema and objects, LinstorVersion 31 (k8s/preexisting-1.33.3.txt)
        (_, "17") => (imported_store(Release::V1_33_3), user, Denied::none(), 6543),
        (_, "02") => (fresh(), user, Denied::none(), 6443),
        _ => (imported_store(release), user, Denied::none(), 6443),
    };
    Some(StoreApi {
        store,
        server: format!("https://127.0.0.1:{port}"),
        user,
        config_user: Some("admin".into()),
        denied,
    })
}

fn scenario(release: Release, name: &str, t: &Transcript) -> Recording {
    let mut files = BTreeMap::new();
    for (dir, url) in [
        ("cfg-etcd", Some("etcd://127.0.0.1:2379")),
        ("cfg-k8s", Some("k8s")),
        ("cfg-badetcd", Some("etcd://127.0.0.1:2999")),
        ("cfg-etcd-unreachable", Some("etcd://127.0.0.1:2399")),
        ("cfg-empty", None),
    ] {
        if let Some(u) = url {
            files.insert(
                format!("{dir}/linstor.toml"),
                format!("[db]\n  connection_url = \"{u}\"\n").into_bytes(),
            );
        }
    }
    // the first run in the recording's work dir created the error reporter's database
    if name != "01-export-etcd-ok.txt" || release == Release::V1_33_3 {
        files.insert("logs/error-report.mv.db".into(), Vec::new());
    }
    let export = recorded_export(release);
    files.insert("inputs/truncated.json".into(), export[..20000].to_vec());
    let mut newer: serde_json::Value = serde_json::from_slice(&export).unwrap();
    newer["linstor_version"] = "1.99.0".into();
    files.insert(
        "inputs/export-v1.99.0.json".into(),
        serde_json::to_vec(&newer).unwrap(),
    );
    files.insert(
        "export-etcd-1.33.3.json".into(),
        recorded_export(Release::V1_33_3),
    );
    for path in ["dataset/export-etcd.json", "export-etcd.json"] {
        files.insert(path.into(), export.clone());
    }
    Recording {
        release,
        files: Mutex::new(files),
        etcd: [("etcd://127.0.0.1:2379".to_string(), release.recorded_export())].into(),
        k8s: api_server(release, name, t),
        out: Mutex::default(),
        err: Mutex::default(),
        waits: Mutex::default(),
    }
}

fn normalized(lines: &[String]) -> Vec<String> {
    lines.iter().map(|l| normalize(l)).collect()
}

#[tokio::test]
async fn every_recorded_scenario_prints_and_exits_like_the_real_tool() {
    for release in Release::ALL {
        let all = Transcript::all(release).unwrap();
        assert!(all.len() >= 16, "{release}: {} transcripts", all.len());
        for (name, t) in all {
            assert!(
                !t.stdout.is_empty() || !t.stderr.is_empty(),
                "{release} {name}: an empty recording"
            );
            let host = scenario(release, &name, &t);
            let code = tool::run(&t.args, &host).await;
            let out = host.out.lock().unwrap().clone();
            let err = host.err.lock().unwrap().clone();
            assert_eq!(
                normalized(&out),
                normalized(&t.stdout),
                "{release} {name}: stdout"
            );
            assert_eq!(
                normalized(&err),
                normalized(&t.stderr),
                "{release} {name}: stderr"
            );
            assert_eq!(code, t.exit_code, "{release} {name}: exit code");
            // the process outlives its last line by a minute where the recording says so
            // (timing.txt of 1.25.1: every k8s run, finished or failed)
            let lingered = host.waits.lock().unwrap().contains(&Wait::ExitDelay);
            let on_k8s = t.args.iter().any(|a| a == "cfg-k8s");
            assert_eq!(
                lingered,
                on_k8s && release.recorded().k8s_exit_delay_s > 0,
                "{release} {name}: exit delay ({} s wall)",
                t.wall_time_s
            );
        }
    }
}

#[tokio::test]
async fn the_export_from_etcd_is_the_recorded_file_but_for_its_timestamp() {
    for release in Release::ALL {
        let t = Transcript::load(release, "01-export-etcd-ok.txt").unwrap();
        let host = scenario(release, "01-export-etcd-ok.txt", &t);
        assert_eq!(tool::run(&t.args, &host).await, 0);
        let file = t.args.last().unwrap().clone();
        let written = host.files.lock().unwrap()[&file].clone();
        let mut ours: serde_json::Value = serde_json::from_slice(&written).unwrap();
        let mut real: serde_json::Value = serde_json::from_slice(&recorded_export(release)).unwrap();
        assert!(
            ours["export_timestamp_ms"].as_i64().unwrap() > real["export_timestamp_ms"].as_i64().unwrap()
        );
        ours["export_timestamp_ms"] = 0.into();
        real["export_timestamp_ms"] = 0.into();
        // same header, same tables in the same order, same rows in the same (etcd key) order
        assert_eq!(ours, real, "{release}");
        assert!(!written.contains(&b'\n'), "one line, as the real tool writes it");
    }
}

#[tokio::test]
async fn the_export_from_k8s_has_the_recorded_rows() {
    for release in Release::ALL {
        let t = Transcript::load(release, "03-export-k8s-ok.txt").unwrap();
        let host = scenario(release, "03-export-k8s-ok.txt", &t);
        assert_eq!(tool::run(&t.args, &host).await, 0);
        let written = host.files.lock().unwrap()[t.args.last().unwrap()].clone();
        let ours: ExportDocument = serde_json::from_slice(&written).unwrap();
        let path = fixtures_of(release).join("dataset/export-k8s.json");
        let real: ExportDocument = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        assert_eq!(ours.exported_from, "k8s");
        assert_eq!(
            (&ours.data_version, &ours.k8s_version, ours.tables.len()),
            (&real.data_version, &real.k8s_version, real.tables.len()),
            "{release}"
        );
        for (o, r) in ours.tables.iter().zip(&real.tables) {
            assert_eq!(o.name, r.name);
            assert_eq!(o.column_description, r.column_description, "{release} {}", o.name);
            // rows in the API server's order (the real tool: HashMap order): compare as sets
            let set = |rows: &[linstor_fake::export::Row]| {
                rows.iter()
                    .map(|r| serde_json::to_string(r).unwrap())
                    .collect::<std::collections::BTreeSet<_>>()
            };
            assert_eq!(set(&o.data), set(&r.data), "{release} {}", o.name);
        }
    }
}
