//! The LLM HTTP instrumentation (feature `llm-http`): the shared options, and [`record_llm_call`].

mod body;
mod detect;
mod extract;
mod record;
mod reqwest;
mod sse;
mod tower;

use std::time::Duration;

pub use self::body::LlmBody;
pub use self::detect::Provider;
pub use self::reqwest::LlmMiddleware;
pub use self::tower::{BoxError, LlmLayer, LlmService, MAX_REQUEST_BYTES};
use crate::llm::semconv::{
    GEN_AI_INPUT_MESSAGES, GEN_AI_OUTPUT_MESSAGES, GEN_AI_REQUEST_MAX_TOKENS, GEN_AI_REQUEST_TEMPERATURE,
    GEN_AI_REQUEST_TOP_P, GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, GEN_AI_SYSTEM_INSTRUCTIONS,
};
use crate::llm::usage::TokenUsage;
use crate::CostResult;

/// Per-middleware overrides of the global switches.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Options {
    openai: Option<bool>,
    anthropic: Option<bool>,
    audit: Option<bool>,
    summary_chars: usize,
    capture: Option<crate::CaptureLevel>,
}

impl Options {
    /// The settings of a call to `provider`, or `None` when it is not instrumented.
    pub(crate) fn resolve(&self, provider: Provider) -> Option<extract::Settings> {
        record::resolve(provider, self.openai, self.anthropic, self.audit, self.summary_chars, self.capture)
    }
}

/// The builder methods shared by [`LlmMiddleware`] and [`LlmLayer`].
macro_rules! options_builder {
    ($ty:ty) => {
        impl $ty {
            /// Instruments the providers the global config switches on (see the [module docs](crate::llm)).
            pub fn new() -> Self {
                Self::default()
            }

            /// Instruments OpenAI-compatible calls or not, whatever `ObserverConfig::instrument_openai` says.
            #[must_use]
            pub fn instrument_openai(mut self, on: bool) -> Self {
                self.options.openai = Some(on);
                self
            }

            /// Instruments Anthropic calls or not, whatever `ObserverConfig::instrument_anthropic` says.
            #[must_use]
            pub fn instrument_anthropic(mut self, on: bool) -> Self {
                self.options.anthropic = Some(on);
                self
            }

            /// Records an LLM interaction audit event per call or not, whatever
            /// `ObserverConfig::log_llm_interactions` says.
            #[must_use]
            pub fn log_llm_interactions(mut self, on: bool) -> Self {
                self.options.audit = Some(on);
                self
            }

            /// Adds the first `max_chars` characters of the last user input and of the output to the audit
            /// event (`prompt_summary`, `response_summary`), as far as the [capture level](crate::CaptureLevel)
            /// allows: the prompt's at `Request` and above, the response's at `RequestResponse`. `0` (the
            /// default) records lengths only.
            #[must_use]
            pub fn content_summaries(mut self, max_chars: usize) -> Self {
                self.options.summary_chars = max_chars;
                self
            }

            /// The [capture level](crate::CaptureLevel) of the calls through this middleware, whatever
            /// `ObserverConfig::capture_level` says: `None` records nothing (no span, no audit event),
            /// `Metadata` no content, `Request` adds `gen_ai.input.messages` and `gen_ai.system_instructions`,
            /// `RequestResponse` also `gen_ai.output.messages` (content redacted).
            #[must_use]
            pub fn capture(mut self, level: crate::CaptureLevel) -> Self {
                self.options.capture = Some(level);
                self
            }
        }
    };
}
pub(crate) use options_builder;

/// One LLM call made without the middleware, for [`record_llm_call`].
///
/// ```
/// use std::time::Duration;
/// use observer::llm::{record_llm_call, LlmCall, TokenUsage};
///
/// let cost = record_llm_call(&LlmCall {
///     provider: "openai".into(),
///     model: "gpt-4o".into(),
///     usage: TokenUsage { input_tokens: 1000, output_tokens: 500, cached_tokens: 200, ..Default::default() },
///     finish_reasons: vec!["stop".into()],
///     duration: Duration::from_millis(850),
///     ..Default::default()
/// });
/// assert!(cost.price_found);
/// ```
#[derive(Debug, Clone, Default)]
pub struct LlmCall {
    /// Provider, e.g. `openai`, `anthropic` (also used for pricing).
    pub provider: String,
    /// Operation; empty means `chat`.
    pub operation: String,
    /// The requested model.
    pub model: String,
    /// The model that answered, when the response says (used for pricing when set).
    pub response_model: Option<String>,
    /// The provider's response id.
    pub response_id: Option<String>,
    /// Finish reasons, one per choice.
    pub finish_reasons: Vec<String>,
    /// Token usage (cached and cache-creation tokens part of the input, reasoning part of the output).
    pub usage: TokenUsage,
    /// How long the call took.
    pub duration: Duration,
    /// Time to the first streamed chunk, for streamed calls.
    pub time_to_first_chunk: Option<Duration>,
    /// Requested temperature.
    pub temperature: Option<f64>,
    /// Requested maximum output tokens.
    pub max_tokens: Option<u64>,
    /// Requested `top_p`.
    pub top_p: Option<f64>,
    /// The API host (`server.address`).
    pub server_address: Option<String>,
    /// The API port (`server.port`).
    pub server_port: Option<u16>,
    /// The HTTP status of the response.
    pub http_status: Option<u16>,
    /// Set when the call failed: the `error.type` (e.g. `429`, `timeout`).
    pub error: Option<String>,
    /// Records an audit event or not; `None` follows `ObserverConfig::log_llm_interactions` (off before `init`).
    pub log_interaction: Option<bool>,
    /// A short summary of the prompt for the audit event (never the prompt itself).
    pub prompt_summary: Option<String>,
    /// A short summary of the response for the audit event.
    pub response_summary: Option<String>,
    /// The call's [capture level](crate::CaptureLevel); `None` follows `ObserverConfig::capture_level`
    /// (`Metadata` before `init`). At `CaptureLevel::None` nothing is recorded (the cost is still returned); the
    /// summaries and messages below are recorded only at the levels that allow them.
    pub capture: Option<crate::CaptureLevel>,
    /// The messages sent, in the GenAI conventions' format (`[{"role": "user", "parts": [{"type": "text",
    /// "content": ".."}]}]`): recorded, redacted, as `gen_ai.input.messages` at `Request` and above.
    pub input_messages: Option<serde_json::Value>,
    /// The system instructions (`[{"type": "text", "content": ".."}]`): `gen_ai.system_instructions` at `Request`
    /// and above.
    pub system_instructions: Option<serde_json::Value>,
    /// The messages returned (`[{"role": "assistant", "parts": [..], "finish_reason": "stop"}]`):
    /// `gen_ai.output.messages` at `RequestResponse`.
    pub output_messages: Option<serde_json::Value>,
}

/// Records a finished LLM call: the same span as the middleware's (as a child of the current span), its cost
/// and, when enabled, the audit event. Returns the cost.
///
/// `tracing` spans cannot be back-dated, so this span starts and ends now; the call's real duration is its
/// `gen_ai.client.operation.duration` attribute (seconds).
pub fn record_llm_call(call: &LlmCall) -> CostResult {
    let operation = if call.operation.is_empty() { crate::llm::semconv::operation::CHAT } else { &call.operation };
    let model = (!call.model.is_empty()).then_some(call.model.as_str());
    let capture = call.capture.unwrap_or_else(crate::init::capture_level);
    let priced_model = call.response_model.as_deref().unwrap_or(&call.model);
    if !capture.records() {
        return crate::cost::calculate_cost_usage(&call.provider, priced_model, &call.usage);
    }
    let span = record::new_span(&call.provider, operation, model);
    if capture.captures_request() {
        if let Some(v) = &call.system_instructions {
            record::record_content(&span, GEN_AI_SYSTEM_INSTRUCTIONS, v.clone());
        }
        if let Some(v) = &call.input_messages {
            record::record_content(&span, GEN_AI_INPUT_MESSAGES, v.clone());
        }
    }
    if capture.captures_response() {
        if let Some(v) = &call.output_messages {
            record::record_content(&span, GEN_AI_OUTPUT_MESSAGES, v.clone());
        }
    }
    if let Some(t) = call.temperature {
        span.record(GEN_AI_REQUEST_TEMPERATURE, t);
    }
    if let Some(n) = call.max_tokens {
        span.record(GEN_AI_REQUEST_MAX_TOKENS, record::int(n));
    }
    if let Some(p) = call.top_p {
        span.record(GEN_AI_REQUEST_TOP_P, p);
    }
    if let Some(t) = call.time_to_first_chunk {
        span.record(GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, t.as_secs_f64());
    }
    if let Some(host) = &call.server_address {
        span.record(record::SERVER_ADDRESS, host.as_str());
    }
    if let Some(port) = call.server_port {
        span.record(record::SERVER_PORT, i64::from(port));
    }
    span.record(record::OPERATION_DURATION, call.duration.as_secs_f64());
    let audit = call.log_interaction.unwrap_or_else(|| crate::init::llm_http_flags().log_llm_interactions);
    let outcome = record::Outcome {
        provider: &call.provider,
        operation,
        request_model: model,
        response_model: call.response_model.as_deref(),
        response_id: call.response_id.as_deref(),
        finish_reasons: &call.finish_reasons,
        usage: Some(call.usage),
        error: call.error.clone().map(|e| (e, String::new())),
        duration: call.duration,
        audit,
        prompt_summary: call.prompt_summary.clone().filter(|_| capture.captures_request()),
        prompt_chars: None,
        response_summary: call.response_summary.clone().filter(|_| capture.captures_response()),
        response_chars: None,
        status: call.http_status,
        server_address: call.server_address.as_deref(),
        server_port: call.server_port,
        time_to_first_chunk: call.time_to_first_chunk,
    };
    let cost = record::complete(&span, &outcome);
    cost.unwrap_or_else(|| crate::cost::calculate_cost_usage(&call.provider, priced_model, &TokenUsage::default()))
}
