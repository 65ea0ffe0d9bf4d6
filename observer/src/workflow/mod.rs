//! The WorkflowTracer: step-by-step timing of any multi-step process (the guide's "Workflow Tracing"), and its
//! optional event stream. Public through [`crate::trace`].
//!
//! `tracer.rs` the workflow handle and its shared state · `step.rs` the steps · `summary.rs` what a workflow
//! reports · `scope.rs` the current workflow · `events.rs` the stream's messages · `sink.rs` where they go ·
//! `stream.rs` one run's stream.

mod events;
mod scope;
mod sink;
mod step;
mod stream;
mod summary;
mod tracer;

pub use events::{WorkflowEvent, WorkflowEventType};
pub(crate) use scope::CURRENT as CURRENT_WORKFLOW;
pub use scope::{current_workflow, WorkflowScope};
pub(crate) use sink::default_workflow_sink;
pub use sink::{MemoryWorkflowSink, WorkflowSink};
pub use step::Step;
pub use summary::{StepRecord, StepStatus, WorkflowSummary};
pub use tracer::{trace_workflow, WorkflowTracer};
