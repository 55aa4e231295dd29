//! The rest of the standard installation's Piraeus Operator v1 objects, as chart 1.10.8 renders
//! them (`tests/fixtures/piraeus-v1.10.8/rendered/default.yaml`) and the v1 operator keeps them,
//! in each of its two Piraeus releases: the LinstorSatelliteSet `piraeus-op-ns` with an LVM thin
//! pool (its satellites on the release's image), the LinstorCSIDriver `piraeus-op`, the operator's
//! finalizers; the three v1 CRDs, and a separately installed HA controller release in
//! `piraeus-datastore`. The upgrade plan reads them.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use base64::Engine as _;
use serde_json::{Value, json};

use super::state::{Key, State, key};
use crate::cluster::{LinstorCsiDriver, LinstorSatelliteSet};

const NS: &str = "piraeus-datastore";

/// The v1 objects the migration itself never touches.
#[derive(Debug, Clone, Default)]
pub(crate) struct V1Objects {
    pub satellite_sets: BTreeMap<Key, LinstorSatelliteSet>,
    pub csi_drivers: BTreeMap<Key, LinstorCsiDriver>,
    /// Names of the installed CRDs of group `piraeus.linbit.com`.
    pub crds: BTreeSet<String>,
}

fn meta(ns: &str, name: &str, uid: &str, finalizers: &[&str]) -> Value {
    json!({"namespace": ns, "name": name, "uid": uid, "resourceVersion": "1", "generation": 1,
           "creationTimestamp": "2024-05-14T09:12:31Z", "finalizers": finalizers,
           "labels": {"app.kubernetes.io/managed-by": "Helm"},
           "annotations": {"meta.helm.sh/release-name": "piraeus-op", "meta.helm.sh/release-namespace": ns}})
}

fn satellite_set(ns: &str, image: &str, uid: &str) -> Value {
    json!({
        "apiVersion": "piraeus.linbit.com/v1", "kind": "LinstorSatelliteSet",
        "metadata": meta(ns, "piraeus-op-ns", uid, &["finalizer.linstor-node.linbit.com"]),
        "spec": {
            "priorityClassName": "", "sslSecret": "", "drbdRepoCred": "", "imagePullPolicy": "IfNotPresent",
            "satelliteImage": image, "linstorHttpsClientSecret": "",
            "controllerEndpoint": format!("http://piraeus-op-cs.{ns}.svc:3370"), "automaticStorageType": "None",
            "affinity": {}, "tolerations": [], "resources": {},
            "monitoringImage": "quay.io/piraeusdatastore/drbd-reactor:v1.4.0",
            "kernelModuleInjectionMode": "Compile",
            "kernelModuleInjectionImage": "quay.io/piraeusdatastore/drbd9-jammy:v9.2.8",
            "kernelModuleInjectionResources": {},
            "additionalEnv": [{"name": "LB_SELINUX_AS", "value": "modules_object_t"}],
            "storagePools": {"lvmThinPools": [{"name": "lvm-thin", "volumeGroup": "linstor_thinpool",
                                               "thinVolume": "thinpool", "devicePaths": ["/dev/vdb"]}]}
        },
        "status": {"errors": [], "SatelliteStatuses": []}
    })
}

fn csi_driver(ns: &str, uid: &str) -> Value {
    json!({
        "apiVersion": "piraeus.linbit.com/v1", "kind": "LinstorCSIDriver",
        "metadata": meta(ns, "piraeus-op", uid, &[]),
        "spec": {
            "imagePullSecret": "", "linstorPluginImage": "quay.io/piraeusdatastore/piraeus-csi:v1.3.0",
            "imagePullPolicy": "IfNotPresent", "csiControllerServiceAccountName": "csi-controller",
            "csiNodeServiceAccountName": "csi-node",
            "csiAttacherImage": "registry.k8s.io/sig-storage/csi-attacher:v4.4.2",
            "csiLivenessProbeImage": "registry.k8s.io/sig-storage/livenessprobe:v2.11.0",
            "csiNodeDriverRegistrarImage": "registry.k8s.io/sig-storage/csi-node-driver-registrar:v2.9.1",
            "csiProvisionerImage": "registry.k8s.io/sig-storage/csi-provisioner:v3.6.2",
            "csiResizerImage": "registry.k8s.io/sig-storage/csi-resizer:v1.9.2",
            "csiSnapshotterImage": "registry.k8s.io/sig-storage/csi-snapshotter:v6.3.2",
            "linstorHttpsClientSecret": "", "priorityClassName": "", "controllerReplicas": 1,
            "controllerEndpoint": format!("http://piraeus-op-cs.{ns}.svc:3370"),
            "nodeAffinity": {}, "nodeTolerations": [], "controllerTolerations": [], "enableTopology": true,
            "resources": {}, "kubeletPath": "/var/lib/kubelet"
        }
    })
}

/// A Helm release Secret of `chart` (data `release`: base64 of gzip of the release JSON, under
/// the Secret's own base64).
fn release_secret(name: &str, chart: &str, version: &str, uid: &str) -> Value {
    let release = json!({
        "name": name, "namespace": NS, "version": 1,
        "info": {"status": "deployed", "description": "Install complete"},
        "chart": {"metadata": {"name": chart, "version": version}},
        "config": {},
    });
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let compressed = gz
        .write_all(release.to_string().as_bytes())
        .and_then(|()| gz.finish())
        .unwrap_or_default();
    let b64 = base64::engine::general_purpose::STANDARD;
    json!({
        "metadata": {"namespace": NS, "name": format!("sh.helm.release.v1.{name}.v1"), "uid": uid,
                     "labels": {"owner": "helm", "name": name, "version": "1", "status": "deployed"}},
        "type": "helm.sh/release.v1",
        "data": {"release": b64.encode(b64.encode(compressed))}
    })
}

/// The v1 objects of the Piraeus release in `ns` whose satellites run `image`.
fn release(st: &mut State, ns: &str, image: &str, uids: (&str, &str)) {
    if let Ok(set) = serde_json::from_value(satellite_set(ns, image, uids.0)) {
        st.v1.satellite_sets.insert(key(ns, "piraeus-op-ns"), set);
    }
    if let Ok(csi) = serde_json::from_value(csi_driver(ns, uids.1)) {
        st.v1.csi_drivers.insert(key(ns, "piraeus-op"), csi);
    }
    // the v1 operator puts its finalizer on the LinstorController it manages
    if let Some(cr) = st.crs.get_mut(&key(ns, "piraeus-op-cs")) {
        cr.metadata.finalizers = Some(vec!["finalizer.linstor-controller.linbit.com".into()]);
    }
}

/// Adds the objects to the standard installation `st` (after `install::standard` made the rest).
pub(crate) fn standard(st: &mut State) {
    release(
        st,
        NS,
        super::install::CR_IMAGE,
        (
            "5d2c7a10-3f4b-4e6a-9c8d-7e6f5a4b3c21",
            "8b7a6c5d-4e3f-4a2b-9c1d-0e9f8a7b6c5d",
        ),
    );
    release(
        st,
        super::install::CHART_DEFAULT_NS,
        super::install::CHART_DEFAULT_IMAGE,
        (
            "2f6e1d0c-9b8a-4c7d-8e6f-5a4b3c2d1e0f",
            "6a5b4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d",
        ),
    );
    for crd in ["linstorcontrollers", "linstorsatellitesets", "linstorcsidrivers"] {
        st.v1.crds.insert(format!("{crd}.piraeus.linbit.com"));
    }
    let ha = release_secret(
        "piraeus-ha-controller",
        "piraeus-ha-controller",
        "1.1.4",
        "6e5d4c3b-2a19-4f08-8e7d-6c5b4a392817",
    );
    if let Ok(secret) = serde_json::from_value(ha) {
        st.secrets
            .insert(key(NS, "sh.helm.release.v1.piraeus-ha-controller.v1"), secret);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_objects_deserialize() {
        assert!(serde_json::from_value::<LinstorSatelliteSet>(satellite_set(NS, "i", "u")).is_ok());
        assert!(serde_json::from_value::<LinstorCsiDriver>(csi_driver(NS, "u")).is_ok());
        let secret: k8s_openapi::api::core::v1::Secret =
            serde_json::from_value(release_secret("r", "c", "1", "u")).expect("a Secret");
        let release = crate::cluster::helm::decode_release(&secret).expect("a Helm release");
        assert_eq!(release.chart_name.as_deref(), Some("c"));
    }
}
