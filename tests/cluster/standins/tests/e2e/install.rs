//! One test's LINSTOR installation in its own namespace: the Piraeus v1 one, as the recorded
//! chart 1.10.8 makes it (chart.rs: the real ServiceAccounts, Roles, passphrase Secret, etcd
//! StatefulSet and LinstorController, LinstorSatelliteSet and LinstorCSIDriver CRs; the CR is
//! reconciled by the operator stand-in into Deployment, ConfigMap and Service, REFERENCE.md §2),
//! or a plain controller Deployment (objects.rs); plus what stands in for the parts KWOK and this
//! machine lack: the etcd data file, a ClusterExec that runs the migration pod's commands locally
//! with the controller's token, the pod volumes (podfs) and the LINSTOR REST stand-in. The
//! controller image says the LINSTOR release ([`Contents::linstor`]); the stand-ins take it from
//! there. Every installation starts on a cluster without LINSTOR's `k8s` backend (its CRDs are
//! cluster-wide: an earlier test's, of whichever release, are deleted first).

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service, ServiceAccount};
use kube::Resource;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use linstor_fake::Release;
use linstor_standins::dataset::{self, Preset};
use linstor_standins::dbtool::IMAGE_FILE_ENV;
use linstor_standins::dbtool::running::{self, STATE_DIR_ENV};
use linstor_standins::pace::PACE_ENV;
use linstor_standins::podfs::PodFs;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use super::chart::{self, Chart};
use super::objects;
use super::observe;
use super::process::{free_port, spawn};
use super::suite::{NAMESPACES, Suite, suite};

pub use super::objects::{CR, CR_ETCD_URL, PLAIN, PLAIN_ETCD_URL};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Piraeus Operator v1: a LinstorController CR owns the Deployment.
    Piraeus,
    /// A Deployment nobody owns, with its own ConfigMap.
    Plain,
}

/// How long KWOK takes to start and to stop a controller pod (zero: at once, as KWOK does by
/// default). A real controller takes seconds for both (a JVM starting, loading its database;
/// shutting down); the tests that must hit those moments widen them with this.
#[derive(Debug, Clone, Copy, Default)]
pub struct ControllerPace {
    /// Pod created -> Ready (KWOK's pod-ready stage waits this long).
    pub start: Duration,
    /// Pod deleted -> gone (KWOK's pod-delete stage waits this long).
    pub stop: Duration,
}

impl ControllerPace {
    /// The pod-template annotations start.sh's KWOK stages read.
    fn annotations(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (key, d) in [
            (objects::START_DELAY_ANNOTATION, self.start),
            (objects::STOP_DELAY_ANNOTATION, self.stop),
        ] {
            if !d.is_zero() {
                out.push(format!("{key}={}ms", d.as_millis()));
            }
        }
        out
    }
}

/// What an installation's etcd holds and how fast the stand-in tool runs: the shape's preset and
/// no pacing unless given (the downtime benchmark gives both).
#[derive(Debug, Clone, Default)]
pub struct Contents {
    pub etcd_data: Option<linstor_migrator::linstor::export::ExportDocument>,
    /// `LINSTOR_STANDIN_PACE` of the migration pod's tool runs (`recorded`).
    pub tool_pace: Option<String>,
    /// The LINSTOR release of a Piraeus installation's controller image (default: 1.33.3, the
    /// last with etcd; the plain Deployment runs 1.32.3).
    pub linstor: Option<Release>,
}

pub struct Installation {
    pub ns: String,
    pub shape: Shape,
    /// The LINSTOR version of the controller image, and the release that plays it.
    pub version: String,
    pub release: Release,
    /// The controller as the service names it (the CR, or the Deployment).
    pub controller: String,
    pub deployment: String,
    pub config_map: String,
    pub etcd_url: String,
    pub replicas: i32,
    pub client: kube::Client,
    /// This test's files.
    pub dir: PathBuf,
    /// The migration pod's mount paths on this machine.
    pub source_config_dir: PathBuf,
    pub target_config_dir: PathBuf,
    pub backup_dir: PathBuf,
    /// What the service execs: a wrapper of the linstor-database stand-in that records each
    /// run's wall time in `tool_runs`.
    pub tool: PathBuf,
    pub tool_runs: PathBuf,
    /// The stand-in's own record of its starts and live runs (`LINSTOR_STANDIN_STATE_DIR`).
    pub standin_state: PathBuf,
    /// The etcd data and the one-shot fault file of the linstor-database stand-in.
    pub dataset: PathBuf,
    pub fault_file: PathBuf,
    pub rest_url: String,
    children: Vec<Child>,
    podfs: tokio::task::JoinHandle<()>,
}

impl Drop for Installation {
    fn drop(&mut self) {
        self.podfs.abort();
        for c in &mut self.children {
            let _ = c.start_kill();
        }
        // stand-in runs this test caused that are still alive (a test that failed before the
        // service stopped them): KWOK's exec'd processes outlive everything else here
        let alive: Vec<i32> = running::starts(&self.standin_state)
            .iter()
            .filter(|s| s.process.alive())
            .map(|s| s.process.pid as i32)
            .collect();
        observe::kill(&alive);
    }
}

pub fn obj<T: DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("a well-formed object")
}

pub async fn admin_client() -> kube::Client {
    linstor_standins::install_crypto_provider();
    let kc = kube::config::Kubeconfig::read_from(&suite().admin_kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

async fn create<K>(client: &kube::Client, ns: &str, o: Value)
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    api.create(&PostParams::default(), &obj::<K>(o)).await.unwrap();
}

/// Deletes the CRDs of LINSTOR's `k8s` backend (and so every object in it) and waits until they
/// are gone: a cluster as before any migration.
async fn without_k8s_backend(client: &kube::Client) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let backend = || async {
        crds.list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|c| c.spec.group == linstor_fake::k8s::GROUP)
            .filter_map(|c| c.metadata.name)
            .collect::<Vec<String>>()
    };
    for name in backend().await {
        let _ = crds.delete(&name, &DeleteParams::default()).await;
    }
    // the API server deletes a CRD's objects before the CRD: 100k objects (the downtime
    // benchmark's largest size) took over 2 minutes on a busy 2-CPU machine
    observe::wait_for(
        Duration::from_secs(600),
        "the k8s backend's CRDs deleted",
        || async { backend().await.is_empty() },
    )
    .await;
}

/// Deletes every test namespace left from earlier tests and the `k8s` backend (it is
/// cluster-wide: the service refuses to migrate a second controller while another one's data is
/// there), waits until they are gone, and creates `ns` afresh.
async fn fresh_namespace(client: &kube::Client, ns: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let mut leftovers = Vec::new();
    for n in NAMESPACES.iter().copied().chain([ns]) {
        if !leftovers.contains(&n) && api.get_opt(n).await.unwrap().is_some() {
            chart::release_finalizers(client, n).await;
            let _ = api.delete(n, &DeleteParams::default()).await;
            leftovers.push(n);
        }
    }
    without_k8s_backend(client).await;
    observe::wait_for(
        Duration::from_secs(120),
        &format!("namespaces {leftovers:?} deleted"),
        || async {
            for n in &leftovers {
                if api.get_opt(n).await.unwrap().is_some() {
                    return false;
                }
            }
            true
        },
    )
    .await;
    api.create(&PostParams::default(), &obj(json!({"metadata": {"name": ns}})))
        .await
        .unwrap();
}

fn kwok_cluster_exec() -> ApiResource {
    ApiResource {
        group: "kwok.x-k8s.io".into(),
        version: "v1alpha1".into(),
        api_version: "kwok.x-k8s.io/v1alpha1".into(),
        kind: "ClusterExec".into(),
        plural: "clusterexecs".into(),
    }
}

impl Installation {
    /// Installs a controller with `replicas` in `ns`; returns once it is ready and its REST API answers.
    pub async fn new(ns: &str, shape: Shape, replicas: i32) -> Installation {
        Self::with_pace(ns, shape, replicas, ControllerPace::default()).await
    }

    /// A Piraeus installation whose controller image is of LINSTOR `release`.
    pub async fn of_release(ns: &str, release: Release) -> Installation {
        let contents = Contents {
            linstor: Some(release),
            ..Contents::default()
        };
        Self::with_contents(ns, Shape::Piraeus, 1, ControllerPace::default(), contents).await
    }

    /// [`Installation::new`] with controller pods that start and stop at `pace` (Piraeus shape:
    /// the operator stand-in puts the annotations into the pod template).
    pub async fn with_pace(ns: &str, shape: Shape, replicas: i32, pace: ControllerPace) -> Installation {
        Self::with_contents(ns, shape, replicas, pace, Contents::default()).await
    }

    /// [`Installation::with_pace`] with the given etcd data and tool pacing.
    pub async fn with_contents(
        ns: &str,
        shape: Shape,
        replicas: i32,
        pace: ControllerPace,
        contents: Contents,
    ) -> Installation {
        let s: &Suite = suite();
        let client = admin_client().await;
        let dir = s.work.join(ns);
        let _ = std::fs::remove_dir_all(&dir);
        let pod = dir.join("pod");
        for d in [dir.join("work/logs"), dir.join("bin"), pod.clone()] {
            std::fs::create_dir_all(d).unwrap();
        }
        fresh_namespace(&client, ns).await;
        // no fault of an earlier test (one that failed half way) is left in force
        s.clear_faults().await;
        // the tool runs in the controller's image: its LINSTOR version is the image's
        let (controller, deployment, config_map, etcd_url, etcd_sts, preset, version) = match shape {
            Shape::Piraeus => (
                CR,
                format!("{CR}-controller"),
                format!("{CR}-controller-config"),
                CR_ETCD_URL,
                "piraeus-op-etcd",
                Preset::Piraeus,
                contents.linstor.unwrap_or(Release::V1_33_3).version(),
            ),
            Shape::Plain => (
                PLAIN,
                PLAIN.to_string(),
                format!("{PLAIN}-config"),
                PLAIN_ETCD_URL,
                "etcd",
                Preset::Plain,
                linstor_fake::dataset::PLAIN_VERSION,
            ),
        };
        let release = Release::modelling(version);

        match shape {
            Shape::Piraeus => {
                let mut chart = Chart::default_values(&s.repo, ns);
                let spec = &mut chart.get_mut("LinstorController", CR)["spec"];
                assert_eq!(spec["dbConnectionURL"], CR_ETCD_URL);
                spec["replicas"] = json!(replicas);
                spec["controllerImage"] = json!(objects::image(version));
                chart.install(&client, ns, &dir).await;
            }
            Shape::Plain => {
                create::<ServiceAccount>(&client, ns, objects::service_account()).await;
                create::<Secret>(&client, ns, objects::passphrase_secret()).await;
                create::<Service>(&client, ns, objects::etcd_service(etcd_sts)).await;
                create::<StatefulSet>(&client, ns, objects::etcd_stateful_set(etcd_sts)).await;
            }
        }

        // what the migration pod's commands run with: the etcd data, faults, the controller's token
        let dataset = dir.join("etcd-data.json");
        let etcd_data = contents
            .etcd_data
            .unwrap_or_else(|| dataset::generate(preset, release));
        dataset::write(&etcd_data, &dataset).unwrap();
        let fault_file = dir.join("faults");
        let controller_kubeconfig = dir.join("controller.kubeconfig");
        s.write_token_kubeconfig(&controller_kubeconfig, &s.token(ns, "linstor-controller"), ns);
        let tool = dir.join("bin/linstor-database");
        let tool_runs = dir.join("tool-runs.log");
        let standin_state = dir.join("standin");
        std::fs::write(&tool, objects::timed_tool(&s.bins.tool, &tool_runs)).unwrap();
        std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let (data, faults, kubeconfig, state, image) = (
            dataset.display().to_string(),
            fault_file.display().to_string(),
            controller_kubeconfig.display().to_string(),
            standin_state.display().to_string(),
            pod.join(linstor_standins::podfs::IMAGE_FILE)
                .display()
                .to_string(),
        );
        // the stand-in tool's LINSTOR version is the image of the pod it runs in, which podfs
        // writes there
        let mut envs = vec![
            ("LINSTOR_STANDIN_ETCD_DATA", data.as_str()),
            ("LINSTOR_STANDIN_FAULT_FILE", &faults),
            ("KUBECONFIG", &kubeconfig),
            (IMAGE_FILE_ENV, &image),
            (STATE_DIR_ENV, &state),
        ];
        if let Some(p) = &contents.tool_pace {
            envs.push((PACE_ENV, p));
        }
        let exec = objects::cluster_exec(ns, &dir.join("work"), &envs);
        let execs: Api<DynamicObject> = Api::all_with(client.clone(), &kwok_cluster_exec());
        execs
            .patch(
                &format!("e2e-{ns}"),
                &PatchParams::apply("e2e").force(),
                &Patch::Apply(&exec),
            )
            .await
            .unwrap();
        let podfs = PodFs {
            namespace: ns.into(),
            label_selector: "app.kubernetes.io/managed-by=linstor-migrator".into(),
            root: pod.clone(),
        }
        .start(client.clone())
        .await;

        let mut children = Vec::new();
        match shape {
            Shape::Piraeus => {
                children.push(spawn(
                    &dir,
                    "piraeus-operator",
                    Command::new(&s.bins.operator)
                        .args([
                            "--namespace",
                            ns,
                            "--resync-seconds",
                            "5",
                            "--config-delay-ms",
                            "1500",
                        ])
                        .arg("--kubeconfig")
                        .arg(&s.admin_kubeconfig)
                        .args(
                            pace.annotations()
                                .iter()
                                .flat_map(|a| ["--pod-annotation", a.as_str()]),
                        ),
                ));
            }
            Shape::Plain => {
                assert!(
                    pace.annotations().is_empty(),
                    "ControllerPace needs the operator stand-in (Shape::Piraeus)"
                );
                create::<ConfigMap>(&client, ns, objects::plain_config_map(ns, &config_map)).await;
                create::<Service>(&client, ns, objects::plain_service()).await;
                create::<Deployment>(
                    &client,
                    ns,
                    objects::plain_deployment(replicas, &config_map, version),
                )
                .await;
            }
        }

        let port = free_port();
        let rest_url = format!("http://127.0.0.1:{port}");
        children.push(spawn(
            &dir,
            "linstor-rest",
            Command::new(&s.bins.rest)
                .args([
                    "--controller",
                    &format!("{ns}/{controller}"),
                    "--listen",
                    &format!("127.0.0.1:{port}"),
                ])
                .arg("--kubeconfig")
                .arg(&s.admin_kubeconfig)
                .arg("--etcd-data")
                .arg(&dataset),
        ));
        let inst = Installation {
            ns: ns.into(),
            shape,
            version: version.to_string(),
            release,
            controller: controller.into(),
            deployment,
            config_map,
            etcd_url: etcd_url.into(),
            replicas,
            client,
            source_config_dir: pod.join("etc/linstor"),
            target_config_dir: pod.join("etc/linstor-target"),
            backup_dir: pod.join("backup"),
            dir,
            tool,
            tool_runs,
            standin_state,
            dataset,
            fault_file,
            rest_url,
            children,
            podfs,
        };
        inst.wait_controller_up(Duration::from_secs(90)).await;
        // a rollback waits for etcd to be ready again: it must be ready to begin with
        observe::wait_for(
            Duration::from_secs(60),
            &format!("StatefulSet {ns}/{etcd_sts} ready"),
            || observe::stateful_set_ready(&inst.client, ns, etcd_sts),
        )
        .await;
        inst
    }

    /// "ns/name" for the API.
    pub fn reference(&self) -> String {
        format!("{}/{}", self.ns, self.controller)
    }

    /// Waits until the Deployment has its replicas ready and the REST API answers.
    pub async fn wait_controller_up(&self, timeout: Duration) {
        observe::wait_for(
            timeout,
            &format!("controller {} ready", self.reference()),
            || async {
                observe::deployment_ready(&self.client, &self.ns, &self.deployment).await
                    && observe::rest_up(&self.rest_url).await
            },
        )
        .await;
    }

    /// Arms a one-shot fault of the linstor-database stand-in (`import:exit1`, `export:hang`).
    pub fn arm_fault(&self, fault: &str) {
        std::fs::write(&self.fault_file, format!("{fault}\n")).unwrap();
    }
}
