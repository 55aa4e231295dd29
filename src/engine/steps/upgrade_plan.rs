//! The one step of an upgrade-plan run: reads the Piraeus Operator v1 installation of the
//! controller (its LinstorController, LinstorSatelliteSets, LinstorCSIDriver, Helm releases,
//! passphrase Secret, operator Deployment, CRDs and the satellites' LINSTOR properties) and
//! makes the plan for the rest of the v1 -> v2 upgrade (`crate::upgrade`). Read-only: it changes
//! nothing, whatever it finds; what blocks the upgrade is in the plan's checks, not a failure.

use super::control::etcd_stateful_set;
use super::{StepCtx, StepError, StepResult};
use crate::cluster::controller::{self, ControllerInfo, ControllerKind};
use crate::cluster::{Cluster, ClusterError, helm};
use crate::upgrade::v1::{
    HelmValues, NodeLabels, OperatorDeployment, OtherRelease, Passphrase, V1Installation, V1Resource,
};
use crate::upgrade::{CheckOutcome, HA_CHARTS, Outcome};

/// The container of the v1 operator's Deployment.
const OPERATOR_CONTAINER: &str = "piraeus-operator";
const V1_GROUP: &str = "piraeus.linbit.com";
const V2_GROUP: &str = "piraeus.io";

fn resource(object: &impl serde::Serialize) -> V1Resource {
    V1Resource::from_object(&serde_json::to_value(object).unwrap_or_default())
}

pub(super) async fn run(c: &mut StepCtx<'_>) -> StepResult {
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
    if info.kind != ControllerKind::LinstorController {
        return Err(StepError::Failed(format!(
            "{} is a Deployment that no LinstorController owns: the upgrade plan is for Piraeus Operator v1 \
             installations",
            c.run.controller
        )));
    }
    let inst = collect(c, &info).await?;
    let plan = crate::upgrade::plan(&inst);
    for check in &plan.checks {
        let level = match check.outcome {
            CheckOutcome::Passed => "info",
            CheckOutcome::Warning => "warn",
            CheckOutcome::Blocking => "error",
        };
        c.log
            .line(
                Some(c.step),
                level,
                &format!("{}: {}", check.title, check.message),
            )
            .await?;
    }
    let blocking = plan.blocking().count();
    let warnings = plan
        .checks
        .iter()
        .filter(|k| k.outcome == CheckOutcome::Warning)
        .count();
    let open = plan
        .fields
        .iter()
        .filter(|f| f.outcome == Outcome::NotConverted)
        .count();
    c.ctx.controller = Some(info);
    c.ctx.upgrade_plan = Some(plan);
    Ok(format!(
        "plan ready: {blocking} blocking, {warnings} warning(s), {open} value(s) not converted"
    ))
}

/// Reads everything the plan looks at.
async fn collect(c: &StepCtx<'_>, info: &ControllerInfo) -> Result<V1Installation, StepError> {
    let cluster = c.cluster();
    let ns = info.namespace.as_str();
    let cr = cluster
        .get_linstor_controller(ns, &info.name)
        .await?
        .ok_or_else(|| StepError::Failed(format!("LinstorController {ns}/{} is gone", info.name)))?;
    let controller = resource(&cr);
    let controllers_found = cluster
        .list_linstor_controllers()
        .await?
        .iter()
        .map(|l| {
            format!(
                "{}/{}",
                l.metadata.namespace.as_deref().unwrap_or_default(),
                l.metadata.name.as_deref().unwrap_or_default()
            )
        })
        .collect();
    let satellite_sets = cluster
        .list_linstor_satellite_sets(ns)
        .await?
        .iter()
        .map(resource)
        .collect();
    let csi_drivers = cluster
        .list_linstor_csi_drivers(ns)
        .await?
        .iter()
        .map(resource)
        .collect();
    let (helm, other_releases) = releases(c, ns).await?;
    let passphrase = passphrase(cluster, ns, controller.text("luksSecret")).await?;
    let url = controller.text("dbConnectionURL").map(str::to_string);
    let etcd_stateful_set = match url.as_deref().and_then(etcd_stateful_set) {
        Some(sts) => match cluster.get_stateful_set(ns, &sts).await {
            Ok(found) => found.map(|_| sts),
            Err(e) => {
                c.warn(&format!("cannot read the etcd StatefulSet {sts}: {e}"))
                    .await?;
                None
            }
        },
        None => None,
    };
    let v1_crds = match cluster.crd_names(V1_GROUP).await {
        Ok(names) => names,
        Err(e) => {
            c.warn(&format!(
                "cannot list CRDs ({e}); assuming the three v1 CRDs exist"
            ))
            .await?;
            ["linstorcontrollers", "linstorcsidrivers", "linstorsatellitesets"]
                .map(|k| format!("{k}.{V1_GROUP}"))
                .to_vec()
        }
    };
    let v2_crds = cluster.crd_names(V2_GROUP).await.unwrap_or_default();
    Ok(V1Installation {
        namespace: ns.to_string(),
        target_namespace: c
            .run
            .options
            .v2_namespace
            .clone()
            .unwrap_or_else(|| ns.to_string()),
        controllers_found,
        satellite_sets,
        csi_drivers,
        backend: info.backend,
        // shown (summary, checks), never used: without a password it may carry
        config_url: info
            .connection_url
            .as_deref()
            .map(crate::linstor::toml::redact_url),
        controller_deployment: info.deployment.clone(),
        linstor_version: info.linstor_version.clone(),
        helm,
        other_releases,
        passphrase,
        operator: operator(cluster, ns).await?,
        v1_crds,
        v2_crds,
        node_labels: node_labels(cluster, info).await,
        etcd_stateful_set,
        controller,
    })
}

/// The piraeus chart's release, and the HA and affinity controllers' releases, in `ns`.
async fn releases(c: &StepCtx<'_>, ns: &str) -> Result<(Option<HelmValues>, Vec<OtherRelease>), StepError> {
    let secrets = match c.cluster().list_helm_release_secrets(ns).await {
        Ok(s) => s,
        Err(e @ ClusterError::Forbidden(_)) => {
            c.warn(&format!("cannot read Helm releases: {e}")).await?;
            return Ok((None, Vec::new()));
        }
        Err(e) => return Err(e.into()),
    };
    let releases = helm::latest_deployed(&secrets);
    let piraeus = releases
        .iter()
        .find(|r| r.chart_name.as_deref() == Some("piraeus"))
        .map(|r| HelmValues {
            release: r.name.clone(),
            namespace: r.namespace.clone(),
            chart_name: "piraeus".into(),
            values: r.config.clone(),
        });
    let others = releases
        .iter()
        .filter_map(|r| {
            let chart = r.chart_name.as_deref()?;
            HA_CHARTS.contains(&chart).then(|| OtherRelease {
                name: r.name.clone(),
                namespace: r.namespace.clone(),
                chart_name: chart.to_string(),
            })
        })
        .collect();
    Ok((piraeus, others))
}

async fn passphrase(cluster: &dyn Cluster, ns: &str, name: Option<&str>) -> Result<Passphrase, StepError> {
    let Some(name) = name else {
        return Ok(Passphrase::NotConfigured);
    };
    let secret = name.to_string();
    Ok(match cluster.get_secret(ns, name).await {
        Ok(None) => Passphrase::Missing { secret },
        Ok(Some(s))
            if s.data
                .as_ref()
                .is_some_and(|d| d.contains_key("MASTER_PASSPHRASE")) =>
        {
            Passphrase::Present { secret }
        }
        Ok(Some(_)) => Passphrase::NoKey { secret },
        Err(ClusterError::Forbidden(why)) => Passphrase::Unreadable { secret, why },
        Err(e) => return Err(e.into()),
    })
}

/// The v1 operator: the Deployment in `ns` with a `piraeus-operator` container.
async fn operator(cluster: &dyn Cluster, ns: &str) -> Result<Option<OperatorDeployment>, StepError> {
    let found = cluster.list_deployments().await?.into_iter().find(|d| {
        d.metadata.namespace.as_deref() == Some(ns)
            && d.spec
                .as_ref()
                .and_then(|s| s.template.spec.as_ref())
                .is_some_and(|p| p.containers.iter().any(|c| c.name == OPERATOR_CONTAINER))
    });
    Ok(found.map(|d| OperatorDeployment {
        name: d.metadata.name.clone().unwrap_or_default(),
        selector: d
            .spec
            .as_ref()
            .and_then(|s| s.selector.match_labels.as_ref())
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default(),
    }))
}

/// The `Aux/` properties of the satellites, from the LINSTOR REST API.
async fn node_labels(cluster: &dyn Cluster, info: &ControllerInfo) -> NodeLabels {
    if info.replicas == 0 {
        return NodeLabels::Unknown("the controller is scaled to 0".into());
    }
    let api = match controller::linstor_api(cluster, info).await {
        Ok(api) => api,
        Err(e) => return NodeLabels::Unknown(e.to_string()),
    };
    match api.nodes().await {
        Ok(nodes) => NodeLabels::Known(
            nodes
                .into_iter()
                .filter(|n| n.node_type.eq_ignore_ascii_case("satellite"))
                .map(|n| {
                    let keys = n
                        .props
                        .keys()
                        .filter_map(|k| k.strip_prefix("Aux/"))
                        .map(str::to_string)
                        .collect();
                    (n.name, keys)
                })
                .collect(),
        ),
        Err(e) => NodeLabels::Unknown(e.to_string()),
    }
}
