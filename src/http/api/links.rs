//! OpenAPI links: which operations take the id that a response carries. A client (or the
//! stateful phase of a fuzzer such as schemathesis) follows them from a new run to everything that
//! can be done with it, from a list to its first item, and from a run to its backup. The targets
//! are found in the document itself, so a new route under `/api/v1/runs/{id}` is linked without
//! a change here; the upgrade plan's routes are not linked: only a run of kind `upgrade-plan` has
//! a plan, and a link cannot say so.

use utoipa::openapi::link::Link;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::{OpenApi, RefOr};

/// The run pages: every operation on the run and below it.
const RUN: &str = "/api/v1/runs/{id}";
/// The plan of an upgrade-plan run (and its downloads).
const UPGRADE_PLAN: &str = "/api/v1/runs/{id}/upgrade-plan";
const BACKUP: &str = "/api/v1/backups/{id}";

/// Adds the links to `doc`.
pub fn add(doc: &mut OpenApi) {
    let runs = targets(doc, RUN);
    let backups = targets(doc, BACKUP);
    link(
        doc,
        "/api/v1/runs",
        Method::Post,
        &["201", "200"],
        "$response.body#/id",
        &runs,
    );
    link(
        doc,
        "/api/v1/runs",
        Method::Get,
        &["200"],
        "$response.body#/0/id",
        &runs,
    );
    link(
        doc,
        RUN,
        Method::Get,
        &["200"],
        "$response.body#/backups/0/id",
        &backups,
    );
    link(
        doc,
        "/api/v1/backups",
        Method::Get,
        &["200"],
        "$response.body#/0/id",
        &backups,
    );
}

#[derive(Clone, Copy)]
enum Method {
    Get,
    Post,
}

fn operations(item: &PathItem) -> impl Iterator<Item = &Operation> {
    [&item.get, &item.post, &item.put, &item.patch, &item.delete]
        .into_iter()
        .flatten()
}

/// The operation ids of `prefix` itself and of every path below it.
fn targets(doc: &OpenApi, prefix: &str) -> Vec<String> {
    let below = format!("{prefix}/");
    doc.paths
        .paths
        .iter()
        .filter(|(path, _)| *path == prefix || path.starts_with(&below))
        .filter(|(path, _)| !path.starts_with(UPGRADE_PLAN))
        .flat_map(|(_, item)| operations(item))
        .filter_map(|op| op.operation_id.clone())
        .collect()
}

/// Links the responses `statuses` of `method path` to each of `targets`, with `id` taken from
/// the response by `id_from` (a runtime expression).
fn link(doc: &mut OpenApi, path: &str, method: Method, statuses: &[&str], id_from: &str, targets: &[String]) {
    let Some(item) = doc.paths.paths.get_mut(path) else {
        return;
    };
    let operation = match method {
        Method::Get => item.get.as_mut(),
        Method::Post => item.post.as_mut(),
    };
    let Some(operation) = operation else {
        return;
    };
    for status in statuses {
        let Some(RefOr::T(response)) = operation.responses.responses.get_mut(*status) else {
            continue;
        };
        for target in targets {
            let link = Link::builder()
                .operation_id(target)
                .parameter("id", id_from)
                .build();
            response.links.insert(target.clone(), RefOr::T(link));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_run_links_to_all_its_operations() {
        let (_, mut doc) = crate::http::api::router().split_for_parts();
        add(&mut doc);
        let doc = serde_json::to_value(&doc).unwrap();
        let links = &doc["paths"]["/api/v1/runs"]["post"]["responses"]["201"]["links"];
        for op in [
            "get_run",
            "cancel_run",
            "resume_run",
            "rollback_run",
            "approve_run",
            "get_logs",
            "run_events",
        ] {
            assert_eq!(links[op]["operationId"], op, "{links}");
            assert_eq!(links[op]["parameters"]["id"], "$response.body#/id");
        }
        assert!(links.get("get_plan").is_none(), "{links}");
        let listed = &doc["paths"]["/api/v1/backups"]["get"]["responses"]["200"]["links"];
        assert_eq!(
            listed["download_backup"]["parameters"]["id"],
            "$response.body#/0/id"
        );
    }
}
