//! OpenTelemetry GenAI semantic-convention attribute names.
//!
//! `opentelemetry-semantic-conventions` marks its `gen_ai.*` constants deprecated (they moved to a separate GenAI
//! package), so the names used by this crate are defined here. Values follow the current conventions; the older
//! `gen_ai.system` is written next to `gen_ai.provider.name` for backends that still read it.

/// The operation: `chat`, `text_completion`, `embeddings`, `invoke_agent`, `execute_tool`.
pub const GEN_AI_OPERATION_NAME: &str = "gen_ai.operation.name";
/// The provider, e.g. `openai`, `anthropic`.
pub const GEN_AI_PROVIDER_NAME: &str = "gen_ai.provider.name";
/// The provider under its older attribute name.
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
/// Agent name.
pub const GEN_AI_AGENT_NAME: &str = "gen_ai.agent.name";
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
