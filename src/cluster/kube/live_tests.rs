//! [`KubeCluster`] against a real API server with KWOK nodes (tests/cluster/start.sh), ignored
//! by default: `source DIR/env && cargo test --lib cluster::kube::live_tests -- --ignored`;
//! `tests/cluster/e2e` runs them before the cluster suite, on the same control plane.
//! Each test works in its own namespace and deletes it afterwards.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, PostParams};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{KubeCluster, KubeOptions};
use crate::cluster::{AccessQuestion, Cluster, ClusterError, ExecLine, Stream};

const WAIT: Duration = Duration::from_secs(60);

struct Fixture {
    cluster: KubeCluster,
    ns: String,
    /// The local directory KWOK runs exec'd commands in.
    exec_dir: tempfile::TempDir,
}

impl Fixture {
    async fn new(prefix: &str) -> Self {
        let cluster = KubeCluster::from_default_config(KubeOptions::default())
            .await
            .expect("KUBECONFIG");
        let ns = format!("{prefix}-{}", rand::random::<u32>());
        let namespaces: Api<Namespace> = Api::all(cluster.client().clone());
        let namespace = serde_json::from_value(json!({"metadata": {"name": ns}})).expect("namespace");
        namespaces
            .create(&PostParams::default(), &namespace)
            .await
            .expect("create namespace");
        let exec_dir = tempfile::tempdir().expect("tempdir");
        // KWOK runs `exec` as local processes in this directory (REFERENCE.md §7).
        let ar = ApiResource {
            group: "kwok.x-k8s.io".into(),
            version: "v1alpha1".into(),
            api_version: "kwok.x-k8s.io/v1alpha1".into(),
            kind: "ClusterExec".into(),
            plural: "clusterexecs".into(),
        };
        let exec = DynamicObject::new(&ns, &ar).data(json!({"spec": {
            "selector": {"matchNamespaces": [ns]},
            "execs": [{"containers": ["main"], "local": {"workDir": exec_dir.path()}}],
        }}));
        Api::<DynamicObject>::all_with(cluster.client().clone(), &ar)
            .create(&PostParams::default(), &exec)
            .await
            .expect("create ClusterExec");
        Self {
            cluster,
            ns,
            exec_dir,
        }
    }

    async fn cleanup(self) {
        let client = self.cluster.client().clone();
        let _ = Api::<Namespace>::all(client)
            .delete(&self.ns, &DeleteParams::default())
            .await;
    }

    fn pod(&self, name: &str, extra_spec: serde_json::Value) -> Pod {
        let mut spec = json!({"containers": [{"name": "main", "image": "debian:bookworm",
            "command": ["sleep", "infinity"]}]});
        if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra_spec.as_object()) {
            spec.extend(extra.clone());
        }
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": self.ns}, "spec": spec}))
            .expect("pod")
    }
}

async fn run(f: &Fixture, pod: &str, script: &str) -> (i32, Vec<ExecLine>) {
    let (tx, mut rx) = mpsc::channel(64);
    // Lines are read while the command runs, as the engine does: a full channel holds up the
    // output (backpressure), it does not drop it.
    let collector = tokio::spawn(async move {
        let mut lines = Vec::new();
        while let Some(line) = rx.recv().await {
            lines.push(line);
        }
        lines
    });
    let command = vec!["sh".to_string(), "-c".to_string(), script.to_string()];
    // KWOK learns about the ClusterExec through a watch: the first exec may race it.
    let mut attempts = 0;
    let outcome = loop {
        match f
            .cluster
            .exec(&f.ns, pod, "main", &command, tx.clone(), CancellationToken::new())
            .await
        {
            Ok(outcome) => break outcome,
            Err(e) if attempts < 20 => {
                attempts += 1;
                eprintln!("exec not ready yet: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("exec: {e}"),
        }
    };
    drop(tx);
    (outcome.exit_code, collector.await.expect("collector"))
}

#[tokio::test]
#[ignore = "needs a real API server: source DIR/env from tests/cluster/start.sh"]
async fn pods_exec_and_copy() {
    let f = Fixture::new("lm-kube-pods").await;
    let c = &f.cluster;
    assert!(
        c.describe().starts_with("Kubernetes API at https://"),
        "{}",
        c.describe()
    );

    c.create_pod(&f.pod("work", json!({}))).await.expect("create pod");
    let again = c.create_pod(&f.pod("work", json!({}))).await;
    assert!(matches!(again, Err(ClusterError::AlreadyExists(_))), "{again:?}");
    c.wait_pod_running(&f.ns, "work", WAIT).await.expect("running");

    // Exit code, both streams, a last line without newline.
    let (code, lines) = run(&f, "work", "echo out; echo err >&2; printf partial; exit 3").await;
    assert_eq!(code, 3);
    assert!(
        lines.contains(&ExecLine {
            stream: Stream::Stdout,
            line: "out".into()
        }),
        "{lines:?}"
    );
    assert!(
        lines.contains(&ExecLine {
            stream: Stream::Stderr,
            line: "err".into()
        }),
        "{lines:?}"
    );
    assert!(
        lines.contains(&ExecLine {
            stream: Stream::Stdout,
            line: "partial".into()
        }),
        "{lines:?}"
    );

    // Much more than the 1 KiB pipes on both streams at once must not stall.
    let (code, lines) = run(&f, "work", "seq 1 20000; seq 1 20000 >&2").await;
    assert_eq!(code, 0);
    assert_eq!(lines.iter().filter(|l| l.stream == Stream::Stdout).count(), 20000);
    assert_eq!(lines.iter().filter(|l| l.stream == Stream::Stderr).count(), 20000);
    assert_eq!(
        lines
            .iter()
            .rfind(|l| l.stream == Stream::Stdout)
            .map(|l| l.line.as_str()),
        Some("20000")
    );

    // Cancel ends the wait promptly.
    let cancel = CancellationToken::new();
    let (tx, _rx) = mpsc::channel(16);
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        trigger.cancel();
    });
    let started = std::time::Instant::now();
    let sleep = vec!["sleep".to_string(), "30".to_string()];
    let cancelled = c.exec(&f.ns, "work", "main", &sleep, tx, cancel).await;
    assert!(matches!(cancelled, Err(ClusterError::Cancelled)), "{cancelled:?}");
    assert!(started.elapsed() < Duration::from_secs(10));

    // copy_from_pod streams a file bigger than any buffer, byte for byte.
    let content: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let path = f.exec_dir.path().join("backup.json");
    std::fs::write(&path, &content).expect("write");
    let mut out = Vec::new();
    let n = c
        .copy_from_pod(&f.ns, "work", "main", path.to_str().expect("utf-8"), &mut out)
        .await
        .expect("copy");
    assert_eq!(n, content.len() as u64);
    assert!(out == content, "copied bytes differ");
    let missing = c
        .copy_from_pod(&f.ns, "work", "main", "/nonexistent/file", &mut Vec::new())
        .await;
    assert!(
        matches!(&missing, Err(ClusterError::Api(m)) if m.contains("No such file")),
        "{missing:?}"
    );

    // An unschedulable pod fails early with the scheduler's message.
    let stuck = f.pod("stuck", json!({"nodeSelector": {"no-such-label": "x"}}));
    c.create_pod(&stuck).await.expect("create");
    let err = c.wait_pod_running(&f.ns, "stuck", WAIT).await;
    assert!(
        matches!(&err, Err(ClusterError::PodStart { reason, .. }) if reason.contains("unschedulable")),
        "{err:?}"
    );

    c.delete_pod(&f.ns, "work", WAIT).await.expect("delete");
    assert!(c.get_pod(&f.ns, "work").await.expect("get").is_none());
    c.delete_pod(&f.ns, "work", WAIT).await.expect("delete again");
    f.cleanup().await;
}

#[tokio::test]
#[ignore = "needs a real API server: source DIR/env from tests/cluster/start.sh"]
async fn config_maps_deployments_leases_and_reviews() {
    let f = Fixture::new("lm-kube-objects").await;
    let c = &f.cluster;
    let ns = f.ns.as_str();

    // ConfigMaps: create, replace, set a key, wait for a key, delete twice.
    let cm = |data: serde_json::Value| -> ConfigMap {
        serde_json::from_value(json!({"metadata": {"name": "cfg", "namespace": ns}, "data": data}))
            .expect("cm")
    };
    c.apply_config_map(&cm(json!({"a": "1", "b": "2"})))
        .await
        .expect("create");
    c.apply_config_map(&cm(json!({"a": "3"}))).await.expect("replace");
    let data = c
        .get_config_map(ns, "cfg")
        .await
        .expect("get")
        .and_then(|m| m.data)
        .expect("data");
    assert_eq!(
        data.into_iter().collect::<Vec<_>>(),
        vec![("a".to_string(), "3".to_string())]
    );
    let setter = c.clone();
    let setter_ns = ns.to_string();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        setter
            .set_config_map_key(&setter_ns, "cfg", "linstor.toml", "connection_url = \"k8s\"")
            .await
    });
    let accept = |v: Option<&str>| v.is_some_and(|t| t.contains("k8s"));
    c.wait_config_map_key(ns, "cfg", "linstor.toml", &accept, WAIT)
        .await
        .expect("key arrives");
    let never = |v: Option<&str>| v == Some("never");
    let timeout = c
        .wait_config_map_key(ns, "cfg", "a", &never, Duration::from_secs(1))
        .await;
    assert!(
        matches!(timeout, Err(ClusterError::Timeout { seconds: 1, .. })),
        "{timeout:?}"
    );
    c.delete_config_map(ns, "cfg").await.expect("delete");
    c.delete_config_map(ns, "cfg").await.expect("delete again");

    // A Deployment rolls out, scales to zero through the scale subresource, its pods go.
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "ctrl", "namespace": ns},
        "spec": {"replicas": 1, "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": {"app": "ctrl"}},
            "template": {"metadata": {"labels": {"app": "ctrl"}},
                "spec": {"containers": [{"name": "main", "image": "debian:bookworm"}]}}}
    }))
    .expect("deployment");
    Api::<Deployment>::namespaced(c.client().clone(), ns)
        .create(&PostParams::default(), &deployment)
        .await
        .expect("create deployment");
    c.wait_deployment_ready(ns, "ctrl", 1, WAIT).await.expect("ready");
    assert_eq!(c.list_pods(ns, "app=ctrl").await.expect("pods").len(), 1);
    assert!(
        c.list_deployments()
            .await
            .expect("list")
            .iter()
            .any(|d| d.metadata.name.as_deref() == Some("ctrl"))
    );
    c.scale_deployment(ns, "ctrl", 0).await.expect("scale");
    c.wait_pods_gone(ns, "app=ctrl", WAIT).await.expect("gone");
    c.wait_deployment_ready(ns, "ctrl", 0, WAIT)
        .await
        .expect("ready at zero");

    // Leases: one holder at a time, renewals, release only by the holder.
    let ttl = Duration::from_secs(30);
    assert!(c.acquire_lease(ns, "run", "a", ttl).await.expect("a takes"));
    assert!(!c.acquire_lease(ns, "run", "b", ttl).await.expect("b refused"));
    assert!(c.acquire_lease(ns, "run", "a", ttl).await.expect("a renews"));
    c.release_lease(ns, "run", "b").await.expect("b cannot release");
    assert!(!c.acquire_lease(ns, "run", "b", ttl).await.expect("still a's"));
    c.release_lease(ns, "run", "a").await.expect("a releases");
    assert!(c.acquire_lease(ns, "run", "b", ttl).await.expect("b takes"));

    // Reviews: the admin may, the default ServiceAccount may not; its token authenticates.
    let questions = [
        AccessQuestion::new("", "pods", "create", ns),
        AccessQuestion::new("apps", "deployments", "list", ""),
    ];
    let mine = c.review_self_access(&questions).await.expect("self review");
    assert!(mine.iter().all(|d| d.allowed), "{mine:?}");
    let sa = format!("system:serviceaccount:{ns}:default");
    let theirs = c
        .review_subject_access(&sa, &[], &questions)
        .await
        .expect("subject review");
    assert!(theirs.iter().all(|d| !d.allowed), "{theirs:?}");
    assert_eq!(c.review_token("not-a-token").await.expect("review"), None);
    let token = token_for_default_sa(c, ns).await;
    let user = c
        .review_token(&token)
        .await
        .expect("review")
        .expect("authenticated");
    assert_eq!(user.username, sa);

    // Forbidden lists say so, with the API server's message.
    let mut config = kube::Config::infer().await.expect("config");
    config.auth_info.impersonate = Some(sa.clone());
    let limited = KubeCluster::from_config(config, KubeOptions::default()).expect("client");
    let denied = limited.list_deployments().await;
    assert!(
        matches!(&denied, Err(ClusterError::Forbidden(m)) if m.contains("deployments")),
        "{denied:?}"
    );

    // Scoped to its namespace, the same ServiceAccount discovers with a Role there alone.
    let rbac: (Role, RoleBinding) = (
        serde_json::from_value(json!({"metadata": {"name": "discover", "namespace": ns},
            "rules": [
                {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["list"]},
                {"apiGroups": ["piraeus.linbit.com"], "resources": ["linstorcontrollers"], "verbs": ["list"]}]}))
        .expect("role"),
        serde_json::from_value(json!({"metadata": {"name": "discover", "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "discover"},
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": ns}]}))
        .expect("binding"),
    );
    Api::<Role>::namespaced(c.client().clone(), ns)
        .create(&PostParams::default(), &rbac.0)
        .await
        .expect("create role");
    Api::<RoleBinding>::namespaced(c.client().clone(), ns)
        .create(&PostParams::default(), &rbac.1)
        .await
        .expect("create binding");
    let mut config = kube::Config::infer().await.expect("config");
    config.auth_info.impersonate = Some(sa.clone());
    let scoped = KubeOptions {
        namespaces: vec![ns.to_string()],
        ..KubeOptions::default()
    };
    let scoped = KubeCluster::from_config(config, scoped).expect("client");
    assert!(scoped.describe().ends_with(&format!("namespaces {ns}")));
    // RBAC caches in the API server catch up within moments
    let deadline = tokio::time::Instant::now() + WAIT;
    let listed = loop {
        match scoped.list_deployments().await {
            Ok(listed) => break listed,
            Err(ClusterError::Forbidden(_)) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("scoped list: {e}"),
        }
    };
    assert!(
        listed.iter().any(|d| d.metadata.name.as_deref() == Some("ctrl")),
        "{listed:?}"
    );
    assert!(
        listed.iter().all(|d| d.metadata.namespace.as_deref() == Some(ns)),
        "only its namespace"
    );
    assert!(
        scoped
            .list_linstor_controllers()
            .await
            .expect("scoped CRs")
            .is_empty()
    );
    assert!(matches!(
        limited.list_deployments().await,
        Err(ClusterError::Forbidden(_))
    ));

    // No LinstorController in this namespace, whether or not the CRD is installed (the cluster
    // suite of tests/cluster/e2e installs it): an empty answer, not an error.
    let controllers = c.list_linstor_controllers().await.expect("list");
    assert!(
        controllers
            .iter()
            .all(|cr| cr.metadata.namespace.as_deref() != Some(ns)),
        "{controllers:?}"
    );
    assert!(c.get_linstor_controller(ns, "x").await.expect("get").is_none());
    f.cleanup().await;
}

async fn token_for_default_sa(c: &KubeCluster, ns: &str) -> String {
    let api: Api<ServiceAccount> = Api::namespaced(c.client().clone(), ns);
    let request: TokenRequest =
        serde_json::from_value(json!({"spec": {"audiences": [], "expirationSeconds": 600}}))
            .expect("request");
    // The ServiceAccount controller creates `default` shortly after the namespace.
    for _ in 0..40 {
        match api
            .create_subresource::<_, TokenRequest>("token", "default", &PostParams::default(), &request)
            .await
        {
            Ok(answer) => return answer.status.expect("status").token,
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
    panic!("no token for {ns}/default")
}
