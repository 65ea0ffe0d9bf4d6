//! The guide's "AI Studio Agent Tracing" section: a customer-support flow (query classifier → knowledge retriever
//! and conversation memory in parallel → answer generator) traced with a `TracerFactory`, components written as
//! `#[agent_component]` fns, events streamed to the trace topic.
//!
//! ```text
//! # with the test broker (scripts/kafka-broker.sh start prints KAFKA_BOOTSTRAP_SERVERS):
//! KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 cargo run --example agent_flow --features kafka
//! # without Kafka: the events are printed instead
//! cargo run --example agent_flow
//! ```

use std::time::Duration;

use observer::trace::{AgentTrace, TracerFactory};
use observer::{KafkaConfig, ObserverConfig};
use serde::Serialize;
use serde_json::{json, Value};

#[derive(Debug)]
struct FlowError(String);

impl std::fmt::Display for FlowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Serialize)]
struct Document {
    id: String,
    text: String,
}

/// An LLM call: returns the provider's response body, from which tokens, model and cost are taken.
#[observer::agent_component(name = "QueryClassifier", kind = "llm")]
async fn classify(query: &str) -> Result<Value, FlowError> {
    tokio::time::sleep(Duration::from_millis(20)).await;
    let label = if query.contains("password") { "account" } else { "general" };
    Ok(json!({
        "classification": label,
        "model": "gpt-4o-mini",
        "usage": {"prompt_tokens": 120, "completion_tokens": 4, "prompt_tokens_details": {"cached_tokens": 64}}
    }))
}

#[observer::agent_component(name = "KnowledgeRetriever", kind = "retrieval")]
async fn retrieve(category: &str, top_k: usize) -> Result<Vec<Document>, FlowError> {
    tokio::time::sleep(Duration::from_millis(30)).await;
    Ok((0..top_k)
        .map(|i| Document { id: format!("kb-{category}-{i}"), text: format!("How to fix {category} issue #{i}") })
        .collect())
}

#[observer::agent_component(name = "ConversationMemory", kind = "memory")]
async fn load_history(session_id: &str) -> Vec<String> {
    tokio::time::sleep(Duration::from_millis(15)).await;
    vec![format!("[{session_id}] user: hi"), "assistant: hello!".into()]
}

/// An Anthropic Messages response, dated model id: priced as claude-3-5-sonnet with cache reads.
#[observer::agent_component(name = "AnswerGenerator", kind = "llm", skip(history))]
async fn generate(query: &str, documents: &[Document], history: &[String]) -> Result<Value, FlowError> {
    tokio::time::sleep(Duration::from_millis(40)).await;
    if documents.is_empty() {
        return Err(FlowError("no documents to answer from".into()));
    }
    Ok(json!({
        "id": "msg_01", "type": "message", "role": "assistant",
        "model": "claude-3-5-sonnet-20241022",
        "content": [{"type": "text", "text": format!("For '{query}': {} (context: {} turns)", documents[0].text, history.len())}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 850, "cache_read_input_tokens": 1200, "output_tokens": 310}
    }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Kafka only with the `kafka` feature (without it, `init` refuses a Kafka config).
    let bootstrap = std::env::var("KAFKA_BOOTSTRAP_SERVERS").ok().filter(|_| cfg!(feature = "kafka"));
    let kafka = bootstrap.is_some();
    let config = ObserverConfig {
        service_name: "ai-studio".into(),
        kafka: bootstrap.map(|servers| KafkaConfig {
            bootstrap_servers: servers,
            trace_topic: "genesis-traces-streaming".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    // `init` starts the one Kafka producer of the process; the factory's tracers share it.
    let _guard = observer::init(config.clone())?;
    let events = observer::trace::MemoryTraceSink::new();
    let mut factory = TracerFactory::new(config)?;
    if !kafka {
        println!("(KAFKA_BOOTSTRAP_SERVERS not set or feature `kafka` off: events are printed, not streamed)");
        factory = factory.sink(events.clone());
    }

    let tracer = factory.create_agent_tracer(AgentTrace {
        flow_id: "flow-123".into(),
        trace_name: "Customer Support Flow".into(),
        user_id: Some("user-456".into()),
        session_id: Some("session-789".into()),
        ..Default::default()
    });
    tracer.start_trace();
    let query = "How do I reset my password?";
    let answer = tracer
        .scope(async {
            let class = classify(query).await?;
            let category = class["classification"].as_str().unwrap_or("general").to_owned();
            // Independent components run concurrently (Langflow runs vertices in parallel).
            let (documents, history) = tokio::join!(retrieve(&category, 3), load_history("session-789"));
            generate(query, &documents?, &history).await
        })
        .await;
    let (outputs, error) = match &answer {
        Ok(v) => (json!({"answer": v["content"][0]["text"]}), None),
        Err(e) => (Value::Null, Some(e.to_string())),
    };
    tracer.end(json!({"query": query}), outputs, error.as_deref(), None);

    let totals = tracer.totals();
    println!("trace {} ({} components, {} failed)", tracer.trace_id(), totals.spans, totals.failed_spans);
    println!(
        "tokens: {} in ({} cached), {} out; cost: ${:.6}",
        totals.input_tokens, totals.cached_tokens, totals.output_tokens, totals.total_cost
    );
    if kafka {
        tracer.flush(Duration::from_secs(10))?;
        println!("streamed to genesis-traces-streaming, key {}", tracer.trace_id());
    } else {
        for e in events.events() {
            println!("{}", serde_json::to_string(&e)?);
        }
    }
    Ok(())
}
