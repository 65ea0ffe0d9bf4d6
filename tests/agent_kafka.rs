//! AgentTracer streaming to the real test broker: a flow with concurrent and failing components arrives on the
//! trace topic complete, keyed by trace id, in one partition and in call order, with the fields of each event type;
//! tracers with their own Kafka settings share one producer.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::kafka::{bootstrap, consume_until, Consumed};
use observer::export::KafkaTopicSink;
use observer::trace::{AgentTrace, AgentTracer, AgentTracerConfig, TracerFactory};
use observer::SecurityProtocol;
use observer::{calculate_cost_cached, CaptureLevel, KafkaConfig, ObserverConfig, Secret};
use serde_json::json;

const TRACE_TOPIC: &str = "genesis-traces-streaming";

fn init() -> &'static ObserverConfig {
    common::kafka::init_observer("agent-kafka-test")
}

fn consume_trace(key: &str, expected: usize) -> Vec<Consumed> {
    common::kafka::consume_key(TRACE_TOPIC, key, expected)
}

#[test]
fn a_flow_with_concurrent_and_failing_components_arrives_complete_and_in_order() {
    let config = init();
    // Every field of each event type, content included.
    let factory =
        TracerFactory::new(config.clone()).unwrap().project_name("KafkaProject").capture(CaptureLevel::RequestResponse);
    let tracer = factory.create_agent_tracer(AgentTrace {
        flow_id: "flow-kafka".into(),
        trace_name: "Customer Support Flow".into(),
        user_id: Some("user-456".into()),
        session_id: Some("session-789".into()),
        ..Default::default()
    });
    let trace_id = tracer.trace_id().to_owned();
    tracer.start_trace();
    tracer.add_trace("classifier", "QueryClassifier", "llm", json!({"query": "How do I reset my password?"}));
    // Langflow runs independent vertices in parallel.
    std::thread::scope(|s| {
        s.spawn(|| {
            tracer.add_trace("retriever", "KnowledgeRetriever", "", json!({"top_k": 3}));
            tracer.end_trace("retriever", "KnowledgeRetriever", json!({}), Some("vector store unavailable"));
        });
        s.spawn(|| {
            tracer.end_trace(
                "classifier",
                "QueryClassifier",
                json!({"classification": "account", "model": "gpt-4o", "input_tokens": 100, "output_tokens": 50}),
                None,
            );
        });
    });
    tracer.component("llm", "AnswerGenerator").parent("classifier").inputs(json!({"context": []})).start();
    tracer.end_trace(
        "llm",
        "AnswerGenerator",
        json!({"message": {"model": "claude-3-5-sonnet-20241022", "usage": {"input_tokens": 500,
               "cache_read_input_tokens": 1500, "output_tokens": 500}}}),
        None,
    );
    let started = std::time::Instant::now();
    tracer.end(json!({"question": "reset"}), json!({"answer": "Use the link"}), None, None);
    assert!(started.elapsed() < Duration::from_millis(100), "end() does not wait for the broker");
    tracer.flush(Duration::from_secs(30)).expect("acknowledged");

    let msgs = consume_trace(&trace_id, 8);
    let types: Vec<&str> = msgs.iter().map(|m| m.payload["event_type"].as_str().unwrap()).collect();
    assert_eq!(msgs.len(), 8, "{types:?}");
    assert_eq!(types[0], "trace_start");
    assert_eq!(types[7], "trace_end");
    assert!(msgs.windows(2).all(|w| w[0].partition == w[1].partition), "one trace, one partition");
    let pos = |t: &str, id: &str| {
        msgs.iter().position(|m| m.payload["event_type"] == t && m.payload["span_id"] == id).unwrap()
    };
    for id in ["classifier", "retriever", "llm"] {
        assert!(pos("span_start", id) < pos("span_end", id), "{id}");
    }
    for m in &msgs {
        assert_eq!(m.headers.get("event_type").map(String::as_str), m.payload["event_type"].as_str());
        assert_eq!(m.headers.get("content-type").map(String::as_str), Some("application/json"));
        for (k, v) in [
            ("trace_id", trace_id.as_str()),
            ("flow_id", "flow-kafka"),
            ("flow_name", "Customer Support Flow"),
            ("user_id", "user-456"),
            ("session_id", "session-789"),
            ("project_name", "KafkaProject"),
        ] {
            assert_eq!(m.payload[k], v, "{k} on {}", m.payload["event_type"]);
        }
    }
    let by = |t: &str, id: &str| &msgs[pos(t, id)].payload;
    let retriever_start = by("span_start", "retriever");
    assert_eq!(retriever_start["component_type"], "retrieval");
    assert_eq!(retriever_start["input_data"], json!({"top_k": 3}));
    let retriever_end = by("span_end", "retriever");
    assert_eq!(retriever_end["error"], "vector store unavailable");
    assert_eq!(retriever_end["metadata"]["status"], "error");
    let classifier_end = by("span_end", "classifier");
    assert_eq!(classifier_end["metadata"]["status"], "success");
    assert_eq!(
        classifier_end["metadata"]["cost"].as_f64().unwrap(),
        calculate_cost_cached("openai", "gpt-4o", 100, 50, 0).total_cost
    );
    let llm_start = by("span_start", "llm");
    assert_eq!(llm_start["parent_span_id"], "classifier");
    let llm_end = by("span_end", "llm");
    let sonnet = calculate_cost_cached("anthropic", "claude-3-5-sonnet-20241022", 2000, 500, 1500);
    assert_eq!(llm_end["metadata"]["model"], "claude-3-5-sonnet-20241022");
    assert_eq!(llm_end["metadata"]["input_tokens"], 2000);
    assert_eq!(llm_end["metadata"]["cached_tokens"], 1500);
    assert_eq!(llm_end["metadata"]["cost"].as_f64().unwrap(), sonnet.total_cost);
    let end = &msgs[7].payload;
    assert_eq!(end["input_data"], json!({"question": "reset"}));
    assert_eq!(end["output_data"], json!({"answer": "Use the link"}));
    let m = &end["metadata"];
    assert_eq!(m["total_spans"], 3);
    assert_eq!(m["failed_spans"], 1);
    assert_eq!(m["total_input_tokens"], 2100);
    assert_eq!(m["total_output_tokens"], 550);
    let total = m["total_cost"].as_f64().unwrap();
    assert!(
        (total - (sonnet.total_cost + calculate_cost_cached("openai", "gpt-4o", 100, 50, 0).total_cost)).abs() < 1e-12
    );
    assert_eq!(msgs[0].payload["metadata"]["environment"], "production");
}

#[test]
fn many_traces_stream_concurrently_each_in_order() {
    let config = init();
    let factory = TracerFactory::new(config.clone()).unwrap();
    const TRACES: usize = 20;
    const COMPONENTS: usize = 25;
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..TRACES)
            .map(|t| {
                let factory = factory.clone();
                s.spawn(move || {
                    let tracer = factory.create_agent_tracer(AgentTrace {
                        flow_id: format!("flow-{t}"),
                        trace_name: "parallel".into(),
                        ..Default::default()
                    });
                    tracer.start_trace();
                    for c in 0..COMPONENTS {
                        let id = format!("c{c}");
                        tracer.add_trace(&id, "Step", "tool", json!({"c": c}));
                        tracer.end_trace(&id, "Step", json!({"input_tokens": 1, "output_tokens": 1}), None);
                    }
                    tracer.end(json!({}), json!({}), None, None);
                    tracer.trace_id().to_owned()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    factory.flush(Duration::from_secs(30)).unwrap();
    let per_trace = 2 + 2 * COMPONENTS;
    let got = consume_until(&bootstrap(), TRACE_TOPIC, Duration::from_secs(60), |msgs| {
        let mut n: HashMap<&str, usize> = HashMap::new();
        for m in msgs {
            if let Some(k) = m.key.as_deref() {
                *n.entry(k).or_default() += 1;
            }
        }
        ids.iter().all(|id| n.get(id.as_str()).copied().unwrap_or(0) >= per_trace)
    });
    for id in &ids {
        let mut mine: Vec<&Consumed> = got.iter().filter(|m| m.key.as_deref() == Some(id)).collect();
        mine.sort_by_key(|m| m.offset);
        assert_eq!(mine.len(), per_trace, "trace {id}: nothing lost, nothing doubled");
        let seq: Vec<String> = mine
            .iter()
            .map(|m| {
                format!("{}:{}", m.payload["event_type"].as_str().unwrap(), m.payload["span_id"].as_str().unwrap_or(""))
            })
            .collect();
        let mut expected = vec!["trace_start:".to_owned()];
        for c in 0..COMPONENTS {
            expected.push(format!("span_start:c{c}"));
            expected.push(format!("span_end:c{c}"));
        }
        expected.push("trace_end:".to_owned());
        assert_eq!(seq, expected, "trace {id} in call order");
        assert_eq!(mine.last().unwrap().payload["metadata"]["total_input_tokens"], COMPONENTS);
    }
}

#[test]
fn tracers_with_their_own_kafka_settings_share_one_producer() {
    init();
    let spool = tempfile::tempdir().unwrap();
    // Another bootstrap string for the same broker: not the init exporter, so the tracers' own shared one.
    let kafka = KafkaConfig {
        bootstrap_servers: format!("{b},{b}", b = bootstrap()),
        trace_topic: TRACE_TOPIC.into(),
        spool_dir: Some(spool.path().to_owned()),
        ..Default::default()
    };
    let a = KafkaTopicSink::new(&kafka, &kafka.trace_topic).unwrap();
    let b = KafkaTopicSink::new(&kafka, &kafka.trace_topic).unwrap();
    let tracer = AgentTracer::new(AgentTracerConfig {
        trace: AgentTrace { trace_name: "standalone".into(), ..Default::default() },
        kafka: Some(kafka.clone()),
        ..Default::default()
    })
    .unwrap();
    let before = a.exporter().stats().produced;
    tracer.start_trace();
    tracer.end(json!({}), json!({}), None, None);
    // `observer::flush` reaches the producers the SDK shares between tracers, not only the one of `init`.
    observer::flush(Duration::from_secs(30)).unwrap();
    let stats = b.exporter().stats();
    assert_eq!(stats.in_flight, 0, "acknowledged when observer::flush returned: {stats:?}");
    // Had each created its own producer, the second exporter in the process would have found the spool locked.
    assert_eq!(stats.produced, before + 2, "the tracer's events went through the shared producer");
    let msgs = consume_trace(tracer.trace_id(), 2);
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0].payload["project_name"], "GenesisStudio");
}

/// The guide's Kafka settings as written: an AgentTracer with only a username and password, a TracerFactory with
/// SASL_SSL and no mechanism. Both are accepted as SASL_SSL with PLAIN, the reference SDK's defaults.
#[test]
fn the_guides_sasl_settings_work_as_written() {
    let (spool_a, spool_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Nobody listens there; creating a tracer does not contact the cluster.
    let kafka = KafkaConfig {
        bootstrap_servers: "127.0.0.1:9".into(),
        trace_topic: TRACE_TOPIC.into(),
        sasl_username: Some("user".into()),
        sasl_password: Some(Secret::new("pass")),
        spool_dir: Some(spool_a.path().to_owned()),
        ..Default::default()
    };
    let tracer = AgentTracer::new(AgentTracerConfig {
        trace: AgentTrace { trace_name: "guide".into(), ..Default::default() },
        kafka: Some(kafka.clone()),
        ..Default::default()
    });
    assert!(tracer.is_ok(), "AgentTracer with username and password: {:?}", tracer.err());
    let factory = TracerFactory::new(ObserverConfig {
        service_name: "ai-studio".into(),
        kafka: Some(KafkaConfig {
            security_protocol: SecurityProtocol::SaslSsl,
            spool_dir: Some(spool_b.path().to_owned()),
            ..kafka
        }),
        ..Default::default()
    });
    assert!(factory.is_ok(), "TracerFactory with SASL_SSL and no mechanism: {:?}", factory.err());
}
