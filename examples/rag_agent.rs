//! The usage guide's "Standalone Agent Tracing" RAG agent: retrieve → generate, with every OpenAI call traced by
//! observer's LLM HTTP layer (GenAI span attributes, tokens, cost) behind `async-openai`'s `with_http_service`.
//!
//! Run it against any OpenAI-compatible API (OpenAI itself, a local server such as vLLM or Ollama's `/v1`):
//!
//! ```sh
//! OPENAI_BASE_URL=https://api.openai.com/v1 OPENAI_API_KEY=sk-... \
//!     cargo run --example rag_agent --features llm-http -- "What are the key findings?"
//! ```
//!
//! `OPENAI_MODEL` picks the model (default `gpt-4o`). Spans go to an OTLP collector when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set (e.g. `http://localhost:4318`), and are printed as JSON otherwise; LLM
//! interaction audit events are written to `observer-audit.jsonl`.

use std::time::Duration;

use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::middleware::HttpRequestFactory;
use async_openai::types::chat::{
    ChatCompletionRequestSystemMessage, ChatCompletionRequestUserMessage, CreateChatCompletionRequestArgs,
};
use async_openai::Client;
use observer::llm::LlmLayer;
use observer::ObserverConfig;
use tower::{Layer, ServiceExt};
use tracing::Instrument;

type Agent = Client<OpenAIConfig>;

/// An `async-openai` client whose HTTP calls go through observer's [`LlmLayer`] over a `reqwest::Client`.
fn openai_client() -> Agent {
    let mut config = OpenAIConfig::new();
    if let Ok(base) = std::env::var("OPENAI_BASE_URL") {
        config = config.with_api_base(base);
    }
    if let Ok(key) = std::env::var("OPENAI_API_KEY") {
        config = config.with_api_key(key);
    }
    let traced = LlmLayer::new().layer(reqwest::Client::new());
    let service = tower::service_fn(move |factory: HttpRequestFactory| {
        let traced = traced.clone();
        async move {
            let request = factory.build().await?;
            traced.oneshot(request).await.map_err(OpenAIError::Reqwest)
        }
    });
    Client::with_config(config).with_http_service(service)
}

/// Retrieves relevant documents (a stand-in for a vector store).
async fn retrieve_documents(query: &str) -> Vec<String> {
    let span = tracing::info_span!("retrieve", query);
    async {
        let docs = vec![
            "Doc 1: revenue grew 12% year over year, driven by the enterprise segment.".to_owned(),
            "Doc 2: churn fell to 3.1%; support response times halved after the new triage flow.".to_owned(),
        ];
        tracing::info!(count = docs.len(), "Retrieved documents");
        docs
    }
    .instrument(span)
    .await
}

/// Generates the answer; the LLM call is traced with tokens and cost by the layer.
async fn generate_response(
    client: &Agent,
    model: &str,
    query: &str,
    context: &[String],
) -> Result<String, OpenAIError> {
    let span = tracing::info_span!("generate", query, context_size = context.len());
    async {
        let request = CreateChatCompletionRequestArgs::default()
            .model(model)
            .messages([
                ChatCompletionRequestSystemMessage::from(format!("Context: {}", context.join(" "))).into(),
                ChatCompletionRequestUserMessage::from(query).into(),
            ])
            .build()?;
        let response = client.chat().create(request).await?;
        if let Some(usage) = &response.usage {
            // The layer already put these on the `chat {model}` span; the guide also logs them here.
            let cost = observer::calculate_cost(
                "openai",
                &response.model,
                usage.prompt_tokens.into(),
                usage.completion_tokens.into(),
            );
            tracing::info!(
                input_tokens = usage.prompt_tokens,
                output_tokens = usage.completion_tokens,
                cost = cost.total_cost,
                "LLM response"
            );
        }
        Ok(response.choices.into_iter().next().and_then(|c| c.message.content).unwrap_or_default())
    }
    .instrument(span)
    .await
}

/// The RAG pipeline.
async fn rag_query(client: &Agent, model: &str, query: &str) -> Result<String, OpenAIError> {
    let span = tracing::info_span!("rag-query", query, tags = "rag,agent");
    async {
        let docs = retrieve_documents(query).await;
        generate_response(client, model, query, &docs).await
    }
    .instrument(span)
    .await
}

// `pub`: the LLM tests (tests/llm_http.rs) run this `main` to check the export claim above.
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
pub async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let guard = observer::init(ObserverConfig {
        service_name: "rag-agent".into(),
        instrument_openai: true,
        log_llm_interactions: true,
        ..Default::default()
    })?;
    // With an OTLP endpoint configured (OTEL_EXPORTER_OTLP_ENDPOINT), `init` has installed the exporter and the
    // global subscriber; otherwise print spans as JSON.
    let _ = tracing_subscriber::fmt().json().with_span_list(false).with_current_span(true).try_init();

    let query = std::env::args().nth(1).unwrap_or_else(|| "What are the key findings?".to_owned());
    let model = std::env::var("OPENAI_MODEL").unwrap_or_else(|_| "gpt-4o".to_owned());
    let client = openai_client();
    match rag_query(&client, &model, &query).await {
        Ok(answer) => println!("{answer}"),
        Err(error) => eprintln!("rag query failed: {error}"),
    }
    observer::flush(Duration::from_secs(10))?;
    guard.shutdown()?;
    Ok(())
}
