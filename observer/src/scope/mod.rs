//! The one scope primitive for the ambient values of a task or thread — the current actor scope, workflow,
//! agent trace and audit pipeline: a thread-local slot made current for one poll of a future (or one closure call)
//! and restored afterwards ([`ScopeGuard`](guard::ScopeGuard), in `guard.rs`), and the capture of all of them
//! into a spawned task ([`ScopeExt`], in `carry.rs`).
//!
//! Each value lives in its area's thread-local (`actor::context::SCOPE`, `workflow::CURRENT_WORKFLOW`,
//! `agent::scope::CURRENT`, `export::CURRENT_PIPELINE`); the area's scope future (`WithActor`, `WorkflowScope`,
//! `AgentScope`, `WithPipeline`) holds the value between polls and enters it with a
//! [`ScopeGuard`](guard::ScopeGuard) on every poll, so the value follows the future across `.await`
//! points and worker threads and is never seen by another task on the same thread.

mod carry;
pub(crate) mod guard;

pub use carry::{InCurrentScope, ScopeExt};
