//! The AgentTracer: Langflow / AI Studio flow tracing (one trace per flow run, one span per component), its
//! event stream and sinks, the current trace of a task, and the [`TracerFactory`]. Public through
//! `observer::trace`.

mod factory;
pub(crate) mod scope;
mod sink;
mod tracer;

pub use factory::{AgentTrace, TracerFactory};
pub use scope::{current_agent_tracer, with_current_agent, AgentScope};
pub use sink::{MemoryTraceSink, TraceEvent, TraceEventType, TraceSink};
pub use tracer::{
    infer_component_type, AgentTotals, AgentTracer, AgentTracerConfig, ComponentStart, DEFAULT_PROJECT_NAME,
    DEFAULT_TRACE_TOPIC, MAX_EVENT_BYTES, MAX_WARNINGS,
};
