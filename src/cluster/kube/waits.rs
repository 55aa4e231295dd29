//! Waits on watches, never on sleep-polling: each one keeps the current set of watched objects
//! up to date from a kube-rs watcher and re-evaluates its condition on every change, under a
//! `tokio::time::timeout`.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::pin::pin;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;

use super::errors::{error_chain, fatal_watch_error, object_ref};
use super::status::{PodStartState, RolloutState, deployment_rollout, pod_start_state, stateful_set_ready};
use crate::cluster::{ClusterError, ClusterResult};

/// What a condition makes of the objects currently watched.
pub(super) enum Verdict {
    Done,
    /// Not yet; the text says why and ends up in the timeout message.
    Wait(String),
    Fail(ClusterError),
}

/// Watches the objects `config` selects and returns when `check` says `Done` or `Fail`, or with
/// [`ClusterError::Timeout`] after `timeout`. `check` first runs once the initial list is
/// complete (so an already satisfied condition returns at once), then after every change.
pub(super) async fn watch_until<K>(
    api: Api<K>,
    config: watcher::Config,
    what: &str,
    timeout: Duration,
    mut check: impl FnMut(&[&K]) -> Verdict + Send,
) -> ClusterResult<()>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let mut last_reason = String::new();
    let watch = async {
        let mut events = pin!(watcher(api, config).default_backoff());
        let mut current: BTreeMap<(String, String), K> = BTreeMap::new();
        let mut relisted: BTreeMap<(String, String), K> = BTreeMap::new();
        let mut synced = false;
        while let Some(event) = events.next().await {
            match event {
                Ok(Event::Init) => relisted.clear(),
                Ok(Event::InitApply(object)) => {
                    relisted.insert(key(&object), object);
                    continue;
                }
                Ok(Event::InitDone) => {
                    current = std::mem::take(&mut relisted);
                    synced = true;
                }
                Ok(Event::Apply(object)) => {
                    current.insert(key(&object), object);
                }
                Ok(Event::Delete(object)) => {
                    current.remove(&key(&object));
                }
                Err(err) => {
                    if let Some(fatal) = fatal_watch_error(what, &err) {
                        return Err(fatal);
                    }
                    // The watcher re-lists with backoff; a 410 Gone or a dropped connection is routine.
                    tracing::debug!(what, error = %error_chain(&err), "watch interrupted, retrying");
                    continue;
                }
            }
            if !synced {
                continue;
            }
            let objects: Vec<&K> = current.values().collect();
            match check(&objects) {
                Verdict::Done => return Ok(()),
                Verdict::Fail(err) => return Err(err),
                Verdict::Wait(reason) => last_reason = reason,
            }
        }
        Err(ClusterError::Api(format!(
            "the watch for {what} ended unexpectedly"
        )))
    };
    match tokio::time::timeout(timeout, watch).await {
        Ok(result) => result,
        Err(_) => {
            let what = if last_reason.is_empty() {
                what.to_string()
            } else {
                format!("{what} (last seen: {last_reason})")
            };
            Err(ClusterError::Timeout {
                what,
                seconds: timeout.as_secs(),
            })
        }
    }
}

fn key<K: Resource>(object: &K) -> (String, String) {
    (object.namespace().unwrap_or_default(), object.name_any())
}

/// How long the API server keeps one watch open (kube-rs re-watches after it). Its stream is
/// also taken for dead when nothing came for this long plus 5 s, so a watch that stalls after
/// its start costs at most that much of a wait; its start has the calls' deadline.
const WATCH_SECONDS: u32 = 60;

fn watching() -> watcher::Config {
    watcher::Config::default().timeout(WATCH_SECONDS)
}

fn by_name(name: &str) -> watcher::Config {
    watching().fields(&format!("metadata.name={name}"))
}

/// Until no pod in `ns` matches `label_selector` (terminating pods still count).
pub(super) async fn wait_pods_gone(
    client: &kube::Client,
    ns: &str,
    label_selector: &str,
    timeout: Duration,
) -> ClusterResult<()> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let what = format!("pods matching {label_selector:?} in {ns} to be gone");
    watch_until(api, watching().labels(label_selector), &what, timeout, |pods| {
        if pods.is_empty() {
            Verdict::Done
        } else {
            let names: Vec<String> = pods.iter().map(|p| p.name_any()).collect();
            Verdict::Wait(format!("{} still exist", names.join(", ")))
        }
    })
    .await
}

/// Until the pod `ns/name` with `uid` is gone (a new pod of the same name does not count).
pub(super) async fn wait_pod_deleted(
    client: &kube::Client,
    ns: &str,
    name: &str,
    uid: Option<String>,
    timeout: Duration,
) -> ClusterResult<()> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let what = format!("pod {} to be deleted", object_ref(ns, name));
    watch_until(api, by_name(name), &what, timeout, |pods| {
        let still_there = pods.iter().any(|p| uid.is_none() || p.metadata.uid == uid);
        if still_there {
            Verdict::Wait("still terminating".into())
        } else {
            Verdict::Done
        }
    })
    .await
}

/// Until the Deployment asks for `replicas` and its rollout is complete ([`deployment_rollout`]).
pub(super) async fn wait_deployment_ready(
    client: &kube::Client,
    ns: &str,
    name: &str,
    replicas: i32,
    timeout: Duration,
) -> ClusterResult<()> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let target = object_ref(ns, name);
    let what = format!("Deployment {target} to be ready");
    watch_until(
        api,
        by_name(name),
        &what,
        timeout,
        |deployments| match deployments.first() {
            // The operator may be about to re-create it: keep waiting, the timeout says why.
            None => Verdict::Wait("the Deployment does not exist".into()),
            // the operator scales the Deployment after the CR changed: until then 0 of 0 ready
            // would look like a finished rollout
            Some(d) if d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1) != replicas => {
                Verdict::Wait(format!(
                    "the Deployment asks for {} replicas, not {replicas} yet",
                    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
                ))
            }
            Some(d) => match deployment_rollout(d) {
                RolloutState::Complete => Verdict::Done,
                RolloutState::Progressing(reason) => Verdict::Wait(reason),
                RolloutState::Failed(reason) => {
                    Verdict::Fail(ClusterError::Api(format!("Deployment {target}: {reason}")))
                }
            },
        },
    )
    .await
}

/// Until the StatefulSet asks for `replicas` and that many pods are ready ([`stateful_set_ready`]).
pub(super) async fn wait_stateful_set_ready(
    client: &kube::Client,
    ns: &str,
    name: &str,
    replicas: i32,
    timeout: Duration,
) -> ClusterResult<()> {
    let api: Api<StatefulSet> = Api::namespaced(client.clone(), ns);
    let what = format!("StatefulSet {} to be ready", object_ref(ns, name));
    watch_until(api, by_name(name), &what, timeout, |sets| match sets.first() {
        None => Verdict::Fail(ClusterError::NotFound {
            kind: "StatefulSet",
            namespace: ns.to_string(),
            name: name.to_string(),
        }),
        Some(s) => match stateful_set_ready(s, replicas) {
            Ok(()) => Verdict::Done,
            Err(reason) => Verdict::Wait(reason),
        },
    })
    .await
}

/// Until the pod is Running and ready, or fails early when it cannot start ([`pod_start_state`]).
pub(super) async fn wait_pod_running(
    client: &kube::Client,
    ns: &str,
    name: &str,
    timeout: Duration,
) -> ClusterResult<()> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let what = format!("pod {} to be running", object_ref(ns, name));
    watch_until(api, by_name(name), &what, timeout, |pods| match pods.first() {
        None => Verdict::Wait("the pod does not exist".into()),
        Some(pod) => match pod_start_state(pod) {
            PodStartState::Running => Verdict::Done,
            PodStartState::Pending(reason) => Verdict::Wait(reason),
            PodStartState::Failed(reason) => Verdict::Fail(ClusterError::PodStart {
                pod: name.to_string(),
                reason,
            }),
        },
    })
    .await
}

/// Until `accept` takes the value of `key` in the ConfigMap (`None`: key or ConfigMap absent).
pub(super) async fn wait_config_map_key(
    client: &kube::Client,
    ns: &str,
    name: &str,
    key: &str,
    accept: &(dyn for<'v> Fn(Option<&'v str>) -> bool + Send + Sync),
    timeout: Duration,
) -> ClusterResult<()> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let what = format!("key {key:?} of ConfigMap {} to change", object_ref(ns, name));
    watch_until(api, by_name(name), &what, timeout, |maps| {
        let value = maps
            .first()
            .and_then(|cm| cm.data.as_ref())
            .and_then(|d| d.get(key))
            .map(String::as_str);
        // The value itself stays out of the message: linstor.toml can hold database passwords.
        match (accept(value), maps.is_empty()) {
            (true, _) => Verdict::Done,
            (false, true) => Verdict::Wait("the ConfigMap does not exist".into()),
            (false, false) => Verdict::Wait("the key does not have the expected value yet".into()),
        }
    })
    .await
}
