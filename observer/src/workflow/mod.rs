//! The WorkflowTracer: step-by-step timing of any multi-step process (the guide's "Workflow Tracing"), and its
//! optional event stream. Public through [`crate::trace`].

mod stream;
mod tracer;

pub(crate) use stream::default_workflow_sink;
pub use stream::{MemoryWorkflowSink, WorkflowEvent, WorkflowEventType, WorkflowSink};
pub use tracer::{
    current_workflow, trace_workflow, Step, StepRecord, StepStatus, WorkflowScope, WorkflowSummary, WorkflowTracer,
};
