//! Step 1: read-only checks and the plan. Finds the controller, reads its `linstor.toml`,
//! checks versions, permissions (its own and the controller ServiceAccount's), the REST API and
//! existing `k8s` data, and records what a rollback needs: the original URL and replica count.

use super::control::etcd_stateful_set;
use super::{StepCtx, StepError, StepResult};
use crate::cluster::controller::{self, ControllerInfo, ControllerKind, version_tuple};
use crate::cluster::{AccessQuestion, ClusterError, helm};
use crate::db::Originals;
use crate::engine::{Check, CheckLevel};
use crate::linstor::toml::Backend;
use crate::model::RunKind;

/// The rights the `k8s` backend needs (REFERENCE.md §2; `deletecollection` and `watch` were
/// missing before chart 1.10.6, piraeus-operator#521).
pub fn k8s_backend_rules() -> Vec<AccessQuestion> {
    let mut q = Vec::new();
    for verb in ["get", "list", "watch", "create", "update", "patch", "delete"] {
        q.push(AccessQuestion::new(
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            verb,
            "",
        ));
    }
    for verb in [
        "get",
        "list",
        "watch",
        "create",
        "update",
        "patch",
        "delete",
        "deletecollection",
    ] {
        q.push(AccessQuestion::new("internal.linstor.linbit.com", "*", verb, ""));
    }
    q
}

/// The rights this service needs in the controller's namespace for a run of `kind`.
pub fn own_rules(kind: RunKind, c: &ControllerInfo) -> Vec<AccessQuestion> {
    let ns = c.namespace.as_str();
    let mut q = vec![
        AccessQuestion::new("apps", "deployments", "get", ns),
        AccessQuestion::new("", "configmaps", "get", ns),
        AccessQuestion::new("", "pods", "list", ns),
    ];
    if kind == RunKind::Preflight {
        return q;
    }
    for verb in ["create", "delete", "get", "watch"] {
        q.push(AccessQuestion::new("", "pods", verb, ns));
    }
    // before Kubernetes 1.35 a websocket exec is authorized as `get` (kubernetes#134577), from
    // 1.35 on as `create`: ask for both
    q.push(AccessQuestion::new("", "pods/exec", "get", ns));
    q.push(AccessQuestion::new("", "pods/exec", "create", ns));
    for verb in ["create", "update", "patch", "delete"] {
        q.push(AccessQuestion::new("", "configmaps", verb, ns));
    }
    // the k8s backend's objects: read by the verification, deleted when a backend holds data
    // before an import, written by the delta import (cluster-scoped)
    if kind == RunKind::Migrate {
        for verb in ["list", "create", "patch", "delete"] {
            q.push(AccessQuestion::new(
                crate::linstor::schema::K8S_GROUP,
                "*",
                verb,
                "",
            ));
        }
    }
    // the etcd StatefulSet's replicas (recorded, and restored before a rollback starts the controller)
    for verb in ["get", "list", "watch"] {
        q.push(AccessQuestion::new("apps", "statefulsets", verb, ns));
    }
    // the per-controller Lease that keeps a second linstor-migrator (a CLI, another replica) off
    for verb in ["get", "create", "update", "delete"] {
        q.push(AccessQuestion::new("coordination.k8s.io", "leases", verb, ns));
    }
    match c.kind {
        ControllerKind::LinstorController => {
            q.push(AccessQuestion::new(
                "piraeus.linbit.com",
                "linstorcontrollers",
                "patch",
                ns,
            ));
        }
        ControllerKind::Deployment => {
            q.push(AccessQuestion::new("apps", "deployments/scale", "patch", ns));
        }
    }
    q
}

fn grant_hint(q: &AccessQuestion, subject: &str) -> String {
    let group = if q.group.is_empty() {
        "core".to_string()
    } else {
        q.group.clone()
    };
    let scope = if q.namespace.is_empty() {
        "cluster-wide".to_string()
    } else {
        format!("in namespace {}", q.namespace)
    };
    format!(
        "{subject} may not {} {} ({group}) {scope}; grant it with a (Cluster)Role rule \
         {{apiGroups: [\"{}\"], resources: [\"{}\"], verbs: [\"{}\"]}} bound to {subject}",
        q.verb, q.resource, q.group, q.resource, q.verb
    )
}

pub(super) async fn run(c: &mut StepCtx<'_>) -> StepResult {
    let kind = c.run.kind;
    let info = match controller::find(c.cluster(), &c.run.controller).await {
        Ok(i) => i,
        Err(ClusterError::NotFound { .. }) => {
            return Err(StepError::Failed(format!(
                "controller {} does not exist",
                c.run.controller
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let mut checks = Vec::new();
    let mut check = |name: &str, level: CheckLevel, message: String| {
        checks.push(Check {
            name: name.into(),
            level,
            message,
        });
    };
    c.info(&format!(
        "found {} {}/{} (Deployment {}, image {})",
        match info.kind {
            ControllerKind::LinstorController => "LinstorController",
            ControllerKind::Deployment => "Deployment",
        },
        info.namespace,
        info.name,
        info.deployment,
        info.image.as_deref().unwrap_or("unknown")
    ))
    .await?;

    // configuration and backend
    let url = info.connection_url.clone().unwrap_or_default();
    match (&info.config_error, info.backend, kind) {
        (Some(e), _, _) => check(
            "config",
            CheckLevel::Error,
            format!("cannot read linstor.toml: {e}"),
        ),
        (None, Backend::K8s, RunKind::Migrate) => check(
            "backend",
            CheckLevel::Error,
            "the controller already uses the k8s backend".into(),
        ),
        (None, Backend::Etcd, _) | (None, Backend::K8s, _) => check(
            "backend",
            CheckLevel::Ok,
            format!("database backend {} ({url})", info.backend),
        ),
        (None, Backend::Sql | Backend::H2, RunKind::Migrate) if !c.run.options.allow_non_etcd_source => {
            check(
                "backend",
                CheckLevel::Error,
                format!(
                    "source backend is {} ({url}); set options.allow_non_etcd_source to migrate it",
                    info.backend
                ),
            )
        }
        (None, Backend::Sql | Backend::H2, _) => check(
            "backend",
            CheckLevel::Warning,
            format!("source backend is {} ({url})", info.backend),
        ),
        (None, Backend::Unknown, _) => check(
            "backend",
            CheckLevel::Error,
            format!("unknown database connection URL {url:?}"),
        ),
    }

    // LINSTOR version: the tool exists since 1.24; etcd support ended with 1.34
    match info
        .linstor_version
        .as_deref()
        .and_then(|v| version_tuple(v).map(|t| (v, t)))
    {
        None => check(
            "version",
            CheckLevel::Warning,
            "the image tag does not tell the LINSTOR version".into(),
        ),
        Some((v, t)) if t < (1, 24, 0) => check(
            "version",
            CheckLevel::Error,
            format!(
                "LINSTOR {v} has no linstor-database tool (needs 1.24 or later); upgrade within 1.x first"
            ),
        ),
        Some((v, t)) if t >= (1, 34, 0) && info.backend == Backend::Etcd => check(
            "version",
            CheckLevel::Error,
            format!("LINSTOR {v} cannot read etcd (removed in 1.34); use an image of 1.33.x or earlier"),
        ),
        Some((v, _)) => check("version", CheckLevel::Ok, format!("LINSTOR {v}")),
    }

    // the k8s backend is one per Kubernetes cluster: a second LINSTOR cluster would overwrite it
    if kind == RunKind::Migrate {
        let others: Vec<String> = controller::discover(c.cluster())
            .await?
            .into_iter()
            .filter(|o| o.backend == Backend::K8s && (o.namespace != info.namespace || o.name != info.name))
            .map(|o| format!("{}/{}", o.namespace, o.name))
            .collect();
        if !others.is_empty() {
            check(
                "k8s-backend",
                CheckLevel::Error,
                format!(
                    "{} already use(s) the k8s backend of this Kubernetes cluster; importing would overwrite its data",
                    others.join(", ")
                ),
            );
        }
    }

    // existing data in the k8s backend: the import replaces it
    if kind == RunKind::Migrate {
        match c.cluster().k8s_backend_inventory().await {
            Ok(inv) if inv.total_objects() > 0 || inv.rollback_objects > 0 => {
                if inv.total_objects() > 0 {
                    // the k8s backend is one per Kubernetes cluster: data there was written by
                    // another controller or an earlier import (no discovered controller uses it)
                    check(
                        "k8s-backend",
                        CheckLevel::Warning,
                        format!(
                            "the k8s backend already holds {} objects (schema version {}) that no controller \
                             found here uses: written by another LINSTOR controller or an earlier import; \
                             the import will replace them",
                            inv.total_objects(),
                            inv.schema_version.map_or("unknown".into(), |v| v.to_string())
                        ),
                    );
                }
                if let Some(ch) = super::preflight_data::rollback_objects(&inv) {
                    check(&ch.name, ch.level, ch.message);
                }
                c.ctx.k8s_backend_before = Some(inv);
            }
            Ok(inv) => {
                check("k8s-backend", CheckLevel::Ok, "the k8s backend is empty".into());
                c.ctx.k8s_backend_before = Some(inv);
            }
            Err(e) => check(
                "k8s-backend",
                CheckLevel::Warning,
                format!("cannot list the k8s backend: {e}"),
            ),
        }
    }

    // an etcd with TLS: the migration pod must see its certificate files
    if let Some(cm) = &info.config_map
        && info.backend == Backend::Etcd
    {
        let toml = c
            .cluster()
            .get_config_map(&info.namespace, cm)
            .await?
            .and_then(|m| m.data)
            .and_then(|d| d.get("linstor.toml").cloned());
        let config = toml
            .as_deref()
            .and_then(|t| crate::linstor::toml::LinstorConfig::parse(t).ok());
        let deployment = c
            .cluster()
            .get_deployment(&info.namespace, &info.deployment)
            .await?;
        if let (Some(config), Some(deployment)) = (config, deployment)
            && let Some(ch) = super::preflight_data::etcd_tls(&config, &deployment)
        {
            check(&ch.name, ch.level, ch.message);
        }
    }

    // this service's own permissions
    let decisions = c.cluster().review_self_access(&own_rules(kind, &info)).await?;
    let missing: Vec<String> = decisions
        .iter()
        .filter(|d| !d.allowed)
        .map(|d| grant_hint(&d.question, "this service"))
        .collect();
    if missing.is_empty() {
        check(
            "permissions",
            CheckLevel::Ok,
            "this service has the rights it needs".into(),
        );
    } else {
        for m in missing {
            check("permissions", CheckLevel::Error, m);
        }
    }

    // the controller ServiceAccount's k8s-backend rights (REFERENCE.md §2)
    if kind == RunKind::Migrate {
        let user = format!(
            "system:serviceaccount:{}:{}",
            info.namespace, info.service_account
        );
        let groups = vec![
            "system:serviceaccounts".to_string(),
            format!("system:serviceaccounts:{}", info.namespace),
        ];
        let decisions = c
            .cluster()
            .review_subject_access(&user, &groups, &k8s_backend_rules())
            .await?;
        let subject = format!("ServiceAccount {}/{}", info.namespace, info.service_account);
        let missing: Vec<String> = decisions
            .iter()
            .filter(|d| !d.allowed)
            .map(|d| grant_hint(&d.question, &subject))
            .collect();
        if missing.is_empty() {
            check(
                "controller-rbac",
                CheckLevel::Ok,
                format!("{subject} has the k8s backend rights"),
            );
        } else {
            for m in missing {
                check("controller-rbac", CheckLevel::Error, m);
            }
        }
    }

    // the REST API answers (the snapshot and the final verification need it)
    if info.replicas > 0 {
        match crate::cluster::controller::linstor_api(c.cluster(), &info).await {
            Ok(api) => match api.version().await {
                Ok(v) => check(
                    "rest-api",
                    CheckLevel::Ok,
                    format!(
                        "LINSTOR REST API at {} answers (version {})",
                        api.base_url(),
                        v.version
                    ),
                ),
                Err(e) => check(
                    "rest-api",
                    if kind == RunKind::Migrate {
                        CheckLevel::Error
                    } else {
                        CheckLevel::Warning
                    },
                    e.to_string(),
                ),
            },
            Err(e) => check(
                "rest-api",
                CheckLevel::Error,
                format!("cannot reach the LINSTOR REST API: {e}"),
            ),
        }
    } else {
        check(
            "rest-api",
            CheckLevel::Warning,
            "the controller is scaled to 0; nothing to compare before and after".into(),
        );
    }

    // Helm values that would undo the change on the next upgrade
    if kind == RunKind::Migrate {
        match c.cluster().list_helm_release_secrets(&info.namespace).await {
            Ok(secrets) => {
                if let Some(release) = helm::latest_deployed(&secrets).into_iter().next() {
                    let drift = helm::values_drift(&release);
                    if drift.says_etcd {
                        check(
                            "helm",
                            CheckLevel::Warning,
                            format!(
                                "Helm release {} still says etcd: persist the change afterwards",
                                drift.release
                            ),
                        );
                    }
                    c.ctx.helm_command = Some(drift.persist_command.clone());
                    c.ctx.helm = serde_json::to_value(&drift).ok();
                }
            }
            Err(e) => check(
                "helm",
                CheckLevel::Warning,
                format!("cannot read Helm releases: {e}"),
            ),
        }
    }

    for ch in &checks {
        let level = match ch.level {
            CheckLevel::Ok => "info",
            CheckLevel::Warning => "warn",
            CheckLevel::Error => "error",
        };
        c.log
            .line(Some(c.step), level, &format!("{}: {}", ch.name, ch.message))
            .await?;
    }

    // what a rollback restores, in columns of their own (frozen once the downtime begins)
    if kind != RunKind::Preflight {
        let originals = originals(c, &info).await?;
        c.inner.db.record_originals(&c.run.id, &originals).await?;
    }
    c.ctx
        .started_at_ms
        .get_or_insert(c.run.created_at.timestamp_millis());
    c.ctx.plan = plan(kind, &info);
    let errors = checks.iter().filter(|c| c.level == CheckLevel::Error).count();
    c.ctx.checks = checks;
    c.ctx.controller = Some(info);
    if errors > 0 {
        return Err(StepError::Failed(format!(
            "{errors} preflight check(s) failed; nothing was changed"
        )));
    }
    Ok("all checks passed".into())
}

/// The controller as it is now, before the run changes anything.
async fn originals(c: &StepCtx<'_>, info: &ControllerInfo) -> Result<Originals, StepError> {
    let connection_url = match info.kind {
        ControllerKind::LinstorController => c
            .cluster()
            .get_linstor_controller(&info.namespace, &info.name)
            .await?
            .and_then(|cr| cr.spec.db_connection_url)
            .filter(|u| !u.is_empty())
            .or(info.connection_url.clone()),
        ControllerKind::Deployment => info.connection_url.clone(),
    };
    let config_toml = match &info.config_map {
        Some(cm) => c
            .cluster()
            .get_config_map(&info.namespace, cm)
            .await?
            .and_then(|m| m.data)
            .and_then(|d| d.get("linstor.toml").cloned()),
        None => None,
    };
    let etcd = connection_url.as_deref().and_then(etcd_stateful_set);
    let etcd_replicas = match &etcd {
        // a StatefulSet that cannot be read is not scaled and not restored (the permission
        // check says what is missing)
        Some(sts) => match c.cluster().get_stateful_set(&info.namespace, sts).await {
            Ok(s) => s.and_then(|s| s.spec.and_then(|s| s.replicas)),
            Err(e) => {
                c.warn(&format!(
                    "cannot read the etcd StatefulSet {}/{sts}: {e}",
                    info.namespace
                ))
                .await?;
                None
            }
        },
        None => None,
    };
    Ok(Originals {
        connection_url,
        replicas: info.replicas,
        config_toml,
        // only a StatefulSet that exists next to the controller is ever scaled
        etcd_stateful_set: etcd.filter(|_| etcd_replicas.is_some()),
        etcd_replicas,
        target: info.clone(),
    })
}

fn plan(kind: RunKind, c: &ControllerInfo) -> Vec<String> {
    let scale = match c.kind {
        ControllerKind::LinstorController => {
            format!("LinstorController {}/{} spec.replicas", c.namespace, c.name)
        }
        ControllerKind::Deployment => format!("Deployment {}/{} replicas", c.namespace, c.deployment),
    };
    let mut p = vec![format!(
        "create a migration pod from {} with its image, ServiceAccount and config",
        c.deployment
    )];
    if kind == RunKind::Migrate {
        p.push("snapshot nodes, storage pools and resources through the REST API".into());
    }
    p.push(format!("stop the controller: {scale} 0 (downtime starts)"));
    p.push("export the database with linstor-database export-db and copy the backup here".into());
    if kind == RunKind::Migrate {
        p.push("import the backup into the k8s backend and export it again to compare".into());
        p.push(match c.kind {
            ControllerKind::LinstorController => {
                "set spec.dbConnectionURL to k8s and wait for the ConfigMap".into()
            }
            ControllerKind::Deployment => "set connection_url = \"k8s\" in the controller's ConfigMap".into(),
        });
    }
    p.push(format!(
        "start the controller: {scale} {} (downtime ends)",
        c.replicas
    ));
    if kind == RunKind::Migrate {
        p.push("compare the REST API before and after, list error reports, clean up".into());
    }
    p
}
