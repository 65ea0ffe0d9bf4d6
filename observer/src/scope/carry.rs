//! [`ScopeExt::in_current_scope`]: the capture of every ambient value into a spawned task.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::guard::{current, ScopeGuard};
use crate::agent::scope::Current as AgentCurrent;
use crate::export::Core;
use crate::trace::WorkflowTracer;
use crate::ActorContext;

/// Carries the ambient values of the caller into a future that runs elsewhere, typically a spawned task.
///
/// A future given to `tokio::spawn` starts with no actor, no current workflow, no current agent trace and the
/// process's audit pipeline: the scopes of the code that spawned it belong to that code's task.
/// [`in_current_scope`](ScopeExt::in_current_scope) captures them all *now* and makes them current again whenever
/// the wrapped future is polled:
///
/// - the actor (as [`get_actor_context`](crate::get_actor_context) resolves it: scope, task, thread, providers),
///   as a [`with_actor`](crate::with_actor) scope — `set_actor_context` inside it changes only the spawned task;
/// - the current workflow ([`current_workflow`](crate::trace::current_workflow)), so its `#[step]`s record into it;
/// - the current agent trace and component ([`current_agent`](crate::trace::current_agent)), so its
///   `#[agent_component]` calls join the trace as children of that component;
/// - the audit pipeline of a [`with_pipeline`](crate::export::with_pipeline) scope, so its audit events go there.
///
/// What is not current now stays absent in the wrapped future. The `tracing` span is carried separately, with
/// [`tracing::Instrument::in_current_span`].
///
/// ```
/// use observer::{get_actor_context, with_actor, ActorContext, ScopeExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// with_actor(ActorContext::new("user-123"), async {
///     let spawned = tokio::spawn(async { get_actor_context().map(|a| a.actor_id) }.in_current_scope());
///     assert_eq!(spawned.await.unwrap().as_deref(), Some("user-123"));
/// })
/// .await;
/// # }
/// ```
pub trait ScopeExt: Future + Sized {
    /// Wraps this future to run with the actor, workflow, agent trace and audit pipeline that are current now;
    /// see [`ScopeExt`].
    fn in_current_scope(self) -> InCurrentScope<Self> {
        InCurrentScope {
            actor: Some(crate::actor::current_actor()),
            workflow: current(&crate::workflow::CURRENT_WORKFLOW),
            agent: current(&crate::agent::scope::CURRENT),
            pipeline: current(&crate::export::CURRENT_PIPELINE),
            inner: self,
        }
    }
}

impl<F: Future> ScopeExt for F {}

pin_project_lite::pin_project! {
    /// A future running with the actor, workflow, agent trace and audit pipeline captured by
    /// [`in_current_scope`](ScopeExt::in_current_scope).
    #[must_use = "futures do nothing unless polled"]
    pub struct InCurrentScope<F> {
        actor: Option<Option<Arc<ActorContext>>>,
        workflow: Option<WorkflowTracer>,
        agent: Option<AgentCurrent>,
        pipeline: Option<Arc<Core>>,
        #[pin]
        inner: F,
    }
}

impl<F: Future> Future for InCurrentScope<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        // Dropped in reverse order: agent, workflow, actor, pipeline.
        let _pipeline = ScopeGuard::enter(&crate::export::CURRENT_PIPELINE, this.pipeline);
        let _actor = ScopeGuard::enter(&crate::actor::context::SCOPE, this.actor);
        let _workflow = ScopeGuard::enter(&crate::workflow::CURRENT_WORKFLOW, this.workflow);
        let _agent = ScopeGuard::enter(&crate::agent::scope::CURRENT, this.agent);
        this.inner.poll(cx)
    }
}

impl<F> std::fmt::Debug for InCurrentScope<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InCurrentScope")
            .field("actor", &self.actor)
            .field("workflow", &self.workflow.is_some())
            .field("agent", &self.agent.is_some())
            .field("pipeline", &self.pipeline.is_some())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{current_agent, current_workflow, AgentTrace, AgentTracer, AgentTracerConfig};
    use crate::{get_actor_context, set_actor_context, with_actor};

    fn ambient() -> (Option<String>, Option<String>, Option<String>) {
        (
            get_actor_context().map(|a| a.actor_id),
            current_workflow().map(|w| w.name().to_owned()),
            current_agent().map(|t| t.trace_name().to_owned()),
        )
    }

    #[test]
    fn in_current_scope_carries_actor_workflow_and_agent_into_a_spawned_task() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
        let wf = crate::trace::trace_workflow("scope-wf");
        let trace = AgentTrace { trace_name: "scope-agent".into(), ..Default::default() };
        let agent = AgentTracer::new(AgentTracerConfig { trace, ..Default::default() }).expect("tracer");
        let (carried, plain) = rt.block_on(with_actor(
            ActorContext::new("scope-user"),
            wf.scope(agent.scope(async {
                let carried = tokio::spawn(async { ambient() }.in_current_scope());
                let plain = tokio::spawn(async { ambient() });
                (carried.await.unwrap(), plain.await.unwrap())
            })),
        ));
        let expected = (Some("scope-user".to_owned()), Some("scope-wf".to_owned()), Some("scope-agent".to_owned()));
        assert_eq!(carried, expected);
        assert_eq!(plain, (None, None, None), "a plain spawn starts with nothing");
    }

    #[test]
    fn a_carried_actor_scope_keeps_its_own_changes_and_nothing_else_leaks() {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(with_actor(ActorContext::new("outer"), async {
            let task = async {
                set_actor_context(Some(ActorContext::new("changed-in-task")));
                tokio::task::yield_now().await;
                get_actor_context().map(|a| a.actor_id)
            };
            let inner = tokio::spawn(task.in_current_scope()).await.unwrap();
            assert_eq!(inner.as_deref(), Some("changed-in-task"), "kept across polls");
            assert_eq!(get_actor_context().map(|a| a.actor_id).as_deref(), Some("outer"), "the spawner's is kept");
        }));
        // Outside any scope nothing is captured, and nothing is left on the thread.
        assert_eq!(ambient(), (None, None, None));
        let outside = rt.block_on(async { tokio::spawn(async { ambient() }.in_current_scope()).await.unwrap() });
        assert_eq!(outside, (None, None, None));
    }

    #[test]
    fn in_current_scope_carries_the_scoped_audit_pipeline() {
        use crate::export::{with_pipeline, MemorySink, Pipeline};
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
        let sink = MemorySink::new();
        let config = crate::ObserverConfig {
            service_name: "scoped-pipeline".into(),
            audit_sink: crate::AuditSink::Memory(sink.clone()),
            ..Default::default()
        };
        let pipeline = Pipeline::new(config).expect("pipeline");
        rt.block_on(with_pipeline(&pipeline, async {
            let emit = || crate::audit::log_read(crate::ResourceType::Document, "carried").emit().map(|_| ());
            tokio::spawn(async move { emit() }.in_current_scope()).await.unwrap().expect("emitted");
        }));
        pipeline.flush(std::time::Duration::from_secs(5)).expect("flush");
        let events = sink.events();
        assert_eq!(events.len(), 1, "the spawned task's event went to the scoped pipeline");
        assert_eq!(events[0].resource_id, "carried");
    }
}
