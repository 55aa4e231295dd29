//! Pod status as the kubelet and scheduler write it: Pending with a waiting reason,
//! Unschedulable, Running and Ready, CrashLoopBackOff, Terminating.

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateWaiting, ContainerStatus, PodCondition, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::state::{SimPod, State, key};

pub(crate) fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

fn condition(type_: &str, ok: bool, reason: Option<&str>, message: Option<&str>) -> PodCondition {
    PodCondition {
        type_: type_.into(),
        status: if ok { "True" } else { "False" }.into(),
        reason: reason.map(String::from),
        message: message.map(String::from),
        last_transition_time: Some(now()),
        ..Default::default()
    }
}

fn container_statuses(p: &SimPod, state: ContainerState, ready: bool, restarts: i32) -> Vec<ContainerStatus> {
    let containers = p
        .pod
        .spec
        .as_ref()
        .map(|s| s.containers.clone())
        .unwrap_or_default();
    containers
        .iter()
        .map(|c| ContainerStatus {
            name: c.name.clone(),
            image: c.image.clone().unwrap_or_default(),
            image_id: String::new(),
            ready,
            restart_count: restarts,
            started: Some(state.running.is_some()),
            state: Some(state.clone()),
            ..Default::default()
        })
        .collect()
}

fn pod_ip(p: &SimPod) -> String {
    format!("10.244.{}.{}", (p.uid / 250) % 250, p.uid % 250 + 2)
}

/// Scheduled, containers waiting (`ContainerCreating`, `ErrImagePull`, ...).
pub(crate) fn mark_pending(p: &mut SimPod, reason: &str, message: &str) {
    let waiting = ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.into()),
            message: (!message.is_empty()).then(|| message.to_string()),
        }),
        ..Default::default()
    };
    p.running = false;
    p.ready = false;
    p.pod.status = Some(PodStatus {
        phase: Some("Pending".into()),
        conditions: Some(vec![
            condition("PodScheduled", true, None, None),
            condition("Ready", false, Some("ContainersNotReady"), None),
        ]),
        container_statuses: Some(container_statuses(p, waiting, false, 0)),
        host_ip: Some("192.168.122.11".into()),
        ..Default::default()
    });
}

/// Not scheduled: no node fits.
pub(crate) fn mark_unschedulable(p: &mut SimPod) {
    p.running = false;
    p.ready = false;
    let message = "0/4 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, \
                   3 Insufficient memory. preemption: 0/4 nodes are available: 1 Preemption is not helpful for scheduling, \
                   3 No preemption victims found for incoming pod.";
    p.pod.status = Some(PodStatus {
        phase: Some("Pending".into()),
        conditions: Some(vec![condition(
            "PodScheduled",
            false,
            Some("Unschedulable"),
            Some(message),
        )]),
        ..Default::default()
    });
}

/// Running, all containers ready.
pub(crate) fn mark_running(p: &mut SimPod) {
    let running = ContainerState {
        running: Some(ContainerStateRunning {
            started_at: Some(now()),
        }),
        ..Default::default()
    };
    p.running = true;
    p.ready = true;
    let ip = pod_ip(p);
    p.pod.status = Some(PodStatus {
        phase: Some("Running".into()),
        conditions: Some(vec![
            condition("PodScheduled", true, None, None),
            condition("Initialized", true, None, None),
            condition("ContainersReady", true, None, None),
            condition("Ready", true, None, None),
        ]),
        container_statuses: Some(container_statuses(p, running, true, 0)),
        pod_ip: Some(ip),
        host_ip: Some("192.168.122.11".into()),
        start_time: Some(now()),
        ..Default::default()
    });
}

/// Running but not Ready (readiness probe failing).
pub(crate) fn set_ready(p: &mut SimPod, ready: bool) {
    p.ready = ready;
    if let Some(st) = p.pod.status.as_mut() {
        for c in st.conditions.iter_mut().flatten() {
            if c.type_ == "Ready" || c.type_ == "ContainersReady" {
                c.status = if ready { "True" } else { "False" }.into();
            }
        }
        for c in st.container_statuses.iter_mut().flatten() {
            c.ready = ready;
        }
    }
}

/// The container exits at start and is restarted with back-off.
pub(crate) fn mark_crash_loop(p: &mut SimPod) {
    let waiting = ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some("CrashLoopBackOff".into()),
            message: Some("back-off 10s restarting failed container".into()),
        }),
        ..Default::default()
    };
    p.running = true;
    p.ready = false;
    let statuses = container_statuses(p, waiting, false, 1);
    let st = p.pod.status.get_or_insert_with(Default::default);
    st.phase = Some("Running".into());
    st.container_statuses = Some(statuses);
    st.conditions = Some(vec![
        condition("PodScheduled", true, None, None),
        condition("Ready", false, Some("ContainersNotReady"), None),
    ]);
}

pub(crate) fn mark_terminating(p: &mut SimPod) {
    p.terminating = true;
    p.pod.metadata.deletion_timestamp = Some(now());
    p.pod.metadata.deletion_grace_period_seconds = Some(30);
}

/// A ConfigMap volume or Secret env the pod needs but the cluster lacks: `(reason, message)`.
pub(crate) fn missing_references(st: &State, ns: &str, p: &SimPod) -> Result<(), (&'static str, String)> {
    let Some(spec) = p.pod.spec.as_ref() else {
        return Ok(());
    };
    for v in spec.volumes.iter().flatten() {
        if let Some(cm) = &v.config_map
            && !cm.optional.unwrap_or(false)
            && !st.config_maps.contains_key(&key(ns, &cm.name))
        {
            return Err((
                "ContainerCreating",
                format!(
                    "MountVolume.SetUp failed for volume {:?} : configmap {:?} not found",
                    v.name, cm.name
                ),
            ));
        }
        if let Some(sec) = &v.secret {
            let name = sec.secret_name.clone().unwrap_or_default();
            if !sec.optional.unwrap_or(false) && !st.secrets.contains_key(&key(ns, &name)) {
                return Err((
                    "ContainerCreating",
                    format!(
                        "MountVolume.SetUp failed for volume {:?} : secret {name:?} not found",
                        v.name
                    ),
                ));
            }
        }
    }
    for c in &spec.containers {
        for e in c.env.iter().flatten() {
            let Some(r) = e.value_from.as_ref().and_then(|v| v.secret_key_ref.as_ref()) else {
                continue;
            };
            let present = st
                .secrets
                .get(&key(ns, &r.name))
                .is_some_and(|s| s.data.as_ref().is_some_and(|d| d.contains_key(&r.key)));
            if !present && !r.optional.unwrap_or(false) {
                return Err((
                    "CreateContainerConfigError",
                    format!("secret {:?} not found", r.name),
                ));
            }
        }
    }
    Ok(())
}
