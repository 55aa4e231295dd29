//! One Server-Sent Event of a run's stream, built here for the stream and described here for the
//! OpenAPI document (the `itemSchema` of `text/event-stream`), so that the two cannot drift: `id`
//! is the event's sequence number, `event` its kind, `data` JSON; `log`, `step` and `run` events
//! carry an [`EventRecord`], the final `end` event a [`StreamEnd`].

use axum::response::sse::Event;
use serde::Serialize;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use crate::db::{EventKind, EventRecord};
use crate::model::RunState;

/// The kinds of stored events a stream carries, each as an event of that name.
const STORED: [EventKind; 3] = [EventKind::Log, EventKind::Step, EventKind::Run];
/// The name of the last event of a stream, after the run reached a final state.
const END: &str = "end";

/// The data of the `end` event.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct StreamEnd {
    /// The run's final state.
    pub state: RunState,
}

/// A stored event as an SSE event.
pub fn stored(e: &EventRecord) -> Event {
    frame(e.seq, e.kind.as_str(), e)
}

/// The `end` event; `last` is the sequence number of the event before it.
pub fn end(last: i64, state: RunState) -> Event {
    frame(last, END, &StreamEnd { state })
}

fn frame(seq: i64, name: &str, data: &impl Serialize) -> Event {
    let data = serde_json::to_string(data).unwrap_or_else(|_| "{}".into());
    Event::default().id(seq.to_string()).event(name).data(data)
}

/// The schema of one event as a client parses it: `{id, event, data}`.
pub struct StreamEvent;

impl PartialSchema for StreamEvent {
    fn schema() -> RefOr<Schema> {
        let stored: Vec<&str> = STORED.iter().map(|k| k.as_str()).collect();
        OneOfBuilder::new()
            .item(event_schema(&stored, EventRecord::name().as_ref()))
            .item(event_schema(&[END], StreamEnd::name().as_ref()))
            .description(Some(
                "One Server-Sent Event: `id` is the sequence number to resume after (Last-Event-ID), \
                 `data` a JSON document",
            ))
            .into()
    }
}

impl ToSchema for StreamEvent {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((EventRecord::name().into(), EventRecord::schema()));
        <EventRecord as ToSchema>::schemas(schemas);
        schemas.push((StreamEnd::name().into(), StreamEnd::schema()));
        <StreamEnd as ToSchema>::schemas(schemas);
    }
}

/// Events named one of `names`, whose `data` is JSON of the component schema `data`.
fn event_schema(names: &[&str], data: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .property(
            "id",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[0-9]+$")),
        )
        .required("id")
        .property(
            "event",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(names.iter().copied())),
        )
        .required("event")
        .property(
            "data",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .content_media_type("application/json")
                .content_schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(data)))),
        )
        .required("data")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_events_are_named_after_their_kind() {
        let schema = serde_json::to_value(StreamEvent::schema()).unwrap();
        let variants = schema["oneOf"].as_array().unwrap();
        assert_eq!(
            variants[0]["properties"]["event"]["enum"],
            serde_json::json!(["log", "step", "run"])
        );
        assert_eq!(
            variants[0]["properties"]["data"]["contentSchema"]["$ref"],
            "#/components/schemas/EventRecord"
        );
        assert_eq!(
            variants[1]["properties"]["event"]["enum"],
            serde_json::json!(["end"])
        );
    }
}
