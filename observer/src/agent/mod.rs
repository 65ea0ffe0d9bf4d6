//! The AgentTracer: Langflow / AI Studio flow tracing (one trace per flow run, one span per component), its
//! event stream and sinks, the current trace of a task, and the [`TracerFactory`]. Public through
//! `observer::trace`.
//!
//! `config` (what a tracer is told) · `tracer` (the state of a trace and the calls that change it) · `events`
//! (the stream's messages) · `shrink` (size limits) · `pricing` (tokens and cost of an output) · `spans`
//! (OpenTelemetry) · `kind` (component kinds) · `sink` (where events go) · `scope` (the current trace) ·
//! `factory` (TracerFactory).

mod config;
mod events;
mod factory;
mod kind;
mod pricing;
pub(crate) mod scope;
mod shrink;
mod sink;
mod spans;
mod tracer;

pub use config::{AgentTrace, AgentTracerConfig, DEFAULT_PROJECT_NAME, DEFAULT_TRACE_TOPIC};
pub use events::{TraceEvent, TraceEventType};
pub use factory::TracerFactory;
pub use kind::ComponentKind;
pub use pricing::AgentTotals;
pub use scope::{current_agent, AgentScope};
pub use shrink::MAX_EVENT_BYTES;
pub use sink::{MemoryTraceSink, TraceSink};
pub use tracer::{AgentTracer, ComponentStart, MAX_WARNINGS};
