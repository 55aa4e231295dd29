//! Step 1's checks: one list, [`CHECKS`], that every run executes. What a check asks depends on
//! the kind of run it checks for, [`checked_kind`]: a preflight run checks for the migration it
//! precedes, so that a green preflight means the migration's own preflight passes too. The checks
//! that need nothing but the discovered controllers ([`discovery_checks`]) are pure, and the
//! dashboard asks them before it offers an action.

use super::preflight_data;
use super::preflight_rules::{grant_hint, k8s_backend_rules, own_rules};
use super::{StepCtx, StepError};
use crate::cluster::controller::{self, ControllerInfo};
use crate::cluster::helm;
use crate::engine::backend::ownership::{self, Ownership};
use crate::engine::{Check, CheckLevel};
use crate::linstor::toml::{Backend, LinstorConfig, redact_url};
use crate::linstor::versions::{self, Support};
use crate::model::{RunKind, RunOptions};

/// One check of step 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CheckId {
    /// `linstor.toml` parses and names a backend this kind of run can start from.
    Backend,
    /// The image's LINSTOR version has the tool and (for etcd) can still read etcd.
    Version,
    /// No other controller of this Kubernetes cluster uses its one `k8s` backend.
    K8sBackendUsers,
    /// What the `k8s` backend holds: data the import replaces, stale `Rollback` objects.
    K8sBackendData,
    /// An etcd with TLS: the migration pod can read its certificate files.
    EtcdTls,
    /// This service's own rights for the run.
    Permissions,
    /// The controller ServiceAccount's rights on the `k8s` backend.
    ControllerRbac,
    /// The LINSTOR REST API answers.
    RestApi,
    /// The Helm release's values, which a later `helm upgrade` would render again.
    Helm,
}

/// The checks in the order they run and are shown. Every run kind executes all of them; a check
/// that does not concern the checked kind adds nothing.
pub(super) const CHECKS: [CheckId; 9] = [
    CheckId::Backend,
    CheckId::Version,
    CheckId::K8sBackendUsers,
    CheckId::K8sBackendData,
    CheckId::EtcdTls,
    CheckId::Permissions,
    CheckId::ControllerRbac,
    CheckId::RestApi,
    CheckId::Helm,
];

/// The kind of run the checks are for: a preflight run checks for a migration.
pub fn checked_kind(kind: RunKind) -> RunKind {
    match kind {
        RunKind::Preflight => RunKind::Migrate,
        other => other,
    }
}

fn check(name: &str, level: CheckLevel, message: String) -> Check {
    Check {
        name: name.into(),
        level,
        message,
    }
}

/// The checks that need only the discovered controllers (`all`, `info` among them), for a run
/// of `kind` (already the checked kind) with `options`. Pure: the dashboard asks them too.
pub fn discovery_checks(
    info: &ControllerInfo,
    all: &[ControllerInfo],
    kind: RunKind,
    options: &RunOptions,
) -> Vec<Check> {
    let mut out = vec![backend(info, kind, options), version(info)];
    out.extend(k8s_backend_users(info, all, kind));
    out
}

fn backend(info: &ControllerInfo, kind: RunKind, options: &RunOptions) -> Check {
    // for the messages only: without a password it may carry
    let url = redact_url(info.connection_url.as_deref().unwrap_or_default());
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
        (None, Backend::Etcd | Backend::K8s, _) => check(
            "backend",
            CheckLevel::Ok,
            format!("database backend {} ({url})", info.backend),
        ),
        (None, Backend::Sql | Backend::H2, RunKind::Migrate) if !options.allow_non_etcd_source => check(
            "backend",
            CheckLevel::Error,
            format!(
                "source backend is {} ({url}); set options.allow_non_etcd_source to migrate it",
                info.backend
            ),
        ),
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
}

/// The tool exists since LINSTOR 1.24; etcd support ended with 1.34; the delta import is proven
/// for the recorded versions only (`linstor::versions`).
fn version(info: &ControllerInfo) -> Check {
    match info.linstor_version.as_deref() {
        None => check(
            "version",
            CheckLevel::Warning,
            format!(
                "the image tag does not tell the LINSTOR version; step 4 reads it from the first export (the delta \
                 import only for a recorded version: {})",
                versions::recorded_list()
            ),
        ),
        Some(v) => match versions::support(v, info.backend == Backend::Etcd) {
            Support::Refused(why) => check("version", CheckLevel::Error, why),
            Support::ToolOnly(why) => check("version", CheckLevel::Warning, format!("LINSTOR {v}: {why}")),
            Support::Proven(r) => check(
                "version",
                CheckLevel::Ok,
                format!(
                    "LINSTOR {v}: recorded (export data_version {}, {} tables); the delta import is proven for it",
                    r.data_version, r.export_tables
                ),
            ),
        },
    }
}

/// The `k8s` backend is one per Kubernetes cluster: a second LINSTOR cluster would overwrite it.
fn k8s_backend_users(info: &ControllerInfo, all: &[ControllerInfo], kind: RunKind) -> Option<Check> {
    if kind != RunKind::Migrate {
        return None;
    }
    let others: Vec<String> = all
        .iter()
        .filter(|o| o.backend == Backend::K8s && (o.namespace != info.namespace || o.name != info.name))
        .map(|o| format!("{}/{}", o.namespace, o.name))
        .collect();
    (!others.is_empty()).then(|| {
        check(
            "k8s-backend",
            CheckLevel::Error,
            format!(
                "{} already use(s) the k8s backend of this Kubernetes cluster; importing would overwrite its data",
                others.join(", ")
            ),
        )
    })
}

/// Runs one check for the controller `info` and appends what it found to `checks`.
pub(super) async fn run_check(
    id: CheckId,
    c: &mut StepCtx<'_>,
    info: &ControllerInfo,
    checks: &mut Vec<Check>,
) -> Result<(), StepError> {
    let kind = checked_kind(c.run.kind);
    let migrate = kind == RunKind::Migrate;
    match id {
        CheckId::Backend => checks.push(backend(info, kind, &c.run.options)),
        CheckId::Version => checks.push(version(info)),
        CheckId::K8sBackendUsers if migrate => {
            let all = controller::discover(c.cluster()).await?;
            checks.extend(k8s_backend_users(info, &all, kind));
        }
        CheckId::K8sBackendData if migrate => k8s_backend_data(c, info, checks).await?,
        CheckId::EtcdTls if info.backend == Backend::Etcd => etcd_tls(c, info, checks).await?,
        CheckId::Permissions => permissions(c, info, kind, checks).await?,
        CheckId::ControllerRbac if migrate => controller_rbac(c, info, checks).await?,
        CheckId::RestApi => checks.push(rest_api(c, info, kind).await),
        CheckId::Helm if migrate => helm_values(c, info, checks).await,
        _ => {}
    }
    Ok(())
}

/// Existing data in the `k8s` backend: replaced only when this service provably left it there,
/// never when it may be another LINSTOR's (the backend is one per Kubernetes cluster).
async fn k8s_backend_data(
    c: &mut StepCtx<'_>,
    info: &ControllerInfo,
    checks: &mut Vec<Check>,
) -> Result<(), StepError> {
    let inv = match c.cluster().k8s_backend_inventory().await {
        Ok(inv) => inv,
        Err(e) => {
            checks.push(check(
                "k8s-backend",
                CheckLevel::Error,
                format!("cannot list the k8s backend, so nobody can tell whose data it holds: {e}"),
            ));
            return Ok(());
        }
    };
    let last = c.inner.db.last_backend_write().await?;
    match ownership::judge(&inv, last.as_ref(), &c.run.id) {
        Ownership::Empty => checks.push(check(
            "k8s-backend",
            CheckLevel::Ok,
            "the k8s backend holds no LINSTOR data".into(),
        )),
        Ownership::Ours(l) => {
            checks.push(check(
                "k8s-backend",
                CheckLevel::Warning,
                format!(
                    "the k8s backend holds {} objects that run {} of this service left there ({}), unchanged since; \
                     this run deletes them after the approval, before its import",
                    inv.total_objects(),
                    l.run_id,
                    l.recorded_at.format("%Y-%m-%d %H:%M:%S UTC")
                ),
            ));
            c.ctx.backend_to_replace = Some(inv.total_objects());
        }
        Ownership::Foreign(why) => checks.push(check("k8s-backend", CheckLevel::Error, why)),
    }
    if let Some(why) = info
        .linstor_version
        .as_deref()
        .and_then(|v| ownership::other_version(&inv, v))
    {
        checks.push(check("k8s-backend-schema", CheckLevel::Error, why));
    }
    checks.extend(preflight_data::rollback_objects(&inv));
    c.ctx.k8s_backend_before = Some(inv);
    Ok(())
}

/// An etcd with TLS: the migration pod must see its certificate files.
async fn etcd_tls(c: &StepCtx<'_>, info: &ControllerInfo, checks: &mut Vec<Check>) -> Result<(), StepError> {
    let Some(cm) = &info.config_map else {
        return Ok(());
    };
    let toml = c
        .cluster()
        .get_config_map(&info.namespace, cm)
        .await?
        .and_then(|m| m.data)
        .and_then(|d| d.get("linstor.toml").cloned());
    let config = toml.as_deref().and_then(|t| LinstorConfig::parse(t).ok());
    let deployment = c
        .cluster()
        .get_deployment(&info.namespace, &info.deployment)
        .await?;
    if let (Some(config), Some(deployment)) = (config, deployment) {
        checks.extend(preflight_data::etcd_tls(&config, &deployment));
    }
    Ok(())
}

async fn permissions(
    c: &StepCtx<'_>,
    info: &ControllerInfo,
    kind: RunKind,
    checks: &mut Vec<Check>,
) -> Result<(), StepError> {
    let decisions = c.cluster().review_self_access(&own_rules(kind, info)).await?;
    let missing: Vec<String> = decisions
        .iter()
        .filter(|d| !d.allowed)
        .map(|d| grant_hint(&d.question, "this service"))
        .collect();
    if missing.is_empty() {
        checks.push(check(
            "permissions",
            CheckLevel::Ok,
            format!("this service has the rights a {kind} needs"),
        ));
    }
    for m in missing {
        checks.push(check("permissions", CheckLevel::Error, m));
    }
    Ok(())
}

/// The controller ServiceAccount's k8s-backend rights (REFERENCE.md §2).
async fn controller_rbac(
    c: &StepCtx<'_>,
    info: &ControllerInfo,
    checks: &mut Vec<Check>,
) -> Result<(), StepError> {
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
        checks.push(check(
            "controller-rbac",
            CheckLevel::Ok,
            format!("{subject} has the k8s backend rights"),
        ));
    }
    for m in missing {
        checks.push(check("controller-rbac", CheckLevel::Error, m));
    }
    Ok(())
}

/// The REST API answers (the snapshot and the final verification need it).
async fn rest_api(c: &StepCtx<'_>, info: &ControllerInfo, kind: RunKind) -> Check {
    if info.replicas == 0 {
        return check(
            "rest-api",
            CheckLevel::Warning,
            "the controller is scaled to 0; nothing to compare before and after".into(),
        );
    }
    match controller::linstor_api(c.cluster(), info).await {
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
}

/// Helm values that would undo the change on the next upgrade.
async fn helm_values(c: &mut StepCtx<'_>, info: &ControllerInfo, checks: &mut Vec<Check>) {
    match c.cluster().list_helm_release_secrets(&info.namespace).await {
        Ok(secrets) => {
            if let Some(release) = helm::latest_deployed(&secrets).into_iter().next() {
                let drift = helm::values_drift(&release);
                if drift.says_etcd {
                    checks.push(check(
                        "helm",
                        CheckLevel::Warning,
                        format!(
                            "Helm release {} still says etcd: persist the change afterwards",
                            drift.release
                        ),
                    ));
                }
                c.ctx.helm_command = Some(drift.persist_command.clone());
                c.ctx.helm = serde_json::to_value(&drift).ok();
            }
        }
        Err(e) => checks.push(check(
            "helm",
            CheckLevel::Warning,
            format!("cannot read Helm releases: {e}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn controller(name: &str, backend: Backend) -> ControllerInfo {
        ControllerInfo {
            namespace: "ns".into(),
            name: name.into(),
            kind: controller::ControllerKind::Deployment,
            deployment: name.into(),
            config_map: None,
            service: None,
            service_account: "sa".into(),
            image: Some("piraeus-server:v1.33.3".into()),
            linstor_version: Some("1.33.3".into()),
            replicas: 1,
            ready_replicas: 1,
            backend,
            connection_url: Some(match backend {
                Backend::K8s => "k8s".into(),
                _ => "etcd://e:2379".into(),
            }),
            config_error: None,
            https_client_secret: None,
            pod_selector: String::new(),
        }
    }

    #[test]
    fn a_preflight_checks_for_the_migration() {
        assert_eq!(checked_kind(RunKind::Preflight), RunKind::Migrate);
        assert_eq!(checked_kind(RunKind::Backup), RunKind::Backup);
        // the k8s-backend check is one of the list, and a preflight run's checks ask it
        assert!(CHECKS.contains(&CheckId::K8sBackendUsers));
        let a = controller("a", Backend::Etcd);
        let all = [a.clone(), controller("b", Backend::K8s)];
        let found = discovery_checks(&a, &all, checked_kind(RunKind::Preflight), &RunOptions::default());
        let error = found
            .iter()
            .find(|c| c.level == CheckLevel::Error)
            .expect("an error");
        assert_eq!(error.name, "k8s-backend");
        assert!(error.message.contains("ns/b"), "{}", error.message);
        // a backup does not touch the k8s backend
        let found = discovery_checks(&a, &all, RunKind::Backup, &RunOptions::default());
        assert!(found.iter().all(|c| c.level != CheckLevel::Error), "{found:?}");
    }
}
