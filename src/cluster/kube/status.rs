//! Pure readings of object status that the waits act on: is a Deployment's rollout complete, and
//! can a pod still start. Kept free of I/O so they are tested on hand-made objects.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

/// Where a Deployment's rollout stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolloutState {
    /// Every desired replica is updated, ready and available, and no other pod remains.
    Complete,
    /// Still going; the text says what is missing (for timeout messages).
    Progressing(String),
    /// The Deployment controller gave up (progress deadline exceeded).
    Failed(String),
}

/// Reads a Deployment's rollout the way `kubectl rollout status` does, but strictly: the counts
/// must equal `spec.replicas` (a controller that must run exactly once cannot have extras).
/// Whether a StatefulSet asks for `replicas` and has that many ready pods of its current
/// generation; `Err` says what it waits for.
pub fn stateful_set_ready(s: &StatefulSet, replicas: i32) -> Result<(), String> {
    let want = s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    if want != replicas {
        return Err(format!(
            "the StatefulSet asks for {want} replicas, not {replicas} yet"
        ));
    }
    let status = s.status.as_ref().ok_or("the StatefulSet has no status yet")?;
    let generation = s.metadata.generation.unwrap_or(0);
    let observed = status.observed_generation.unwrap_or(0);
    if observed < generation {
        return Err(format!(
            "the StatefulSet controller has seen generation {observed} of {generation}"
        ));
    }
    let ready = status.ready_replicas.unwrap_or(0);
    if ready != replicas || status.replicas != replicas {
        return Err(format!(
            "{ready} of {replicas} replicas ready ({} exist)",
            status.replicas
        ));
    }
    Ok(())
}

pub fn deployment_rollout(deployment: &Deployment) -> RolloutState {
    let generation = deployment.metadata.generation.unwrap_or(0);
    let Some(status) = deployment.status.as_ref() else {
        return RolloutState::Progressing("the Deployment has no status yet".into());
    };
    let observed = status.observed_generation.unwrap_or(0);
    if observed < generation {
        return RolloutState::Progressing(format!(
            "the Deployment controller has seen generation {observed} of {generation}"
        ));
    }
    let deadline_exceeded = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded"));
    if let Some(condition) = deadline_exceeded {
        return RolloutState::Failed(format!(
            "the rollout exceeded its progress deadline: {}",
            condition.message.as_deref().unwrap_or("no message")
        ));
    }
    let want = deployment.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let updated = status.updated_replicas.unwrap_or(0);
    let ready = status.ready_replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    let terminating = status.terminating_replicas.unwrap_or(0);
    if updated != want {
        RolloutState::Progressing(format!("{updated} of {want} replicas updated"))
    } else if total != want || terminating > 0 {
        RolloutState::Progressing(format!(
            "{} old replicas pending termination",
            (total - want).max(0) + terminating
        ))
    } else if ready != want || available != want {
        RolloutState::Progressing(format!("{ready} of {want} replicas ready, {available} available"))
    } else {
        RolloutState::Complete
    }
}

/// Whether a pod is up, still starting, or will not start without someone's help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodStartState {
    /// Phase Running and every container ready.
    Running,
    /// Still starting; the text says where it is (for timeout messages).
    Pending(String),
    /// It will not get there by waiting: the reason for the user.
    Failed(String),
}

/// Container waiting reasons that mean a misconfiguration rather than a slow start.
const FATAL_WAITING_REASONS: [&str; 5] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
];

/// Classifies a pod for [`crate::cluster::Cluster::wait_pod_running`].
pub fn pod_start_state(pod: &Pod) -> PodStartState {
    if pod.metadata.deletion_timestamp.is_some() {
        return PodStartState::Failed("the pod is being deleted".into());
    }
    let Some(status) = pod.status.as_ref() else {
        return PodStartState::Pending("no status yet".into());
    };
    let phase = status.phase.as_deref().unwrap_or("Pending");
    let containers = status.container_statuses.as_deref().unwrap_or_default();
    let init_containers = status.init_container_statuses.as_deref().unwrap_or_default();

    if phase == "Failed" || phase == "Succeeded" {
        let detail = status
            .message
            .as_deref()
            .or(status.reason.as_deref())
            .map(|m| format!(": {m}"));
        let exits: Vec<String> = init_containers
            .iter()
            .chain(containers)
            .filter_map(termination)
            .collect();
        let exits = if exits.is_empty() {
            String::new()
        } else {
            format!(" ({})", exits.join("; "))
        };
        return PodStartState::Failed(format!("phase {phase}{}{exits}", detail.unwrap_or_default()));
    }
    for cs in init_containers.iter().chain(containers) {
        let Some(waiting) = cs.state.as_ref().and_then(|s| s.waiting.as_ref()) else {
            continue;
        };
        let reason = waiting.reason.as_deref().unwrap_or_default();
        if FATAL_WAITING_REASONS.contains(&reason) {
            let message = waiting.message.as_deref().unwrap_or("no message");
            return PodStartState::Failed(format!("container {}: {reason}: {message}", cs.name));
        }
    }
    let unschedulable = status.conditions.iter().flatten().find(|c| {
        c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable")
    });
    if let Some(condition) = unschedulable {
        let message = condition
            .message
            .as_deref()
            .unwrap_or("no message from the scheduler");
        return PodStartState::Failed(format!("unschedulable: {message}"));
    }

    let expected = pod.spec.as_ref().map_or(0, |s| s.containers.len());
    let all_ready = containers.len() >= expected.max(1) && containers.iter().all(|c| c.ready);
    if phase == "Running" && all_ready {
        return PodStartState::Running;
    }
    let waiting: Vec<String> = containers
        .iter()
        .filter_map(|c| {
            let reason = c.state.as_ref()?.waiting.as_ref()?.reason.clone()?;
            Some(format!("{}: {reason}", c.name))
        })
        .collect();
    if waiting.is_empty() {
        PodStartState::Pending(format!("phase {phase}"))
    } else {
        PodStartState::Pending(format!("phase {phase}, {}", waiting.join(", ")))
    }
}

/// `name exited 1 (Error)` for a terminated container.
fn termination(cs: &ContainerStatus) -> Option<String> {
    let t = cs.state.as_ref()?.terminated.as_ref()?;
    let reason = t.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default();
    Some(format!("{} exited {}{reason}", cs.name, t.exit_code))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(generation: i64, replicas: i32, status: serde_json::Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "d", "namespace": "ns", "generation": generation},
            "spec": {"replicas": replicas, "selector": {}, "template": {}},
            "status": status,
        }))
        .expect("valid Deployment")
    }

    #[test]
    fn rollout_waits_for_the_controller_to_observe_the_change() {
        let d = deployment(
            3,
            1,
            json!({"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1,
            "readyReplicas": 1, "availableReplicas": 1}),
        );
        assert!(
            matches!(deployment_rollout(&d), RolloutState::Progressing(m) if m.contains("generation 2 of 3"))
        );
    }

    #[test]
    fn rollout_is_complete_when_all_counts_match() {
        let d = deployment(
            3,
            1,
            json!({"observedGeneration": 3, "replicas": 1, "updatedReplicas": 1,
            "readyReplicas": 1, "availableReplicas": 1}),
        );
        assert_eq!(deployment_rollout(&d), RolloutState::Complete);
        let zero = deployment(4, 0, json!({"observedGeneration": 4}));
        assert_eq!(deployment_rollout(&zero), RolloutState::Complete);
    }

    #[test]
    fn rollout_is_not_complete_with_old_or_unready_pods() {
        let old = deployment(
            3,
            1,
            json!({"observedGeneration": 3, "replicas": 2, "updatedReplicas": 1,
            "readyReplicas": 1, "availableReplicas": 1}),
        );
        assert!(
            matches!(deployment_rollout(&old), RolloutState::Progressing(m) if m.contains("1 old replicas"))
        );
        let terminating = deployment(
            3,
            1,
            json!({"observedGeneration": 3, "replicas": 1, "updatedReplicas": 1,
            "readyReplicas": 1, "availableReplicas": 1, "terminatingReplicas": 1}),
        );
        assert!(matches!(
            deployment_rollout(&terminating),
            RolloutState::Progressing(_)
        ));
        let unready = deployment(
            3,
            1,
            json!({"observedGeneration": 3, "replicas": 1, "updatedReplicas": 1,
            "readyReplicas": 0, "availableReplicas": 0}),
        );
        assert!(
            matches!(deployment_rollout(&unready), RolloutState::Progressing(m) if m.contains("0 of 1 replicas ready"))
        );
    }

    #[test]
    fn rollout_fails_after_the_progress_deadline() {
        let d = deployment(
            3,
            1,
            json!({"observedGeneration": 3, "replicas": 1, "updatedReplicas": 1,
            "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                "message": "ReplicaSet \"x\" has timed out progressing."}]}),
        );
        assert!(
            matches!(deployment_rollout(&d), RolloutState::Failed(m) if m.contains("timed out progressing"))
        );
    }

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {"containers": [{"name": "main", "image": "x"}]},
            "status": status,
        }))
        .expect("valid Pod")
    }

    #[test]
    fn running_and_ready_pod_is_running() {
        let p = pod(
            json!({"phase": "Running", "containerStatuses": [{"name": "main", "ready": true,
            "image": "x", "imageID": "", "restartCount": 0, "state": {"running": {}}}]}),
        );
        assert_eq!(pod_start_state(&p), PodStartState::Running);
    }

    #[test]
    fn running_but_unready_pod_is_pending() {
        let p = pod(
            json!({"phase": "Running", "containerStatuses": [{"name": "main", "ready": false,
            "image": "x", "imageID": "", "restartCount": 0, "state": {"running": {}}}]}),
        );
        assert!(matches!(pod_start_state(&p), PodStartState::Pending(_)));
        assert!(
            matches!(pod_start_state(&pod(json!({"phase": "Pending"}))), PodStartState::Pending(m) if m == "phase Pending")
        );
    }

    #[test]
    fn image_pull_errors_fail_early() {
        let p = pod(
            json!({"phase": "Pending", "containerStatuses": [{"name": "main", "ready": false,
            "image": "x", "imageID": "", "restartCount": 0,
            "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"x\""}}}]}),
        );
        assert!(matches!(pod_start_state(&p), PodStartState::Failed(m)
            if m == "container main: ImagePullBackOff: Back-off pulling image \"x\""));
        let creating = pod(
            json!({"phase": "Pending", "containerStatuses": [{"name": "main", "ready": false,
            "image": "x", "imageID": "", "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}]}),
        );
        assert!(
            matches!(pod_start_state(&creating), PodStartState::Pending(m) if m.contains("ContainerCreating"))
        );
    }

    #[test]
    fn unschedulable_pods_fail_with_the_schedulers_message() {
        let p = pod(
            json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
            "reason": "Unschedulable", "message": "0/3 nodes are available: 3 Insufficient memory."}]}),
        );
        assert!(matches!(pod_start_state(&p), PodStartState::Failed(m)
            if m == "unschedulable: 0/3 nodes are available: 3 Insufficient memory."));
    }

    #[test]
    fn finished_pods_fail_with_their_exit_codes() {
        let p = pod(
            json!({"phase": "Failed", "containerStatuses": [{"name": "main", "ready": false,
            "image": "x", "imageID": "", "restartCount": 0,
            "state": {"terminated": {"exitCode": 127, "reason": "Error"}}}]}),
        );
        assert!(
            matches!(pod_start_state(&p), PodStartState::Failed(m) if m == "phase Failed (main exited 127 (Error))")
        );
        assert!(matches!(
            pod_start_state(&pod(json!({"phase": "Succeeded"}))),
            PodStartState::Failed(_)
        ));
    }
}
