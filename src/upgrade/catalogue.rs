//! Every field of the three v1 specs (LinstorController, LinstorSatelliteSet, LinstorCSIDriver at
//! chart 1.10.8) and what the plan does with it: where a converted value goes in v2, or what to do
//! about a value that cannot be converted (REFERENCE.md §8). The mapping code records each set
//! value against this table, and a test walks the v1 CRD schemas to prove that no field is left
//! out of it.

/// The v1 kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Controller,
    SatelliteSet,
    CsiDriver,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Controller => "LinstorController",
            Kind::SatelliteSet => "LinstorSatelliteSet",
            Kind::CsiDriver => "LinstorCSIDriver",
        }
    }
}

/// What becomes of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handling {
    /// Carried into the v2 resources: where it goes.
    Converted(&'static str),
    /// Not converted: what to do about a value that is set.
    NotConverted(&'static str),
}

/// One field of a v1 spec. `path` is relative to `spec`; `[]` marks list items.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub kind: Kind,
    pub path: &'static str,
    pub handling: Handling,
}

use Handling::{Converted as C, NotConverted as N};
use Kind::{Controller as LC, CsiDriver as CSI, SatelliteSet as LSS};

const fn r(kind: Kind, path: &'static str, handling: Handling) -> Rule {
    Rule { kind, path, handling }
}

const IMAGES: &str = "v2 runs the images of its own release; to keep a private registry or a pinned version, set \
     LinstorCluster spec.repository or edit the operator's image ConfigMap after the install";
const PATCH_HINT: &str = "add a patch to the v2 resource's spec.patches with this value (it is not carried over because \
     v2's defaults are tuned for its own pods)";
const RBAC: &str =
    "v2 creates its own ServiceAccounts and RBAC; grant extra rights to those if this one had any";
const PULL: &str = "install the v2 operator with this pull secret (Helm value imagePullSecrets) and add it to the pods \
     with a patch if the images come from that registry";
const ENDPOINT: &str = "only a controller outside this installation needs it: then set LinstorCluster \
     spec.externalController.url to it";

/// The table. Order: as the CRDs list the fields.
pub const RULES: &[Rule] = &[
    // --- LinstorController ------------------------------------------------------------------
    r(
        LC,
        "additionalEnv",
        C("LinstorCluster spec.patches: env of container linstor-controller (Deployment linstor-controller)"),
    ),
    r(LC, "additionalProperties", C("LinstorCluster spec.properties")),
    r(
        LC,
        "affinity",
        C("LinstorCluster spec.patches: affinity of Deployment linstor-controller"),
    ),
    r(LC, "controllerImage", N(IMAGES)),
    r(
        LC,
        "dbCertSecret",
        N(
            "the k8s backend needs no database certificates; for another backend mount the Secret into \
        Deployment linstor-controller with a patch and name the files in the linstor.toml patch",
        ),
    ),
    r(
        LC,
        "dbConnectionURL",
        C(
            "nothing for k8s (v2's default); any other URL: a LinstorCluster patch of ConfigMap \
        linstor-controller-config that keeps it",
        ),
    ),
    r(
        LC,
        "dbUseClientCert",
        N("see dbCertSecret: client certificates need a volume and linstor.toml patch"),
    ),
    r(LC, "drbdRepoCred", N(PULL)),
    r(
        LC,
        "extraVolumes",
        C("LinstorCluster spec.patches: volumes of Deployment linstor-controller"),
    ),
    r(
        LC,
        "httpBindAddress",
        N("patch [http] listen_addr into ConfigMap linstor-controller-config"),
    ),
    r(
        LC,
        "httpsBindAddress",
        N("patch [https] listen_addr into ConfigMap linstor-controller-config"),
    ),
    r(
        LC,
        "imagePullPolicy",
        N("v2 uses the default pull policy; set imagePullPolicy with a patch to keep another"),
    ),
    r(
        LC,
        "linstorHttpsClientSecret",
        C("LinstorCluster spec.apiTLS.clientSecretName"),
    ),
    r(
        LC,
        "linstorHttpsControllerSecret",
        C("LinstorCluster spec.apiTLS.apiSecretName"),
    ),
    r(
        LC,
        "logLevel",
        N("set the log level with a patch of linstor.toml [logging] or the controller's args"),
    ),
    r(
        LC,
        "luksSecret",
        C("LinstorCluster spec.linstorPassphraseSecret (the Secret must exist in the v2 namespace)"),
    ),
    r(LC, "priorityClassName", N(PATCH_HINT)),
    r(
        LC,
        "replicas",
        N("v2 runs one controller replica; keep one (a patch of spec.replicas adds standbys)"),
    ),
    r(LC, "resources", N(PATCH_HINT)),
    r(LC, "serviceAccountName", N(RBAC)),
    r(
        LC,
        "sidecars",
        C("LinstorCluster spec.patches: containers of Deployment linstor-controller"),
    ),
    r(LC, "sslSecret", C("LinstorCluster spec.internalTLS.secretName")),
    r(
        LC,
        "tolerations",
        C("LinstorCluster spec.patches: tolerations of Deployment linstor-controller (with v2's own)"),
    ),
    // --- LinstorSatelliteSet ----------------------------------------------------------------
    r(
        LSS,
        "additionalEnv",
        C(
            "LinstorSatelliteConfiguration spec.patches: env of the linstor-satellite container and \
        the drbd-module-loader init container (DaemonSet linstor-satellite)",
        ),
    ),
    r(
        LSS,
        "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution",
        C("LinstorSatelliteConfiguration \
        spec.nodeAffinity, and LinstorCluster spec.nodeAffinity when every set restricts its nodes"),
    ),
    r(
        LSS,
        "affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution",
        N("v2 runs one satellite on every \
        selected node: preferences have no meaning; use LinstorCluster spec.nodeAffinity to select nodes"),
    ),
    r(
        LSS,
        "affinity.podAffinity",
        N(
            "v2 runs one satellite per selected node; select the nodes with LinstorCluster \
        spec.nodeAffinity instead",
        ),
    ),
    r(
        LSS,
        "affinity.podAntiAffinity",
        N(
            "v2 runs one satellite per selected node; select the nodes with LinstorCluster \
        spec.nodeAffinity instead",
        ),
    ),
    r(
        LSS,
        "automaticStorageType",
        N(
            "v2 has no automatic pools: list the devices in LinstorSatelliteConfiguration \
        spec.storagePools[].source.hostDevices",
        ),
    ),
    r(LSS, "controllerEndpoint", N(ENDPOINT)),
    r(
        LSS,
        "dnsPolicy",
        C("LinstorSatelliteConfiguration spec.patches: dnsPolicy of DaemonSet linstor-satellite"),
    ),
    r(LSS, "drbdRepoCred", N(PULL)),
    r(
        LSS,
        "extraVolumes",
        C("LinstorSatelliteConfiguration spec.patches: volumes of DaemonSet linstor-satellite"),
    ),
    r(
        LSS,
        "imagePullPolicy",
        N("v2 uses the default pull policy; set imagePullPolicy with a patch to keep another"),
    ),
    r(
        LSS,
        "kernelModuleInjectionAdditionalSourceDirectory",
        N("mount the directory into the drbd-module-loader init \
        container with a LinstorSatelliteConfiguration patch"),
    ),
    r(
        LSS,
        "kernelModuleInjectionExtraVolumeMounts",
        N("add the mounts to the drbd-module-loader init container with a \
        LinstorSatelliteConfiguration patch"),
    ),
    r(
        LSS,
        "kernelModuleInjectionImage",
        N(
            "v2 picks the DRBD loader image for each node's distribution itself; pin one \
        in the operator's image ConfigMap if this custom image is needed",
        ),
    ),
    r(
        LSS,
        "kernelModuleInjectionMode",
        N(
            "v2's drbd-module-loader compiles or loads the module by itself; for hosts that \
        load DRBD themselves, remove the init container with a LinstorSatelliteConfiguration patch",
        ),
    ),
    r(
        LSS,
        "kernelModuleInjectionResources",
        N("set resources of the drbd-module-loader init container with a patch"),
    ),
    r(
        LSS,
        "linstorHttpsClientSecret",
        N("v2 gives every LINSTOR API client the Secret of LinstorCluster \
        spec.apiTLS.clientSecretName"),
    ),
    r(
        LSS,
        "logLevel",
        N("set the satellite's log level with a patch if it matters"),
    ),
    r(
        LSS,
        "monitoringBindAddress",
        N(
            "v2 runs drbd-reactor on port 9942 in every satellite pod; patch its \
        configuration to bind elsewhere",
        ),
    ),
    r(LSS, "monitoringImage", N(IMAGES)),
    r(
        LSS,
        "mountDrbdResourceDirectoriesFromHost",
        C("LinstorSatelliteConfiguration spec.patches: /etc/drbd.conf and \
        /etc/drbd.d mounted from the host (v2 mounts /var/lib/drbd itself)"),
    ),
    r(LSS, "priorityClassName", N(PATCH_HINT)),
    r(LSS, "resources", N(PATCH_HINT)),
    r(LSS, "satelliteImage", N(IMAGES)),
    r(LSS, "serviceAccountName", N(RBAC)),
    r(
        LSS,
        "sidecars",
        C("LinstorSatelliteConfiguration spec.patches: containers of DaemonSet linstor-satellite"),
    ),
    r(
        LSS,
        "sslSecret",
        C("LinstorSatelliteConfiguration spec.internalTLS.secretName"),
    ),
    r(
        LSS,
        "storagePools.lvmPools[].devicePaths",
        C("spec.storagePools[].source.hostDevices"),
    ),
    r(LSS, "storagePools.lvmPools[].name", C("spec.storagePools[].name")),
    r(
        LSS,
        "storagePools.lvmPools[].raidLevel",
        N(
            "v2 creates plain volume groups: create the VG with this RAID level \
        by hand before v2 starts, and leave source.hostDevices out",
        ),
    ),
    r(
        LSS,
        "storagePools.lvmPools[].vdo",
        N("v2 does not create VDO volumes: create the VG on VDO by hand before v2 starts"),
    ),
    r(
        LSS,
        "storagePools.lvmPools[].vdoLogicalSizeKib",
        N("see vdo: create the VDO volume by hand"),
    ),
    r(
        LSS,
        "storagePools.lvmPools[].vdoSlabSizeKib",
        N("see vdo: create the VDO volume by hand"),
    ),
    r(
        LSS,
        "storagePools.lvmPools[].volumeGroup",
        C("spec.storagePools[].lvmPool.volumeGroup"),
    ),
    r(
        LSS,
        "storagePools.lvmThinPools[].devicePaths",
        C("spec.storagePools[].source.hostDevices"),
    ),
    r(
        LSS,
        "storagePools.lvmThinPools[].name",
        C("spec.storagePools[].name"),
    ),
    r(
        LSS,
        "storagePools.lvmThinPools[].raidLevel",
        N("v2 creates plain volume groups: create the VG with this RAID \
        level by hand before v2 starts, and leave source.hostDevices out"),
    ),
    r(
        LSS,
        "storagePools.lvmThinPools[].thinVolume",
        C("spec.storagePools[].lvmThinPool.thinPool"),
    ),
    r(
        LSS,
        "storagePools.lvmThinPools[].volumeGroup",
        C("spec.storagePools[].lvmThinPool.volumeGroup"),
    ),
    r(LSS, "storagePools.zfsPools[].name", C("spec.storagePools[].name")),
    r(
        LSS,
        "storagePools.zfsPools[].thin",
        C("spec.storagePools[].zfsThinPool instead of zfsPool"),
    ),
    r(
        LSS,
        "storagePools.zfsPools[].zPool",
        C("spec.storagePools[].zfsPool.zPool or zfsThinPool.zPool"),
    ),
    r(
        LSS,
        "tolerations",
        C(
            "LinstorSatelliteConfiguration spec.patches: tolerations of DaemonSet linstor-satellite \
        (with v2's own)",
        ),
    ),
    // --- LinstorCSIDriver -------------------------------------------------------------------
    r(
        CSI,
        "controllerAffinity",
        C("LinstorCluster spec.patches: affinity of Deployment linstor-csi-controller"),
    ),
    r(CSI, "controllerEndpoint", N(ENDPOINT)),
    r(
        CSI,
        "controllerReplicas",
        C("LinstorCluster spec.patches: replicas of Deployment linstor-csi-controller"),
    ),
    r(
        CSI,
        "controllerStrategy",
        C("LinstorCluster spec.patches: strategy of Deployment linstor-csi-controller"),
    ),
    r(
        CSI,
        "controllerTolerations",
        C(
            "LinstorCluster spec.patches: tolerations of Deployment linstor-csi-controller \
        (with v2's own)",
        ),
    ),
    r(CSI, "csiAttacherImage", N(IMAGES)),
    r(
        CSI,
        "csiAttacherWorkerThreads",
        N("set --worker-threads of the csi-attacher container with a patch"),
    ),
    r(CSI, "csiControllerServiceAccountName", N(RBAC)),
    r(CSI, "csiLivenessProbeImage", N(IMAGES)),
    r(CSI, "csiNodeDriverRegistrarImage", N(IMAGES)),
    r(CSI, "csiNodeServiceAccountName", N(RBAC)),
    r(CSI, "csiProvisionerImage", N(IMAGES)),
    r(
        CSI,
        "csiProvisionerWorkerThreads",
        N("set --worker-threads of the csi-provisioner container with a patch"),
    ),
    r(CSI, "csiResizerImage", N(IMAGES)),
    r(
        CSI,
        "csiResizerWorkerThreads",
        N("set --workers of the csi-resizer container with a patch"),
    ),
    r(CSI, "csiSnapshotterImage", N(IMAGES)),
    r(
        CSI,
        "csiSnapshotterWorkerThreads",
        N("set --worker-threads of the csi-snapshotter container with a patch"),
    ),
    r(
        CSI,
        "enableTopology",
        N("v2 always reports topology; a StorageClass with volumeBindingMode Immediate ignores it"),
    ),
    r(
        CSI,
        "extraVolumes",
        C("LinstorCluster spec.patches: volumes of Deployment linstor-csi-controller"),
    ),
    r(
        CSI,
        "imagePullPolicy",
        N("v2 uses the default pull policy; set imagePullPolicy with a patch to keep another"),
    ),
    r(CSI, "imagePullSecret", N(PULL)),
    r(
        CSI,
        "kubeletPath",
        C("LinstorCluster spec.patches: host paths and mounts of DaemonSet linstor-csi-node"),
    ),
    r(
        CSI,
        "linstorHttpsClientSecret",
        C("LinstorCluster spec.apiTLS.csiControllerSecretName and csiNodeSecretName"),
    ),
    r(CSI, "linstorPluginImage", N(IMAGES)),
    r(
        CSI,
        "logLevel",
        N("set the CSI driver's --log-level with a patch if it matters"),
    ),
    r(
        CSI,
        "nodeAffinity",
        C("LinstorCluster spec.patches: affinity of DaemonSet linstor-csi-node"),
    ),
    r(
        CSI,
        "nodeExtraVolumes",
        C("LinstorCluster spec.patches: volumes of DaemonSet linstor-csi-node"),
    ),
    r(
        CSI,
        "nodeSidecars",
        C("LinstorCluster spec.patches: containers of DaemonSet linstor-csi-node"),
    ),
    r(
        CSI,
        "nodeTolerations",
        C("LinstorCluster spec.patches: tolerations of DaemonSet linstor-csi-node"),
    ),
    r(CSI, "priorityClassName", N(PATCH_HINT)),
    r(CSI, "resources", N(PATCH_HINT)),
    r(
        CSI,
        "sidecars",
        C("LinstorCluster spec.patches: containers of Deployment linstor-csi-controller"),
    ),
];

/// The rule of `kind` for `path` (list indexes written as `[]`).
pub fn rule(kind: Kind, path: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.kind == kind && r.path == path)
}

/// The fields whose value is not carried whole but looked into: the walk over the CRD schemas
/// descends into these, and the table has rules for their parts.
pub const DESCEND: &[(Kind, &str)] = &[
    (LSS, "affinity"),
    (LSS, "affinity.nodeAffinity"),
    (LSS, "storagePools"),
    (LSS, "storagePools.lvmPools[]"),
    (LSS, "storagePools.lvmThinPools[]"),
    (LSS, "storagePools.zfsPools[]"),
];
