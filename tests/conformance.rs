//! The service against recordings of the real software (tests/fixtures): the tool-outcome rules
//! judge every recorded `linstor-database` transcript of every recorded LINSTOR release (1.25.1
//! and 1.33.3) as the real run ended and say why in one line; both recorded exports of each
//! release parse, are equal in data, and one changed, missing or extra row makes them unequal,
//! naming table and primary key; the LinstorController the real Piraeus v1.10.8 chart renders is
//! read with its empty strings as "not set".

use linstor_fake::Release;
use linstor_fake::recorded::{Transcript, fixtures, fixtures_of};
use linstor_migrator::cluster::LinstorController;
use linstor_migrator::linstor::compare::{compare, name_examples};
use linstor_migrator::linstor::export::{self, Expectation};
use linstor_migrator::linstor::tool_output::{ToolOutput, judge};
use sha2::{Digest, Sha256};

fn output(t: &Transcript) -> ToolOutput {
    ToolOutput {
        exit_code: t.exit_code,
        stdout: t.stdout.clone(),
        stderr: t.stderr.clone(),
        stopped_after_finish: false,
    }
}

/// The one-line reason the service gives for each recorded failure of 1.33.3.
const REASONS_1_33_3: &[(&str, &str)] = &[
    ("05-help.txt", "Unknown option: '--help'"),
    (
        "05b-export-db-help.txt",
        "Missing required parameter: '<dbExportPath>'",
    ),
    ("06-no-subcommand.txt", "Usage: linstor-database [COMMAND]"),
    ("07-unknown-option.txt", "Unknown option: '--bogus'"),
    (
        "08-export-empty-config-dir.txt",
        "exited with 1: JdbcSQLException: Schema \"LINSTOR\" not found",
    ),
    (
        "09-export-etcd-unreachable.txt",
        "exited with 1: TransactionException: No connection to ETCD server",
    ),
    (
        "10-import-missing-file.txt",
        "exited with 1: FileNotFoundException: /fixture/inputs/does-not-exist.json (No such file or directory)",
    ),
    (
        "11-import-truncated-json.txt",
        "exited with 1: JsonEOFException: Unexpected end-of-input in VALUE_STRING",
    ),
    (
        "12-import-k8s-rbac-no-deletecollection.txt",
        "User \"nodelete\" cannot deletecollection resource \"volumegroups\" in API group \"internal.linstor.linbit.com\"",
    ),
    (
        "13-import-k8s-rbac-crd-readonly.txt",
        "User \"nocrd\" cannot patch resource \"customresourcedefinitions\" in API group \"apiextensions.k8s.io\"",
    ),
    (
        "14-import-k8s-rbac-crd-no-create.txt",
        "User \"nocrd\" cannot create resource \"customresourcedefinitions\"",
    ),
    (
        "16-import-version-1.99.0.txt",
        "exited with 1: DatabaseException: The given database export was created with a newer version of Linstor \
         than currently installed! Current version: 1.33.3 version from DB export: 1.99.0",
    ),
];

/// The one-line reason the service gives for each recorded failure of 1.25.1.
const REASONS_1_25_1: &[(&str, &str)] = &[
    ("05-help.txt", "Unknown option: '--help'"),
    ("06-no-subcommand.txt", "Usage: linstor-database [COMMAND]"),
    (
        "07-export-missing-path.txt",
        "Missing required parameter: '<dbExportPath>'",
    ),
    (
        "08-export-empty-config-dir.txt",
        "exited with 1: JdbcSQLException: Schema \"LINSTOR\" not found",
    ),
    (
        "09-export-etcd-unreachable.txt",
        "exited with 1: TransactionException: No connection to ETCD server",
    ),
    (
        "13-import-k8s-rbac-crd-readonly.txt",
        "User \"crd-readonly\" cannot patch resource \"customresourcedefinitions\" in API group \"apiextensions.k8s.io\"",
    ),
    (
        "14-import-k8s-rbac-crd-no-create.txt",
        "User \"crd-nocreate\" cannot create resource \"customresourcedefinitions\"",
    ),
    (
        "16-import-etcd-export-from-1.33.3.txt",
        "exited with 1: DatabaseException: The given database export was created with a newer version of Linstor \
         than currently installed! Current version: 1.25.1 version from DB export: 1.33.3",
    ),
    (
        "17-import-k8s-over-1.33.3-objects.txt",
        "exited with 1: KubernetesClientException: DELETE \
         https://127.0.0.1:6543/apis/internal.linstor.linbit.com/v1-19-1/layeropenflexvolumes: Not Found.",
    ),
    (
        "18-export-k8s-no-kubeconfig.txt",
        "exited with 1: UnknownHostException: kubernetes.default.svc",
    ),
];

fn reasons(release: Release) -> &'static [(&'static str, &'static str)] {
    match release {
        Release::V1_25_1 => REASONS_1_25_1,
        Release::V1_33_3 => REASONS_1_33_3,
    }
}

/// What the service says to do about some of them (the same in both releases where both have the
/// scenario).
const HINTS: &[(&str, &str)] = &[
    ("08-export-empty-config-dir.txt", "found no linstor.toml"),
    (
        "09-export-etcd-unreachable.txt",
        "etcd at etcd://127.0.0.1:2999 did not answer",
    ),
    (
        "12-import-k8s-rbac-no-deletecollection.txt",
        "verbs: [\"deletecollection\"]",
    ),
    ("13-import-k8s-rbac-crd-readonly.txt", "verbs: [\"patch\"]"),
    ("14-import-k8s-rbac-crd-no-create.txt", "verbs: [\"create\"]"),
];

#[test]
fn every_recorded_run_is_judged_as_it_ended_with_its_reason_in_one_line() {
    for release in Release::ALL {
        let all = Transcript::all(release).unwrap();
        assert!(all.len() >= 16, "{release}");
        for (name, t) in &all {
            let subcommand = t.args.first().map(String::as_str).unwrap_or("export-db");
            let verdict = judge(subcommand, &output(t));
            let real_success = t.exit_code == 0 && t.stderr.is_empty();
            assert_eq!(verdict.is_ok(), real_success, "{release} {name}: {verdict:?}");
            if let Err(f) = verdict {
                assert!(
                    !f.summary.contains('\n'),
                    "{release} {name}: one line: {}",
                    f.summary
                );
                let (_, reason) = reasons(release)
                    .iter()
                    .find(|(n, _)| n == name)
                    .unwrap_or_else(|| panic!("{release} {name}: no expected reason"));
                assert!(f.summary.contains(reason), "{release} {name}: {}", f.summary);
                let hint = match (release, name.as_str()) {
                    // 1.25.1's unreachable etcd was on another port
                    (Release::V1_25_1, "09-export-etcd-unreachable.txt") => {
                        Some("etcd at etcd://127.0.0.1:2399 did not answer")
                    }
                    _ => HINTS.iter().find(|(n, _)| n == name).map(|(_, h)| *h),
                };
                if let Some(hint) = hint {
                    let h = f.hint.clone().unwrap_or_default();
                    assert!(h.contains(hint), "{release} {name}: hint {h:?}");
                }
            }
        }
        let successes: Vec<&str> = all
            .iter()
            .filter(|(_, t)| judge(t.args.first().map_or("export-db", String::as_str), &output(t)).is_ok())
            .map(|(n, _)| n.as_str())
            .collect();
        let expected: &[&str] = match release {
            Release::V1_25_1 => &[
                "01-export-etcd-ok.txt",
                "02-import-k8s-ok.txt",
                "02b-import-k8s-ok-startsh-cluster.txt",
                "03-export-k8s-ok.txt",
                "04-import-k8s-again-over-existing.txt",
                "15-import-k8s-rbac-crd-readonly-crds-exist.txt",
            ],
            Release::V1_33_3 => &[
                "01-export-etcd-ok.txt",
                "02-import-k8s-ok.txt",
                "03-export-k8s-ok.txt",
                "04-import-k8s-again-over-existing.txt",
                "15-import-k8s-rbac-crd-readonly-crds-exist.txt",
            ],
        };
        assert_eq!(successes, expected, "{release}");
    }
}

/// A run of 1.25.1 that printed its `... finished` line and was stopped while it lingered (the
/// service's guard stops it 2 s after the line; its exit code never comes) succeeded: the
/// recorded successes on `k8s`, cut at their finished line.
#[test]
fn a_run_stopped_while_it_lingers_after_its_finished_line_succeeded() {
    for name in [
        "02-import-k8s-ok.txt",
        "03-export-k8s-ok.txt",
        "04-import-k8s-again-over-existing.txt",
    ] {
        let t = Transcript::load(Release::V1_25_1, name).unwrap();
        let subcommand = t.args[0].as_str();
        let stopped = ToolOutput {
            exit_code: -1,
            stopped_after_finish: true,
            ..output(&t)
        };
        assert!(judge(subcommand, &stopped).is_ok(), "{name}");
        // but not one that never printed the line
        let mut unfinished = stopped.clone();
        unfinished.stdout.pop();
        assert!(judge(subcommand, &unfinished).is_err(), "{name}");
    }
}

fn recorded_export_of(release: Release, name: &str) -> Vec<u8> {
    std::fs::read(fixtures_of(release).join("dataset").join(name)).unwrap()
}

fn recorded_export(name: &str) -> Vec<u8> {
    recorded_export_of(Release::V1_33_3, name)
}

#[test]
fn both_recorded_exports_parse_validate_and_are_equal_in_data() {
    for (release, sql, etcd_v, k8s_v) in [
        (Release::V1_25_1, "2023.07.26.09.00", 60, 17),
        (Release::V1_33_3, "2025.12.31.23.59", 71, 30),
    ] {
        let read = |f: &str| export::summarize(recorded_export_of(release, f).as_slice()).unwrap();
        let (etcd, k8s) = (read("export-etcd.json"), read("export-k8s.json"));
        let tables = release.recorded().export_tables;
        assert_eq!((etcd.total_rows(), etcd.tables.len()), (216, tables), "{release}");
        for (s, from) in [(&etcd, "etcd"), (&k8s, "k8s")] {
            export::validate(
                s,
                &Expectation {
                    exported_from: from,
                    linstor_version: Some(release.version()),
                },
            )
            .unwrap();
        }
        let cmp = compare(&etcd, &k8s);
        assert!(cmp.is_equal(), "{release}: {:?}", cmp.differences);
        assert_eq!(
            (cmp.tables_compared, cmp.rows_compared),
            (tables, 216),
            "{release}"
        );
        // and as whole documents (the header's sql_version is a string)
        for f in ["export-etcd.json", "export-k8s.json"] {
            let doc: export::ExportDocument =
                serde_json::from_slice(&recorded_export_of(release, f)).unwrap();
            assert_eq!(doc.sql_version, Some(sql.into()), "{release} {f}");
            assert_eq!(
                (doc.etcd_version, doc.k8s_version),
                (Some(etcd_v), Some(k8s_v)),
                "{release} {f}"
            );
            assert_eq!(doc.data_version, release.data_version(), "{release} {f}");
        }
    }
}

#[test]
fn one_changed_missing_or_extra_row_is_found_by_table_and_primary_key() {
    let etcd = export::summarize(recorded_export("export-etcd.json").as_slice()).unwrap();
    let base: serde_json::Value = serde_json::from_slice(&recorded_export("export-k8s.json")).unwrap();
    let table = |doc: &mut serde_json::Value, name: &str| -> usize {
        doc["tables"]
            .as_array()
            .unwrap()
            .iter()
            .position(|t| t["name"] == name)
            .unwrap()
    };
    let nodes = |doc: &mut serde_json::Value| {
        let i = table(doc, "NODES");
        doc["tables"][i]["data"].as_array_mut().unwrap().clone()
    };
    // changed: one node's flags
    let mut changed = base.clone();
    let i = table(&mut changed, "NODES");
    let rows = nodes(&mut changed);
    let j = rows.iter().position(|r| r["node_name"] == "BRAVO").unwrap();
    changed["tables"][i]["data"][j]["node_flags"] = 4.into();
    // missing: one ACL entry
    let mut missing = base.clone();
    let i = table(&mut missing, "SEC_ACL_MAP");
    let gone = missing["tables"][i]["data"].as_array_mut().unwrap().remove(0);
    let gone_key = format!(
        "{}:{}",
        gone["object_path"].as_str().unwrap(),
        gone["role_name"].as_str().unwrap()
    );
    // extra: one more property
    let mut extra = base.clone();
    let i = table(&mut extra, "PROPS_CONTAINERS");
    extra["tables"][i]["data"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!(
            {"props_instance": "/CTRL", "prop_key": "Aux/extra", "prop_value": "x"}
        ));
    for (doc, t, key, what) in [
        (changed, "NODES", "BRAVO".to_string(), "changed"),
        (missing, "SEC_ACL_MAP", gone_key, "missing"),
        // a row the backup does not have is named by its object
        (
            extra,
            "PROPS_CONTAINERS",
            format!("object {}", hex::encode(Sha256::digest(b"/CTRL:Aux/extra"))),
            "extra",
        ),
    ] {
        let found = export::summarize(serde_json::to_vec(&doc).unwrap().as_slice()).unwrap();
        let mut cmp = compare(&etcd, &found);
        name_examples(
            recorded_export("export-etcd.json").as_slice(),
            &etcd.schema(),
            &mut cmp,
        )
        .unwrap();
        assert_eq!(cmp.differences.len(), 1, "{what}: {:?}", cmp.differences);
        let d = &cmp.differences[0];
        assert_eq!(d.name, t, "{what}");
        assert_eq!(d.examples, std::slice::from_ref(&key), "{what}");
        let counts = (d.changed, d.missing, d.extra);
        let expected = match what {
            "changed" => (1, 0, 0),
            "missing" => (0, 1, 0),
            _ => (0, 0, 1),
        };
        assert_eq!(counts, expected, "{what}");
    }
}

#[test]
fn the_rendered_chart_cr_has_no_https_client_secret() {
    let path = fixtures().join("piraeus-v1.10.8/rendered/default.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let cr: serde_json::Value = serde_yaml::Deserializer::from_str(&text)
        .filter_map(|d| serde::Deserialize::deserialize(d).ok())
        .find(|v: &serde_json::Value| v["kind"] == "LinstorController")
        .unwrap();
    assert_eq!(
        cr["spec"]["linstorHttpsClientSecret"], "",
        "the chart renders an empty string"
    );
    let cr: LinstorController = serde_json::from_value(cr).unwrap();
    assert_eq!(cr.spec.linstor_https_client_secret, None);
    assert_eq!(
        cr.spec.db_connection_url.as_deref(),
        Some("etcd://piraeus-op-etcd:2379")
    );
}
