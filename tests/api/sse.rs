//! The event stream read as a client reads it: history then live, ids, a disconnect and a
//! resume with `Last-Event-ID`, the `end` event and the close; many idle subscribers.

use std::collections::BTreeSet;

use serde_json::json;

use crate::common::{CONTROLLER, PLAIN_CONTROLLER, SseEvent, SseReader, TestApp, spawn_app};

async fn connect(app: &TestApp, id: &str, last_event_id: Option<i64>) -> SseReader {
    let mut req = app.get(&format!("/api/v1/runs/{id}/events"));
    if let Some(last) = last_event_id {
        req = req.header("Last-Event-ID", last.to_string());
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    assert_eq!(res.headers()["x-accel-buffering"], "no");
    SseReader::new(res)
}

/// Reads until the stream closes; returns the events.
async fn read_to_close(reader: &mut SseReader) -> Vec<SseEvent> {
    let mut events = Vec::new();
    while let Some(ev) = reader.next().await {
        events.push(ev);
    }
    events
}

#[tokio::test]
async fn events_resume_after_a_disconnect_without_loss_or_duplicates() {
    let app = spawn_app().await;
    let run = app
        .start("migrate", CONTROLLER, json!({"approve_before_downtime": true}))
        .await;
    let id = run["id"].as_str().unwrap();

    // first connection: read until the run waits for approval, then hang up
    let mut first = connect(&app, id, None).await;
    let mut seen = Vec::new();
    loop {
        let ev = first
            .next()
            .await
            .expect("the stream stays open while the run is active");
        let waiting = ev.event == "run" && ev.json()["level"] == "waiting";
        seen.push(ev);
        if waiting {
            break;
        }
    }
    drop(first);
    let last = seen.last().unwrap().seq();

    // the run goes on while nobody listens
    let res = app
        .post(&format!("/api/v1/runs/{id}/approve"), &json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let mut second = connect(&app, id, Some(last)).await;
    let rest = read_to_close(&mut second).await;
    let (end, rest) = rest.split_last().expect("events after the resume");
    assert_eq!(end.event, "end");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&end.data).unwrap()["state"],
        "succeeded"
    );

    let all: Vec<&SseEvent> = seen.iter().chain(rest.iter()).collect();
    let seqs: Vec<i64> = all.iter().map(|e| e.seq()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "ids strictly increase, no duplicates: {seqs:?}"
    );
    for ev in &all {
        assert!(["log", "step", "run"].contains(&ev.event.as_str()), "{ev:?}");
        let data = ev.json();
        assert_eq!(data["seq"].as_i64().unwrap(), ev.seq());
        assert_eq!(data["kind"], ev.event.as_str());
        assert_eq!(data["run_id"], id);
    }
    // exactly the stored log lines, each once
    let logs = app.get_json(&format!("/api/v1/runs/{id}/logs?limit=5000")).await;
    let stored: Vec<i64> = logs["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["seq"].as_i64().unwrap())
        .collect();
    let streamed: Vec<i64> = all.iter().filter(|e| e.event == "log").map(|e| e.seq()).collect();
    assert_eq!(streamed, stored);
    // every step's final state arrived
    let steps: BTreeSet<String> = all
        .iter()
        .filter(|e| e.event == "step" && e.json()["level"] == "succeeded")
        .map(|e| e.json()["step"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(steps.len(), 13, "{steps:?}");

    // a finished run: the whole history, then end, then close
    let mut again = connect(&app, id, None).await;
    let replay = read_to_close(&mut again).await;
    assert_eq!(replay.last().unwrap().event, "end");
    assert_eq!(replay.len(), all.len() + 1);
    // resuming after the last event of a finished run: only the end
    let mut tail = connect(&app, id, Some(*seqs.last().unwrap())).await;
    let only_end = read_to_close(&mut tail).await;
    assert_eq!(
        only_end.iter().map(|e| e.event.as_str()).collect::<Vec<_>>(),
        ["end"]
    );

    let res = app
        .get(&format!("/api/v1/runs/{id}/events"))
        .header("Last-Event-ID", "x")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    app.stop().await;
}

#[tokio::test]
async fn idle_subscribers_do_not_hold_up_the_run() {
    let app = spawn_app().await;
    let run = app
        .start(
            "migrate",
            PLAIN_CONTROLLER,
            json!({"approve_before_downtime": true}),
        )
        .await;
    let id = run["id"].as_str().unwrap();
    app.wait_state(id, "waiting").await;
    // subscribers that never read a byte
    let mut idle = Vec::new();
    for _ in 0..25 {
        idle.push(
            app.get(&format!("/api/v1/runs/{id}/events"))
                .send()
                .await
                .unwrap(),
        );
    }
    let metrics = app.get("/metrics").send().await.unwrap().text().await.unwrap();
    let subscribers: f64 = metrics
        .lines()
        .find(|l| l.starts_with("linstor_migrator_sse_subscribers "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(subscribers >= 25.0, "{subscribers}");
    app.post(&format!("/api/v1/runs/{id}/approve"), &json!({}))
        .send()
        .await
        .unwrap();
    app.wait_state(id, "succeeded").await;
    // and one of them still gets everything, in order, when it finally reads
    let mut reader = SseReader::new(idle.pop().unwrap());
    let events = read_to_close(&mut reader).await;
    assert_eq!(events.last().unwrap().event, "end");
    let seqs: Vec<i64> = events[..events.len() - 1].iter().map(|e| e.seq()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    drop(idle);
    app.stop().await;
}

#[tokio::test]
async fn keep_alive_comments_are_not_events() {
    let app = spawn_app().await;
    let run = app
        .start("migrate", CONTROLLER, json!({"approve_before_downtime": true}))
        .await;
    let id = run["id"].as_str().unwrap();
    app.wait_state(id, "waiting").await;

    // a quiet stream: read until a keep-alive comment arrived (every second in the tests)
    let mut reader = connect(&app, id, None).await;
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + crate::common::PATIENCE;
    while reader.comments == 0 {
        assert!(tokio::time::Instant::now() < deadline, "no keep-alive arrived");
        // `next` is cancel-safe: what it read stays buffered in the reader
        if let Ok(ev) = tokio::time::timeout(std::time::Duration::from_millis(100), reader.next()).await {
            events.push(ev.expect("the stream stays open while the run waits"));
        }
    }
    app.post(&format!("/api/v1/runs/{id}/approve"), &json!({}))
        .send()
        .await
        .unwrap();
    events.extend(read_to_close(&mut reader).await);

    assert_eq!(events.last().unwrap().event, "end");
    for ev in &events {
        assert!(
            ev.id.is_some() && !ev.data.is_empty(),
            "a comment became an event: {ev:?}"
        );
    }
    app.stop().await;
}
