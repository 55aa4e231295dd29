//! The ordered commands of steps 2-4 with this installation's names, each with what it does and
//! how to verify it. `$WORK_DIR` (backups, the generated YAML) and `$V2_VERSION` are the only
//! variables; the bundle script sets them.

use super::PlanStep;
use super::checks::HA_CHARTS;
use super::v1::{Passphrase, V1Installation};

const V1_KINDS: &str = "linstorcontrollers.piraeus.linbit.com,linstorsatellitesets.piraeus.linbit.com,linstorcsidrivers.piraeus.linbit.com";
const V1_CRDS: [&str; 3] = [
    "linstorcontrollers.piraeus.linbit.com",
    "linstorsatellitesets.piraeus.linbit.com",
    "linstorcsidrivers.piraeus.linbit.com",
];
const V2_CHART_REPO: &str = "https://github.com/piraeusdatastore/piraeus-operator.git";

/// A shell word for `s` (names come from the cluster; quote them anyway).
pub(super) fn q(s: &str) -> String {
    shlex::try_quote(s).map_or_else(|_| "''".to_string(), |c| c.into_owned())
}

struct Steps(Vec<PlanStep>);

impl Steps {
    /// Adds step `id` (`3.2`: fixed numbers, so that texts can refer to them whether or not
    /// an optional step before is there).
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        id: &str,
        title: &str,
        command: String,
        explains: &str,
        verify: &str,
        verify_command: String,
        changes: bool,
    ) {
        let phase = id.split('.').next().and_then(|p| p.parse().ok()).unwrap_or(0);
        self.0.push(PlanStep {
            phase,
            id: id.into(),
            title: title.into(),
            command,
            explains: explains.into(),
            verify: verify.into(),
            verify_command,
            changes_cluster: changes,
        });
    }
}

pub(super) fn steps(inst: &V1Installation) -> Vec<PlanStep> {
    let mut s = Steps(Vec::new());
    collect(inst, &mut s);
    remove_v1(inst, &mut s);
    install_v2(inst, &mut s);
    s.0
}

fn kubectl(ns: &str) -> String {
    format!("kubectl --namespace {}", q(ns))
}

/// Step 2: check, record and back up.
fn collect(inst: &V1Installation, s: &mut Steps) {
    let k = kubectl(&inst.namespace);
    let lc = q(&inst.controller.name);
    s.add(
        "2.1",
        "Prepare the working directory",
        "mkdir -p \"$WORK_DIR/db\" && chmod 700 \"$WORK_DIR\"".into(),
        "WORK_DIR keeps the backups of this upgrade, the passphrase among them: only you may read it.",
        "the directory exists",
        "test -d \"$WORK_DIR/db\"".into(),
        false,
    );
    s.add(
        "2.2",
        "Check that the database is on k8s",
        format!("{k} get linstorcontroller {lc} -o jsonpath='{{.spec.dbConnectionURL}}{{\"\\n\"}}'"),
        "Step 3 removes the v1 chart and its etcd with it: the database must be on the k8s backend first (step 1, \
         linstor-migrator's migration).",
        "it prints k8s",
        format!("test \"$({k} get linstorcontroller {lc} -o jsonpath='{{.spec.dbConnectionURL}}')\" = k8s"),
        false,
    );
    let exec = format!(
        "{k} exec deployment/{} -c linstor-controller --",
        q(&inst.controller_deployment)
    );
    s.add(
        "2.3",
        "Record the cluster as LINSTOR sees it",
        format!(
            "{exec} linstor node list > \"$WORK_DIR/before-nodes.txt\"\n\
             {exec} linstor storage-pool list > \"$WORK_DIR/before-storage-pools.txt\"\n\
             {exec} linstor resource list-volumes > \"$WORK_DIR/before-volumes.txt\""
        ),
        "What the nodes, storage pools and volumes look like now, to compare with v2 in step 4.6.",
        "the three files list your nodes, pools and volumes",
        "test -s \"$WORK_DIR/before-nodes.txt\" && test -s \"$WORK_DIR/before-volumes.txt\"".into(),
        false,
    );
    if let Passphrase::Present { secret } | Passphrase::Unreadable { secret, .. } = &inst.passphrase {
        s.add(
            "2.4",
            "Back up the master passphrase",
            format!(
                "(umask 077 && {k} get secret {} -o jsonpath='{{.data.MASTER_PASSPHRASE}}' > \"$WORK_DIR/master-passphrase.b64\")",
                q(secret)
            ),
            "v2 does not generate a passphrase: LINSTOR needs this one to open its encrypted volumes (a lost \
             passphrase makes them unusable). The file holds it base64-encoded, as the Secret does.",
            "the file is not empty; keep a copy somewhere safe",
            "test -s \"$WORK_DIR/master-passphrase.b64\"".into(),
            false,
        );
    }
    let mut save = format!("{k} get {V1_KINDS} -o yaml > \"$WORK_DIR/v1-resources.yaml\"");
    if let Some(h) = &inst.helm {
        save.push_str(&format!(
            "\nhelm get values {} --namespace {} --all -o yaml > \"$WORK_DIR/v1-helm-values.yaml\"",
            q(&h.release),
            q(&h.namespace)
        ));
    }
    s.add(
        "2.5",
        "Save the v1 resources and Helm values",
        save,
        "The v1 configuration as it was, for anything the plan did not convert.",
        "v1-resources.yaml lists the LinstorController, the LinstorSatelliteSets and the LinstorCSIDriver",
        "grep -q 'kind: LinstorController' \"$WORK_DIR/v1-resources.yaml\"".into(),
        false,
    );
    s.add(
        "2.6",
        "Back up the LINSTOR database",
        "for crd in $(kubectl get crds -o name | grep '\\.internal\\.linstor\\.linbit\\.com$' || true); do\n  \
         kubectl get \"${crd#*/}\" -o yaml > \"$WORK_DIR/db/${crd#*/}.yaml\"\n\
         done"
            .into(),
        "The k8s backend's objects, one file per table: what v2's controller starts from.",
        "the db directory has one file per internal.linstor.linbit.com resource",
        "test -n \"$(ls \"$WORK_DIR/db\")\"".into(),
        false,
    );
    s.add(
        "2.7",
        "Write the v2 resources",
        "write_v2_resources > \"$WORK_DIR/v2-resources.yaml\"".into(),
        "The script holds the YAML of this plan (download v2-resources.yaml from the plan without it).",
        "v2-resources.yaml holds the LinstorCluster and the LinstorSatelliteConfigurations",
        "grep -q 'kind: LinstorCluster' \"$WORK_DIR/v2-resources.yaml\"".into(),
        false,
    );
}

/// Step 3: remove v1, leaving volumes alone.
fn remove_v1(inst: &V1Installation, s: &mut Steps) {
    let k = kubectl(&inst.namespace);
    match &inst.operator {
        Some(op) => s.add(
            "3.1",
            "Stop the v1 operator",
            format!(
                "{k} scale deployment/{} --replicas=0\n{k} rollout status deployment/{} --timeout=180s",
                q(&op.name),
                q(&op.name)
            ),
            "Nothing may reconcile the v1 resources while they go. kubectl instead of `helm upgrade --set \
             operator.replicas=0`: a helm upgrade renders the LinstorController again from the release values, which \
             may still say etcd.",
            "no operator pod is left",
            format!("test -z \"$({k} get pods -l {} -o name)\"", q(&op.selector)),
            true,
        ),
        None => s.add(
            "3.1",
            "Stop the v1 operator",
            format!("{k} get deployments"),
            "No v1 operator Deployment was found: make sure none runs (scale it to 0 by hand).",
            "no piraeus-operator pod runs",
            format!("test -z \"$({k} get pods -o name | grep operator || true)\""),
            false,
        ),
    }
    let mut unfinalize = Vec::new();
    let mut delete = Vec::new();
    for c in &inst.csi_drivers {
        delete.push(format!(
            "{k} delete linstorcsidriver {} --wait=true --timeout=300s",
            q(&c.name)
        ));
        unfinalize.push(("linstorcsidriver", &c.name));
    }
    for set in &inst.satellite_sets {
        unfinalize.push(("linstorsatelliteset", &set.name));
        delete.push(format!(
            "{k} delete linstorsatelliteset {} --wait=true --timeout=300s",
            q(&set.name)
        ));
    }
    unfinalize.push(("linstorcontroller", &inst.controller.name));
    delete.push(format!(
        "{k} delete linstorcontroller {} --wait=true --timeout=300s",
        q(&inst.controller.name)
    ));
    s.add(
        "3.2",
        "Remove the finalizers of the v1 resources",
        unfinalize
            .iter()
            .map(|(kind, name)| {
                format!(
                    "{k} patch {kind} {} --type merge -p '{{\"metadata\":{{\"finalizers\":[]}}}}'",
                    q(name)
                )
            })
            .collect::<Vec<_>>()
            .join("\n"),
        "The stopped operator would never remove its finalizers, and the deletion would hang.",
        "no v1 resource has finalizers",
        format!("test -z \"$({k} get {V1_KINDS} -o jsonpath='{{.items[*].metadata.finalizers}}')\""),
        true,
    );
    s.add(
        "3.3",
        "Delete the v1 resources",
        delete.join("\n"),
        "Stops LINSTOR's controller, satellites and CSI driver (Kubernetes removes what they own). From here until \
         step 4 no volume can be created, attached or detached; volumes in use keep working and replicating.",
        "no LinstorController, LinstorSatelliteSet or LinstorCSIDriver is left",
        format!("test -z \"$({k} get {V1_KINDS} -o name)\""),
        true,
    );
    if let Some(h) = &inst.helm {
        s.add(
            "3.4",
            "Uninstall the v1 chart",
            format!("helm uninstall {} --namespace {} --wait", q(&h.release), q(&h.namespace)),
            "Removes the operator, its RBAC and the etcd StatefulSet of the chart. Helm keeps the etcd volumes \
             (PVCs datadir-<release>-etcd-N) and the passphrase Secret (a hook with resource-policy keep).",
            "helm no longer lists the release",
            format!(
                "test -z \"$(helm list --namespace {} -q --filter {})\"",
                q(&h.namespace),
                q(&format!("^{}$", h.release))
            ),
            true,
        );
    }
    s.add(
        "3.5",
        "Delete the v1 CRDs",
        format!("kubectl delete crd {} --ignore-not-found", V1_CRDS.join(" ")),
        "The v2 chart refuses to install while they exist.",
        "no *.piraeus.linbit.com CRD is left",
        "test -z \"$(kubectl get crds -o name | grep '\\.piraeus\\.linbit\\.com$' || true)\"".into(),
        true,
    );
    for (i, r) in inst
        .other_releases
        .iter()
        .filter(|r| HA_CHARTS.contains(&r.chart_name.as_str()))
        .enumerate()
    {
        let ha_id = format!("3.{}", 6 + i);
        s.add(
            &ha_id,
            &format!("Uninstall {}", r.chart_name),
            format!(
                "helm uninstall {} --namespace {} --wait",
                q(&r.name),
                q(&r.namespace)
            ),
            "v2 deploys its own HA controller; a v1-era one would act on the same volumes.",
            "helm no longer lists the release",
            format!(
                "test -z \"$(helm list --namespace {} -q --filter {})\"",
                q(&r.namespace),
                q(&format!("^{}$", r.name))
            ),
            true,
        );
    }
}

/// Step 4: install v2 and apply the resources.
fn install_v2(inst: &V1Installation, s: &mut Steps) {
    let ns = q(&inst.target_namespace);
    let k = kubectl(&inst.target_namespace);
    s.add(
        "4.1",
        "Fetch the Piraeus Operator v2 chart",
        format!(
            "git clone --depth 1 --branch \"$V2_VERSION\" {V2_CHART_REPO} \"$WORK_DIR/piraeus-operator\""
        ),
        "The chart of the v2 release to install (V2_VERSION; see the LINSTOR version check).",
        "the chart is there",
        "test -f \"$WORK_DIR/piraeus-operator/charts/piraeus/Chart.yaml\"".into(),
        false,
    );
    s.add(
        "4.2",
        "Install Piraeus Operator v2",
        format!(
            "helm install piraeus-operator \"$WORK_DIR/piraeus-operator/charts/piraeus\" --namespace {ns} \
             --create-namespace --set installCRDs=true --wait\n\
             kubectl wait --for=condition=Established crd/linstorclusters.piraeus.io \
             crd/linstorsatelliteconfigurations.piraeus.io --timeout=120s"
        ),
        "The operator and its CRDs; it creates nothing of LINSTOR until the LinstorCluster exists.",
        "the operator pod is Ready",
        format!("{k} wait pod --for=condition=Ready -l app.kubernetes.io/component=piraeus-operator --timeout=300s"),
        true,
    );
    if let Passphrase::Present { secret } | Passphrase::Unreadable { secret, .. } = &inst.passphrase {
        let secret = q(secret);
        s.add(
            "4.3",
            "Create the passphrase Secret for v2",
            format!(
                "{k} get secret {secret} >/dev/null 2>&1 || printf 'apiVersion: v1\\nkind: Secret\\nmetadata:\\n  \
                 name: %s\\n  namespace: %s\\ntype: Opaque\\ndata:\\n  MASTER_PASSPHRASE: %s\\n' {secret} {ns} \
                 \"$(cat \"$WORK_DIR/master-passphrase.b64\")\" | kubectl apply --server-side -f -"
            ),
            "LinstorCluster spec.linstorPassphraseSecret names it; it must be in v2's namespace with the passphrase \
             of step 2.",
            "the Secret holds the passphrase of the backup",
            format!(
                "test \"$({k} get secret {secret} -o jsonpath='{{.data.MASTER_PASSPHRASE}}')\" = \"$(cat \
                 \"$WORK_DIR/master-passphrase.b64\")\""
            ),
            true,
        );
    }
    s.add(
        "4.4",
        "Check the v2 resources against the v2 CRDs",
        "kubectl apply --server-side --dry-run=server -f \"$WORK_DIR/v2-resources.yaml\"".into(),
        "The API server validates the LinstorCluster and LinstorSatelliteConfigurations without creating them.",
        "every resource says (server dry run)",
        "kubectl apply --server-side --dry-run=server -f \"$WORK_DIR/v2-resources.yaml\" >/dev/null".into(),
        false,
    );
    s.add(
        "4.5",
        "Apply the v2 resources",
        "kubectl apply --server-side -f \"$WORK_DIR/v2-resources.yaml\"".into(),
        "v2 deploys the controller on the existing k8s database (its first start backs it up into Secrets \
         linstor-backup-for-<pod> and upgrades its schema), then the satellites, CSI driver and HA controller.",
        "the controller Deployment rolls out",
        format!(
            "for _ in $(seq 60); do {k} get deployment linstor-controller >/dev/null 2>&1 && break; sleep 5; done\n\
             {k} rollout status deployment/linstor-controller --timeout=900s"
        ),
        true,
    );
    let exec = format!("{k} exec deployment/linstor-controller --");
    s.add(
        "4.6",
        "Compare the cluster with step 2",
        format!(
            "{exec} linstor node list\n{exec} linstor storage-pool list\n{exec} linstor resource list-volumes\n\
             {exec} linstor error-reports list"
        ),
        "LINSTOR under v2 must show the nodes, pools and volumes of before-*.txt.",
        "the nodes of before-nodes.txt are Online, the pools and volumes of step 2 are all listed, no new error reports",
        format!("{exec} linstor node list >/dev/null"),
        false,
    );
}
