//! The checks of a plan: whether the upgrade can go ahead (blocking), what needs attention
//! (warning), and what was found in order (passed), each with the reason and what to do.

use super::ledger::Ledger;
use super::v1::{NodeLabels, Passphrase, V1Installation};
use super::{CheckOutcome, Outcome, PlanCheck, V2_LINSTOR_VERSION, V2_VERSION};
use crate::cluster::controller::version_tuple;
use crate::linstor::toml::Backend;

/// The node labels v2 keeps in sync itself (as `Aux/topology/<label>`).
const V2_SYNCED_LABELS: [&str; 3] = [
    "kubernetes.io/hostname",
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
];
/// Charts of the controllers that v1 users install next to Piraeus and must remove first.
pub const HA_CHARTS: [&str; 2] = ["piraeus-ha-controller", "linstor-affinity-controller"];

struct Checks(Vec<PlanCheck>);

impl Checks {
    fn add(
        &mut self,
        id: &str,
        outcome: CheckOutcome,
        title: &str,
        message: String,
        action: impl Into<String>,
    ) {
        self.0.push(PlanCheck {
            id: id.into(),
            outcome,
            title: title.into(),
            message,
            action: action.into(),
        });
    }
}

use CheckOutcome::{Blocking, Passed, Warning};

pub(super) fn checks(inst: &V1Installation, ledger: &Ledger) -> Vec<PlanCheck> {
    let mut c = Checks(Vec::new());
    installation(inst, &mut c);
    database(inst, &mut c);
    passphrase(inst, &mut c);
    finalizers(inst, &mut c);
    crds(inst, &mut c);
    controllers(inst, &mut c);
    node_labels(inst, &mut c);
    linstor_version(inst, &mut c);
    tls(inst, &mut c);
    let open = ledger
        .fields()
        .iter()
        .filter(|f| f.outcome == Outcome::NotConverted)
        .count();
    if open == 0 {
        c.add(
            "not-converted",
            Passed,
            "Values not converted",
            "every value that is set was converted or equals v2's default".into(),
            "",
        );
    } else {
        c.add(
            "not-converted",
            Warning,
            "Values not converted",
            format!("{open} value(s) of the v1 resources have no v2 equivalent in the generated resources"),
            "read the \"Not converted\" table: each row says what to do if the value matters to you",
        );
    }
    c.0
}

fn installation(inst: &V1Installation, c: &mut Checks) {
    let n = inst.controllers_found.len();
    if n == 1 {
        c.add(
            "linstor-controllers",
            Passed,
            "One LinstorController",
            format!("found {}", inst.controllers_found[0]),
            "",
        );
    } else {
        c.add(
            "linstor-controllers",
            Blocking,
            "One LinstorController",
            format!(
                "v2 manages one LINSTOR cluster, found {n} LinstorControllers: {}",
                inst.controllers_found.join(", ")
            ),
            "upgrade one installation at a time: remove or migrate the others by hand first",
        );
    }
    let sets: Vec<&str> = inst.satellite_sets.iter().map(|s| s.name.as_str()).collect();
    if sets.is_empty() {
        c.add(
            "satellite-sets",
            Blocking,
            "LinstorSatelliteSets",
            format!("no LinstorSatelliteSet in {}: there is nothing to take the satellites' settings from", inst.namespace),
            "check that operator.satelliteSet.enabled was not false in the Helm values; describe the satellites by hand",
        );
    } else {
        c.add(
            "satellite-sets",
            Passed,
            "LinstorSatelliteSets",
            format!("found {}", sets.join(", ")),
            "",
        );
        let unrestricted: Vec<&str> = inst
            .satellite_sets
            .iter()
            .filter(|s| {
                s.field("affinity")
                    .and_then(|a| a.pointer("/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution"))
                    .is_none()
            })
            .map(|s| s.name.as_str())
            .collect();
        if sets.len() > 1 && !unrestricted.is_empty() {
            c.add(
                "satellite-set-nodes",
                Warning,
                "Satellite sets without their own nodes",
                format!(
                    "{} select(s) no nodes: its LinstorSatelliteConfiguration (storage pools, patches) applies to every \
                     node, next to the other sets'",
                    unrestricted.join(", ")
                ),
                "give the configuration a nodeAffinity or nodeSelector if its pools exist only on some nodes",
            );
        }
    }
    let helm_csi_off = inst
        .helm
        .as_ref()
        .and_then(|h| h.values.pointer("/csi/enabled"))
        .and_then(|v| v.as_bool())
        == Some(false);
    match inst.csi_drivers.len() {
        1 => c.add("csi-driver", Passed, "One LinstorCSIDriver", format!("found {}", inst.csi_drivers[0].name), ""),
        0 if helm_csi_off => c.add(
            "csi-driver",
            Passed,
            "One LinstorCSIDriver",
            "none: the Helm values say csi.enabled=false, so the LinstorCluster turns v2's CSI driver off too".into(),
            "",
        ),
        n => c.add(
            "csi-driver",
            Blocking,
            "One LinstorCSIDriver",
            format!("the upgrade expects exactly one LinstorCSIDriver, found {n}"),
            "keep one CSI driver; the plan converted the first one only",
        ),
    }
}

fn database(inst: &V1Installation, c: &mut Checks) {
    let cr_url = crate::linstor::toml::redact_url(inst.controller.text("dbConnectionURL").unwrap_or(""));
    let cr_url = cr_url.as_str();
    let config = inst.config_url.as_deref().unwrap_or("?");
    let reference = format!("{}/{}", inst.namespace, inst.controller.name);
    if cr_url == "k8s" && inst.backend == Backend::K8s {
        c.add(
            "database",
            Passed,
            "Database on k8s",
            "the LinstorController and its linstor.toml say k8s".into(),
            "",
        );
    } else if cr_url == "k8s" {
        c.add(
            "database",
            Blocking,
            "Database on k8s",
            format!("the LinstorController says k8s but the controller's linstor.toml still says {config}"),
            "wait until the v1 operator re-rendered the ConfigMap and the controller restarted, then plan again",
        );
    } else {
        c.add(
            "database",
            Blocking,
            "Database on k8s",
            format!(
                "the database is on {} ({config}): step 3 uninstalls the v1 chart and its etcd with it, and the generated \
                 resources would point v2 at that URL",
                inst.backend
            ),
            format!(
                "step 1 first: migrate the database with linstor-migrator (`linstor-migrator migrate --controller \
                 {reference}`, or \"Migrate to k8s\" on the dashboard), then make this plan again"
            ),
        );
    }
    if let Some(sts) = &inst.etcd_stateful_set {
        let on_k8s = cr_url == "k8s";
        c.add(
            "etcd",
            if on_k8s { Passed } else { Warning },
            "etcd",
            format!(
                "StatefulSet {sts} still runs; step 3.4 (helm uninstall) removes it, Helm keeps its volumes (PVCs \
                 datadir-{sts}-N){}",
                if on_k8s { "" } else { ", and the database is still in it" }
            ),
            "delete those PVCs only once v2 runs well and the etcd data is no longer needed as a fallback",
        );
    }
    if let Some(h) = &inst.helm {
        let url = h
            .values
            .pointer("/operator/controller/dbConnectionURL")
            .and_then(|v| v.as_str())
            .filter(|v| !v.is_empty());
        if cr_url == "k8s" && url != Some("k8s") {
            c.add(
                "helm-values",
                Warning,
                "Helm values",
                format!(
                    "Helm release {} still renders dbConnectionURL {}: any `helm upgrade` of it would point the \
                     controller back at etcd",
                    h.release,
                    url.map_or("etcd://<release>-etcd:2379 (the chart default)".into(), crate::linstor::toml::redact_url)
                ),
                "do not run helm upgrade on the v1 release: the plan stops the v1 operator with kubectl instead",
            );
        }
    } else {
        c.add(
            "helm-values",
            Warning,
            "Helm release",
            format!("no Helm release of the piraeus chart found in {}", inst.namespace),
            "step 3.4 (helm uninstall) does not apply: delete the v1 operator's Deployment and RBAC by hand",
        );
    }
}

fn passphrase(inst: &V1Installation, c: &mut Checks) {
    let target = &inst.target_namespace;
    match &inst.passphrase {
        Passphrase::NotConfigured => c.add(
            "passphrase",
            Passed,
            "Passphrase Secret",
            "the LinstorController names no passphrase Secret (luksSecret): LINSTOR runs without a master passphrase"
                .into(),
            "",
        ),
        Passphrase::Missing { secret } => c.add(
            "passphrase",
            Blocking,
            "Passphrase Secret",
            format!("the LinstorController names Secret {secret}, which does not exist in {}", inst.namespace),
            "find the master passphrase before anything else: without it encrypted volumes cannot be opened",
        ),
        Passphrase::NoKey { secret } => c.add(
            "passphrase",
            Blocking,
            "Passphrase Secret",
            format!("Secret {secret} has no key MASTER_PASSPHRASE"),
            "find the master passphrase before anything else: without it encrypted volumes cannot be opened",
        ),
        Passphrase::Unreadable { secret, why } => c.add(
            "passphrase",
            Warning,
            "Passphrase Secret",
            format!("cannot read Secret {secret} to check for MASTER_PASSPHRASE: {why}"),
            "check by hand that it holds MASTER_PASSPHRASE; step 2.4 backs it up with your own rights",
        ),
        Passphrase::Present { secret } => {
            let copy = if *target == inst.namespace {
                "v2 runs in the same namespace: the Secret stays (helm keeps it), step 4.3 checks it against the backup"
                    .to_string()
            } else {
                format!("step 4.3 creates it in {target} from the backup of step 2.4")
            };
            c.add(
                "passphrase",
                Passed,
                "Passphrase Secret",
                format!("Secret {secret} holds MASTER_PASSPHRASE; v2 does not generate one. {copy}"),
                "keep the backup of step 2.4 safe: a lost passphrase makes encrypted volumes unusable",
            );
        }
    }
}

fn finalizers(inst: &V1Installation, c: &mut Checks) {
    let with: Vec<String> = std::iter::once(("LinstorController", &inst.controller))
        .chain(inst.satellite_sets.iter().map(|s| ("LinstorSatelliteSet", s)))
        .chain(inst.csi_drivers.iter().map(|s| ("LinstorCSIDriver", s)))
        .filter(|(_, r)| !r.finalizers.is_empty())
        .map(|(k, r)| format!("{k} {} ({})", r.name, r.finalizers.join(", ")))
        .collect();
    if with.is_empty() {
        c.add(
            "finalizers",
            Passed,
            "Finalizers",
            "none of the v1 resources has a finalizer".into(),
            "",
        );
    } else {
        c.add(
            "finalizers",
            Warning,
            "Finalizers",
            format!(
                "{}: with the operator stopped, nothing would remove them and the deletion would hang",
                with.join("; ")
            ),
            "step 3.2 removes them after step 3.1 stopped the operator",
        );
    }
}

fn crds(inst: &V1Installation, c: &mut Checks) {
    if inst.v1_crds.is_empty() {
        c.add(
            "v1-crds",
            Passed,
            "v1 CRDs",
            "no *.piraeus.linbit.com CRD is left".into(),
            "",
        );
    } else {
        c.add(
            "v1-crds",
            Warning,
            "v1 CRDs",
            format!(
                "the v2 chart refuses to install while the v1 CRDs exist: {}",
                inst.v1_crds.join(", ")
            ),
            "step 3.5 deletes them (after the v1 resources are gone)",
        );
    }
    if inst.v2_crds.is_empty() {
        c.add(
            "v2-crds",
            Passed,
            "v2 not installed yet",
            "no *.piraeus.io CRD exists".into(),
            "",
        );
    } else {
        c.add(
            "v2-crds",
            Warning,
            "v2 already installed?",
            format!("v2 CRDs exist already: {}", inst.v2_crds.join(", ")),
            "check whether someone started step 4 already; a running v2 operator next to v1 fights over the nodes",
        );
    }
}

fn controllers(inst: &V1Installation, c: &mut Checks) {
    let mut found: Vec<String> = inst
        .other_releases
        .iter()
        .map(|r| {
            format!(
                "Helm release {} in {} (chart {})",
                r.name, r.namespace, r.chart_name
            )
        })
        .collect();
    if let Some(h) = &inst.helm
        && h.values
            .pointer("/piraeus-ha-controller/enabled")
            .and_then(|v| v.as_bool())
            == Some(true)
    {
        found.push(format!(
            "the HA controller subchart of Helm release {} (goes with its uninstall)",
            h.release
        ));
    }
    if found.is_empty() {
        c.add(
            "ha-controllers",
            Passed,
            "HA and affinity controllers",
            format!(
                "none found in {}; v2 deploys its own HA controller (check other namespaces with `helm list -A`)",
                inst.namespace
            ),
            "",
        );
    } else {
        c.add(
            "ha-controllers",
            Warning,
            "HA and affinity controllers",
            format!(
                "installed: {}; v2 deploys its own HA controller",
                found.join("; ")
            ),
            "step 3.6 uninstalls them; reinstall the affinity controller for v2 afterwards if you need it",
        );
    }
    if inst.operator.is_none() {
        c.add(
            "operator",
            Warning,
            "v1 operator",
            format!("no Deployment of the v1 operator found in {}", inst.namespace),
            "make sure no v1 operator runs before step 3.2 (it would put the finalizers back)",
        );
    }
}

fn node_labels(inst: &V1Installation, c: &mut Checks) {
    match &inst.node_labels {
        NodeLabels::Unknown(why) => c.add(
            "node-labels",
            Warning,
            "Node labels",
            format!("cannot read the satellites' properties ({why})"),
            "v2 keeps only hostname, region and zone in sync; see `kubectl get nodes --show-labels` for the rest. The \
             node-labels configuration keeps all of them in sync as v1 did",
        ),
        NodeLabels::Known(nodes) => {
            let mut keys: Vec<&str> = nodes
                .iter()
                .flat_map(|(_, k)| k.iter().map(String::as_str))
                .filter(|k| !k.starts_with("topology/") && *k != "registered-by" && !V2_SYNCED_LABELS.contains(k))
                .collect();
            keys.sort_unstable();
            keys.dedup();
            if keys.is_empty() {
                c.add(
                    "node-labels",
                    Passed,
                    "Node labels",
                    format!("the {} satellite(s) carry no node labels that v2 stops syncing", nodes.len()),
                    "",
                );
            } else {
                c.add(
                    "node-labels",
                    Warning,
                    "Node labels",
                    format!(
                        "v1 kept every node label in LINSTOR as Aux/<label>; v2 syncs only hostname, region and zone, \
                         so these Aux properties of the satellites would no longer follow the nodes' labels: {}",
                        keys.join(", ")
                    ),
                    "the generated LinstorSatelliteConfiguration node-labels keeps them in sync; keep it if \
                     StorageClasses (replicasOnSame, replicasOnDifferent) or resource groups use them",
                );
            }
        }
    }
}

fn linstor_version(inst: &V1Installation, c: &mut Checks) {
    let Some(v) = inst.linstor_version.as_deref() else {
        c.add(
            "linstor-version",
            Warning,
            "LINSTOR version",
            "the controller image's tag does not tell its LINSTOR version".into(),
            format!("install a v2 release whose LINSTOR is not older than the one running now (v2 {V2_VERSION} runs {V2_LINSTOR_VERSION})"),
        );
        return;
    };
    if version_tuple(v) > version_tuple(V2_LINSTOR_VERSION) {
        c.add(
            "linstor-version",
            Warning,
            "LINSTOR version",
            format!(
                "the database was written by LINSTOR {v}; Piraeus Operator {V2_VERSION} runs LINSTOR {V2_LINSTOR_VERSION}, \
                 and LINSTOR does not open a database of a newer version"
            ),
            format!("install a v2 release that runs LINSTOR {v} or newer (set V2_VERSION in the script), or pin the \
                     piraeus-server image to {v} in the operator's image configuration"),
        );
    } else {
        c.add(
            "linstor-version",
            Passed,
            "LINSTOR version",
            format!("LINSTOR {v} now; v2 {V2_VERSION} runs {V2_LINSTOR_VERSION} and upgrades the database on its first start"),
            "",
        );
    }
}

fn tls(inst: &V1Installation, c: &mut Checks) {
    if inst.controller.text("linstorHttpsControllerSecret").is_some() {
        c.add(
            "api-tls",
            Warning,
            "API certificates",
            format!(
                "the LINSTOR API certificate was made for the v1 Service {}.{}.svc; v2 clients connect to \
                 linstor-controller.{}.svc",
                inst.controller.name, inst.namespace, inst.target_namespace
            ),
            "reissue the certificate for linstor-controller.<namespace>.svc (or let v2 make them: apiTLS.certManager) \
             before step 4.5",
        );
    }
}
