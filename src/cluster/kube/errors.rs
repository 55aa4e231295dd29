//! One mapping from kube-rs errors to [`ClusterError`], so that every verb reports 404, 403 and
//! 409 the same way and the engine can tell them apart.

use kube::core::Status;
use kube::runtime::watcher;

use crate::cluster::ClusterError;

/// `ns/name`, or `name` for cluster-scoped objects and `ns` for collections.
pub(super) fn object_ref(namespace: &str, name: &str) -> String {
    match (namespace.is_empty(), name.is_empty()) {
        (true, _) => name.to_string(),
        (false, true) => namespace.to_string(),
        (false, false) => format!("{namespace}/{name}"),
    }
}

/// Maps the error of `action` (e.g. "get", "patch") on a `kind` object to a [`ClusterError`]:
/// 404 -> `NotFound`, 403 -> `Forbidden` with the API server's message (it names the user, verb
/// and resource), 409 -> `AlreadyExists`, anything else -> `Api` with the request in words.
pub(super) fn map_kube_error(
    action: &str,
    kind: &'static str,
    namespace: &str,
    name: &str,
    err: kube::Error,
) -> ClusterError {
    match err {
        kube::Error::Api(status) => map_status(action, kind, namespace, name, &status),
        // a failure of the connection or of `calls` (its attempts): its own words, without
        // kube-rs' "ServiceError: " before them
        kube::Error::Service(inner) => ClusterError::Api(format!(
            "failed to {action} {kind} {}: {}",
            object_ref(namespace, name),
            error_chain(inner.as_ref())
        )),
        other => ClusterError::Api(format!(
            "failed to {action} {kind} {}: {}",
            object_ref(namespace, name),
            error_chain(&other)
        )),
    }
}

/// Whether `status` is HTTP `code` or says `reason`. kube's own `is_not_found()` and friends
/// ignore the code when the reason is missing or unparsed, as in the plain-text "404 page not
/// found" of an API group that does not exist (no CRD).
fn is(status: &Status, code: u16, reason: &str) -> bool {
    status.code == code || status.reason == reason
}

fn map_status(
    action: &str,
    kind: &'static str,
    namespace: &str,
    name: &str,
    status: &Status,
) -> ClusterError {
    let what = object_ref(namespace, name);
    if is(status, 404, "NotFound") {
        ClusterError::NotFound {
            kind,
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    } else if is(status, 403, "Forbidden") {
        let message = if status.message.is_empty() {
            format!("cannot {action} {kind} {what}")
        } else {
            status.message.clone()
        };
        ClusterError::Forbidden(message)
    } else if is(status, 409, "AlreadyExists") || status.reason == "Conflict" {
        // Conflicts on update (stale resourceVersion) are 409 too; callers that care look at the
        // kube error themselves before mapping (see `is_conflict`).
        ClusterError::AlreadyExists(format!("{kind} {what}"))
    } else {
        let reason = if status.reason.is_empty() {
            String::new()
        } else {
            format!("{}, ", status.reason)
        };
        ClusterError::Api(format!(
            "failed to {action} {kind} {what}: {} ({reason}HTTP {})",
            status.message, status.code
        ))
    }
}

/// True for HTTP 404.
pub(super) fn is_not_found(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if is(s, 404, "NotFound"))
}

/// True for HTTP 409 (already exists, or a stale `resourceVersion` on update/delete).
pub(super) fn is_conflict(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if is(s, 409, "Conflict") || s.reason == "AlreadyExists")
}

/// A watch error that retrying will not cure (403) becomes a [`ClusterError`]; others are
/// transient (the watcher re-lists with backoff) and yield `None`.
pub(super) fn fatal_watch_error(what: &str, err: &watcher::Error) -> Option<ClusterError> {
    let status = match err {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s)) => s.as_ref(),
        watcher::Error::WatchError(s) => s.as_ref(),
        _ => return None,
    };
    is(status, 403, "Forbidden").then(|| {
        let message = if status.message.is_empty() {
            format!("cannot watch {what}")
        } else {
            status.message.clone()
        };
        ClusterError::Forbidden(message)
    })
}

/// The error and its causes on one line (kube-rs nests hyper and TLS errors).
pub(super) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        let next = c.to_string();
        // Several layers repeat their source's text; print each piece once.
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(code: u16, reason: &str, message: &str) -> kube::Error {
        kube::Error::Api(Status::failure(message, reason).with_code(code).boxed())
    }

    #[test]
    fn not_found_names_the_object() {
        let err = map_kube_error("get", "ConfigMap", "ns", "cm", api_error(404, "NotFound", "gone"));
        assert!(matches!(
            &err,
            ClusterError::NotFound { kind: "ConfigMap", namespace, name } if namespace == "ns" && name == "cm"
        ));
    }

    #[test]
    fn forbidden_keeps_the_api_servers_message() {
        let msg = r#"pods "p" is forbidden: User "u" cannot get resource "pods" in API group "" in the namespace "ns""#;
        let err = map_kube_error("get", "Pod", "ns", "p", api_error(403, "Forbidden", msg));
        assert!(matches!(&err, ClusterError::Forbidden(m) if m == msg), "{err:?}");

        let err = map_kube_error("list", "Secret", "ns", "", api_error(403, "Forbidden", ""));
        assert!(
            matches!(&err, ClusterError::Forbidden(m) if m == "cannot list Secret ns"),
            "{err:?}"
        );
    }

    #[test]
    fn plain_text_404_of_a_missing_api_is_not_found() {
        let err = api_error(404, "Failed to parse error data", "404 page not found");
        assert!(is_not_found(&err));
        let err = map_kube_error("list", "LinstorController", "", "", err);
        assert!(matches!(err, ClusterError::NotFound { .. }), "{err:?}");
    }

    #[test]
    fn conflict_is_already_exists() {
        let err = map_kube_error(
            "create",
            "Pod",
            "ns",
            "p",
            api_error(409, "AlreadyExists", "exists"),
        );
        assert!(
            matches!(&err, ClusterError::AlreadyExists(m) if m == "Pod ns/p"),
            "{err:?}"
        );
        assert!(is_conflict(&api_error(409, "Conflict", "stale")));
        assert!(!is_conflict(&api_error(404, "NotFound", "")));
    }

    #[test]
    fn other_statuses_describe_the_request() {
        let err = map_kube_error(
            "patch",
            "Deployment",
            "ns",
            "d",
            api_error(422, "Invalid", "bad replicas"),
        );
        let ClusterError::Api(m) = err else {
            panic!("expected Api")
        };
        assert_eq!(
            m,
            "failed to patch Deployment ns/d: bad replicas (Invalid, HTTP 422)"
        );
    }

    #[test]
    fn cluster_scoped_refs_have_no_slash() {
        assert_eq!(object_ref("", "version"), "version");
        assert_eq!(object_ref("ns", ""), "ns");
        assert_eq!(object_ref("ns", "x"), "ns/x");
    }

    #[test]
    fn only_forbidden_watch_errors_are_fatal() {
        let forbidden = watcher::Error::InitialListFailed(api_error(403, "Forbidden", "no watch for you"));
        assert!(
            matches!(fatal_watch_error("pods", &forbidden), Some(ClusterError::Forbidden(m)) if m == "no watch for you")
        );
        let gone = watcher::Error::WatchError(Status::failure("too old", "Expired").with_code(410).boxed());
        assert!(fatal_watch_error("pods", &gone).is_none());
    }
}
