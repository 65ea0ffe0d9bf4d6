//! LLM calls: token usage found in model outputs ([`usage`]), and the OpenTelemetry GenAI attribute names
//! ([`semconv`]) shared by the agent tracer and the HTTP instrumentation.

#[cfg(feature = "llm-http")]
pub mod http;
pub mod semconv;
pub mod usage;
