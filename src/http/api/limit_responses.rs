//! Answers that come from the server's limits rather than from a handler, added to the OpenAPI
//! document where they can happen: 429 (too many failed tokens, `http::auth::limiter`) on every
//! operation that can answer 401, and 408 (the body deadline) on every operation with a body.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, Response, ResponseBuilder};

fn error_response(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .build(),
    )
}

fn too_many() -> Response {
    let seconds = ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1));
    error_response("Too many failed authentication attempts from this client (or from all)")
        .header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(Some(seconds))
                .description(Some("Seconds until a token is looked at again"))
                .build(),
        )
        .build()
}

fn operations(doc: &mut OpenApi) -> impl Iterator<Item = &mut Operation> {
    doc.paths.paths.values_mut().flat_map(|item| {
        [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
    })
}

/// Adds the answers to `doc`.
pub fn add(doc: &mut OpenApi) {
    for op in operations(doc) {
        let responses = &mut op.responses.responses;
        if responses.contains_key("401") {
            responses.insert("429".into(), RefOr::T(too_many()));
        }
        if op.request_body.is_some() {
            let timeout = error_response("The request body did not arrive in time").build();
            op.responses.responses.insert("408".into(), RefOr::T(timeout));
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn protected_operations_document_429_and_bodies_408() {
        let (_, handlers) = super::super::router().split_for_parts();
        let doc = serde_json::to_value(super::super::openapi::document(&handlers)).unwrap();
        let post = &doc["paths"]["/api/v1/runs"]["post"]["responses"];
        assert!(post["429"]["headers"]["Retry-After"].is_object(), "{post}");
        assert!(post["408"].is_object(), "{post}");
        let get = &doc["paths"]["/api/v1/runs/{id}"]["get"]["responses"];
        assert!(get["429"].is_object() && get["408"].is_null(), "{get}");
    }
}
