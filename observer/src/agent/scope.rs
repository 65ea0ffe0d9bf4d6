//! The current agent trace (task or thread scoped) and the current component within it, for
//! `#[agent_component]`.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::tracer::AgentTracer;
use crate::scope::guard::ScopeGuard;

/// The agent trace a scope runs in, and the component it runs inside (the parent of components it starts).
#[derive(Clone, Debug)]
pub(crate) struct Current {
    pub(crate) tracer: AgentTracer,
    pub(crate) component: Option<Arc<str>>,
}

thread_local! {
    pub(crate) static CURRENT: RefCell<Option<Current>> = const { RefCell::new(None) };
}

pin_project_lite::pin_project! {
    /// A future running with a current agent trace; see [`AgentTracer::scope`].
    #[must_use = "futures do nothing unless polled"]
    pub struct AgentScope<F> {
        current: Option<Current>,
        #[pin]
        inner: F,
    }
}

impl<F> AgentScope<F> {
    pub(crate) fn new(tracer: AgentTracer, component: Option<Arc<str>>, inner: F) -> Self {
        Self { current: Some(Current { tracer, component }), inner }
    }
}

impl<F: Future> Future for AgentScope<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _guard = ScopeGuard::enter(&CURRENT, this.current);
        this.inner.poll(cx)
    }
}

impl AgentTracer {
    /// Runs `fut` with this tracer as the current agent trace of the task: `#[agent_component]` fns called in it
    /// become components of this trace.
    pub fn scope<F: std::future::Future>(&self, fut: F) -> AgentScope<F> {
        AgentScope::new(self.clone(), None, fut)
    }

    /// Runs `f` with this tracer as the current agent trace of the thread (see [`scope`](Self::scope)).
    pub fn scope_sync<R>(&self, f: impl FnOnce() -> R) -> R {
        scope_sync(self.clone(), None, f)
    }
}

/// Runs `f` with `tracer` (and `component`) current on this thread.
pub(crate) fn scope_sync<R>(tracer: AgentTracer, component: Option<Arc<str>>, f: impl FnOnce() -> R) -> R {
    let mut slot = Some(Current { tracer, component });
    let _guard = ScopeGuard::enter(&CURRENT, &mut slot);
    f()
}

/// The agent trace of the innermost current [`scope`](AgentTracer::scope) (task) or
/// [`scope_sync`](AgentTracer::scope_sync) (thread), if any. A task spawned from inside one keeps it when wrapped
/// with [`in_current_scope`](crate::ScopeExt::in_current_scope).
pub fn current_agent() -> Option<AgentTracer> {
    current().map(|c| c.tracer)
}

pub(crate) fn current() -> Option<Current> {
    crate::scope::guard::current(&CURRENT)
}
