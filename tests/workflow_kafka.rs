//! WorkflowTracer streaming to the real test broker: a workflow with concurrent and failing steps arrives on the
//! workflow topic complete, keyed by workflow id, in one partition and in order, with the fields of each event type
//! and exactly the JSON the memory sink gets for the same events.

mod common;

use std::time::Duration;

use common::kafka::Consumed;
use observer::export::KafkaTopicSink;
use observer::trace::{MemoryWorkflowSink, TracerFactory, WorkflowEvent, WorkflowSink, WorkflowTracer};
use observer::ObserverConfig;
use serde_json::{json, Value};

const WORKFLOW_TOPIC: &str = "workflow-traces";

fn init() -> &'static ObserverConfig {
    common::kafka::init_observer("workflow-kafka-test")
}

fn consume_workflow(key: &str, expected: usize) -> Vec<Consumed> {
    common::kafka::consume_key(WORKFLOW_TOPIC, key, expected)
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().expect("an object").keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

fn sorted(mut k: Vec<&'static str>) -> Vec<&'static str> {
    k.extend(["event_type", "service_name", "timestamp", "workflow_id", "workflow_name"]);
    k.sort_unstable();
    k
}

/// Two ok steps (one on another thread, concurrently with the failing one) and one failing step.
fn run_workflow(wf: &WorkflowTracer) {
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut step = wf.step("validate");
            step.set("items_count", 5);
            std::thread::sleep(Duration::from_millis(2));
            step.finish();
        });
        s.spawn(|| {
            let r = wf.run_step_sync("payment", |step| {
                step.set("provider", "stripe");
                Err::<(), _>("card declined")
            });
            assert!(r.is_err());
        });
    });
    wf.run_step_sync("notify", |step| {
        step.set("channel", "email");
        Ok::<_, String>(())
    })
    .unwrap();
    wf.set("status", "failed-payment");
}

fn check_ordered_and_keyed(msgs: &[Consumed], workflow_id: &str) {
    assert!(msgs.windows(2).all(|w| w[0].partition == w[1].partition), "one workflow, one partition");
    assert!(msgs.windows(2).all(|w| w[0].offset < w[1].offset));
    for m in msgs {
        assert_eq!(m.key.as_deref(), Some(workflow_id));
        assert_eq!(m.payload["workflow_id"], workflow_id);
        assert_eq!(m.headers.get("event_type").map(String::as_str), m.payload["event_type"].as_str());
        assert_eq!(m.headers.get("content-type").map(String::as_str), Some("application/json"));
    }
}

#[test]
fn a_factory_workflow_arrives_complete_in_order_with_every_field() {
    let config = init();
    let factory = TracerFactory::new(config.clone()).unwrap();
    let wf = factory.create_workflow_tracer_with_attributes("process-order", [("order_id", "o-1")]);
    let workflow_id = wf.workflow_id().expect("a Kafka factory streams workflows");
    run_workflow(&wf);
    let started = std::time::Instant::now();
    wf.finish();
    let summary = wf.summary();
    assert!(started.elapsed() < Duration::from_millis(100), "finish() does not wait for the broker");
    factory.flush(Duration::from_secs(30)).expect("acknowledged");

    let msgs = consume_workflow(&workflow_id, 8);
    let types: Vec<&str> = msgs.iter().map(|m| m.payload["event_type"].as_str().unwrap()).collect();
    assert_eq!(msgs.len(), 8, "{types:?}");
    check_ordered_and_keyed(&msgs, &workflow_id);
    assert_eq!(types[0], "workflow_start");
    assert_eq!(types[7], "workflow_end");
    for m in &msgs {
        assert_eq!(m.payload["workflow_name"], "process-order");
        assert_eq!(m.payload["service_name"], "workflow-kafka-test");
        assert_eq!(m.payload["timestamp"].as_str().map(str::len), Some(27));
    }
    assert_eq!(keys(&msgs[0].payload), sorted(vec!["attributes"]));
    assert_eq!(msgs[0].payload["attributes"], json!({"order_id": "o-1"}));

    // Each step: one start, then one end, with the step's fields; indexes 0..3 in start order.
    for (index, rec) in summary.steps.iter().enumerate() {
        let find = |t: &str| {
            let found: Vec<usize> = (0..msgs.len())
                .filter(|&i| msgs[i].payload["event_type"] == t && msgs[i].payload["step_index"] == index)
                .collect();
            assert_eq!(found.len(), 1, "one {t} for step {index}");
            found[0]
        };
        let (s, e) = (find("step_start"), find("step_end"));
        assert!(s < e);
        let start = &msgs[s].payload;
        assert_eq!(keys(start), sorted(vec!["attributes", "step_index", "step_name"]));
        assert_eq!(start["step_name"], rec.name.as_str());
        assert_eq!(start["attributes"], json!({}));
        let end = &msgs[e].payload;
        let mut want = vec!["attributes", "duration_ms", "status", "step_index", "step_name"];
        if rec.error.is_some() {
            want.push("error");
        }
        assert_eq!(keys(end), sorted(want));
        assert_eq!(end["status"], serde_json::to_value(rec.status).unwrap());
        assert_eq!(end["step_name"], rec.name.as_str());
        assert_eq!(end["duration_ms"].as_f64(), Some(rec.duration_ms));
        assert_eq!(end["error"].as_str(), rec.error.as_deref());
        assert_eq!(end["attributes"], Value::Object(rec.attributes.clone()));
    }
    let failed: Vec<&str> = summary.steps.iter().filter(|s| s.error.is_some()).map(|s| s.name.as_str()).collect();
    assert_eq!(failed, ["payment"]);

    let end = &msgs[7].payload;
    assert_eq!(
        keys(end),
        sorted(vec!["attributes", "duration_ms", "failed_step_count", "step_count", "steps", "total_step_time_ms"])
    );
    assert_eq!(end["duration_ms"].as_f64(), Some(summary.duration_ms));
    assert_eq!(end["step_count"], 3);
    assert_eq!(end["failed_step_count"], 1);
    let total: f64 = summary.steps.iter().map(|s| s.duration_ms).sum();
    assert_eq!(end["total_step_time_ms"].as_f64(), Some(total));
    assert_eq!(end["attributes"], json!({"order_id": "o-1", "status": "failed-payment"}));
    assert_eq!(end["steps"], serde_json::to_value(&summary.steps).unwrap());
}

/// Sends every event to Kafka and to memory, so the two can be compared byte for byte.
struct Tee(KafkaTopicSink, MemoryWorkflowSink);

impl WorkflowSink for Tee {
    fn send(&self, event: &WorkflowEvent, payload: &[u8]) {
        self.0.send(event, payload);
        self.1.send(event, payload);
    }

    fn flush(&self, timeout: Duration) -> Result<(), observer::ExporterError> {
        self.0.flush(timeout)
    }

    fn describe(&self) -> String {
        format!("tee {}", self.0.describe())
    }
}

#[test]
fn kafka_messages_are_exactly_the_memory_sinks_json() {
    let config = init();
    let kafka_config = config.kafka.as_ref().unwrap();
    let kafka = KafkaTopicSink::new(kafka_config, &kafka_config.workflow_topic).unwrap();
    assert_eq!(kafka.topic(), WORKFLOW_TOPIC);
    assert_eq!(kafka.describe(), "kafka workflow-traces");
    let memory = MemoryWorkflowSink::new();
    let wf = WorkflowTracer::new("tee-workflow").attr("run", 7).stream(Tee(kafka, memory.clone()), "tee-svc");
    let workflow_id = wf.workflow_id().unwrap();
    run_workflow(&wf);
    wf.record_error("payment failed");
    wf.finish();
    wf.flush(Duration::from_secs(30)).expect("acknowledged");

    let expected = memory.json();
    assert_eq!(expected.len(), 8);
    let msgs = consume_workflow(&workflow_id, expected.len());
    assert_eq!(msgs.len(), expected.len());
    check_ordered_and_keyed(&msgs, &workflow_id);
    for (m, want) in msgs.iter().zip(&expected) {
        assert_eq!(&m.payload, want, "field by field, in order");
        // And every typed field reads back.
        let typed: WorkflowEvent = serde_json::from_value(m.payload.clone()).unwrap();
        assert_eq!(&serde_json::to_value(&typed).unwrap(), want);
    }
    assert_eq!(msgs[7].payload["error"], "payment failed");
    assert_eq!(msgs[7].payload["service_name"], "tee-svc");
}

#[test]
fn a_workflow_dropped_without_finish_still_ends_on_the_topic() {
    let config = init();
    let factory = TracerFactory::new(config.clone()).unwrap();
    let wf = factory.create_workflow_tracer("dropped");
    let workflow_id = wf.workflow_id().unwrap();
    wf.step("only").finish();
    drop(wf);
    factory.flush(Duration::from_secs(30)).expect("acknowledged");
    let msgs = consume_workflow(&workflow_id, 4);
    let types: Vec<&str> = msgs.iter().map(|m| m.payload["event_type"].as_str().unwrap()).collect();
    assert_eq!(types, ["workflow_start", "step_start", "step_end", "workflow_end"]);
    check_ordered_and_keyed(&msgs, &workflow_id);
    assert_eq!(msgs[3].payload["step_count"], 1);
}
