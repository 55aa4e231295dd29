//! A stand-in for Piraeus Operator v1.10.8's `LinstorController` reconciler (the real one cannot
//! be fetched from the Go module proxy: 403). It does what REFERENCE.md §2 says the real one does,
//! traps included:
//!
//! - creates the Service `<cr>` (no selector) and the ConfigMap `<cr>-controller-config`,
//! - re-applies the Deployment `<cr>-controller` from the CR on every CR and owned-object event and
//!   every `resync` (the real one requeues every minute), so `spec.replicas` follows the CR and a
//!   direct `kubectl scale` of the Deployment is reverted,
//! - renders `linstor.toml` from `spec.dbConnectionURL`, but a changed ConfigMap is written only
//!   `config_delay` after the change was first seen (the real operator writes it at its next
//!   reconcile): scaling up right after patching the CR starts the controller on the old config,
//! - puts the hash of the ConfigMap as it is into the pod template, so a changed ConfigMap
//!   restarts the rollout,
//! - adds the test's own pod-template annotations (`Settings::pod_annotations`), e.g. the ones
//!   that make KWOK start or stop the controller pods slowly (tests/cluster/start.sh).
//!
//! It is only a client of the API server; it listens on nothing.

pub mod render;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use linstor_migrator::cluster::LinstorController;
use serde_json::json;

use render::Owned;

/// The field manager of everything the stand-in writes.
pub const FIELD_MANAGER: &str = "piraeus-operator";

/// How the stand-in paces itself.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Reconcile every CR at least this often (the real operator: 1 minute).
    pub resync: Duration,
    /// How long a changed `linstor.toml` waits before it reaches the ConfigMap.
    pub config_delay: Duration,
    /// Extra annotations of the controller's pod template (not part of the real operator).
    pub pod_annotations: BTreeMap<String, String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            resync: Duration::from_secs(5),
            config_delay: Duration::from_millis(1500),
            pod_annotations: BTreeMap::new(),
        }
    }
}

/// What every reconcile gets.
pub struct Context {
    pub client: kube::Client,
    pub settings: Settings,
    /// CR (namespace/name) -> when its ConfigMap was first seen to differ from the CR.
    pending_config: Mutex<HashMap<String, Instant>>,
}

impl Context {
    pub fn new(client: kube::Client, settings: Settings) -> Arc<Self> {
        Arc::new(Self {
            client,
            settings,
            pending_config: Mutex::default(),
        })
    }
}

fn log(message: &str) {
    eprintln!(
        "{} piraeus-operator: {message}",
        chrono::Utc::now().format("%H:%M:%S%.3f")
    );
}

/// Reconciles one CR: Service, ConfigMap (delayed), Deployment (always re-applied).
pub async fn reconcile(cr: Arc<LinstorController>, ctx: Arc<Context>) -> Result<Action, kube::Error> {
    let ns = cr.namespace().unwrap_or_default();
    let name = cr.name_any();
    if cr.meta().deletion_timestamp.is_some() {
        // owned objects go with the CR (garbage collector); nothing to finalize here
        return Ok(Action::await_change());
    }
    let Some(owner) = cr.controller_owner_ref(&()) else {
        return Ok(Action::requeue(ctx.settings.resync));
    };
    let owned = Owned::of(&name);
    let pp = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };

    let services: Api<Service> = Api::namespaced(ctx.client.clone(), &ns);
    if services.get_opt(&owned.service).await?.is_none() {
        log(&format!("creating Service {ns}/{}", owned.service));
        services.create(&pp, &render::service(&cr, &owner)).await?;
    }

    let mut requeue = ctx.settings.resync;
    let config_maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);
    let desired = render::config_map(&cr, &owner);
    let key = format!("{ns}/{name}");
    let toml = match config_maps.get_opt(&owned.config_map).await? {
        None => {
            log(&format!("creating ConfigMap {ns}/{}", owned.config_map));
            config_maps.create(&pp, &desired).await?;
            desired
                .data
                .as_ref()
                .and_then(|d| d.get("linstor.toml").cloned())
                .unwrap_or_default()
        }
        Some(current) if current.data == desired.data => {
            ctx.pending_config
                .lock()
                .expect("pending map poisoned")
                .remove(&key);
            current
                .data
                .as_ref()
                .and_then(|d| d.get("linstor.toml").cloned())
                .unwrap_or_default()
        }
        Some(current) => {
            let seen = *ctx
                .pending_config
                .lock()
                .expect("pending map poisoned")
                .entry(key.clone())
                .or_insert_with(Instant::now);
            let waited = seen.elapsed();
            if waited >= ctx.settings.config_delay {
                log(&format!(
                    "updating ConfigMap {ns}/{} from the CR",
                    owned.config_map
                ));
                let patch = json!({"data": desired.data});
                config_maps
                    .patch(
                        &owned.config_map,
                        &PatchParams {
                            field_manager: Some(FIELD_MANAGER.into()),
                            ..Default::default()
                        },
                        &Patch::Merge(&patch),
                    )
                    .await?;
                ctx.pending_config
                    .lock()
                    .expect("pending map poisoned")
                    .remove(&key);
                desired
                    .data
                    .as_ref()
                    .and_then(|d| d.get("linstor.toml").cloned())
                    .unwrap_or_default()
            } else {
                requeue = requeue.min(ctx.settings.config_delay - waited);
                current
                    .data
                    .as_ref()
                    .and_then(|d| d.get("linstor.toml").cloned())
                    .unwrap_or_default()
            }
        }
    };

    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ns);
    let mut wanted = render::deployment(&cr, &owner, &render::config_hash(&toml));
    if let Some(spec) = wanted.spec.as_mut()
        && !ctx.settings.pod_annotations.is_empty()
    {
        spec.template
            .metadata
            .get_or_insert_default()
            .annotations
            .get_or_insert_default()
            .extend(ctx.settings.pod_annotations.clone());
    }
    let before = deployments.get_opt(&owned.deployment).await?;
    let applied = deployments
        .patch(
            &owned.deployment,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&wanted),
        )
        .await?;
    let replicas = |d: &Deployment| d.spec.as_ref().and_then(|s| s.replicas);
    match before {
        None => log(&format!("created Deployment {ns}/{}", owned.deployment)),
        Some(b) if b.metadata.resource_version != applied.metadata.resource_version => log(&format!(
            "re-applied Deployment {ns}/{} (replicas {:?} -> {:?})",
            owned.deployment,
            replicas(&b),
            replicas(&applied)
        )),
        Some(_) => {}
    }
    Ok(Action::requeue(requeue))
}

fn error_policy(cr: Arc<LinstorController>, error: &kube::Error, _ctx: Arc<Context>) -> Action {
    log(&format!(
        "reconciling {}/{} failed: {error}",
        cr.namespace().unwrap_or_default(),
        cr.name_any()
    ));
    Action::requeue(Duration::from_secs(1))
}

/// Runs the reconciler for the CRs in `namespace` (all namespaces when `None`) until the
/// process ends.
pub async fn run(client: kube::Client, namespace: Option<&str>, settings: Settings) {
    let (crs, deployments, config_maps) = match namespace {
        Some(ns) => (
            Api::<LinstorController>::namespaced(client.clone(), ns),
            Api::<Deployment>::namespaced(client.clone(), ns),
            Api::<ConfigMap>::namespaced(client.clone(), ns),
        ),
        None => (
            Api::all(client.clone()),
            Api::all(client.clone()),
            Api::all(client.clone()),
        ),
    };
    let owned = watcher::Config::default().labels("app.kubernetes.io/name=piraeus-controller");
    let ctx = Context::new(client, settings);
    Controller::new(crs, watcher::Config::default())
        .owns(deployments, owned.clone())
        .owns(config_maps, owned)
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                log(&format!("controller: {e}"));
            }
        })
        .await;
}
