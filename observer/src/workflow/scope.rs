//! The current workflow: [`WorkflowTracer::scope`] (task-scoped, for a future) and
//! [`WorkflowTracer::scope_sync`] (thread-scoped, for a closure) make a workflow current, [`current_workflow`]
//! reads it (what `#[step]` uses to find its workflow).

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::tracer::WorkflowTracer;
use crate::scope::guard::ScopeGuard;

impl WorkflowTracer {
    /// Runs `fut` with this workflow as the [current workflow](current_workflow) (task-scoped: visible only while
    /// `fut` is being polled, on whichever thread polls it, never to other tasks).
    pub fn scope<F: Future>(&self, fut: F) -> WorkflowScope<F> {
        WorkflowScope { wf: Some(self.clone()), inner: fut }
    }

    /// Runs `f` with this workflow as the current workflow (thread-scoped, for synchronous code); the previous
    /// current workflow is restored afterwards, also on panic.
    pub fn scope_sync<R>(&self, f: impl FnOnce() -> R) -> R {
        let mut slot = Some(self.clone());
        let _guard = ScopeGuard::enter(&CURRENT, &mut slot);
        f()
    }
}

thread_local! {
    pub(crate) static CURRENT: RefCell<Option<WorkflowTracer>> = const { RefCell::new(None) };
}

pin_project_lite::pin_project! {
    /// A future running with a current workflow; see [`WorkflowTracer::scope`].
    #[must_use = "futures do nothing unless polled"]
    pub struct WorkflowScope<F> {
        wf: Option<WorkflowTracer>,
        #[pin]
        inner: F,
    }
}

impl<F: Future> Future for WorkflowScope<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _guard = ScopeGuard::enter(&CURRENT, this.wf);
        this.inner.poll(cx)
    }
}

/// The workflow of the innermost current [`scope`](WorkflowTracer::scope) (of the running task) or
/// [`scope_sync`](WorkflowTracer::scope_sync) (of the thread), if any.
pub fn current_workflow() -> Option<WorkflowTracer> {
    crate::scope::guard::current(&CURRENT)
}

#[cfg(test)]
mod tests {
    use std::pin::pin;
    use std::task::Waker;

    use super::*;

    fn current_name() -> Option<String> {
        current_workflow().map(|wf| wf.name().to_owned())
    }

    #[test]
    fn scope_sync_nests_and_restores() {
        let (outer, inner) = (WorkflowTracer::new("outer"), WorkflowTracer::new("inner"));
        assert_eq!(current_name(), None);
        outer.scope_sync(|| {
            assert_eq!(current_name().as_deref(), Some("outer"));
            inner.scope_sync(|| assert_eq!(current_name().as_deref(), Some("inner")));
            assert_eq!(current_name().as_deref(), Some("outer"));
        });
        assert_eq!(current_name(), None);
    }

    #[test]
    fn scope_sync_restores_on_panic() {
        let wf = WorkflowTracer::new("w");
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| wf.scope_sync(|| panic!("boom"))));
        assert!(caught.is_err());
        assert_eq!(current_name(), None);
    }

    #[test]
    fn a_scoped_future_sees_its_workflow_only_while_polled() {
        let wf = WorkflowTracer::new("task");
        let mut seen = Vec::new();
        {
            let mut fut = pin!(wf.scope(std::future::poll_fn(|_| {
                seen.push(current_name());
                if seen.len() < 2 {
                    Poll::Pending
                } else {
                    Poll::Ready(())
                }
            })));
            let mut cx = Context::from_waker(Waker::noop());
            assert!(fut.as_mut().poll(&mut cx).is_pending());
            assert_eq!(current_name(), None, "not between polls");
            assert!(fut.as_mut().poll(&mut cx).is_ready());
        }
        assert_eq!(seen, [Some("task".to_owned()), Some("task".to_owned())]);
    }
}
