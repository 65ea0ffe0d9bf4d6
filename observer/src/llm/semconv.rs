//! OpenTelemetry GenAI semantic-convention attribute names.
//!
//! **Version followed: OpenTelemetry semantic conventions v1.37.0, GenAI (status "Development")** — the release
//! that introduced `gen_ai.provider.name` (replacing `gen_ai.system`), the structured content attributes
//! `gen_ai.input.messages`, `gen_ai.output.messages` and `gen_ai.system_instructions`, and
//! `gen_ai.conversation.id`; the agent attributes `gen_ai.agent.id`, `gen_ai.agent.name` and
//! `gen_ai.agent.description` are those of its agent spans. Content attributes are written only at the
//! [capture levels](crate::CaptureLevel) that allow content, as JSON strings in the conventions' message format
//! (`[{"role": "user", "parts": [{"type": "text", "content": "…"}]}]`; output messages also carry
//! `finish_reason`), after redaction.
//!
//! `opentelemetry-semantic-conventions` marks its `gen_ai.*` constants deprecated (they moved to a separate GenAI
//! package), so the names used by this crate are defined here. One older name is still written:
//! `gen_ai.system`, next to `gen_ai.provider.name`, because the wire format of the reference SDK's spans names it
//! and dashboards built on those spans read it. No other pre-1.37 name (`gen_ai.prompt`, `gen_ai.completion`,
//! the per-message `gen_ai.*.message` events) is written.

/// The operation: `chat`, `text_completion`, `embeddings`, `invoke_agent`, `execute_tool`.
pub const GEN_AI_OPERATION_NAME: &str = "gen_ai.operation.name";
/// The provider, e.g. `openai`, `anthropic`.
pub const GEN_AI_PROVIDER_NAME: &str = "gen_ai.provider.name";
/// The provider under its older (pre-1.37) attribute name, kept because the reference SDK's spans carry it.
pub const GEN_AI_SYSTEM: &str = "gen_ai.system";
/// The model the request asked for.
pub const GEN_AI_REQUEST_MODEL: &str = "gen_ai.request.model";
/// The model that answered.
pub const GEN_AI_RESPONSE_MODEL: &str = "gen_ai.response.model";
/// The provider's id of the response.
pub const GEN_AI_RESPONSE_ID: &str = "gen_ai.response.id";
/// Why generation stopped, one entry per choice.
pub const GEN_AI_RESPONSE_FINISH_REASONS: &str = "gen_ai.response.finish_reasons";
/// Input tokens, cached ones included.
pub const GEN_AI_USAGE_INPUT_TOKENS: &str = "gen_ai.usage.input_tokens";
/// Output tokens.
pub const GEN_AI_USAGE_OUTPUT_TOKENS: &str = "gen_ai.usage.output_tokens";
/// Input tokens read from the provider's cache (a subset of the input tokens).
pub const GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: &str = "gen_ai.usage.cache_read.input_tokens";
/// Input tokens written to the provider's cache.
pub const GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: &str = "gen_ai.usage.cache_creation.input_tokens";
/// Reasoning tokens (a subset of the output tokens).
pub const GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: &str = "gen_ai.usage.reasoning.output_tokens";
/// Sampling temperature requested.
pub const GEN_AI_REQUEST_TEMPERATURE: &str = "gen_ai.request.temperature";
/// Maximum output tokens requested.
pub const GEN_AI_REQUEST_MAX_TOKENS: &str = "gen_ai.request.max_tokens";
/// Nucleus-sampling `top_p` requested.
pub const GEN_AI_REQUEST_TOP_P: &str = "gen_ai.request.top_p";
/// Conversation (session) id.
pub const GEN_AI_CONVERSATION_ID: &str = "gen_ai.conversation.id";
/// Agent name (on `invoke_agent` spans: the flow or agent component's name).
pub const GEN_AI_AGENT_NAME: &str = "gen_ai.agent.name";
/// Agent id (on `invoke_agent` spans: the flow id, or the agent component's id).
pub const GEN_AI_AGENT_ID: &str = "gen_ai.agent.id";
/// Agent description, when one is configured.
pub const GEN_AI_AGENT_DESCRIPTION: &str = "gen_ai.agent.description";
/// The messages sent to the model (a JSON array of `{role, parts}`), only at
/// [`CaptureLevel::Request`](crate::CaptureLevel::Request) and above.
pub const GEN_AI_INPUT_MESSAGES: &str = "gen_ai.input.messages";
/// The messages the model returned (a JSON array of `{role, parts, finish_reason}`), only at
/// [`CaptureLevel::RequestResponse`](crate::CaptureLevel::RequestResponse).
pub const GEN_AI_OUTPUT_MESSAGES: &str = "gen_ai.output.messages";
/// The system instructions sent apart from the messages (a JSON array of parts), only at
/// [`CaptureLevel::Request`](crate::CaptureLevel::Request) and above.
pub const GEN_AI_SYSTEM_INSTRUCTIONS: &str = "gen_ai.system_instructions";
/// Tool name.
pub const GEN_AI_TOOL_NAME: &str = "gen_ai.tool.name";
/// Seconds from the request until the first streamed chunk arrived.
pub const GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: &str = "gen_ai.response.time_to_first_chunk";
/// The call's cost in USD (not a standard attribute; the reference SDK writes it).
pub const GEN_AI_COST: &str = "gen_ai.cost";
/// `false` when the cost is not trustworthy (a token count above the ceiling was capped); absent otherwise.
/// Not a standard attribute.
pub const OBSERVER_COST_TRUSTED: &str = "observer.cost_trusted";

/// `gen_ai.operation.name` values.
pub mod operation {
    /// Chat completion (OpenAI chat/responses, Anthropic messages).
    pub const CHAT: &str = "chat";
    /// Legacy text completion.
    pub const TEXT_COMPLETION: &str = "text_completion";
    /// Embeddings.
    pub const EMBEDDINGS: &str = "embeddings";
    /// An agent invocation.
    pub const INVOKE_AGENT: &str = "invoke_agent";
    /// A tool execution.
    pub const EXECUTE_TOOL: &str = "execute_tool";
}
