//! [`ActorContext`] and where the current actor comes from: task scopes, the thread, registered providers.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};

/// Who performed an audited action. Serialised as the `actor` object of an audit event; optional
/// fields that are unset are left out of the JSON.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorContext {
    /// Stable identifier of the actor (Keycloak `sub` by default).
    pub actor_id: String,
    /// `"user"` (default), `"service"`, `"system"`, or any other kind the application uses.
    #[serde(default = "default_actor_type")]
    pub actor_type: String,
    /// E-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Login name (Keycloak `preferred_username`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Roles (Keycloak `realm_access.roles` by default).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Groups (Keycloak `groups`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Session identifier (Keycloak `session_state`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Client IP address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    /// Client user agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Tenant identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// Organisation identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<String>,
}

fn default_actor_type() -> String {
    "user".to_owned()
}

impl Default for ActorContext {
    fn default() -> Self {
        Self {
            actor_id: String::new(),
            actor_type: default_actor_type(),
            email: None,
            name: None,
            username: None,
            roles: Vec::new(),
            groups: Vec::new(),
            session_id: None,
            ip_address: None,
            user_agent: None,
            tenant_id: None,
            organization_id: None,
        }
    }
}

impl std::fmt::Debug for ActorContext {
    // Hand-written so that personal data beyond the id and type stays out of debug logs by default.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActorContext")
            .field("actor_id", &self.actor_id)
            .field("actor_type", &self.actor_type)
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

impl ActorContext {
    /// A user actor with the given id; other fields can be set with struct update syntax or the `with_*` methods.
    pub fn new(actor_id: impl Into<String>) -> Self {
        Self { actor_id: actor_id.into(), ..Self::default() }
    }

    /// The actor for automated processes: `actor_id = "system"`, `actor_type = "system"`.
    pub fn system() -> Self {
        Self { actor_id: "system".into(), actor_type: "system".into(), name: Some("System".into()), ..Self::default() }
    }

    /// The actor for service-to-service calls: `actor_id = "service:{name}"`, `actor_type = "service"`.
    pub fn service(name: impl Into<String>) -> Self {
        let name = name.into();
        Self { actor_id: format!("service:{name}"), actor_type: "service".into(), name: Some(name), ..Self::default() }
    }

    /// Sets the e-mail address.
    pub fn with_email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// Sets the display name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the roles.
    pub fn with_roles<I, S>(mut self, roles: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.roles = roles.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the session id.
    pub fn with_session_id(mut self, session_id: impl Into<String>) -> Self {
        self.session_id = Some(session_id.into());
        self
    }

    /// Sets the client IP address.
    pub fn with_ip_address(mut self, ip: impl Into<String>) -> Self {
        self.ip_address = Some(ip.into());
        self
    }

    /// Sets the client user agent.
    pub fn with_user_agent(mut self, ua: impl Into<String>) -> Self {
        self.user_agent = Some(ua.into());
        self
    }
}

// ---------------------------------------------------------------------------------------------
// Resolution: scope (task) → thread → providers.

/// What the current thread is doing with respect to actor scopes.
enum Slot {
    /// Not inside any [`with_actor`] scope.
    NoScope,
    /// Inside a scope; the scope's actor (which [`set_actor_context`] replaces while inside it).
    Scoped(Option<Arc<ActorContext>>),
}

thread_local! {
    static SCOPE: RefCell<Slot> = const { RefCell::new(Slot::NoScope) };
    static THREAD_ACTOR: RefCell<Option<Arc<ActorContext>>> = const { RefCell::new(None) };
}

type Provider = Arc<dyn Fn() -> Option<ActorContext> + Send + Sync>;

static PROVIDERS: std::sync::LazyLock<ArcSwap<Vec<Provider>>> =
    std::sync::LazyLock::new(|| ArcSwap::from_pointee(Vec::new()));

/// Sets the current actor.
///
/// Inside a [`with_actor`] / [`ActorScopeExt`] scope this replaces the scope's actor (task-local, like
/// Python's `contextvars`); outside any scope it sets the actor of the current thread, for synchronous code.
/// `None` clears it. On a multi-threaded async runtime always prefer a scope: a thread-level actor is seen by
/// every task that later runs on that worker thread.
pub fn set_actor_context(actor: Option<ActorContext>) {
    let actor = actor.map(Arc::new);
    let in_scope = SCOPE.with(|s| match &mut *s.borrow_mut() {
        Slot::Scoped(slot) => {
            *slot = actor.clone();
            true
        }
        Slot::NoScope => false,
    });
    if !in_scope {
        THREAD_ACTOR.with(|t| *t.borrow_mut() = actor);
    }
}

/// The current actor, resolved in this order:
/// 1. the innermost [`with_actor`] scope of the running task (even if it holds no actor: a scope never falls
///    back to the thread-level actor, so one request's actor cannot leak into another's);
/// 2. outside any scope, the actor set on this thread by [`set_actor_context`];
/// 3. the registered [providers](register_actor_provider), in registration order; the first `Some` wins.
pub fn get_actor_context() -> Option<ActorContext> {
    current_actor().map(Arc::unwrap_or_clone)
}

/// Like [`get_actor_context`] but without cloning the actor (used on the hot path of emitting events).
pub(crate) fn current_actor() -> Option<Arc<ActorContext>> {
    let scoped = SCOPE.with(|s| match &*s.borrow() {
        Slot::Scoped(a) => Some(a.clone()),
        Slot::NoScope => None,
    });
    let explicit = match scoped {
        Some(a) => a,
        None => THREAD_ACTOR.with(|t| t.borrow().clone()),
    };
    explicit.or_else(from_providers)
}

fn from_providers() -> Option<Arc<ActorContext>> {
    let providers = PROVIDERS.load();
    providers.iter().find_map(|p| p()).map(Arc::new)
}

/// Registers a function that supplies the actor when no scope or thread actor is set (e.g. from a web
/// framework's request-local storage). Providers are asked in registration order.
pub fn register_actor_provider<F>(provider: F)
where
    F: Fn() -> Option<ActorContext> + Send + Sync + 'static,
{
    let provider: Provider = Arc::new(provider);
    PROVIDERS.rcu(|old| {
        let mut v = Vec::clone(old);
        v.push(provider.clone());
        v
    });
}

/// Removes every registered actor provider.
pub fn clear_actor_providers() {
    PROVIDERS.store(Arc::new(Vec::new()));
}

/// Runs `fut` with `actor` as its actor. The actor follows the future across `.await` points and worker
/// threads, and is visible only while this future is being polled, never to other tasks on the same thread.
/// To carry it into a spawned task, wrap that task too: `tokio::spawn(fut.with_current_actor())`.
pub fn with_actor<F: Future>(actor: ActorContext, fut: F) -> WithActor<F> {
    scoped_actor(Some(actor), fut)
}

/// Runs the closure `f` synchronously with `actor` as the current actor, restoring the previous state after.
pub fn with_actor_sync<R>(actor: ActorContext, f: impl FnOnce() -> R) -> R {
    scoped_actor_sync(Some(actor), f)
}

/// [`with_actor`] for an actor that may be absent: a scope with no actor still shadows the thread's actor (and
/// keeps `set_actor_context` inside it), so one request never sees another's.
pub(crate) fn scoped_actor<F: Future>(actor: Option<ActorContext>, fut: F) -> WithActor<F> {
    WithActor { actor: actor.map(Arc::new), inner: fut }
}

/// [`with_actor_sync`] for an actor that may be absent (see [`scoped_actor`]).
pub(crate) fn scoped_actor_sync<R>(actor: Option<ActorContext>, f: impl FnOnce() -> R) -> R {
    let mut slot = actor.map(Arc::new);
    let _guard = ScopeGuard::enter(&mut slot);
    f()
}

/// Extension methods that attach an actor scope to any future.
pub trait ActorScopeExt: Future + Sized {
    /// Runs this future with `actor` as its actor (see [`with_actor`]).
    fn with_actor(self, actor: ActorContext) -> WithActor<Self> {
        with_actor(actor, self)
    }

    /// Captures the actor that is current *now* (see [`get_actor_context`]) and runs this future with it,
    /// e.g. for `tokio::spawn(task.with_current_actor())`.
    fn with_current_actor(self) -> WithActor<Self> {
        WithActor { actor: current_actor(), inner: self }
    }
}

impl<F: Future> ActorScopeExt for F {}

pin_project_lite::pin_project! {
    /// A future running inside an actor scope; see [`with_actor`].
    #[must_use = "futures do nothing unless polled"]
    pub struct WithActor<F> {
        actor: Option<Arc<ActorContext>>,
        #[pin]
        inner: F,
    }
}

impl<F: Future> Future for WithActor<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _guard = ScopeGuard::enter(this.actor);
        this.inner.poll(cx)
    }
}

/// Installs a scope on this thread for the duration of one poll (or one closure call) and writes back any
/// change made through [`set_actor_context`] when it ends, also on unwind.
struct ScopeGuard<'a> {
    slot: &'a mut Option<Arc<ActorContext>>,
    previous: Option<Slot>,
}

impl<'a> ScopeGuard<'a> {
    fn enter(slot: &'a mut Option<Arc<ActorContext>>) -> Self {
        let previous = SCOPE.with(|s| std::mem::replace(&mut *s.borrow_mut(), Slot::Scoped(slot.take())));
        Self { slot, previous: Some(previous) }
    }
}

impl Drop for ScopeGuard<'_> {
    fn drop(&mut self) {
        let previous = self.previous.take().unwrap_or(Slot::NoScope);
        let ours = SCOPE.with(|s| std::mem::replace(&mut *s.borrow_mut(), previous));
        if let Slot::Scoped(actor) = ours {
            *self.slot = actor;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_shadows_thread_and_restores() {
        set_actor_context(Some(ActorContext::new("thread")));
        with_actor_sync(ActorContext::new("scoped"), || {
            assert_eq!(get_actor_context().map(|a| a.actor_id), Some("scoped".into()));
            set_actor_context(None);
            // a cleared scope does not fall back to the thread actor
            assert_eq!(get_actor_context(), None);
        });
        assert_eq!(get_actor_context().map(|a| a.actor_id), Some("thread".into()));
        set_actor_context(None);
        assert_eq!(get_actor_context(), None);
    }

    #[test]
    fn system_and_service_actors() {
        assert_eq!(ActorContext::system().actor_type, "system");
        let s = ActorContext::service("payment-service");
        assert_eq!(s.actor_id, "service:payment-service");
        assert_eq!(s.actor_type, "service");
        assert_eq!(ActorContext::default().actor_type, "user");
    }
}
