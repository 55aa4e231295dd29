//! What a person needs when a rollback cannot finish on its own: the controller as the service
//! sees it now, against what the run found, and the kubectl commands that finish the job by
//! hand, in order, with this controller's names.

use super::steps::control::{controller_pods, current_replicas, current_url};
use crate::cluster::controller::ControllerKind;
use crate::cluster::pod::MigrationObjects;
use crate::db::Originals;
use crate::linstor::toml::redact_url;

/// The controller's replicas, database URL, pods and etcd now, against what the run found.
pub(super) async fn describe_controller(cluster: &dyn crate::cluster::Cluster, o: &Originals) -> Vec<String> {
    let info = &o.target;
    let mut out = Vec::new();
    let what = match info.kind {
        ControllerKind::LinstorController => format!("LinstorController {}/{}", info.namespace, info.name),
        ControllerKind::Deployment => format!("Deployment {}/{}", info.namespace, info.deployment),
    };
    match current_replicas(cluster, info).await {
        Ok(r) => out.push(format!(
            "{what} asks for {} replica(s) (originally {})",
            r.map_or("?".into(), |r| r.to_string()),
            o.replicas
        )),
        Err(e) => out.push(format!("{what} cannot be read: {e}")),
    }
    match current_url(cluster, info).await {
        Ok(u) => out.push(format!(
            "its database URL is {} (originally {})",
            u.as_deref().map_or("(none)".into(), redact_url),
            o.connection_url.as_deref().map_or("(none)".into(), redact_url)
        )),
        Err(e) => out.push(format!("its database URL cannot be read: {e}")),
    }
    match controller_pods(cluster, info).await {
        Ok(n) => out.push(format!("{n} controller pod(s) exist")),
        Err(e) => out.push(format!("its pods cannot be listed: {e}")),
    }
    if let (Some(sts), Some(replicas)) = (&o.etcd_stateful_set, o.etcd_replicas) {
        match cluster.get_stateful_set(&info.namespace, sts).await {
            Ok(Some(s)) => out.push(format!(
                "etcd StatefulSet {sts} asks for {} replica(s), {} ready (originally {replicas})",
                s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                s.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0)
            )),
            Ok(None) => out.push(format!("etcd StatefulSet {sts} is gone")),
            Err(e) => out.push(format!("etcd StatefulSet {sts} cannot be read: {e}")),
        }
    }
    out
}

/// The kubectl commands that finish a rollback by hand, in order, with this controller's names.
pub(super) fn manual_commands(o: &Originals, names: &MigrationObjects) -> Vec<String> {
    let info = &o.target;
    let ns = &info.namespace;
    let mut c = Vec::new();
    let scale = |replicas: i32| match info.kind {
        ControllerKind::LinstorController => format!(
            "kubectl -n {ns} patch linstorcontroller {} --type merge -p '{{\"spec\":{{\"replicas\":{replicas}}}}}'",
            info.name
        ),
        ControllerKind::Deployment => format!(
            "kubectl -n {ns} scale deployment {} --replicas={replicas}",
            info.deployment
        ),
    };
    let cm = info.config_map.as_deref().unwrap_or("<controller-configmap>");
    if let Some(raw) = &o.connection_url {
        let url = redact_url(raw);
        c.push("# 1. stop the controller, so it never runs on a half-switched configuration".to_string());
        c.push(scale(0));
        c.push(format!(
            "kubectl -n {ns} wait --for=delete pod -l {} --timeout=5m",
            info.pod_selector
        ));
        c.push(format!("# 2. its original database URL: {url}"));
        if url != *raw {
            c.push("#    (*** stands for the password it carries, which is not shown here)".to_string());
        }
        match info.kind {
            ControllerKind::LinstorController => {
                c.push(format!(
                    "kubectl -n {ns} patch linstorcontroller {} --type merge -p '{{\"spec\":{{\"dbConnectionURL\":\"{url}\"}}}}'",
                    info.name
                ));
                c.push(format!(
                    "# wait until the operator has rendered it: this must print connection_url = \"{url}\""
                ));
            }
            ControllerKind::Deployment => {
                c.push(format!(
                    "kubectl -n {ns} edit configmap {cm}   # in linstor.toml, [db] connection_url = \"{url}\""
                ));
            }
        }
        c.push(format!(
            "kubectl -n {ns} get configmap {cm} -o jsonpath='{{.data.linstor\\.toml}}' | grep connection_url"
        ));
    }
    if let (Some(sts), Some(replicas)) = (&o.etcd_stateful_set, o.etcd_replicas) {
        c.push(format!(
            "# 3. etcd back at {replicas} replica(s), ready before the controller starts"
        ));
        c.push(format!(
            "kubectl -n {ns} scale statefulset {sts} --replicas={replicas}"
        ));
        c.push(format!(
            "kubectl -n {ns} rollout status statefulset/{sts} --timeout=5m"
        ));
    }
    c.push(format!(
        "# 4. start the controller with its original {} replica(s)",
        o.replicas
    ));
    c.push(scale(o.replicas));
    c.push(format!(
        "kubectl -n {ns} rollout status deployment/{} --timeout=5m",
        info.deployment
    ));
    c.push("# 5. remove the run's migration pod and ConfigMap".to_string());
    c.push(format!(
        "kubectl -n {ns} delete pod {} --ignore-not-found",
        names.pod
    ));
    c.push(format!(
        "kubectl -n {ns} delete configmap {} --ignore-not-found",
        names.target_config_map
    ));
    if let Some(url) = o.connection_url.as_deref().map(redact_url) {
        c.push(format!(
            "# keep the Helm values as they are: operator.controller.dbConnectionURL stays {url} (do not persist k8s)"
        ));
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::controller::ControllerInfo;
    use crate::linstor::toml::Backend;

    fn originals(kind: ControllerKind) -> Originals {
        Originals {
            connection_url: Some("etcd://piraeus-op-etcd:2379".into()),
            replicas: 1,
            config_toml: None,
            etcd_stateful_set: Some("piraeus-op-etcd".into()),
            etcd_replicas: Some(3),
            target: ControllerInfo {
                namespace: "piraeus-datastore".into(),
                name: "piraeus-op-cs".into(),
                kind,
                deployment: "piraeus-op-cs-controller".into(),
                config_map: Some("piraeus-op-cs-controller-config".into()),
                service: Some("piraeus-op-cs".into()),
                service_account: "linstor-controller".into(),
                image: None,
                linstor_version: None,
                replicas: 1,
                ready_replicas: 1,
                backend: Backend::Etcd,
                connection_url: Some("etcd://piraeus-op-etcd:2379".into()),
                config_error: None,
                https_client_secret: None,
                pod_selector: "app.kubernetes.io/instance=piraeus-op-cs".into(),
            },
        }
    }

    #[test]
    fn the_manual_commands_restore_url_then_etcd_then_replicas_with_this_clusters_names() {
        let o = originals(ControllerKind::LinstorController);
        let names = MigrationObjects::for_run("piraeus-op-cs", "0190-abcd-1234");
        let c = manual_commands(&o, &names).join("\n");
        let url = c
            .find("\"dbConnectionURL\":\"etcd://piraeus-op-etcd:2379\"")
            .expect("URL patch");
        let etcd = c
            .find("scale statefulset piraeus-op-etcd --replicas=3")
            .expect("etcd scale");
        let start = c.find("\"replicas\":1").expect("start");
        assert!(url < etcd && etcd < start, "{c}");
        assert!(
            c.contains(&format!("delete pod {} --ignore-not-found", names.pod)),
            "{c}"
        );
        assert!(c.contains("stays etcd://piraeus-op-etcd:2379"), "{c}");

        let plain = manual_commands(&originals(ControllerKind::Deployment), &names).join("\n");
        assert!(
            plain.contains("scale deployment piraeus-op-cs-controller --replicas=0"),
            "{plain}"
        );
        assert!(
            plain.contains("edit configmap piraeus-op-cs-controller-config"),
            "{plain}"
        );
    }
}
