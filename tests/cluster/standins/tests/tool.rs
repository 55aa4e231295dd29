//! The `linstor-database` binary without an API server: argument trap, config fallbacks, etcd
//! export, exit codes and injected faults, each in a fresh "pod" directory. What the tool prints
//! is `linstor_fake::tool` (replayed against the recordings there); these tests check that the
//! process around it passes it through: stdout, stderr, exit codes, files, faults, the registry.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use linstor_fake::Release;
use linstor_migrator::linstor::export::ExportDocument;
use linstor_standins::dataset::{self, Preset};

/// A fresh pod: `root` for LINSTOR_STANDIN_ROOT, `work` as working directory.
struct Pod {
    _dir: tempfile::TempDir,
    root: PathBuf,
    work: PathBuf,
    etcd: PathBuf,
}

impl Pod {
    fn new(toml: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let work = dir.path().join("work");
        for d in [root.join("etc/linstor"), root.join("backup"), work.clone()] {
            std::fs::create_dir_all(d).unwrap();
        }
        if let Some(t) = toml {
            std::fs::write(root.join("etc/linstor/linstor.toml"), t).unwrap();
        }
        let etcd = dir.path().join("etcd.json");
        dataset::write(&dataset::generate(Preset::Piraeus, Release::V1_33_3), &etcd).unwrap();
        Pod {
            _dir: dir,
            root,
            work,
            etcd,
        }
    }

    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_linstor-database"));
        c.args(args)
            .current_dir(&self.work)
            .env("LINSTOR_STANDIN_ROOT", &self.root)
            .env("LINSTOR_STANDIN_ETCD_DATA", &self.etcd)
            .env_remove("LINSTOR_STANDIN_FAULT")
            .env_remove("LINSTOR_STANDIN_FAULT_FILE")
            .env_remove("LINSTOR_STANDIN_VERSION")
            .env_remove("LINSTOR_STANDIN_IMAGE_FILE")
            .env_remove("KUBECONFIG");
        for (k, v) in env {
            c.env(k, v);
        }
        c
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.command(args, env).output().unwrap()
    }

    fn backup(&self) -> Result<ExportDocument, serde_json::Error> {
        serde_json::from_slice(&std::fs::read(self.root.join("backup/b.json")).unwrap())
    }
}

const ETCD: &str = "[db]\nconnection_url = \"etcd://piraeus-op-etcd:2379\"\n";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn bad_arguments_print_usage_and_exit_zero() {
    let pod = Pod::new(Some(ETCD));
    for args in [
        &[][..],
        &["export"],
        &["export-db"],
        &["import-db", "-x", "f"],
        &["export-db", "a", "b"],
    ] {
        let out = pod.run(args, &[]);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(text(&out.stderr).contains("Usage: linstor-database"), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    assert!(!pod.root.join("backup/b.json").exists());
}

#[test]
fn etcd_export_writes_the_dataset_and_logs_like_linstor() {
    let pod = Pod::new(Some(ETCD));
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let out = pod.run(&["export-db", "-c", "/etc/linstor", "/backup/b.json"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("Loading configuration file \"/etc/linstor/linstor.toml\"\n"));
    assert!(stdout.contains("etcd connection URL is \"etcd://piraeus-op-etcd:2379\""));
    assert!(stdout.trim_end().ends_with("Export finished"));
    let doc = pod.backup().unwrap();
    let data = dataset::generate(Preset::Piraeus, Release::V1_33_3);
    assert_eq!(doc.exported_from, "etcd");
    assert!(doc.export_timestamp_ms >= before);
    // the rows as etcd returns them: by key
    let sorted = |rows: &[serde_json::Map<String, serde_json::Value>]| {
        let mut v: Vec<String> = rows.iter().map(|r| serde_json::to_string(r).unwrap()).collect();
        v.sort();
        v
    };
    assert_eq!(doc.tables.len(), data.tables.len());
    for (have, want) in doc.tables.iter().zip(&data.tables) {
        assert_eq!(have.name, want.name);
        assert_eq!(sorted(&have.data), sorted(&want.data), "{}", have.name);
    }
    let log = std::fs::read_to_string(pod.work.join("logs/linstor-db.log")).unwrap();
    assert!(log.trim_end().ends_with("Export finished"));
}

#[test]
fn the_tool_is_the_linstor_release_of_its_pods_image() {
    let pod = Pod::new(Some(ETCD));
    let image = pod.work.join("image");
    let run = |image_tag: Option<&str>| {
        let _ = std::fs::remove_file(pod.root.join("backup/b.json"));
        let mut env = Vec::new();
        if let Some(tag) = image_tag {
            std::fs::write(&image, format!("quay.io/piraeusdatastore/piraeus-server:{tag}")).unwrap();
            env.push(("LINSTOR_STANDIN_IMAGE_FILE", image.to_str().unwrap()));
        }
        let out = pod.run(&["export-db", "-c", "/etc/linstor", "/backup/b.json"], &env);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        pod.backup().unwrap()
    };
    // the Piraeus v1.10.8 chart's default image: LINSTOR 1.25.1's header and 41 tables
    let old = run(Some("v1.25.1"));
    assert_eq!(
        (
            old.linstor_version.as_str(),
            old.data_version.as_str(),
            old.tables.len()
        ),
        ("1.25.1", "v1-19-1", 41)
    );
    let new = run(Some("v1.33.3"));
    assert_eq!((new.data_version.as_str(), new.tables.len()), ("v1-31-1", 39));
    // an image that does not tell: the newest recorded release
    assert_eq!(run(None).linstor_version, "1.33.3");
    // and 1.25.1's H2 fallback URL (recorded: its tool/08)
    let h2 = Pod::new(None);
    std::fs::write(&image, "quay.io/piraeusdatastore/piraeus-server:v1.25.1").unwrap();
    let out = h2.run(
        &["export-db", "/backup/b.json"],
        &[("LINSTOR_STANDIN_IMAGE_FILE", image.to_str().unwrap())],
    );
    assert!(
        text(&out.stdout).contains("SQL database connection URL is \"jdbc:h2:/var/lib/linstor/linstordb\"\n")
    );
}

#[test]
fn a_missing_config_silently_falls_back_to_h2_and_fails_there() {
    // recorded: tool/08-export-empty-config-dir.txt
    let pod = Pod::new(None);
    let out = pod.run(&["export-db", "/backup/b.json"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("Loading configuration file"));
    assert!(stdout.contains("jdbc:h2:/var/lib/linstor/linstordb"));
    assert!(text(&out.stderr).contains("Failed to start transaction"));
    assert!(!pod.root.join("backup/b.json").exists());
}

#[test]
fn config_errors_exit_two_and_exceptions_exit_one() {
    let pod = Pod::new(Some("[db\nconnection_url = "));
    assert_eq!(
        pod.run(&["export-db", "/backup/b.json"], &[]).status.code(),
        Some(2)
    );
    let pod = Pod::new(Some("[db]\nconnection_url = \"mongodb://x\"\n"));
    assert_eq!(
        pod.run(&["export-db", "/backup/b.json"], &[]).status.code(),
        Some(2)
    );

    let pod = Pod::new(Some(ETCD));
    let out = pod.run(&["export-db", "/nonexistent-dir/b.json"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with("Exception in thread \"main\""));
    assert!(!text(&out.stdout).contains("Export finished"));
}

#[test]
fn imports_refuse_newer_exports_and_the_h2_fallback_fails() {
    let pod = Pod::new(Some("[db]\nconnection_url = \"k8s\"\n"));
    let mut doc = dataset::generate(Preset::Piraeus, Release::V1_33_3);
    doc.linstor_version = "1.34.0".into();
    dataset::write(&doc, &pod.root.join("backup/b.json")).unwrap();
    let out = pod.run(&["import-db", "/backup/b.json"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("created with a newer version of Linstor"));

    let pod = Pod::new(None);
    doc.linstor_version = "1.33.3".into();
    dataset::write(&doc, &pod.root.join("backup/b.json")).unwrap();
    let out = pod.run(&["import-db", "/backup/b.json"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!text(&out.stdout).contains("Import finished"));
}

#[test]
fn fault_file_faults_fire_once() {
    let pod = Pod::new(Some(ETCD));
    let faults = pod.work.join("faults");
    std::fs::write(&faults, "export:exit1\nexport:usage\nexport:corrupt\n").unwrap();
    let env = [("LINSTOR_STANDIN_FAULT_FILE", faults.to_str().unwrap())];
    let args = ["export-db", "/backup/b.json"];

    let out = pod.run(&args, &env);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with("Exception in thread \"main\""));

    let out = pod.run(&args, &env);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stderr).starts_with("Usage: linstor-database"));
    assert!(!pod.root.join("backup/b.json").exists());

    let out = pod.run(&args, &env);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("Export finished"));
    assert!(pod.backup().is_err(), "corrupt writes half a file");
    assert!(!faults.exists());

    let out = pod.run(&args, &env);
    assert_eq!(out.status.code(), Some(0));
    assert!(pod.backup().is_ok());
}

#[test]
fn hang_sleeps_until_killed() {
    let pod = Pod::new(Some(ETCD));
    let mut child = pod
        .command(
            &["export-db", "/backup/b.json"],
            &[("LINSTOR_STANDIN_FAULT", "hang")],
        )
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    assert!(child.try_wait().unwrap().is_none(), "still running");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!Path::new(&pod.root.join("backup/b.json")).exists());
}

#[test]
fn a_run_started_while_another_is_alive_is_recorded_as_overlapping() {
    use linstor_standins::dbtool::running;
    let pod = Pod::new(Some(ETCD));
    let state = pod.work.join("state");
    let state_env = ("LINSTOR_STANDIN_STATE_DIR", state.to_str().unwrap());
    let mut hanging = pod
        .command(
            &["export-db", "/backup/hung.json"],
            &[state_env, ("LINSTOR_STANDIN_FAULT", "hang")],
        )
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while running::starts(&state).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the hanging export did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let out = pod.run(&["export-db", "/backup/b.json"], &[state_env]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let starts = running::starts(&state);
    assert_eq!(starts.len(), 2);
    assert!(starts[0].concurrent_with.is_empty());
    assert_eq!(starts[0].process.pid, hanging.id());
    let overlap: Vec<u32> = starts[1].concurrent_with.iter().map(|r| r.process.pid).collect();
    assert_eq!(overlap, vec![hanging.id()]);
    assert_eq!(
        starts[1].concurrent_with[0].args,
        ["export-db", "/backup/hung.json"]
    );
    assert!(starts[0].process.alive());

    // killed, its file stays behind but names no live run
    hanging.kill().unwrap();
    hanging.wait().unwrap();
    assert!(!starts[0].process.alive());
    assert!(state.join("running").join(hanging.id().to_string()).exists());
    let out = pod.run(&["export-db", "/backup/b.json"], &[state_env]);
    assert_eq!(out.status.code(), Some(0));
    let starts = running::starts(&state);
    assert_eq!(starts.len(), 3);
    assert!(starts[2].concurrent_with.is_empty(), "{:?}", starts[2]);
    // a normal exit removes its own file
    assert!(
        !state
            .join("running")
            .join(starts[2].process.pid.to_string())
            .exists()
    );
}

#[test]
fn an_unwritable_state_dir_is_a_test_bug() {
    let pod = Pod::new(Some(ETCD));
    let file = pod.work.join("not-a-dir");
    std::fs::write(&file, "").unwrap();
    let out = pod.run(
        &["export-db", "/backup/b.json"],
        &[("LINSTOR_STANDIN_STATE_DIR", file.to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(96));
    assert!(text(&out.stderr).contains("cannot record this run"));
}
