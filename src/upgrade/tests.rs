//! The mapping on the recorded chart manifests (default, after the migration, TLS with two
//! replicas), with several satellite sets, and the checks around it. Every generated object is
//! validated against the v2.6 CRDs.

use serde_json::{Value, json};

use super::test_support::{rendered_installation, v2_crd, violations};
use super::v1::{NodeLabels, OtherRelease, Passphrase, V1Resource};
use super::{CheckOutcome, Outcome, UpgradePlan, plan};
use crate::linstor::toml::Backend;

fn resource<'a>(p: &'a UpgradePlan, kind: &str, name: &str) -> &'a Value {
    p.resources
        .iter()
        .find(|r| r["kind"] == kind && r["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {}", p.yaml()))
}

fn check<'a>(p: &'a UpgradePlan, id: &str) -> &'a super::PlanCheck {
    p.checks
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no check {id}"))
}

/// The patch texts of a resource, parsed.
fn patches(r: &Value) -> Vec<(String, String, Value)> {
    r["spec"]["patches"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let body: Value =
                serde_saphyr::from_str(p["patch"].as_str().expect("a patch text")).expect("patch is YAML");
            (
                p["target"]["kind"].as_str().unwrap_or_default().to_string(),
                p["target"]["name"].as_str().unwrap_or_default().to_string(),
                body,
            )
        })
        .collect()
}

/// Asserts that every resource validates against its v2 CRD and every patch is an object of its
/// target's kind.
pub(super) fn assert_valid(p: &UpgradePlan) {
    for r in &p.resources {
        let kind = r["kind"].as_str().unwrap_or_default();
        let problems = violations(v2_crd(kind), r);
        assert!(
            problems.is_empty(),
            "{kind} {} is invalid: {problems:#?}\n{}",
            r["metadata"]["name"],
            p.yaml()
        );
        for (kind, name, body) in patches(r) {
            assert_eq!(
                (body["kind"].as_str(), body["metadata"]["name"].as_str()),
                (Some(kind.as_str()), Some(name.as_str()))
            );
            let typed = match kind.as_str() {
                "Deployment" => {
                    serde_json::from_value::<k8s_openapi::api::apps::v1::Deployment>(body.clone()).map(drop)
                }
                "DaemonSet" => {
                    serde_json::from_value::<k8s_openapi::api::apps::v1::DaemonSet>(body.clone()).map(drop)
                }
                "ConfigMap" => {
                    serde_json::from_value::<k8s_openapi::api::core::v1::ConfigMap>(body.clone()).map(drop)
                }
                other => panic!("patch of an unexpected kind {other}"),
            };
            assert!(
                typed.is_ok(),
                "patch of {kind} {name} is not a {kind}: {typed:?}\n{body:#}"
            );
        }
    }
}

#[test]
fn the_default_chart_before_the_migration_keeps_etcd_and_blocks() {
    let p = plan(&rendered_installation("default.yaml"));
    assert_valid(&p);
    let cluster = resource(&p, "LinstorCluster", "linstorcluster");
    assert_eq!(
        cluster["spec"]["linstorPassphraseSecret"],
        "piraeus-op-passphrase"
    );
    let config = patches(cluster)
        .into_iter()
        .find(|(kind, ..)| kind == "ConfigMap")
        .expect("a ConfigMap patch keeps the etcd URL");
    assert_eq!(config.1, "linstor-controller-config");
    let toml = config.2["data"]["linstor.toml"].as_str().unwrap();
    assert!(
        toml.contains("connection_url = \"etcd://piraeus-op-etcd:2379\""),
        "{toml}"
    );
    let db = check(&p, "database");
    assert_eq!(db.outcome, CheckOutcome::Blocking);
    assert!(
        db.action
            .contains("linstor-migrator migrate --controller piraeus-datastore/piraeus-op-cs"),
        "{db:?}"
    );
    assert_eq!(
        p.checks[0].outcome,
        CheckOutcome::Blocking,
        "blocking checks come first"
    );
}

#[test]
fn the_chart_after_the_migration_converts_cleanly() {
    let p = plan(&rendered_installation("after-migration.yaml"));
    assert_valid(&p);
    let cluster = resource(&p, "LinstorCluster", "linstorcluster");
    let all = patches(cluster);
    assert!(
        all.iter().all(|(kind, ..)| kind != "ConfigMap"),
        "no database patch for k8s"
    );
    // the chart's default controller tolerations, added to v2's own
    let (_, _, tolerations) = all
        .iter()
        .find(|(kind, name, _)| kind == "Deployment" && name == "linstor-controller")
        .expect("a controller patch");
    let list = tolerations["spec"]["template"]["spec"]["tolerations"]
        .as_array()
        .unwrap();
    assert!(list.contains(
        &json!({"effect": "NoSchedule", "key": "node-role.kubernetes.io/control-plane", "operator": "Exists"})
    ));
    assert!(
        list.contains(&json!({"effect": "NoSchedule", "key": "drbd.linbit.com/lost-quorum"})),
        "v2's own stay"
    );
    assert_eq!(check(&p, "database").outcome, CheckOutcome::Passed);
    assert_eq!(p.blocking().count(), 0, "{:#?}", p.checks);
    // one configuration per satellite set, plus host networking and node labels
    let names: Vec<&str> = p.resources[1..]
        .iter()
        .map(|r| r["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["host-networking", "node-labels", "piraeus-op-ns"]);
    assert_eq!(
        resource(&p, "LinstorSatelliteConfiguration", "host-networking")["spec"]["podTemplate"]["spec"]["hostNetwork"],
        true
    );
    // the chart's defaults are not "not converted"
    let open: Vec<_> = p
        .not_converted()
        .map(|f| format!("{} {}", f.resource, f.field))
        .collect();
    assert!(
        open.is_empty(),
        "chart defaults reported as not converted: {open:?}"
    );
}

#[test]
fn tls_secrets_and_two_replicas() {
    let p = plan(&rendered_installation("tls-https-2replicas.yaml"));
    assert_valid(&p);
    let cluster = resource(&p, "LinstorCluster", "linstorcluster");
    assert_eq!(
        cluster["spec"]["apiTLS"],
        json!({"apiSecretName": "piraeus-op-controller-secret", "clientSecretName": "piraeus-op-client-secret",
               "csiControllerSecretName": "piraeus-op-client-secret", "csiNodeSecretName": "piraeus-op-client-secret"})
    );
    assert_eq!(
        cluster["spec"]["internalTLS"]["secretName"],
        "piraeus-op-control-secret"
    );
    let set = resource(&p, "LinstorSatelliteConfiguration", "piraeus-op-ns");
    assert_eq!(set["spec"]["internalTLS"]["secretName"], "piraeus-op-node-secret");
    let open: Vec<(&str, &str)> = p
        .not_converted()
        .map(|f| (f.field.as_str(), f.value.as_str()))
        .collect();
    for expected in [
        ("replicas", "2"),
        ("dbCertSecret", "piraeus-etcd-client"),
        ("dbUseClientCert", "true"),
    ] {
        assert!(open.contains(&expected), "{expected:?} missing from {open:?}");
    }
    assert_eq!(check(&p, "api-tls").outcome, CheckOutcome::Warning);
    // the https endpoints are this installation's own: nothing to do about them
    let endpoints: Vec<_> = p
        .fields
        .iter()
        .filter(|f| f.field == "controllerEndpoint")
        .collect();
    assert_eq!(endpoints.len(), 2);
    assert!(
        endpoints.iter().all(|f| f.outcome == Outcome::V2Default),
        "{endpoints:?}"
    );
}

fn set(name: &str, spec: Value) -> V1Resource {
    V1Resource::from_object(
        &json!({"metadata": {"name": name, "namespace": "piraeus-datastore"}, "spec": spec}),
    )
}

fn on_nodes(label: &str) -> Value {
    json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": label, "operator": "Exists"}]}]}}})
}

#[test]
fn several_satellite_sets_get_a_configuration_each() {
    let mut inst = rendered_installation("after-migration.yaml");
    inst.satellite_sets = vec![
        set(
            "lvm-nodes",
            json!({
                "satelliteImage": "quay.io/piraeusdatastore/piraeus-server:v1.25.1",
                "affinity": on_nodes("storage.example.com/lvm"),
                "storagePools": {"lvmThinPools": [{"name": "lvm-thin", "volumeGroup": "linstor_vg", "thinVolume": "thinpool",
                                                   "devicePaths": ["/dev/sdb", "/dev/sdc"]}],
                                 "lvmPools": [{"name": "sp", "volumeGroup": "short"}]},
            }),
        ),
        set(
            "zfs-nodes",
            json!({
                "satelliteImage": "quay.io/piraeusdatastore/piraeus-server:v1.25.1",
                "affinity": on_nodes("storage.example.com/zfs"),
                "storagePools": {"zfsPools": [{"name": "zfs-thick", "zPool": "tank", "thin": false},
                                              {"name": "zfs-thin", "zPool": "tank", "thin": true}]},
            }),
        ),
    ];
    let p = plan(&inst);
    assert_valid(&p);
    let lvm = resource(&p, "LinstorSatelliteConfiguration", "lvm-nodes");
    assert_eq!(
        lvm["spec"]["nodeAffinity"]["nodeSelectorTerms"][0]["matchExpressions"][0]["key"],
        "storage.example.com/lvm"
    );
    assert_eq!(
        lvm["spec"]["storagePools"],
        json!([{"name": "lvm-thin", "lvmThinPool": {"volumeGroup": "linstor_vg", "thinPool": "thinpool"},
                "source": {"hostDevices": ["/dev/sdb", "/dev/sdc"]}}]),
        "the pool named sp is too short for v2 and left out"
    );
    let short = p
        .fields
        .iter()
        .find(|f| f.field == "storagePools.lvmPools[0].name")
        .unwrap();
    assert_eq!(short.outcome, Outcome::NotConverted);
    assert!(short.detail.contains("at least 3 characters"), "{short:?}");
    let zfs = resource(&p, "LinstorSatelliteConfiguration", "zfs-nodes");
    assert_eq!(
        zfs["spec"]["storagePools"],
        json!([{"name": "zfs-thick", "zfsPool": {"zPool": "tank"}}, {"name": "zfs-thin", "zfsThinPool": {"zPool": "tank"}}])
    );
    // satellites ran only where a set selected nodes: the LinstorCluster keeps them there
    let terms =
        &resource(&p, "LinstorCluster", "linstorcluster")["spec"]["nodeAffinity"]["nodeSelectorTerms"];
    assert_eq!(terms.as_array().map(Vec::len), Some(2), "{terms:#}");
    assert!(p.checks.iter().all(|c| c.id != "satellite-set-nodes"));
}

#[test]
fn a_set_without_nodes_next_to_others_is_a_warning_and_satellites_stay_everywhere() {
    let mut inst = rendered_installation("after-migration.yaml");
    inst.satellite_sets.push(set(
        "extra",
        json!({"affinity": on_nodes("storage.example.com/extra")}),
    ));
    let p = plan(&inst);
    assert_eq!(check(&p, "satellite-set-nodes").outcome, CheckOutcome::Warning);
    assert!(
        resource(&p, "LinstorCluster", "linstorcluster")["spec"]
            .get("nodeAffinity")
            .is_none()
    );
}

#[test]
fn checks_say_what_was_found() {
    let mut inst = rendered_installation("after-migration.yaml");
    inst.controllers_found.push("other/piraeus-cs".into());
    inst.csi_drivers.clear();
    inst.passphrase = Passphrase::NoKey {
        secret: "piraeus-op-passphrase".into(),
    };
    inst.other_releases = vec![OtherRelease {
        name: "piraeus-ha-controller".into(),
        namespace: "piraeus-datastore".into(),
        chart_name: "piraeus-ha-controller".into(),
    }];
    inst.node_labels = NodeLabels::Known(vec![(
        "node-1".into(),
        vec![
            "kubernetes.io/hostname".into(),
            "storage.example.com/rack".into(),
            "topology/kubernetes.io/hostname".into(),
        ],
    )]);
    inst.linstor_version = Some("1.33.3".into());
    inst.controller.finalizers = vec!["finalizer.linstor-controller.linbit.com".into()];
    let p = plan(&inst);
    for (id, outcome) in [
        ("linstor-controllers", CheckOutcome::Blocking),
        ("csi-driver", CheckOutcome::Blocking),
        ("passphrase", CheckOutcome::Blocking),
        ("ha-controllers", CheckOutcome::Warning),
        ("node-labels", CheckOutcome::Warning),
        ("linstor-version", CheckOutcome::Warning),
        ("finalizers", CheckOutcome::Warning),
        ("v1-crds", CheckOutcome::Warning),
        ("v2-crds", CheckOutcome::Passed),
    ] {
        assert_eq!(check(&p, id).outcome, outcome, "{:?}", check(&p, id));
    }
    assert!(
        check(&p, "node-labels")
            .message
            .contains("storage.example.com/rack")
    );
    assert!(
        !check(&p, "node-labels")
            .message
            .contains("kubernetes.io/hostname,"),
        "v2 syncs the hostname itself"
    );
    assert!(
        check(&p, "finalizers")
            .message
            .contains("finalizer.linstor-controller.linbit.com")
    );
    // no CSI driver at all: v2's CSI is turned off
    assert_eq!(
        resource(&p, "LinstorCluster", "linstorcluster")["spec"]["csiController"]["enabled"],
        false
    );
    // the HA controller's uninstall is a step
    assert!(
        p.steps
            .iter()
            .any(|s| s.id == "3.6" && s.command.contains("helm uninstall piraeus-ha-controller"))
    );
}

#[test]
fn the_commands_use_this_installations_names_in_order() {
    let mut inst = rendered_installation("after-migration.yaml");
    inst.target_namespace = "piraeus-v2".into();
    let p = plan(&inst);
    let ids: Vec<&str> = p.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "2.1", "2.2", "2.3", "2.4", "2.5", "2.6", "2.7", "3.1", "3.2", "3.3", "3.4", "3.5", "4.1", "4.2",
            "4.3", "4.4", "4.5", "4.6"
        ]
    );
    let text = |id: &str| p.steps.iter().find(|s| s.id == id).unwrap().command.clone();
    assert!(
        text("3.1").contains("scale deployment/piraeus-op-operator --replicas=0"),
        "{}",
        text("3.1")
    );
    assert!(
        text("3.2").contains("patch linstorsatelliteset piraeus-op-ns"),
        "{}",
        text("3.2")
    );
    assert!(
        text("3.3").contains("delete linstorcsidriver piraeus-op"),
        "{}",
        text("3.3")
    );
    assert!(text("3.4").contains("helm uninstall piraeus-op --namespace piraeus-datastore"));
    assert!(
        text("3.5").contains("linstorcsidrivers.piraeus.linbit.com"),
        "all three CRDs, unlike the upstream guide"
    );
    assert!(text("4.2").contains("--namespace piraeus-v2"));
    assert!(text("4.3").contains("piraeus-op-passphrase"));
    assert!(
        p.steps
            .iter()
            .all(|s| !s.verify.is_empty() && !s.verify_command.is_empty() && !s.explains.is_empty())
    );
    assert_eq!(check(&p, "passphrase").outcome, CheckOutcome::Passed);
    assert!(
        check(&p, "passphrase")
            .message
            .contains("creates it in piraeus-v2")
    );
    assert_eq!(p.installation.backend, Backend::K8s.to_string());
}
