//! The Java stack traces the real tool dies with, one per recorded failure and release
//! (`traces/<version>/*.txt`: the stderr of `tests/fixtures/linstor-<version>/tool/*.txt` with the
//! run's own values as placeholders): the model picks the failure and fills in the values; the
//! frames are LINSTOR's. A failure one release has no recording of takes the other release's
//! trace.

use super::cli::Command;
use crate::Release;
use crate::k8s::{ApiError, NOT_SERVED};
use crate::release::Fabric8;

/// A failure the tool reports with a stack trace (exit 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// etcd does not answer (after about 60 s).
    EtcdUnreachable,
    /// No `linstor.toml`: the H2 default has no LINSTOR schema.
    H2NoSchema,
    /// The export file to import does not exist (absolute path).
    FileNotFound(String),
    /// The export file ends early: absolute path and the column where the input ended.
    JsonEof { file: String, column: usize },
    /// The export is of a newer LINSTOR.
    NewerExport { version: String, export_version: String },
    /// No kubeconfig and not in a pod: the client's fallback `https://kubernetes.default.svc`
    /// does not resolve (recorded: 1.25.1's tool/18).
    NoApiServer,
    /// The API server refused applying a CRD (fresh cluster); the client's kubeconfig user.
    CrdApply(Box<Api>),
    /// The API server refused a table operation (truncate, create, list).
    Table(Box<Api>),
}

/// A refused call and what the client knows about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Api {
    /// The API server as the client names it.
    pub server: String,
    /// The kubeconfig user entry's name.
    pub config_user: String,
    pub error: ApiError,
}

/// `(release, file name, template)` of every recorded trace.
const TEMPLATES: [(Release, &str, &str); 13] = [
    (
        Release::V1_25_1,
        "etcd-unreachable",
        include_str!("traces/1.25.1/etcd-unreachable.txt"),
    ),
    (
        Release::V1_25_1,
        "h2-no-schema",
        include_str!("traces/1.25.1/h2-no-schema.txt"),
    ),
    (
        Release::V1_25_1,
        "k8s-crd-apply",
        include_str!("traces/1.25.1/k8s-crd-apply.txt"),
    ),
    (
        Release::V1_25_1,
        "k8s-truncate",
        include_str!("traces/1.25.1/k8s-truncate.txt"),
    ),
    (
        Release::V1_25_1,
        "newer-export",
        include_str!("traces/1.25.1/newer-export.txt"),
    ),
    (
        Release::V1_25_1,
        "no-api-server",
        include_str!("traces/1.25.1/no-api-server.txt"),
    ),
    (
        Release::V1_33_3,
        "etcd-unreachable",
        include_str!("traces/1.33.3/etcd-unreachable.txt"),
    ),
    (
        Release::V1_33_3,
        "file-not-found",
        include_str!("traces/1.33.3/file-not-found.txt"),
    ),
    (
        Release::V1_33_3,
        "h2-no-schema",
        include_str!("traces/1.33.3/h2-no-schema.txt"),
    ),
    (
        Release::V1_33_3,
        "json-eof",
        include_str!("traces/1.33.3/json-eof.txt"),
    ),
    (
        Release::V1_33_3,
        "k8s-crd-apply",
        include_str!("traces/1.33.3/k8s-crd-apply.txt"),
    ),
    (
        Release::V1_33_3,
        "k8s-truncate",
        include_str!("traces/1.33.3/k8s-truncate.txt"),
    ),
    (
        Release::V1_33_3,
        "newer-export",
        include_str!("traces/1.33.3/newer-export.txt"),
    ),
];

fn file(f: &Failure) -> &'static str {
    match f {
        Failure::EtcdUnreachable => "etcd-unreachable",
        Failure::H2NoSchema => "h2-no-schema",
        Failure::FileNotFound(_) => "file-not-found",
        Failure::JsonEof { .. } => "json-eof",
        Failure::NewerExport { .. } => "newer-export",
        Failure::NoApiServer => "no-api-server",
        Failure::CrdApply(..) => "k8s-crd-apply",
        Failure::Table(..) => "k8s-truncate",
    }
}

/// The release's own trace of `f`, else the nearest other release's.
fn template(release: Release, f: &Failure) -> &'static str {
    let name = file(f);
    let of = |r: Release| {
        TEMPLATES
            .iter()
            .find(|(tr, n, _)| *tr == r && *n == name)
            .map(|(_, _, t)| *t)
    };
    of(release)
        .or_else(|| Release::ALL.into_iter().rev().find_map(of))
        .unwrap_or_default()
}

/// The API server's reason phrase of a status code.
fn reason(code: u16) -> &'static str {
    match code {
        403 => "Forbidden",
        404 => "NotFound",
        409 => "AlreadyExists",
        _ => "InternalError",
    }
}

/// fabric8's `KubernetesClientException` message for a refused call, in the release's words.
fn fabric8(release: Release, api: &Api) -> String {
    let e = &api.error;
    let head = format!("Failure executing: {} at: {}{}.", e.method, api.server, e.path);
    if e.message == NOT_SERVED {
        // no Status in the answer: the HTTP reason phrase, and no `Received status`
        return format!("{head} Message: Not Found.");
    }
    if release.facts().fabric8 == Fabric8::V6_7 {
        let message = match e.code {
            403 => format!(
                "Forbidden! User {} doesn't have permission. {}",
                api.config_user, e.message
            ),
            _ => e.message.clone(),
        };
        return format!("{head} Message: {message}.");
    }
    let (group, kind, name) = match e.forbidden.as_deref() {
        Some((_, resource, group)) => {
            let name = e
                .message
                .split_once(" \"")
                .filter(|(subject, _)| !subject.contains(' '))
                .and_then(|(_, rest)| rest.split_once('"'))
                .map(|(n, _)| n.to_string())
                .unwrap_or_else(|| "null".into());
            (group.clone(), resource.clone(), name)
        }
        None => ("null".into(), "null".into(), "null".into()),
    };
    format!(
        "{head} Message: {}. Received status: Status(apiVersion=v1, code={}, \
         details=StatusDetails(causes=[], group={group}, kind={kind}, name={name}, retryAfterSeconds=null, uid=null, \
         additionalProperties={{}}), kind=Status, message={}, metadata=ListMeta(_continue=null, \
         remainingItemCount=null, resourceVersion=null, selfLink=null, additionalProperties={{}}), reason={}, \
         status=Failure, additionalProperties={{}}).",
        e.message,
        e.code,
        e.message,
        reason(e.code)
    )
}

/// The stderr lines of `failure` in `command` of `release`, as the JVM prints them.
pub fn lines(release: Release, command: Command, failure: &Failure) -> Vec<String> {
    let mut text = template(release, failure).replace("{command}", command.class());
    match failure {
        Failure::FileNotFound(file) => text = text.replace("{file}", file),
        Failure::JsonEof { file, column } => {
            text = text
                .replace("{file}", file)
                .replace("{column}", &column.to_string())
        }
        Failure::NewerExport {
            version,
            export_version,
        } => {
            text = text
                .replace("{version}", version)
                .replace("{export_version}", export_version)
        }
        Failure::CrdApply(api) | Failure::Table(api) => {
            text = text.replace("{fabric8}", &fabric8(release, api))
        }
        Failure::EtcdUnreachable | Failure::H2NoSchema | Failure::NoApiServer => {}
    }
    text.lines().map(String::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_has_a_trace_in_every_release() {
        let api = Api {
            server: "https://x".into(),
            config_user: "admin".into(),
            error: ApiError::not_served("DELETE", "/apis/g/v/p".into()),
        };
        for r in Release::ALL {
            for f in [
                Failure::EtcdUnreachable,
                Failure::H2NoSchema,
                Failure::FileNotFound("/f".into()),
                Failure::JsonEof {
                    file: "/f".into(),
                    column: 3,
                },
                Failure::NewerExport {
                    version: "1".into(),
                    export_version: "2".into(),
                },
                Failure::NoApiServer,
                Failure::CrdApply(Box::new(api.clone())),
                Failure::Table(Box::new(api.clone())),
            ] {
                let l = lines(r, Command::Import, &f);
                assert!(l[0].starts_with("Exception in thread \"main\""), "{r} {f:?}");
                for placeholder in ["{command}", "{fabric8}", "{file}", "{column}", "{version}"] {
                    assert!(!l.iter().any(|l| l.contains(placeholder)), "{r} {f:?}: {l:?}");
                }
            }
        }
        let l = lines(Release::V1_25_1, Command::Import, &Failure::Table(Box::new(api)));
        assert!(
            l.iter().any(|l| l.ends_with("/apis/g/v/p. Message: Not Found.")),
            "{l:?}"
        );
    }
}
