//! The `WorkflowTracer` event stream through an in-memory sink (no broker): the event sequence and every field of
//! each event type, steps however they run and end, ordering under concurrency, and `TracerFactory`'s workflow
//! sink.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use observer::trace::{
    MemoryWorkflowSink, TracerFactory, WorkflowEvent, WorkflowEventType, WorkflowSink, WorkflowTracer,
};
use observer::{step, ObserverConfig};
use serde_json::{json, Value};

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().expect("an object").keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["event_type"].as_str().expect("event_type")).collect()
}

fn parse_ts(v: &Value) -> chrono_like::Ts {
    chrono_like::parse(v.as_str().expect("timestamp string"))
}

/// RFC 3339 with microseconds and `Z`, checked by hand (the test crate does not depend on chrono).
mod chrono_like {
    /// Sortable as a string, since the format is fixed-width.
    pub type Ts = String;

    pub fn parse(s: &str) -> Ts {
        let b = s.as_bytes();
        assert_eq!(s.len(), 27, "{s}: YYYY-MM-DDTHH:MM:SS.ffffffZ");
        for (i, c) in [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':'), (19, b'.'), (26, b'Z')] {
            assert_eq!(b[i], c, "{s} at {i}");
        }
        assert!(s.chars().enumerate().all(|(i, c)| [4, 7, 10, 13, 16, 19, 26].contains(&i) || c.is_ascii_digit()));
        s.to_owned()
    }
}

const COMMON: [&str; 5] = ["event_type", "service_name", "timestamp", "workflow_id", "workflow_name"];

fn with_common(extra: &[&'static str]) -> Vec<&'static str> {
    let mut k: Vec<&str> = COMMON.iter().copied().chain(extra.iter().copied()).collect();
    k.sort_unstable();
    k
}

/// A workflow with 2 ok steps and 1 failing step: the whole sequence, each event's exact keys and values.
#[test]
fn a_workflow_with_two_ok_steps_and_one_failing_step_streams_every_field() {
    let sink = MemoryWorkflowSink::new();
    let wf = WorkflowTracer::new("process-order").attr("order_id", "123").stream(sink.clone(), "orders-svc");
    let workflow_id = wf.workflow_id().expect("streaming");
    assert_eq!(uuid_version(&workflow_id), Some(4), "{workflow_id}");
    let mut step = wf.step("validate");
    step.set("items_count", 5);
    std::thread::sleep(Duration::from_millis(3));
    step.finish();
    wf.run_step_sync("payment", |step| {
        step.set("amount", 99.99).set("provider", "stripe");
        std::thread::sleep(Duration::from_millis(2));
        Ok::<_, String>(())
    })
    .unwrap();
    let failed = wf.run_step_sync("fulfillment", |step| {
        step.set("warehouse", "w1");
        Err::<(), _>("out of stock".to_string())
    });
    assert!(failed.is_err());
    wf.set("status", "partial");
    wf.finish();
    let summary = wf.summary();

    let events = sink.json();
    assert_eq!(
        types(&events),
        [
            "workflow_start",
            "step_start",
            "step_end",
            "step_start",
            "step_end",
            "step_start",
            "step_end",
            "workflow_end"
        ]
    );
    let mut last_ts = String::new();
    for e in &events {
        assert_eq!(e["workflow_id"], workflow_id.as_str());
        assert_eq!(e["workflow_name"], "process-order");
        assert_eq!(e["service_name"], "orders-svc");
        let ts = parse_ts(&e["timestamp"]);
        assert!(ts >= last_ts, "timestamps do not go back: {ts} < {last_ts}");
        last_ts = ts;
    }

    let start = &events[0];
    assert_eq!(keys(start), with_common(&["attributes"]));
    assert_eq!(start["attributes"], json!({"order_id": "123"}));

    let expected = [
        ("validate", json!({"items_count": 5}), None),
        ("payment", json!({"amount": 99.99, "provider": "stripe"}), None),
        ("fulfillment", json!({"warehouse": "w1"}), Some("out of stock")),
    ];
    for (i, (name, attributes, error)) in expected.iter().enumerate() {
        let s = &events[1 + 2 * i];
        assert_eq!(keys(s), with_common(&["attributes", "step_index", "step_name"]), "{name}");
        assert_eq!(s["step_name"], *name);
        assert_eq!(s["step_index"], i);
        assert_eq!(s["attributes"], json!({}), "attributes are set while the step runs");

        let e = &events[2 + 2 * i];
        let mut want = vec!["attributes", "duration_ms", "status", "step_index", "step_name"];
        if error.is_some() {
            want.push("error");
        }
        assert_eq!(keys(e), with_common(&want), "{name}");
        assert_eq!(e["status"], if error.is_some() { "error" } else { "ok" });
        assert_eq!(e["step_name"], *name);
        assert_eq!(e["step_index"], i);
        assert_eq!(e["attributes"], *attributes);
        assert_eq!(e["error"].as_str(), *error);
        // The same duration as in the summary, to the bit.
        assert_eq!(e["duration_ms"].as_f64(), Some(summary.steps[i].duration_ms));
    }
    assert!(events[2]["duration_ms"].as_f64().unwrap() >= 3.0);
    assert!(events[4]["duration_ms"].as_f64().unwrap() >= 2.0);

    let end = &events[7];
    assert_eq!(
        keys(end),
        with_common(&["attributes", "duration_ms", "failed_step_count", "step_count", "steps", "total_step_time_ms"]),
        "no workflow error recorded: no `error` key"
    );
    assert_eq!(end["duration_ms"].as_f64(), Some(summary.duration_ms));
    assert_eq!(end["step_count"], 3);
    assert_eq!(end["failed_step_count"], 1);
    let total: f64 = summary.steps.iter().map(|s| s.duration_ms).sum();
    assert_eq!(end["total_step_time_ms"].as_f64(), Some(total));
    assert!(total <= summary.duration_ms);
    assert_eq!(end["attributes"], json!({"order_id": "123", "status": "partial"}));
    assert_eq!(end["steps"], serde_json::to_value(&summary.steps).unwrap());
    assert_eq!(end["steps"], wf.get_summary()["steps"]);
    assert_eq!(end["steps"][2]["error"], "out of stock");
    assert_eq!(end["steps"][0]["error"], Value::Null);

    // The typed events are what was serialised, and they read back.
    let typed = sink.events();
    assert_eq!(typed.len(), 8);
    for (t, j) in typed.iter().zip(&events) {
        assert_eq!(&serde_json::to_value(t).unwrap(), j);
        assert_eq!(&serde_json::from_value::<WorkflowEvent>(j.clone()).unwrap(), t);
    }
    assert_eq!(typed[7].event_type, WorkflowEventType::WorkflowEnd);
    assert_eq!(typed[7].steps.as_deref(), Some(&summary.steps[..]));
    assert_eq!(WorkflowEventType::StepEnd.to_string(), "step_end");

    // Later finishes send nothing more.
    wf.finish();
    assert_eq!(wf.summary(), summary);
    drop(wf);
    assert_eq!(sink.events().len(), 8);
}

fn uuid_version(id: &str) -> Option<u32> {
    let parts: Vec<&str> = id.split('-').collect();
    let ok = parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && id.chars().all(|c| c == '-' || c.is_ascii_hexdigit() && !c.is_ascii_uppercase());
    if ok {
        parts[2][..1].parse().ok()
    } else {
        None
    }
}

#[test]
fn the_workflow_error_is_on_workflow_end() {
    let sink = MemoryWorkflowSink::new();
    let wf = WorkflowTracer::new("wf").stream(sink.clone(), "svc");
    wf.record_error("first");
    wf.record_error("upstream timeout");
    wf.finish();
    let events = sink.json();
    assert_eq!(types(&events), ["workflow_start", "workflow_end"]);
    assert_eq!(events[1]["error"], "upstream timeout");
    assert_eq!(events[1]["step_count"], 0);
    assert_eq!(events[1]["failed_step_count"], 0);
    assert_eq!(events[1]["total_step_time_ms"].as_f64(), Some(0.0));
    assert_eq!(events[1]["steps"], json!([]));
}

#[test]
fn dropping_the_last_clone_without_finish_sends_workflow_end_once() {
    let sink = MemoryWorkflowSink::new();
    let wf = WorkflowTracer::new("wf").stream(sink.clone(), "svc");
    let clone = wf.clone();
    wf.step("a").finish();
    drop(wf);
    assert_eq!(types(&sink.json()), ["workflow_start", "step_start", "step_end"], "a clone is still alive");
    drop(clone);
    let events = sink.json();
    assert_eq!(types(&events), ["workflow_start", "step_start", "step_end", "workflow_end"]);
    assert_eq!(events[3]["step_count"], 1);
}

#[test]
fn a_step_still_running_at_finish_sends_its_end_after_workflow_end() {
    let sink = MemoryWorkflowSink::new();
    let wf = WorkflowTracer::new("wf").stream(sink.clone(), "svc");
    let running = wf.step("slow");
    wf.finish();
    let summary = wf.summary();
    assert_eq!(summary.step_count, 0);
    drop(running);
    let events = sink.json();
    assert_eq!(types(&events), ["workflow_start", "step_start", "workflow_end", "step_end"]);
    assert_eq!(events[2]["steps"], json!([]));
    assert_eq!(events[3]["step_name"], "slow");
}

#[test]
fn steps_that_end_by_drop_or_panic_send_their_end() {
    let sink = MemoryWorkflowSink::new();
    let wf = WorkflowTracer::new("wf").stream(sink.clone(), "svc");
    {
        let mut s = wf.step("dropped");
        s.set("k", "v");
    }
    let wf2 = wf.clone();
    let panicked = std::thread::spawn(move || {
        wf2.run_step_sync("boom", |_s| -> Result<(), String> { panic!("kaboom") }).ok();
    })
    .join();
    assert!(panicked.is_err());
    let wf3 = wf.clone();
    let guard_panicked = std::thread::spawn(move || {
        let _step = wf3.step("guard");
        panic!("kaboom");
    })
    .join();
    assert!(guard_panicked.is_err());
    wf.finish();
    let events = sink.json();
    assert_eq!(events.len(), 8, "{:?}", types(&events));
    let ends: Vec<&Value> = events.iter().filter(|e| e["event_type"] == "step_end").collect();
    assert_eq!(ends[0]["step_name"], "dropped");
    assert_eq!(ends[0]["attributes"], json!({"k": "v"}));
    assert!(ends[0].get("error").is_none());
    assert_eq!(ends[0]["status"], "unconfirmed", "a guard dropped without finish() claims no success");
    assert_eq!(ends[1]["step_name"], "boom");
    assert_eq!(ends[1]["error"], "panicked");
    assert_eq!(ends[2]["step_name"], "guard");
    assert_eq!(ends[2]["error"], "panicked");
    assert_eq!(events[7]["failed_step_count"], 2);
}

#[step]
fn macro_step(x: u32) -> Result<u32, String> {
    if x == 0 {
        Err("zero".into())
    } else {
        Ok(x * 2)
    }
}

#[step(name = "async-macro-step")]
async fn async_macro_step(x: u32) -> u32 {
    tokio::time::sleep(Duration::from_millis(1)).await;
    x + 1
}

#[tokio::test]
async fn macro_and_async_steps_stream_too() {
    let sink = MemoryWorkflowSink::new();
    let wf = WorkflowTracer::new("wf").stream(sink.clone(), "svc");
    wf.scope_sync(|| {
        assert_eq!(macro_step(2), Ok(4));
        assert!(macro_step(0).is_err());
    });
    assert_eq!(wf.scope(async_macro_step(1)).await, 2);
    let v = wf
        .run_step("async-run", |mut s| async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            s.set("ok", true);
            Ok::<_, String>(7)
        })
        .await;
    assert_eq!(v, Ok(7));
    // A cancelled async step ends with "cancelled".
    let cancelled = tokio::time::timeout(
        Duration::from_millis(5),
        wf.run_step("never", |_s| async { std::future::pending::<Result<(), String>>().await }),
    )
    .await;
    assert!(cancelled.is_err());
    wf.finish();
    let summary = wf.summary();

    let events = sink.json();
    let ends: Vec<(String, Option<String>, u64)> = events
        .iter()
        .filter(|e| e["event_type"] == "step_end")
        .map(|e| {
            (
                e["step_name"].as_str().unwrap().to_owned(),
                e["error"].as_str().map(str::to_owned),
                e["step_index"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ends,
        [
            ("macro_step".to_owned(), None, 0),
            ("macro_step".to_owned(), Some("zero".to_owned()), 1),
            ("async-macro-step".to_owned(), None, 2),
            ("async-run".to_owned(), None, 3),
            ("never".to_owned(), Some("cancelled".to_owned()), 4),
        ]
    );
    assert_eq!(types(&events).iter().filter(|t| **t == "step_start").count(), 5);
    let end = events.last().unwrap();
    assert_eq!(end["event_type"], "workflow_end");
    assert_eq!(end["steps"], serde_json::to_value(&summary.steps).unwrap());
    assert_eq!(end["failed_step_count"], 2);
}

/// Steps from several threads: one start and one end per step, start before end, every index once, and
/// `workflow_end` last.
#[test]
fn concurrent_steps_keep_one_start_and_end_each_and_workflow_end_last() {
    const THREADS: usize = 8;
    const STEPS: usize = 50;
    let sink = MemoryWorkflowSink::new();
    let wf = WorkflowTracer::new("parallel").stream(sink.clone(), "svc");
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let wf = &wf;
            s.spawn(move || {
                for i in 0..STEPS {
                    let name = format!("t{t}-s{i}");
                    if i % 3 == 0 {
                        let _ = wf.run_step_sync(name, |_| if i % 2 == 0 { Err("even") } else { Ok(()) });
                    } else {
                        let mut step = wf.step(name);
                        step.set("thread", t as u64);
                    }
                }
            });
        }
    });
    wf.finish();
    let summary = wf.summary();
    let events = sink.json();
    let n = THREADS * STEPS;
    assert_eq!(events.len(), 2 + 2 * n);
    assert_eq!(events[0]["event_type"], "workflow_start");
    assert_eq!(events.last().unwrap()["event_type"], "workflow_end");
    assert_eq!(types(&events).iter().filter(|t| t.starts_with("workflow")).count(), 2);

    let mut starts: HashMap<u64, (usize, String)> = HashMap::new();
    let mut ends: HashMap<u64, (usize, String)> = HashMap::new();
    for (pos, e) in events.iter().enumerate() {
        let index = e["step_index"].as_u64();
        let name = e["step_name"].as_str().map(str::to_owned);
        match e["event_type"].as_str().unwrap() {
            "step_start" => assert!(starts.insert(index.unwrap(), (pos, name.unwrap())).is_none(), "one start"),
            "step_end" => assert!(ends.insert(index.unwrap(), (pos, name.unwrap())).is_none(), "one end"),
            _ => {}
        }
    }
    assert_eq!(starts.len(), n);
    assert_eq!(ends.len(), n);
    for index in 0..n as u64 {
        let (s, sname) = &starts[&index];
        let (e, ename) = &ends[&index];
        assert!(s < e, "step {index} starts before it ends");
        assert_eq!(sname, ename);
        assert_eq!(summary.steps[index as usize].name, *sname, "step_index = position in start order");
    }
    // Start events are sent in index order (the index is taken under the same lock).
    let mut by_pos: Vec<(usize, u64)> = starts.iter().map(|(i, (p, _))| (*p, *i)).collect();
    by_pos.sort_unstable();
    assert!(by_pos.windows(2).all(|w| w[0].1 < w[1].1));

    let end = events.last().unwrap();
    assert_eq!(end["step_count"], n);
    let failed = summary.steps.iter().filter(|s| s.error.is_some()).count();
    assert_eq!(end["failed_step_count"], failed);
    assert_eq!(failed, THREADS * (0..STEPS).filter(|i| i % 3 == 0 && i % 2 == 0).count());
    assert_eq!(end["steps"], serde_json::to_value(&summary.steps).unwrap());
}

#[test]
fn streaming_starts_with_stream_and_only_once() {
    let sink = MemoryWorkflowSink::new();
    let wf = WorkflowTracer::new("late");
    assert_eq!(wf.workflow_id(), None);
    assert!(wf.flush(Duration::from_secs(1)).is_ok());
    let before = wf.step("before");
    let wf = wf.attr("a", 1).stream(sink.clone(), "svc");
    let id = wf.workflow_id().unwrap();
    drop(before); // started before streaming: no events
    wf.step("after").finish();

    let other = MemoryWorkflowSink::new();
    let wf = wf.stream(other.clone(), "svc2"); // ignored: already streams
    assert_eq!(wf.workflow_id().as_deref(), Some(id.as_str()));
    wf.finish();
    let finished = WorkflowTracer::new("done");
    finished.finish();
    let finished = finished.stream(other.clone(), "svc"); // ignored: already finished
    assert_eq!(finished.workflow_id(), None);
    drop(finished);
    assert!(other.events().is_empty());

    let events = sink.json();
    assert_eq!(types(&events), ["workflow_start", "step_start", "step_end", "workflow_end"]);
    assert_eq!(events[0]["attributes"], json!({"a": 1}));
    assert_eq!(events[1]["step_name"], "after");
    assert_eq!(events[1]["step_index"], 1);
    // The earlier step is in the summary (and so in workflow_end), though it sent no events.
    assert_eq!(events[3]["step_count"], 2);
    assert!(format!("{wf:?}").contains("memory"));
}

/// A sink that panics on every event, counting the calls.
struct Panicking(Arc<AtomicUsize>);

impl WorkflowSink for Panicking {
    fn send(&self, _event: &WorkflowEvent, _payload: &[u8]) {
        self.0.fetch_add(1, Ordering::SeqCst);
        panic!("sink down");
    }

    fn describe(&self) -> String {
        "panicking".into()
    }
}

#[test]
fn a_panicking_sink_does_not_break_the_workflow() {
    let calls = Arc::new(AtomicUsize::new(0));
    let wf = WorkflowTracer::new("wf").stream(Panicking(calls.clone()), "svc");
    wf.run_step_sync("a", |_| Ok::<_, String>(())).unwrap();
    wf.set("still", "works");
    wf.finish();
    let summary = wf.summary();
    assert_eq!(summary.step_count, 1);
    assert_eq!(summary.attributes["still"], "works");
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

#[test]
fn the_factory_streams_workflows_to_its_workflow_sink() {
    let agent_events = observer::trace::MemoryTraceSink::new();
    let events = MemoryWorkflowSink::new();
    let factory = TracerFactory::new(ObserverConfig { service_name: "factory-svc".into(), ..Default::default() })
        .unwrap()
        .sink(agent_events.clone());
    // Without Kafka (and no `observer::init`) and without a workflow sink, workflows do not stream.
    let plain = factory.create_workflow_tracer("plain");
    assert_eq!(plain.workflow_id(), None);
    plain.finish();

    let factory = factory.workflow_sink(events.clone());
    assert!(format!("{factory:?}").contains("workflow_sink: Some(\"memory\")"));
    let wf = factory.create_workflow_tracer_with_attributes("ingest", [("source", json!("s3")), ("files", json!(3))]);
    let id = wf.workflow_id().expect("streams");
    wf.run_step_sync("read", |_| Ok::<_, String>(())).unwrap();
    wf.finish();
    let other = factory.create_workflow_tracer("second");
    let other_id = other.workflow_id().unwrap();
    assert_ne!(id, other_id, "one id per workflow run");
    drop(other);
    factory.flush(Duration::from_secs(1)).unwrap();

    let json = events.json();
    assert_eq!(
        types(&json),
        ["workflow_start", "step_start", "step_end", "workflow_end", "workflow_start", "workflow_end"]
    );
    assert!(json.iter().all(|e| e["service_name"] == "factory-svc"));
    assert!(json[..4].iter().all(|e| e["workflow_id"] == id.as_str() && e["workflow_name"] == "ingest"));
    assert!(json[4..].iter().all(|e| e["workflow_id"] == other_id.as_str() && e["workflow_name"] == "second"));
    assert_eq!(json[0]["attributes"], json!({"source": "s3", "files": 3}));
    assert!(agent_events.events().is_empty(), "the agent sink gets no workflow events");

    let off = factory.without_workflow_stream().create_workflow_tracer("off");
    assert_eq!(off.workflow_id(), None);
}
