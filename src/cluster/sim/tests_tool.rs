//! Tests of the simulated `linstor-database`, exec and copy.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::fs::TOOL;
use super::tests::{CONTAINER, NS, POD, run, running_migration_pod, sim, summary, text};
use super::{Fault, SimCluster};
use crate::cluster::{Cluster, ClusterError, Stream};
use crate::linstor::compare::compare;
use crate::linstor::export::{self, Expectation};
use crate::model::StepName;
use linstor_fake::schema;

/// Collects what `copy_from_pod` writes and counts the writes.
#[derive(Default)]
struct Sink {
    bytes: Vec<u8>,
    writes: usize,
}

impl AsyncWrite for Sink {
    fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.bytes.extend_from_slice(buf);
        self.writes += 1;
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

async fn export_to(sim: &SimCluster, config_dir: &str, file: &str) -> (i32, String, String) {
    let (code, lines) = run(sim, &[TOOL, "export-db", "-c", config_dir, file]).await;
    (code, text(&lines, Stream::Stdout), text(&lines, Stream::Stderr))
}

fn file_summary(sim: &SimCluster, path: &str) -> export::ExportSummary {
    let bytes = sim.pod_file(NS, POD, path).expect("file written");
    export::summarize(bytes.as_slice()).expect("an export")
}

#[tokio::test]
async fn pod_checks_use_the_mounted_files() {
    let sim = sim();
    running_migration_pod(&sim).await;
    assert_eq!(run(&sim, &["test", "-x", TOOL]).await.0, 0);
    assert_eq!(run(&sim, &["test", "-f", "/etc/linstor/linstor.toml"]).await.0, 0);
    assert_eq!(
        run(&sim, &["test", "-r", "/etc/linstor-target/linstor.toml"])
            .await
            .0,
        0
    );
    assert_eq!(run(&sim, &["test", "-d", "/backup"]).await.0, 0);
    assert_eq!(run(&sim, &["test", "-e", "/etc/linstor/nope"]).await.0, 1);
    let (code, lines) = run(&sim, &["cat", "/etc/linstor-target/linstor.toml"]).await;
    assert_eq!(
        (code, text(&lines, Stream::Stdout).contains("\"k8s\"")),
        (0, true)
    );
    let (code, lines) = run(&sim, &["cat", "/backup/missing.json"]).await;
    assert_eq!(
        (code, text(&lines, Stream::Stderr).as_str()),
        (1, "cat: /backup/missing.json: No such file or directory")
    );
    let (code, lines) = run(&sim, &["sh", "-c", "kubectl-foo --bar"]).await;
    assert_eq!(
        (code, text(&lines, Stream::Stderr).as_str()),
        (127, "sh: 1: kubectl-foo: not found")
    );
    assert_eq!(
        run(
            &sim,
            &[
                "sh",
                "-c",
                "test -x '/usr/share/linstor-server/bin/linstor-database' && true"
            ]
        )
        .await
        .0,
        0
    );
}

#[tokio::test]
async fn export_import_and_re_export_round_trip() {
    let sim = sim();
    running_migration_pod(&sim).await;
    let (code, out, _) = export_to(&sim, "/etc/linstor", "/backup/backup.json").await;
    assert_eq!(code, 0);
    assert!(
        out.contains("etcd connection URL is \"etcd://piraeus-op-etcd:2379\""),
        "{out}"
    );
    assert!(
        out.lines().last().is_some_and(|l| l.contains("Export finished")),
        "{out}"
    );
    let backup = file_summary(&sim, "/backup/backup.json");
    export::validate(
        &backup,
        &Expectation {
            exported_from: "etcd",
            linstor_version: Some("1.33.3"),
        },
    )
    .expect("valid");
    assert!(compare(&summary(&sim.etcd_dataset()), &backup).is_equal());

    let mut sink = Sink::default();
    let n = sim
        .copy_from_pod(NS, POD, CONTAINER, "/backup/backup.json", &mut sink)
        .await
        .expect("copy");
    assert_eq!(
        Some(sink.bytes.clone()),
        sim.pod_file(NS, POD, "/backup/backup.json")
    );
    assert_eq!(n as usize, sink.bytes.len());
    assert!(sink.writes > 1, "streamed in chunks, not one write");

    let (code, lines) = run(
        &sim,
        &[
            TOOL,
            "import-db",
            "--config-directory=/etc/linstor-target",
            "/backup/backup.json",
        ],
    )
    .await;
    let out = text(&lines, Stream::Stdout);
    assert_eq!(code, 0, "{lines:?}");
    assert!(
        out.contains("Kubernetes-CRD connection URL is \"k8s\"") && out.ends_with("Import finished"),
        "{out}"
    );
    assert_eq!(imported_rows(&sim) as u64, backup.total_rows());
    assert_eq!(sim.k8s_backend_rows().len(), 43);
    // the fresh cluster's schema migrations wrote the four access types and LinstorVersion 31
    assert_eq!(sim.k8s_backend_rows()["SEC_ACCESS_TYPES"], 4);

    let (code, _, _) = export_to(&sim, "/etc/linstor-target", "/backup/verify.json").await;
    assert_eq!(code, 0);
    let verify = file_summary(&sim, "/backup/verify.json");
    assert_eq!(verify.header.exported_from.as_deref(), Some("k8s"));
    let cmp = compare(&backup, &verify);
    assert!(cmp.is_equal(), "{:?}", cmp.differences);
    let fx = sim.effects();
    assert_eq!(
        (fx.exports_of("etcd"), fx.exports_of("k8s"), fx.imports, fx.copies),
        (1, 1, 1, 1)
    );
    let inventory = sim.k8s_backend_inventory().await.expect("inventory");
    assert_eq!(inventory.total_objects(), backup.total_rows());
    assert_eq!(inventory.schema_version, Some(31));

    // deleting the pod takes its emptyDir with it
    sim.delete_pod(NS, POD, super::tests::WAIT).await.expect("delete");
    assert_eq!(sim.pod_file(NS, POD, "/backup/backup.json"), None);
}

#[tokio::test]
async fn bad_arguments_exit_zero_with_usage_and_no_file() {
    let sim = sim();
    running_migration_pod(&sim).await;
    for args in [
        vec![TOOL, "export-db"],
        vec![TOOL, "export-db", "--bogus", "/backup/x.json"],
        vec![TOOL],
    ] {
        let (code, lines) = run(&sim, &args).await;
        assert_eq!(code, 0, "the real tool exits 0 on bad arguments");
        assert!(
            text(&lines, Stream::Stderr).contains("Usage: linstor-database"),
            "{lines:?}"
        );
    }
    assert_eq!(sim.pod_file(NS, POD, "/backup/x.json"), None);
    assert_eq!(sim.effects().exports_of("etcd"), 0);
}

/// Rows of the exported tables in the `k8s` backend (the four `SEC_ACCESS_TYPES` objects a fresh
/// import's migrations create are not exported data).
fn imported_rows(sim: &SimCluster) -> usize {
    sim.k8s_backend_rows()
        .iter()
        .filter(|(t, _)| !schema::NOT_EXPORTED.contains(&t.as_str()))
        .map(|(_, n)| n)
        .sum()
}

#[tokio::test]
async fn a_missing_config_falls_back_to_h2_and_fails() {
    // recorded: tests/fixtures/linstor-1.33.3/tool/08-export-empty-config-dir.txt
    let sim = sim();
    running_migration_pod(&sim).await;
    let (code, out, err) = export_to(&sim, "/etc/nothing-here", "/backup/h2.json").await;
    assert_eq!(code, 1);
    assert!(!out.contains("Loading configuration file"), "{out}");
    assert!(
        out.contains(
            "SQL database connection URL is \"jdbc:h2:/var/lib/linstor/linstordb;DB_CLOSE_ON_EXIT=FALSE\""
        ),
        "{out}"
    );
    assert!(
        err.contains("Caused by: org.h2.jdbc.JdbcSQLException: Schema \"LINSTOR\" not found"),
        "{err}"
    );
    assert_eq!(sim.pod_file(NS, POD, "/backup/h2.json"), None);
}

#[tokio::test]
async fn a_broken_config_exits_two() {
    let sim = sim();
    running_migration_pod(&sim).await;
    sim.set_config_map_key(
        NS,
        "linstor-migrator-target",
        "linstor.toml",
        "[db\nconnection_url=",
    )
    .await
    .expect("write");
    assert_eq!(
        export_to(&sim, "/etc/linstor-target", "/backup/x.json").await.0,
        2
    );
    sim.set_config_map_key(
        NS,
        "linstor-migrator-target",
        "linstor.toml",
        "[db]\nconnection_url = \"mysql://x\"\n",
    )
    .await
    .expect("write");
    assert_eq!(
        export_to(&sim, "/etc/linstor-target", "/backup/x.json").await.0,
        2
    );
}

#[tokio::test]
async fn tool_faults_fire_once() {
    let sim = sim();
    running_migration_pod(&sim).await;
    sim.inject(StepName::Export, Fault::UsageExitZero);
    let (code, _, err) = export_to(&sim, "/etc/linstor", "/backup/b.json").await;
    assert_eq!(
        (
            code,
            err.contains("Usage:"),
            sim.pod_file(NS, POD, "/backup/b.json")
        ),
        (0, true, None)
    );

    sim.inject(StepName::Export, Fault::ExitOne);
    let (code, _, err) = export_to(&sim, "/etc/linstor", "/backup/b.json").await;
    assert_eq!(
        (code, err.starts_with("Exception in thread \"main\"")),
        (1, true),
        "{err}"
    );

    sim.inject(StepName::Export, Fault::Error);
    let (tx, _rx) = mpsc::channel(1000);
    let cmd: Vec<String> = [TOOL, "export-db", "/backup/b.json"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let r = sim
        .exec(NS, POD, CONTAINER, &cmd, tx, CancellationToken::new())
        .await;
    assert!(matches!(r, Err(ClusterError::Api(_))), "{r:?}");

    sim.inject(StepName::Export, Fault::Hang);
    let (tx, _rx) = mpsc::channel(1000);
    let cancel = CancellationToken::new();
    let later = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        later.cancel();
    });
    let r = sim.exec(NS, POD, CONTAINER, &cmd, tx, cancel).await;
    assert!(matches!(r, Err(ClusterError::Cancelled)), "{r:?}");

    assert_eq!(export_to(&sim, "/etc/linstor", "/backup/b.json").await.0, 0);
    sim.inject(StepName::CopyBackup, Fault::Error);
    let mut sink = Sink::default();
    let r = sim
        .copy_from_pod(NS, POD, CONTAINER, "/backup/b.json", &mut sink)
        .await;
    assert!(
        matches!(r, Err(ClusterError::Api(_))) && !sink.bytes.is_empty(),
        "{r:?}"
    );
    assert!(
        sim.copy_from_pod(NS, POD, CONTAINER, "/backup/b.json", &mut Sink::default())
            .await
            .is_ok()
    );
    assert!(sim.pending_faults().is_empty());
}

#[tokio::test]
async fn a_partial_import_leaves_partial_data_and_the_controller_complains() {
    let sim = sim();
    running_migration_pod(&sim).await;
    assert_eq!(export_to(&sim, "/etc/linstor", "/backup/b.json").await.0, 0);
    sim.inject(StepName::Import, Fault::PartialImport);
    let (code, lines) = run(
        &sim,
        &[TOOL, "import-db", "-c", "/etc/linstor-target", "/backup/b.json"],
    )
    .await;
    assert_eq!(code, 1);
    assert!(
        text(&lines, Stream::Stderr).contains("KubernetesClientException"),
        "{lines:?}"
    );
    let imported = imported_rows(&sim);
    let total = summary(&sim.etcd_dataset()).total_rows() as usize;
    assert!(imported > 0 && imported < total, "{imported} of {total}");

    // a controller started on it reports the damage
    sim.patch_linstor_controller(
        NS,
        "piraeus-op-cs",
        serde_json::json!({"spec": {"dbConnectionURL": "k8s"}}),
    )
    .await
    .expect("patch");
    sim.settle().await;
    let api = sim.linstor_api(NS, "piraeus-op-cs", None).await.expect("api");
    let reports = api.error_reports(0).await.expect("reports");
    assert!(
        reports
            .iter()
            .any(|r| r.exception_message.contains("could not be restored")),
        "{reports:?}"
    );

    // running the import again (it truncates first) is the recovery
    assert_eq!(
        run(
            &sim,
            &[TOOL, "import-db", "-c", "/etc/linstor-target", "/backup/b.json"]
        )
        .await
        .0,
        0
    );
    assert_eq!(imported_rows(&sim), total);
    assert_eq!(sim.effects().imports, 2);
}

#[tokio::test]
async fn an_import_without_deletecollection_fails_like_piraeus_operator_521() {
    let sim = sim();
    running_migration_pod(&sim).await;
    sim.deny(
        "system:serviceaccount:piraeus-datastore:linstor-controller",
        "internal.linstor.linbit.com",
        "*",
        "deletecollection",
    );
    assert_eq!(export_to(&sim, "/etc/linstor", "/backup/b.json").await.0, 0);
    let (code, lines) = run(
        &sim,
        &[TOOL, "import-db", "-c", "/etc/linstor-target", "/backup/b.json"],
    )
    .await;
    assert_eq!(code, 1);
    let err = text(&lines, Stream::Stderr);
    assert!(
        err.contains(
            "cannot deletecollection resource \"volumegroups\" in API group \"internal.linstor.linbit.com\""
        ),
        "{err}"
    );
    // a fresh cluster: the CRDs and the schema migrations happened, the truncate was refused
    assert_eq!(imported_rows(&sim), 0, "no row was created");
    assert_eq!(sim.effects().imports, 0, "nothing was truncated");
}
