//! The places where the server and its OpenAPI document once disagreed (found by schemathesis,
//! tests/contract.sh), each checked from both sides: what the document states and what the
//! server does.

use serde_json::{Value, json};

use crate::common::{CONTROLLER, TestApp, spawn_app};

async fn document(app: &TestApp) -> Value {
    app.client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The schema of parameter `name` of `method path`.
fn param<'a>(doc: &'a Value, path: &str, method: &str, name: &str) -> &'a Value {
    let params = doc["paths"][path][method]["parameters"].as_array().unwrap();
    &params.iter().find(|p| p["name"] == name).unwrap()["schema"]
}

async fn status(app: &TestApp, path: &str) -> u16 {
    app.get(path).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn paging_bounds_are_stated_and_enforced() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let limit = param(&doc, "/api/v1/runs", "get", "limit");
    assert_eq!(
        (limit["minimum"].as_i64(), limit["maximum"].as_i64()),
        (Some(1), Some(1000))
    );
    assert!(doc["paths"]["/api/v1/runs"]["get"]["responses"]["400"].is_object());
    for (query, expected) in [
        ("1", 200),
        ("1000", 200),
        ("0", 400),
        ("1001", 400),
        ("9223372036854775808", 400),
    ] {
        assert_eq!(
            status(&app, &format!("/api/v1/runs?limit={query}")).await,
            expected,
            "limit={query}"
        );
    }

    let run = app.start("preflight", CONTROLLER, json!({})).await;
    let id = run["id"].as_str().unwrap();
    let after = param(&doc, "/api/v1/runs/{id}/logs", "get", "after");
    assert_eq!(after["minimum"], 0);
    assert_eq!(
        status(&app, &format!("/api/v1/runs/{id}/logs?after=0&limit=5000")).await,
        200
    );
    assert_eq!(
        status(&app, &format!("/api/v1/runs/{id}/logs?after=-1")).await,
        400
    );
    assert_eq!(
        status(&app, &format!("/api/v1/runs/{id}/logs?limit=5001")).await,
        400
    );
    app.stop().await;
}

#[tokio::test]
async fn event_stream_bounds_and_event_shape_are_stated() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let events = "/api/v1/runs/{id}/events";
    assert_eq!(param(&doc, events, "get", "Last-Event-ID")["minimum"], 0);
    assert_eq!(param(&doc, events, "get", "after")["minimum"], 0);
    let content = &doc["paths"][events]["get"]["responses"]["200"]["content"]["text/event-stream"];
    assert_eq!(content["itemSchema"]["$ref"], "#/components/schemas/StreamEvent");
    assert!(doc["components"]["schemas"]["StreamEnd"].is_object());

    let run = app.start("preflight", CONTROLLER, json!({})).await;
    let id = run["id"].as_str().unwrap();
    app.wait_state(id, "succeeded").await;
    for (name, value, expected) in [
        ("last-event-id", "-9223372036854775808", 400),
        ("last-event-id", "x", 400),
        ("last-event-id", "0", 200),
    ] {
        let res = app
            .get(&format!("/api/v1/runs/{id}/events"))
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), expected, "{name}: {value}");
    }
    assert_eq!(
        status(
            &app,
            &format!("/api/v1/runs/{id}/events?after=-9223372036854775808")
        )
        .await,
        400
    );
    app.stop().await;
}

#[tokio::test]
async fn a_new_run_states_its_bounds_and_accepts_what_they_allow() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let post = &doc["paths"]["/api/v1/runs"]["post"];
    for code in ["400", "409", "413", "415", "422"] {
        assert!(
            post["responses"][code].is_object(),
            "POST /api/v1/runs documents {code}"
        );
    }
    let options = &doc["components"]["schemas"]["RunOptions"]["properties"];
    assert_eq!(options["controller_timeout_seconds"]["maximum"], 3600);
    assert!(doc["components"]["schemas"]["CreateRun"]["properties"]["controller"]["pattern"].is_string());

    // no body at all: 415, as documented
    let res = app
        .client
        .post(app.url("/api/v1/runs"))
        .bearer_auth(crate::common::TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);
    // 60.0 is an integer to JSON Schema, and so to the server
    let body = json!({"kind": "preflight", "controller": CONTROLLER, "options": {"controller_timeout_seconds": 60.0}});
    let res = app.post("/api/v1/runs", &body).send().await.unwrap();
    assert_eq!(res.status(), 201);
    let run: Value = res.json().await.unwrap();
    assert_eq!(run["options"]["controller_timeout_seconds"], 60);
    // an Idempotency-Key outside the documented pattern is refused before anything happens
    let res = app
        .post("/api/v1/runs", &body)
        .header("Idempotency-Key", "two words")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    app.stop().await;
}

#[tokio::test]
async fn backups_are_documented_as_the_json_they_are() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let download = &doc["paths"]["/api/v1/backups/{id}"]["get"]["responses"];
    assert!(download["200"]["content"]["application/json"].is_object());
    assert!(download["206"]["content"]["application/json"].is_object());
    assert!(download["200"]["content"]["application/octet-stream"].is_null());

    let run = app.start("backup", CONTROLLER, json!({})).await;
    let run = app.wait_state(run["id"].as_str().unwrap(), "succeeded").await;
    let res = app
        .get(run["backups"][0]["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    app.stop().await;
}
