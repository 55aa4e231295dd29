//! The simulated control plane: the Piraeus operator (CR -> Deployment replicas and, only at its
//! next reconcile, the ConfigMap), the Deployment/StatefulSet controllers and the kubelet (pods
//! start and stop after the configured delays; a controller runs on the config it started with).

use k8s_openapi::api::core::v1::Pod;

use super::faults::{Fault, Site};
use super::fingerprint::ControllerStart;
use super::rest;
use super::state::{Event, Key, Origin, SimPod, State, key};
use super::status;
use crate::linstor::toml::{Backend, LinstorConfig};
use crate::model::StepName;

/// `linstor.toml` as Piraeus Operator v1 renders it (for `k8s` only `connection_url` in `[db]`).
pub(crate) fn render_operator_toml(url: &str) -> String {
    format!(
        "[db]\n  connection_url = \"{url}\"\n\n[http]\n  listen_addr = \"0.0.0.0\"\n  port = 3370\n\n[logging]\n  level = \"info\"\n"
    )
}

pub(crate) use status::mark_running;

impl State {
    /// Applies one scheduled event.
    pub(crate) fn apply(&mut self, event: Event) {
        match event {
            Event::PodStarted { pod, uid } => self.pod_started(&pod, uid),
            Event::PodRemoved { pod, uid } => {
                if self.pods.get(&pod).is_some_and(|p| p.uid == uid) {
                    self.pods.remove(&pod);
                }
            }
            Event::Reconcile { cr } => self.operator_reconcile(&cr),
        }
        self.reconcile_workloads();
        self.touch();
    }

    pub(crate) fn insert_pod(&mut self, mut pod: Pod, uid: u64, origin: Origin) {
        let ns = pod.metadata.namespace.clone().unwrap_or_else(|| "default".into());
        let name = pod.metadata.name.clone().unwrap_or_default();
        pod.metadata.namespace = Some(ns.clone());
        pod.metadata
            .uid
            .get_or_insert_with(|| format!("5f1c0000-0000-4000-8000-{uid:012x}"));
        pod.metadata.creation_timestamp = Some(status::now());
        pod.metadata.resource_version = Some(uid.to_string());
        let sim = SimPod {
            pod,
            uid,
            origin,
            files: Default::default(),
            started_with: None,
            start_block: None,
            running: false,
            ready: false,
            terminating: false,
            stuck: false,
        };
        self.pods.insert(key(&ns, &name), sim);
    }

    /// The operator's reconcile of a LinstorController: replicas and the rendered ConfigMap.
    pub(crate) fn operator_reconcile(&mut self, cr_key: &Key) {
        if self.operator_stalled.contains(cr_key) {
            return;
        }
        let Some(cr) = self.crs.get(cr_key) else { return };
        let (ns, name) = cr_key.clone();
        let url = cr
            .spec
            .db_connection_url
            .clone()
            .unwrap_or_else(|| super::install::CR_ETCD_URL.into());
        let replicas = cr.spec.replicas.unwrap_or(1);
        let cm_key = key(&ns, &format!("{name}-controller-config"));
        let wanted = render_operator_toml(&url);
        let mut restart = false;
        if let Some(cm) = self.config_maps.get_mut(&cm_key) {
            let data = cm.data.get_or_insert_with(Default::default);
            if data.get("linstor.toml") != Some(&wanted) {
                data.insert("linstor.toml".into(), wanted);
                // the operator restarts the controller rollout when its config changes
                restart = true;
            }
        }
        let dep = format!("{name}-controller");
        self.set_deployment_replicas(&key(&ns, &dep), replicas);
        if restart {
            let pods: Vec<Key> = self
                .pods
                .iter()
                .filter(|((pns, _), p)| {
                    *pns == ns && p.origin == Origin::Deployment(dep.clone()) && !p.terminating
                })
                .map(|(k, _)| k.clone())
                .collect();
            for p in pods {
                self.terminate_pod(&p);
            }
        }
    }

    /// Sets `spec.replicas` of a Deployment (bumping its generation when it changes).
    pub(crate) fn set_deployment_replicas(&mut self, d: &Key, replicas: i32) {
        if let Some(dep) = self.deployments.get_mut(d) {
            let spec = dep.spec.get_or_insert_with(Default::default);
            if spec.replicas != Some(replicas) {
                spec.replicas = Some(replicas);
                dep.metadata.generation = Some(dep.metadata.generation.unwrap_or(1) + 1);
            }
        }
    }

    /// Starts the graceful termination of a pod.
    pub(crate) fn terminate_pod(&mut self, k: &Key) {
        let stop = self.timing.controller_stop;
        let stuck_deployment = self.pods.get(k).and_then(|p| match &p.origin {
            Origin::Deployment(d) => self.stop_hung.contains(&key(&k.0, d)).then(|| key(&k.0, d)),
            _ => None,
        });
        let Some(p) = self.pods.get_mut(k) else { return };
        if p.terminating {
            return;
        }
        status::mark_terminating(p);
        let uid = p.uid;
        if let Some(d) = stuck_deployment {
            p.stuck = true;
            self.stop_hung.remove(&d);
        } else {
            self.schedule_in(stop, Event::PodRemoved { pod: k.clone(), uid });
        }
    }

    /// Lets stuck pods finish terminating now.
    pub(crate) fn unstick(&mut self, ns: &str) {
        let stuck: Vec<(Key, u64)> = self
            .pods
            .iter_mut()
            .filter(|((pns, _), p)| pns == ns && p.stuck)
            .map(|(k, p)| {
                p.stuck = false;
                (k.clone(), p.uid)
            })
            .collect();
        for (k, uid) in stuck {
            self.schedule_in(std::time::Duration::ZERO, Event::PodRemoved { pod: k, uid });
        }
    }

    /// The kubelet started a pod's containers (or finds it cannot yet).
    fn pod_started(&mut self, k: &Key, uid: u64) {
        let Some(p) = self.pods.get(k) else { return };
        if p.uid != uid || p.terminating || p.start_block.is_some() || p.running {
            return;
        }
        if let Err((reason, message)) = status::missing_references(self, &k.0, p) {
            let retry = self.timing.pod_start.max(std::time::Duration::from_millis(1));
            if let Some(p) = self.pods.get_mut(k) {
                status::mark_pending(p, reason, &message);
            }
            // the kubelet retries until the ConfigMap or Secret appears
            self.schedule_in(retry, Event::PodStarted { pod: k.clone(), uid });
            return;
        }
        let origin = p.origin.clone();
        match origin {
            Origin::Deployment(dep) if self.is_controller_deployment(&k.0, &dep) => {
                self.controller_started(k, &dep)
            }
            _ => {
                if let Some(p) = self.pods.get_mut(k) {
                    mark_running(p);
                }
            }
        }
    }

    pub(crate) fn is_controller_deployment(&self, ns: &str, dep: &str) -> bool {
        self.deployments
            .get(&key(ns, dep))
            .and_then(|d| d.spec.as_ref()?.template.spec.as_ref())
            .is_some_and(|s| {
                s.containers
                    .iter()
                    .any(|c| c.name == crate::cluster::controller::CONTROLLER_CONTAINER)
            })
    }

    /// LINSTOR reads `/etc/linstor/linstor.toml` once, at start, and connects to its database.
    fn controller_started(&mut self, k: &Key, dep: &str) {
        let Some(p) = self.pods.get(k) else { return };
        let text = super::fs::read(
            self,
            &k.0,
            p,
            crate::cluster::controller::CONTROLLER_CONTAINER,
            "/etc/linstor/linstor.toml",
        )
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned());
        let sa = p
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_else(|| "default".into());
        // the controller is the LINSTOR release of its image
        let release = p
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.containers.first())
            .and_then(|c| c.image.as_deref())
            .map(super::fs::linstor_release)
            .unwrap_or(linstor_fake::Release::LATEST);
        let (url, crash) = match text.as_deref().map(LinstorConfig::parse) {
            None => (crate::linstor::toml::DEFAULT_H2_URL.to_string(), None),
            Some(Err(e)) => (format!("invalid linstor.toml: {e}"), Some(e)),
            Some(Ok(cfg)) => {
                let url = cfg.effective_url().to_string();
                let crash = match cfg.backend() {
                    Backend::Etcd if self.etcd_for(&url, &k.0).is_none_or(|e| !self.etcd_running(e)) => {
                        Some(format!("cannot connect to etcd at {url}"))
                    }
                    Backend::K8s => self
                        .access
                        .service_account_may(
                            &k.0,
                            &sa,
                            crate::linstor::schema::K8S_GROUP,
                            "*",
                            &["get", "list", "watch", "create", "update", "patch", "delete"],
                        )
                        .err(),
                    Backend::Sql => Some(format!("cannot connect to {url}: Connection refused")),
                    Backend::Unknown => Some(format!("unknown database connection URL {url:?}")),
                    _ => None,
                };
                (url, crash)
            }
        };
        // an injected crash loop of a start on the k8s backend (a scenario's controller that
        // does not start)
        let crash = match crash {
            None if Backend::classify(&url) == Backend::K8s
                && self
                    .take_fault(
                        StepName::StartController,
                        &[Fault::CrashLoop],
                        Site::Controller(&k.0, dep),
                    )
                    .is_some() =>
            {
                Some("Cannot connect to the k8s database: the controller exits (simulated fault)".to_string())
            }
            other => other,
        };
        self.effects.controller_starts.push(ControllerStart {
            namespace: k.0.clone(),
            deployment: dep.into(),
            connection_url: url.clone(),
        });
        let problem = crash
            .clone()
            .or_else(|| rest::load_problem(self, &k.0, &url, release));
        if let Some(problem) = &problem {
            self.error_reports
                .push((key(&k.0, dep), rest::error_report(&k.1, problem)));
        }
        let hung = self.start_hung.contains(&key(&k.0, dep));
        let Some(p) = self.pods.get_mut(k) else { return };
        p.started_with = Some(url);
        match crash {
            Some(_) => status::mark_crash_loop(p),
            None => {
                mark_running(p);
                if hung {
                    status::set_ready(p, false);
                    p.start_block = Some(super::state::StartBlock::Hang);
                }
            }
        }
    }

    /// The etcd cluster a `connection_url` names (first endpoint's host: `<sts>[.<ns>...]`).
    pub(crate) fn etcd_for(&self, url: &str, pod_ns: &str) -> Option<&super::state::EtcdCluster> {
        let first = url.strip_prefix("etcd://")?.split(',').next()?;
        let host = first.split(':').next()?;
        let mut labels = host.split('.');
        let name = labels.next()?;
        let ns = labels.next().unwrap_or(pod_ns);
        self.etcd
            .values()
            .find(|e| e.stateful_set == name && e.namespace == ns)
    }

    pub(crate) fn etcd_running(&self, e: &super::state::EtcdCluster) -> bool {
        self.pods.iter().any(|((ns, _), p)| {
            *ns == e.namespace
                && p.origin == Origin::StatefulSet(e.stateful_set.clone())
                && p.ready
                && !p.terminating
        })
    }
}
