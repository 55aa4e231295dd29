//! What must not start a run: missing k8s-backend rights for the controller (4), a second start
//! while one run is active (5).

use std::time::Duration;

use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use serde_json::json;

use super::install::{CR_ETCD_URL, Installation, Shape};
use super::observe;
use super::service::{Service, step_state};
use super::suite::{K8S_BACKEND_BINDING, run, suite};

/// Puts the chart's k8s-backend binding back however the test ends.
struct RestoreBinding;

impl Drop for RestoreBinding {
    fn drop(&mut self) {
        suite().apply_controller_rbac();
    }
}

/// A SubjectAccessReview: may the controller's ServiceAccount `verb` the k8s backend's objects?
/// (`kubectl auth can-i` guesses the group from discovery, which fails before the CRDs exist.)
async fn controller_may(client: &kube::Client, ns: &str, verb: &str) -> bool {
    let review: SubjectAccessReview = serde_json::from_value(json!({
        "spec": {"user": format!("system:serviceaccount:{ns}:linstor-controller"),
                 "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{ns}")],
                 "resourceAttributes": {"group": "internal.linstor.linbit.com", "resource": "nodes", "verb": verb}}
    }))
    .unwrap();
    let api: kube::Api<SubjectAccessReview> = kube::Api::all(client.clone());
    let answer = api.create(&Default::default(), &review).await.unwrap();
    answer.status.is_some_and(|s| s.allowed)
}

/// Test 4: without the ClusterRoleBinding, preflight names the missing rule and nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the loopback control plane: tests/cluster/e2e"]
async fn missing_k8s_backend_rights_fail_preflight() {
    let inst = Installation::new("e2e-rbac", Shape::Piraeus, 1).await;
    let _restore = RestoreBinding;
    // a test process killed earlier may have left the binding deleted
    suite().apply_controller_rbac();
    observe::wait_for(
        Duration::from_secs(10),
        "the chart's k8s-backend rights for the controller",
        || controller_may(&inst.client, &inst.ns, "deletecollection"),
    )
    .await;
    run(
        suite()
            .kubectl()
            .args(["delete", "clusterrolebinding", K8S_BACKEND_BINDING]),
        None,
    );
    observe::wait_for(
        Duration::from_secs(10),
        "RBAC to notice the deleted binding",
        || async { !controller_may(&inst.client, &inst.ns, "deletecollection").await },
    )
    .await;
    let cr_before = inst.linstor_controller().await;
    let deployment_before = inst.deployment().await;
    let toml_before = inst.config_toml().await;

    let svc = Service::start(&inst).await;
    let id = svc.start_ok("migrate", &inst.reference()).await;
    let run = svc.wait_final(&id, Duration::from_secs(60)).await;
    let log = svc.log_text(&id).await;
    assert_eq!(run["state"], "failed", "run: {run:#}\nlog:\n{log}");
    assert_eq!(step_state(&run, "preflight"), "failed");
    for step in ["prepare_pod", "stop_controller", "export", "import", "switch"] {
        assert_eq!(step_state(&run, step), "pending", "step {step} must not have run");
    }
    let said = format!("{} {}", run["error"], log);
    assert!(
        said.contains("internal.linstor.linbit.com") && said.contains("linstor-controller"),
        "the failure names the missing rule and the ServiceAccount: {}",
        run["error"]
    );

    let cr = inst.linstor_controller().await;
    assert_eq!(cr.spec, cr_before.spec, "the CR changed");
    assert_eq!(cr.spec.db_connection_url.as_deref(), Some(CR_ETCD_URL));
    let deployment = inst.deployment().await;
    assert_eq!(
        deployment.metadata.generation, deployment_before.metadata.generation,
        "the Deployment changed"
    );
    assert_eq!(inst.config_toml().await, toml_before);
    assert_eq!(inst.migration_objects().await, Vec::<String>::new());
    assert!(
        observe::rest_up(&inst.rest_url).await,
        "the controller kept running"
    );
}

/// Test 5: two simultaneous starts on one controller: one run, one 409.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the loopback control plane: tests/cluster/e2e"]
async fn concurrent_starts_make_one_run() {
    let inst = Installation::new("e2e-concurrent", Shape::Piraeus, 1).await;
    let svc = Service::start(&inst).await;
    let controller = inst.reference();
    let (a, b) = tokio::join!(
        svc.start_run("backup", &controller, json!({})),
        svc.start_run("backup", &controller, json!({}))
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [201, 409], "answers: {a:?} {b:?}");
    let (_, created) = if a.0 == 201 { a } else { b };
    let run = svc
        .wait_final(created["id"].as_str().unwrap(), Duration::from_secs(180))
        .await;
    assert_eq!(run["state"], "succeeded", "{run:#}");

    let (status, runs) = svc.get("/api/v1/runs").await;
    assert_eq!(status, 200);
    let items = runs
        .as_array()
        .or_else(|| runs["runs"].as_array())
        .or_else(|| runs["items"].as_array())
        .cloned()
        .unwrap_or_default();
    let ours: Vec<_> = items
        .iter()
        .filter(|r| r["controller"] == controller.as_str())
        .collect();
    assert_eq!(ours.len(), 1, "runs: {runs:#}");
    inst.wait_controller_up(Duration::from_secs(30)).await;
}

/// Test 5b (issue 18, item 1): another LINSTOR already runs on the cluster's one `k8s` backend (in
/// a namespace this service does not watch; here: objects written straight into the API server,
/// with LINSTOR 1.25.1's schema): the migration stops at preflight, names what it found and how to
/// check it, and every object is still there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the loopback control plane: tests/cluster/e2e"]
async fn another_linstor_on_the_k8s_backend_blocks_the_run_at_preflight() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{Api, ApiResource, DynamicObject, ListParams, PostParams};

    let inst = Installation::new("e2e-foreign", Shape::Piraeus, 1).await;
    let group = "internal.linstor.linbit.com";
    let crds: Api<CustomResourceDefinition> = Api::all(inst.client.clone());
    for (plural, kind, version) in [
        ("nodes", "Nodes", "v1-19-1"),
        ("linstorversion", "LinstorVersion", "v1"),
    ] {
        let crd: CustomResourceDefinition = serde_json::from_value(json!({
            "metadata": {"name": format!("{plural}.{group}")},
            "spec": {"group": group, "scope": "Cluster",
                     "names": {"plural": plural, "singular": plural, "kind": kind, "listKind": format!("{kind}List")},
                     "versions": [{"name": version, "served": true, "storage": true,
                                   "schema": {"openAPIV3Schema": {"type": "object",
                                              "x-kubernetes-preserve-unknown-fields": true}}}]}
        }))
        .unwrap();
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
    let resource = |plural: &str, kind: &str, version: &str| ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: format!("{group}/{version}"),
        kind: kind.into(),
        plural: plural.into(),
    };
    let nodes_resource = resource("nodes", "Nodes", "v1-19-1");
    let nodes: Api<DynamicObject> = Api::all_with(inst.client.clone(), &nodes_resource);
    let version: Api<DynamicObject> = Api::all_with(
        inst.client.clone(),
        &resource("linstorversion", "LinstorVersion", "v1"),
    );
    observe::wait_for(Duration::from_secs(30), "the CRDs served", || async {
        nodes.list(&ListParams::default()).await.is_ok() && version.list(&ListParams::default()).await.is_ok()
    })
    .await;
    for n in ["OTHER-A", "OTHER-B", "OTHER-C"] {
        let mut o = DynamicObject::new(&linstor_fake::naming::name_of_key(n), &nodes_resource);
        o.data = json!({"spec": {"node_name": n, "node_dsp_name": n.to_lowercase(), "node_flags": 0, "node_type": 2,
                                 "uuid": "00000000-0000-0000-0000-000000000000"}});
        nodes.create(&PostParams::default(), &o).await.unwrap();
    }
    let mut v = DynamicObject::new("version", &resource("linstorversion", "LinstorVersion", "v1"));
    v.data = json!({"spec": {"version": 18}});
    version.create(&PostParams::default(), &v).await.unwrap();

    let svc = Service::start(&inst).await;
    let id = svc.start_ok("migrate", &inst.reference()).await;
    let run = svc.wait_final(&id, Duration::from_secs(120)).await;
    let log = svc.log_text(&id).await;
    assert_eq!(run["state"], "failed", "run: {run:#}\nlog:\n{log}");
    assert_eq!(step_state(&run, "preflight"), "failed");
    assert_eq!(step_state(&run, "prepare_target"), "pending");
    let checks = run["report"]["checks"].as_array().cloned().unwrap_or_default();
    let message = |name: &str| {
        checks
            .iter()
            .find(|c| c["name"] == name && c["level"] == "error")
            .map(|c| c["message"].as_str().unwrap_or_default().to_string())
            .unwrap_or_else(|| panic!("no failed {name} check: {checks:#?}"))
    };
    let foreign = message("k8s-backend");
    assert!(
        foreign.contains("3 objects") && foreign.contains("kubectl get crd"),
        "{foreign}"
    );
    let schema = message("k8s-backend-schema");
    assert!(schema.contains("LINSTOR 1.25.1 writes it"), "{schema}");
    assert_eq!(
        nodes.list(&ListParams::default()).await.unwrap().items.len(),
        3,
        "every object is still there"
    );
    assert!(
        observe::rest_up(&inst.rest_url).await,
        "the controller kept running"
    );
}
