//! The plan step 1 makes: what a run (or, for a preflight run, the migration it checks for)
//! will do, step by step from the kind's own list of steps, which of them stop the controller,
//! and what it changes in the cluster.

use crate::cluster::controller::{ControllerInfo, ControllerKind};
use crate::cluster::pod::MigrationObjects;
use crate::engine::{PlannedStep, RunPlan};
use crate::model::{ImportMode, RunKind, RunOptions, StepName, VerifyMode};

/// The plan of a run of `kind` (the checked kind) on `c` with `options`; `backend` is what the
/// `k8s` backend holds now, when known.
pub(super) fn plan(
    kind: RunKind,
    c: &ControllerInfo,
    options: &RunOptions,
    run_id: &str,
    replaced: Option<u64>,
) -> RunPlan {
    let migrate = kind == RunKind::Migrate;
    let objects = MigrationObjects::for_run(&c.name, run_id);
    let scale = match c.kind {
        ControllerKind::LinstorController => {
            format!("LinstorController {}/{} spec.replicas", c.namespace, c.name)
        }
        ControllerKind::Deployment => format!("Deployment {}/{} replicas", c.namespace, c.deployment),
    };
    // shown to every reader of the run: without a password the URL may carry
    let url = c
        .connection_url
        .as_deref()
        .map_or_else(|| "its database".into(), crate::linstor::toml::redact_url);
    // only what an earlier run of this service provably left is deleted (a foreign backend fails
    // the preflight instead)
    let replaced = replaced.unwrap_or(0);
    // the mode step 4 will choose (it decides again from the export's own LINSTOR version)
    let (import, _) = super::prepare_target::choose_import(options.import, c.linstor_version.as_deref());
    let delta = import == ImportMode::Delta;
    let what = |step: StepName| -> String {
        match step {
            StepName::Preflight => "these checks; nothing is changed".into(),
            StepName::UpgradePlan => "plan the rest of the v2 upgrade; nothing is changed".into(),
            StepName::PreparePod => format!(
                "create pod {} (image, ServiceAccount and config of Deployment {}) and wait until it runs",
                objects.pod, c.deployment
            ),
            StepName::Snapshot => {
                "record nodes, storage pools, resources and volumes through the REST API".into()
            }
            StepName::PrepareTarget => {
                let empty = match replaced {
                    0 => String::new(),
                    n => format!("delete the {n} objects the k8s backend holds, "),
                };
                let precopy = if delta {
                    ", and write a pre-copy of every row"
                } else {
                    ""
                };
                format!(
                    "while the controller runs: {empty}export once and create the k8s backend's schema (CRDs, \
                     LinstorVersion){precopy}"
                )
            }
            StepName::StopController => format!("{scale}: 0; wait until no controller pod exists"),
            StepName::Export => format!("linstor-database export-db of {url}"),
            StepName::CopyBackup => {
                "copy the export here (SHA-256, fsync, validated); kept as the backup".into()
            }
            StepName::Import if delta => {
                "write only the rows that changed since the pre-copy, many at a time (the tool's import runs \
                 instead if the result is not equal)"
                    .into()
            }
            StepName::Import => {
                "linstor-database import-db: one request per row, the longest part of the downtime".into()
            }
            StepName::VerifyData => match options.verify {
                VerifyMode::Direct => {
                    "read the k8s backend's objects and compare them row by row with the backup".into()
                }
                VerifyMode::Tool => {
                    "export the k8s backend with the tool and compare it with the backup".into()
                }
            },
            StepName::Switch => match c.kind {
                ControllerKind::LinstorController => {
                    format!(
                        "spec.dbConnectionURL: {url} → k8s; wait until the operator renders the ConfigMap"
                    )
                }
                ControllerKind::Deployment => format!(
                    "connection_url = \"k8s\" in ConfigMap {}",
                    c.config_map.as_deref().unwrap_or("?")
                ),
            },
            StepName::StartController => format!(
                "{scale}: {}; wait until it is ready and the REST API answers",
                c.replicas
            ),
            StepName::VerifyCluster => {
                "compare the REST API with the snapshot and list error reports since the start".into()
            }
            StepName::Cleanup if options.scale_down_etcd && migrate => {
                "delete the pod and its ConfigMap; scale etcd to 0 (its data is kept)".into()
            }
            StepName::Cleanup => "delete the pod and its ConfigMap".into(),
        }
    };
    let steps: Vec<PlannedStep> = kind
        .steps()
        .iter()
        .enumerate()
        .map(|(i, s)| PlannedStep {
            number: i + 1,
            step: *s,
            title: s.title().into(),
            what: what(*s),
            downtime: s.in_downtime() && !kind.is_read_only(),
        })
        .collect();
    let downtime = steps
        .iter()
        .filter(|s| s.downtime)
        .map(|s| format!("{}. {}", s.number, s.title))
        .collect();
    RunPlan {
        kind,
        import: migrate.then_some(import),
        verify: migrate.then_some(options.verify),
        approval_gate: options.approve_before_downtime && !kind.is_read_only(),
        steps,
        downtime,
        changes: changes(kind, c, options, &objects, &scale, &url, replaced),
    }
}

fn changes(
    kind: RunKind,
    c: &ControllerInfo,
    options: &RunOptions,
    objects: &MigrationObjects,
    scale: &str,
    url: &str,
    replaced: u64,
) -> Vec<String> {
    if kind.is_read_only() {
        return vec!["nothing: the run only reads".into()];
    }
    let mut out = vec![
        format!(
            "{scale}: {} → 0 → {} (the controller is down in between)",
            c.replicas, c.replicas
        ),
        format!(
            "pod {} and ConfigMap {}: created, deleted at the end",
            objects.pod, objects.target_config_map
        ),
    ];
    if kind == RunKind::Migrate {
        out.push(match c.kind {
            ControllerKind::LinstorController => {
                format!(
                    "LinstorController {}/{} spec.dbConnectionURL: {url} → k8s",
                    c.namespace, c.name
                )
            }
            ControllerKind::Deployment => format!(
                "ConfigMap {}/{} connection_url: {url} → k8s",
                c.namespace,
                c.config_map.as_deref().unwrap_or("?")
            ),
        });
        out.push(match replaced {
            0 => "the k8s backend (internal.linstor.linbit.com, one per Kubernetes cluster): filled with the \
                  database"
                .into(),
            n => format!(
                "the k8s backend (internal.linstor.linbit.com, one per Kubernetes cluster): its {n} objects are \
                 replaced by the database"
            ),
        });
        out.push(if options.scale_down_etcd {
            "etcd: read only; its StatefulSet is scaled to 0 after success, its data is kept".into()
        } else {
            "etcd: read only, left running; a rollback returns to it".into()
        });
        out.push(
            "Helm release values: not changed; the command that persists k8s is shown after success".into(),
        );
    } else {
        out.push(format!("the database ({url}): read only"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linstor::toml::Backend;

    fn info() -> ControllerInfo {
        ControllerInfo {
            namespace: "piraeus-datastore".into(),
            name: "piraeus-op-cs".into(),
            kind: ControllerKind::LinstorController,
            deployment: "piraeus-op-cs-controller".into(),
            config_map: Some("piraeus-op-cs-controller-config".into()),
            service: Some("piraeus-op-cs".into()),
            service_account: "linstor-controller".into(),
            image: None,
            linstor_version: Some("1.33.3".into()),
            replicas: 1,
            ready_replicas: 1,
            backend: Backend::Etcd,
            connection_url: Some("etcd://piraeus-op-etcd:2379".into()),
            config_error: None,
            https_client_secret: None,
            pod_selector: String::new(),
        }
    }

    #[test]
    fn the_plan_follows_the_kinds_steps_and_names_the_downtime_and_the_changes() {
        let options = RunOptions {
            import: ImportMode::Delta,
            ..RunOptions::default()
        };
        let p = plan(RunKind::Migrate, &info(), &options, "run-1", None);
        assert_eq!(p.steps.len(), RunKind::Migrate.steps().len());
        assert_eq!(p.import, Some(ImportMode::Delta));
        assert_eq!(p.downtime.first().map(String::as_str), Some("5. Stop controller"));
        assert_eq!(
            p.downtime.last().map(String::as_str),
            Some("11. Start controller")
        );
        assert!(
            p.steps[7].what.contains("changed since the pre-copy"),
            "{:?}",
            p.steps[7]
        );
        assert!(
            p.changes
                .iter()
                .any(|c| c.contains("spec.dbConnectionURL: etcd://piraeus-op-etcd:2379 → k8s")),
            "{:?}",
            p.changes
        );
        // the default (auto) plans what step 4 will choose: the delta for a recorded LINSTOR,
        // the tool's import for another
        let auto = plan(
            RunKind::Migrate,
            &info(),
            &RunOptions::default(),
            "run-1",
            Some(12),
        );
        assert_eq!(auto.import, Some(ImportMode::Delta));
        assert!(
            auto.steps[3].what.contains("delete the 12 objects"),
            "{:?}",
            auto.steps[3]
        );
        let unrecorded = ControllerInfo {
            linstor_version: Some("1.28.0".into()),
            ..info()
        };
        let tool = plan(
            RunKind::Migrate,
            &unrecorded,
            &RunOptions::default(),
            "run-1",
            None,
        );
        assert_eq!(tool.import, Some(ImportMode::Tool));
        assert!(tool.steps[7].what.contains("import-db"), "{:?}", tool.steps[7]);
        let backup = plan(RunKind::Backup, &info(), &RunOptions::default(), "run-1", None);
        assert_eq!(backup.import, None);
        assert!(backup.changes.iter().all(|c| !c.contains("k8s backend")));
    }
}
