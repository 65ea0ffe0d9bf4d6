//! OpenTelemetry export of `tracing` spans over OTLP (feature `otel`): the guide's `configure_logfire`. The
//! public items are re-exported from [`crate::trace`]; their settings, `TracingConfig`, live in `crate::config`.
//!
//! * `install` — [`configure_tracing`], [`otel_layer`] and `init`'s part;
//! * `pipeline` — the exporters (OTLP HTTP, gRPC in `grpc`, Kafka), the tracer provider and its resource;
//! * `layer` — the `tracing` layer and its filter;
//! * `redacting` — redaction of every span before it leaves the process ([`RedactingSpanExporter`]);
//! * `flush` — flush and shutdown of the installed exporters;
//! * `metrics` — the GenAI client metrics and the SDK's health metrics (the recorder compiled without `otel`
//!   too, as a no-op);
//! * `attributes` — what the rest of the crate writes on spans (compiled without `otel` too, as no-ops).

mod attributes;
#[cfg(feature = "otel")]
mod flush;
#[cfg(feature = "otel-grpc")]
mod grpc;
#[cfg(feature = "otel")]
mod install;
#[cfg(feature = "otel")]
mod layer;
mod metrics;
#[cfg(feature = "otel")]
mod pipeline;
#[cfg(feature = "otel")]
mod redacting;

#[cfg(feature = "otel")]
pub(crate) use attributes::current_trace_ids;
pub(crate) use attributes::{set_span_attribute, set_span_error};
#[cfg(feature = "otel")]
pub(crate) use flush::flush_tracing;
#[cfg(feature = "otel")]
pub use flush::{shutdown_tracing, shutdown_tracing_with_timeout};
#[cfg(feature = "otel")]
pub(crate) use install::{configure_from_init, is_configured};
#[cfg(feature = "otel")]
pub use install::{configure_tracing, otel_layer};
pub(crate) use metrics::{record_llm, LlmMetrics};
#[cfg(feature = "otel-kafka")]
pub(crate) use redacting::redact_batch;
#[cfg(feature = "otel")]
pub use redacting::RedactingSpanExporter;
