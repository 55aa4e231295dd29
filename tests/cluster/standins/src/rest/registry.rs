//! The Piraeus operator's side of the node list (REFERENCE.md §2): it registers every controller
//! pod as a LINSTOR node of type `CONTROLLER` named after the pod, and deletes the node of a pod
//! that is gone; it reconciles about every 10 s, so after a restart the new pod's node appears and
//! the old one disappears some seconds after the REST API answers. The REST stand-in lists these
//! nodes with the database's, so the cluster suite meets the swap the service must accept.

use std::collections::BTreeMap;

use linstor_migrator::linstor::rest::Node;

/// How long after a controller pod is Ready the operator has registered its node.
pub const REGISTER_AFTER_MS: i64 = 2_000;
/// How long after a controller pod is gone its node is still listed.
pub const REMOVE_AFTER_MS: i64 = 10_000;

/// One controller pod's node.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Registration {
    pod: String,
    uid: String,
    listed_from_ms: i64,
    gone_at_ms: Option<i64>,
}

/// The CONTROLLER nodes, by pod uid.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registry {
    nodes: BTreeMap<String, Registration>,
}

impl Registry {
    /// A controller pod is Ready at `now_ms`: its node is listed from [`REGISTER_AFTER_MS`] on.
    pub fn ready(&mut self, uid: &str, pod: &str, now_ms: i64) {
        self.nodes.entry(uid.into()).or_insert_with(|| Registration {
            pod: pod.into(),
            uid: uid.into(),
            listed_from_ms: now_ms + REGISTER_AFTER_MS,
            gone_at_ms: None,
        });
    }

    /// A controller pod is gone at `now_ms`: its node goes [`REMOVE_AFTER_MS`] later.
    pub fn gone(&mut self, uid: &str, now_ms: i64) {
        if let Some(r) = self.nodes.get_mut(uid) {
            r.gone_at_ms.get_or_insert(now_ms);
        }
    }

    /// The CONTROLLER nodes listed at `now_ms` (forgetting the ones deleted for good).
    pub fn listed(&mut self, now_ms: i64) -> Vec<Node> {
        self.nodes
            .retain(|_, r| r.gone_at_ms.is_none_or(|g| now_ms < g + REMOVE_AFTER_MS));
        self.nodes
            .values()
            .filter(|r| r.listed_from_ms <= now_ms)
            .map(|r| Node {
                name: r.pod.clone(),
                node_type: "CONTROLLER".into(),
                flags: Vec::new(),
                props: BTreeMap::new(),
                net_interfaces: Vec::new(),
                connection_status: "ONLINE".into(),
                uuid: r.uid.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restart_swaps_the_controller_node_some_seconds_late() {
        let mut r = Registry::default();
        r.ready("u1", "ctl-old", 0);
        assert!(r.listed(1_000).is_empty(), "not registered yet");
        assert_eq!(r.listed(2_000)[0].name, "ctl-old");
        assert_eq!(r.listed(2_000)[0].node_type, "CONTROLLER");
        // the restart: the old pod goes, the new one is Ready
        r.gone("u1", 5_000);
        r.ready("u2", "ctl-new", 6_000);
        let names = |r: &mut Registry, t| r.listed(t).into_iter().map(|n| n.name).collect::<Vec<_>>();
        assert_eq!(
            names(&mut r, 7_000),
            ["ctl-old"],
            "the REST API answers before the swap"
        );
        assert_eq!(names(&mut r, 8_000), ["ctl-old", "ctl-new"]);
        assert_eq!(names(&mut r, 15_000), ["ctl-new"]);
    }
}
