//! LLM calls: the token usage found in model outputs, the OpenTelemetry GenAI attribute names ([`semconv`],
//! shared by the agent tracer and the HTTP instrumentation) and, with feature `llm-http`, the HTTP instrumentation.
//!
//! # Token usage in output JSON
//!
//! Token usage, model and provider found in arbitrary LLM or component output JSON:
//!
//! [`extract_llm_info`] searches a JSON value (e.g. a component's output, a provider's response body, a
//! serialised LangChain message) for the usage shapes of the common providers and frameworks, and for the model
//! and provider names. [`Extractors`] adds user-supplied [`UsageExtractor`]s for other shapes.
//!
//! ```
//! use observer::llm::{extract_llm_info, TokenUsage};
//!
//! let output = serde_json::json!({"classification": "account", "model": "gpt-4o", "input_tokens": 100, "output_tokens": 50});
//! let info = extract_llm_info(&output);
//! assert_eq!(info.usage, Some(TokenUsage::new(100, 50)));
//! assert_eq!(info.model.as_deref(), Some("gpt-4o"));
//! assert_eq!(info.provider.as_deref(), Some("openai"));
//! ```
//!
//! ## Recognised usage shapes
//!
//! Every JSON object is checked for these sets of keys, wherever it sits (so `usage`, `usage_metadata`,
//! `response_metadata.token_usage`, `llm_output.token_usage`, `usageMetadata`… are all found by the same rules,
//! as are the same keys directly on an output object):
//!
//! | Shape | Keys | Normalisation |
//! |---|---|---|
//! | OpenAI chat | `prompt_tokens`, `completion_tokens`, `prompt_tokens_details.cached_tokens`/`audio_tokens`, `completion_tokens_details.reasoning_tokens`/`audio_tokens` (also DeepSeek's `prompt_cache_hit_tokens`) | as is |
//! | OpenAI Responses, LangChain `usage_metadata` | `input_tokens`, `output_tokens`, `input_tokens_details.cached_tokens`/`audio_tokens`, `output_tokens_details.reasoning_tokens`/`audio_tokens`, `input_token_details.cache_read`/`cache_creation`/`ephemeral_1h_input_tokens`/`audio`, `output_token_details.reasoning`/`audio` | as is |
//! | Anthropic | `input_tokens`, `output_tokens` with `cache_read_input_tokens` and/or `cache_creation_input_tokens` (one-hour writes: `cache_creation.ephemeral_1h_input_tokens`) | input = input + cache read + cache creation |
//! | Gemini | `promptTokenCount`, `candidatesTokenCount`, `cachedContentTokenCount`, `thoughtsTokenCount`, `toolUsePromptTokenCount` | input = prompt + tool-use prompt, output = candidates + thoughts |
//! | Bedrock Converse | `inputTokens`, `outputTokens`, `cacheReadInputTokens`, `cacheWriteInputTokens` | input = input + cache read + cache write |
//!
//! An object is an Anthropic usage when it has a `cache_read_input_tokens` or `cache_creation_input_tokens` key
//! (Anthropic's `input_tokens` excludes cache reads and writes); without them the Anthropic and Responses shapes
//! mean the same. Every result is normalised to the [`TokenUsage`] invariant: cached, cache-creation and audio
//! tokens are parts of `input_tokens`, reasoning and audio tokens parts of `output_tokens`; inconsistent data is
//! clamped (the parts are lowered to fit their totals, never the totals raised).
//!
//! Counts may be non-negative integers, non-negative finite floats (truncated) or strings holding either;
//! negative numbers, NaN, booleans and other types are ignored as if the key were absent. A usage whose keys are
//! all present with zeros is `Some` (an explicit zero usage); `usage` is `None` only when no token key was found.
//!
//! ## Merge rule
//!
//! - Shapes found on the same object, the results of custom extractors on that object, and the usages found
//!   under its **view members** (`usage`, `usage_metadata`, `usageMetadata`, `token_usage`, `response_metadata`,
//!   `llm_output`, `generation_info`) merge **field-wise by maximum**: they are views of the same response (a
//!   LangChain `AIMessage` carries both `response_metadata.token_usage` and `usage_metadata`, and the cached
//!   tokens may be in only one of them).
//! - The usages found under an object's **other members** (e.g. `{"step1": {..}, "step2": {..}}`) are distinct
//!   calls and are **summed** (saturating), except that a usage with the same input and output totals as one
//!   already found among them is the same usage reported twice and merges with it by maximum. The sum then merges
//!   by maximum with the object's own usage (an object that reports the total of its members is not counted twice).
//! - The usages found in the elements of an **array** are **summed** (saturating): a list of messages or calls.
//! - Each JSON node is visited once. The detail objects read as part of a recognised shape
//!   (`prompt_tokens_details`, `input_token_details`, …) are not searched again.
//!
//! ## Bounds
//!
//! A count above [`MAX_TOKEN_COUNT`](crate::cost::MAX_TOKEN_COUNT) (one billion) is not believed: it is lowered
//! to that ceiling and the usage is marked [`capped`](TokenUsage::capped), which marks any cost computed from it
//! as not trustworthy.
//!
//! ## Model and provider
//!
//! The model is the first non-empty string (trimmed) of `model`, `model_name`, `model_id`, `modelId`,
//! `modelVersion` (Gemini) or `ls_model_name` on an object, so `response_metadata.model_name` and
//! `response_metadata.model` are found too; the one nearest to the root wins (on a tie, the first in document
//! order). The provider is the nearest `provider` or `ls_provider` string (e.g. `response_metadata.ls_provider`),
//! otherwise [`detect_provider`] of the model. A custom extractor's model or provider takes precedence over the
//! built-in keys of the same object.
//!
//! ## Limits
//!
//! The search never panics and is bounded: objects and arrays nested deeper than
//! [`Extractors::MAX_DEPTH`] (64) levels below the root are not searched, and at most [`Extractors::MAX_NODES`]
//! (100,000) objects and arrays are visited per call; what lies beyond either limit is ignored. The search recurses
//! at most `MAX_DEPTH` levels, so hostile input cannot overflow the stack.
//!
//! # HTTP instrumentation (feature `llm-http`)
//!
//! The guide's `instrument_openai` / `instrument_anthropic`:
//!
//! - [`LlmMiddleware`] for `reqwest-middleware` clients,
//! - [`LlmLayer`] for `tower` HTTP services (`http::Request<B>` or `reqwest::Request`, e.g. behind
//!   `async-openai`'s `with_http_service`; see `examples/rag_agent.rs`),
//! - [`record_llm_call`] for clients that take neither.
//!
//! ## What is traced
//!
//! `POST` requests to OpenAI-compatible paths under any base path (`…/chat/completions`, `…/responses`,
//! `…/completions`, `…/embeddings`) and to Anthropic's `…/v1/messages`. Everything else passes through untouched
//! (no span, no body read).
//!
//! Each call gets a client span (`otel.kind = client`) named `"{operation} {model}"` (e.g. `chat gpt-4o`) with
//! the GenAI attributes of [`semconv`]: operation, provider (`gen_ai.provider.name` and
//! `gen_ai.system`), request model, temperature, max tokens, top_p (from the JSON request body), response model,
//! id and finish reasons, input / output / cache-read / cache-creation / reasoning tokens, `gen_ai.cost` (USD, by
//! [`calculate_cost_usage`](crate::calculate_cost_usage): cache reads and writes at their rates, counted
//! once; `observer.cost_trusted = false` when a count was absurd),
//! `server.address`, `server.port`, `http.response.status_code` and, for streams,
//! `gen_ai.response.time_to_first_chunk` (seconds). HTTP 4xx/5xx responses, transport errors and bodies that
//! fail mid-way set the span's status to error with `error.type` (the HTTP status code, `transport` or
//! `stream_error`); the caller still receives the response (e.g. the 429 body) unchanged.
//!
//! The span starts before the request is sent (the request runs inside it, so spans of the HTTP client nest
//! under it) and ends when the response body ends, fails or is dropped.
//!
//! ## Bodies
//!
//! The request body of an LLM call is read for its parameters: in place for `reqwest` requests, into memory for
//! `http` requests (they are small). The response body is never buffered for the caller: it passes frame by
//! frame, byte-identical, while a bounded copy of a JSON body (at most 16 MiB) or an incremental parse of an
//! event stream (`text/event-stream`; events of at most 1 MiB) collects the usage: OpenAI's last chunk
//! (`stream_options.include_usage`), the Responses API's `response.completed`, Anthropic's `message_start` and
//! `message_delta`. A body the instrumentation cannot read only means fewer attributes; it never changes or fails
//! the call.
//!
//! ## Switches
//!
//! Read from the global config at every call: [`ObserverConfig::instrument_openai`] and
//! [`instrument_anthropic`](crate::ObserverConfig::instrument_anthropic) (both `true` by default, before and
//! after [`init`](crate::init): an installed middleware traces unless switched off) switch the two providers, and
//! [`log_llm_interactions`](crate::ObserverConfig::log_llm_interactions) records an
//! [`audit::log_llm_interaction`](crate::audit::log_llm_interaction) event per call (model, provider, tokens,
//! cost, duration, status, prompt and response lengths). **Before [`init`](crate::init)** both providers are
//! instrumented and nothing is audited: adding the middleware is the opt-in, and tracing needs no audit pipeline.
//! Each middleware or layer can override the three switches, and [`content_summaries`](LlmMiddleware::content_summaries)
//! adds the first characters of the last user input and of the output to the audit event (off by default:
//! audit events never carry prompt text unless asked to).
//!
//! [`ObserverConfig::instrument_openai`]: crate::ObserverConfig::instrument_openai

#[cfg(feature = "llm-http")]
pub(crate) mod http;
#[cfg_attr(not(feature = "llm-http"), allow(dead_code))]
pub(crate) mod messages;
pub mod semconv;
pub(crate) mod usage;

pub use usage::{detect_provider, extract_llm_info, Extractors, LlmInfo, TokenUsage, UsageExtractor};

#[cfg(feature = "llm-http")]
#[cfg_attr(docsrs, doc(cfg(feature = "llm-http")))]
pub use http::{
    record_llm_call, BoxError, LlmBody, LlmCall, LlmLayer, LlmMiddleware, LlmService, Provider, MAX_REQUEST_BYTES,
};
