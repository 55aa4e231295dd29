//! The Java stack traces the real tool dies with, one per recorded failure (traces/*.txt, the
//! stderr of tests/fixtures/linstor-1.33.3/tool/*.txt with the run's own values as placeholders):
//! the model picks the failure and fills in the values; the frames are LINSTOR's.

use super::cli::Command;
use crate::k8s::ApiError;

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
    /// The API server refused applying a CRD (fresh cluster).
    CrdApply(String, ApiError),
    /// The API server refused a table operation (truncate, create).
    Table(String, ApiError),
}

fn template(f: &Failure) -> &'static str {
    match f {
        Failure::EtcdUnreachable => include_str!("traces/etcd-unreachable.txt"),
        Failure::H2NoSchema => include_str!("traces/h2-no-schema.txt"),
        Failure::FileNotFound(_) => include_str!("traces/file-not-found.txt"),
        Failure::JsonEof { .. } => include_str!("traces/json-eof.txt"),
        Failure::NewerExport { .. } => include_str!("traces/newer-export.txt"),
        Failure::CrdApply(..) => include_str!("traces/k8s-crd-apply.txt"),
        Failure::Table(..) => include_str!("traces/k8s-truncate.txt"),
    }
}

/// fabric8's `KubernetesClientException` message for a refused call.
fn fabric8(server: &str, e: &ApiError) -> String {
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
    let reason = match e.code {
        403 => "Forbidden",
        404 => "NotFound",
        409 => "AlreadyExists",
        _ => "InternalError",
    };
    format!(
        "Failure executing: {} at: {server}{}. Message: {}. Received status: Status(apiVersion=v1, code={}, \
         details=StatusDetails(causes=[], group={group}, kind={kind}, name={name}, retryAfterSeconds=null, uid=null, \
         additionalProperties={{}}), kind=Status, message={}, metadata=ListMeta(_continue=null, \
         remainingItemCount=null, resourceVersion=null, selfLink=null, additionalProperties={{}}), reason={reason}, \
         status=Failure, additionalProperties={{}}).",
        e.method, e.path, e.message, e.code, e.message
    )
}

/// The stderr lines of `failure` in `command`, as the JVM prints them.
pub fn lines(command: Command, failure: &Failure) -> Vec<String> {
    let mut text = template(failure).replace("{command}", command.class());
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
        Failure::CrdApply(server, e) | Failure::Table(server, e) => {
            text = text.replace("{fabric8}", &fabric8(server, e))
        }
        Failure::EtcdUnreachable | Failure::H2NoSchema => {}
    }

    text.lines().map(String::from).collect()
}
