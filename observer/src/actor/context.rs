//! [`ActorContext`] and where the current actor comes from: task scopes, the thread, registered providers.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};

use crate::audit::event::nullable;
use crate::scope::guard::ScopeGuard;

/// Who performed an audited action. Serialised as the `actor` object of an audit event, always with every field:
/// unknown ones are `null` (an empty string is written as `null` too) and `roles` / `groups` are `[]` when empty,
/// so that every event has the same shape.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorContext {
    /// Stable identifier of the actor (Keycloak `sub` by default).
    #[serde(serialize_with = "nullable::str", deserialize_with = "nullable::string")]
    pub actor_id: String,
    /// `"user"` (default), `"service"`, `"system"`, or any other kind the application uses.
    #[serde(default = "default_actor_type", serialize_with = "nullable::str", deserialize_with = "nullable::string")]
    pub actor_type: String,
    /// E-mail address.
    #[serde(default, serialize_with = "nullable::opt")]
    pub email: Option<String>,
    /// Display name.
    #[serde(default, serialize_with = "nullable::opt")]
    pub name: Option<String>,
    /// Login name (Keycloak `preferred_username`).
    #[serde(default, serialize_with = "nullable::opt")]
    pub username: Option<String>,
    /// Roles (Keycloak `realm_access.roles` by default).
    #[serde(default)]
    pub roles: Vec<String>,
    /// Groups (Keycloak `groups`).
    #[serde(default)]
    pub groups: Vec<String>,
    /// Session identifier (Keycloak `session_state`).
    #[serde(default, serialize_with = "nullable::opt")]
    pub session_id: Option<String>,
    /// Client IP address.
    #[serde(default, serialize_with = "nullable::opt")]
    pub ip_address: Option<String>,
    /// Client user agent.
    #[serde(default, serialize_with = "nullable::opt")]
    pub user_agent: Option<String>,
    /// Tenant identifier.
    #[serde(default, serialize_with = "nullable::opt")]
    pub tenant_id: Option<String>,
    /// Organisation identifier.
    #[serde(default, serialize_with = "nullable::opt")]
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
    /// A user actor with the given id; other fields can be set with struct update syntax or the builder methods
    /// (`ActorContext::new("u").email("u@example.com")`).
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
    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// Sets the display name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the roles.
    pub fn roles<I, S>(mut self, roles: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.roles = roles.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the session id.
    pub fn session_id(mut self, session_id: impl Into<String>) -> Self {
        self.session_id = Some(session_id.into());
        self
    }

    /// Sets the client IP address.
    pub fn ip_address(mut self, ip: impl Into<String>) -> Self {
        self.ip_address = Some(ip.into());
        self
    }

    /// Sets the client user agent.
    pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
        self.user_agent = Some(ua.into());
        self
    }
}

// ---------------------------------------------------------------------------------------------
// Resolution: scope (task) → thread → providers.

thread_local! {
    /// The actor scope of the running task or closure: `None` outside any [`with_actor`] scope, `Some(actor)`
    /// inside one (`Some(None)`: a scope without an actor, which [`set_actor_context`] fills in).
    pub(crate) static SCOPE: RefCell<Option<Option<Arc<ActorContext>>>> = const { RefCell::new(None) };
    static THREAD_ACTOR: RefCell<Option<Arc<ActorContext>>> = const { RefCell::new(None) };
}

/// The actors set with [`set_actor_context`] outside any scope, inside Tokio tasks, by task id.
static TASK_ACTORS: std::sync::LazyLock<TaskActors> = std::sync::LazyLock::new(|| TaskActors::new(MAX_TASK_ACTORS));

/// How many task actors are kept before the oldest (most likely left behind by tasks that ended without
/// clearing them) are dropped.
const MAX_TASK_ACTORS: usize = 65_536;

/// Task id → actor, sharded to keep concurrent requests from contending on one lock.
///
/// Tokio does not say when a task ends, so an entry a task never cleared stays until the map holds more than
/// `cap` entries; then every entry older than the newest `cap / 2` is dropped (so at most `cap / 2` remain) and
/// a warning says how many. Tokio task ids are not reused while a task runs (and in practice never: they come from a
/// process-wide counter), so a left-behind entry is not read by another task.
struct TaskActors {
    shards: Box<[std::sync::Mutex<std::collections::HashMap<tokio::task::Id, TaskActor>>]>,
    hasher: std::collections::hash_map::RandomState,
    /// Number of entries over all shards (read without a lock: no entry, no lookup).
    len: std::sync::atomic::AtomicUsize,
    /// Incremented by every `set(Some)`: the age of an entry.
    generation: std::sync::atomic::AtomicU64,
    cap: usize,
}

struct TaskActor {
    actor: Arc<ActorContext>,
    generation: u64,
}

const TASK_ACTOR_SHARDS: usize = 16;

impl TaskActors {
    fn new(cap: usize) -> Self {
        Self {
            shards: (0..TASK_ACTOR_SHARDS).map(|_| std::sync::Mutex::default()).collect(),
            hasher: std::collections::hash_map::RandomState::new(),
            len: std::sync::atomic::AtomicUsize::new(0),
            generation: std::sync::atomic::AtomicU64::new(0),
            cap: cap.max(2),
        }
    }

    fn shard(
        &self,
        task: tokio::task::Id,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<tokio::task::Id, TaskActor>> {
        use std::hash::BuildHasher;
        let i = (self.hasher.hash_one(task) % self.shards.len() as u64) as usize;
        self.shards[i].lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, task: tokio::task::Id) -> Option<Arc<ActorContext>> {
        if self.len.load(std::sync::atomic::Ordering::Acquire) == 0 {
            return None;
        }
        self.shard(task).get(&task).map(|e| e.actor.clone())
    }

    fn set(&self, task: tokio::task::Id, actor: Option<Arc<ActorContext>>) {
        use std::sync::atomic::Ordering;
        // The count changes under the shard's lock, with the entry, so that it never goes below the entries.
        let Some(actor) = actor else {
            let mut shard = self.shard(task);
            if shard.remove(&task).is_some() {
                self.len.fetch_sub(1, Ordering::AcqRel);
            }
            return;
        };
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        let len = {
            let mut shard = self.shard(task);
            match shard.insert(task, TaskActor { actor, generation }) {
                None => self.len.fetch_add(1, Ordering::AcqRel) + 1,
                Some(_) => 0,
            }
        };
        if len > self.cap {
            self.drop_oldest(generation);
        }
    }

    /// Drops every entry older than the newest `cap / 2` and reports how many.
    fn drop_oldest(&self, newest: u64) -> usize {
        use std::sync::atomic::Ordering;
        let keep_from = newest.saturating_sub((self.cap / 2) as u64 - 1);
        let mut dropped = 0;
        for shard in self.shards.iter() {
            let mut map = shard.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let before = map.len();
            map.retain(|_, e| e.generation >= keep_from);
            let removed = before - map.len();
            self.len.fetch_sub(removed, Ordering::AcqRel);
            dropped += removed;
        }
        if dropped > 0 {
            crate::diag::report!(
                WARN,
                "actors-dropped",
                "more than {} actors set with set_actor_context(Some(..)) in Tokio tasks were never cleared with \
                 set_actor_context(None); the {dropped} oldest were dropped (a task still running among them now has \
                 no actor). Clear the actor when a request ends, or use observer::with_actor",
                self.cap
            );
        }
        dropped
    }
}

type Provider = Arc<dyn Fn() -> Option<ActorContext> + Send + Sync>;

static PROVIDERS: std::sync::LazyLock<ArcSwap<Vec<Provider>>> =
    std::sync::LazyLock::new(|| ArcSwap::from_pointee(Vec::new()));

/// Sets the current actor.
///
/// * Inside a [`with_actor`] scope (or a task wrapped with [`in_current_scope`](crate::ScopeExt::in_current_scope)): replaces the scope's actor (task-local, like Python's
///   `contextvars`).
/// * Outside any scope, inside a Tokio task (e.g. an async middleware that sets the actor at the start of a
///   request and clears it with `None` at the end): sets the actor of **that task** only. Other tasks, also on the
///   same worker thread, never see it.
/// * Outside any scope and outside any Tokio task (plain threads, synchronous code): sets the actor of the
///   current thread. Tokio tasks never read a thread's actor.
///
/// `None` clears it. Clear a task's actor when the request ends (as the guide's middleware does): an actor left
/// behind by a task that ended without clearing it is kept until more than 65,536 such actors pile up; then the
/// oldest are dropped and a warning (target `observer`, on stderr without a subscriber) says how many (a task still
/// running whose actor was dropped then has none, never another task's). A scope ([`with_actor`]) needs no clean-up,
/// and is the way to give several requests handled concurrently *inside one task* (`join!`, `FuturesUnordered`) an
/// actor each: they would share the task's.
pub fn set_actor_context(actor: Option<ActorContext>) {
    let actor = actor.map(Arc::new);
    let in_scope = SCOPE.with(|s| match &mut *s.borrow_mut() {
        Some(scoped) => {
            *scoped = actor.clone();
            true
        }
        None => false,
    });
    if !in_scope {
        match tokio::task::try_id() {
            Some(task) => TASK_ACTORS.set(task, actor),
            None => THREAD_ACTOR.with(|t| *t.borrow_mut() = actor),
        }
    }
}

/// The current actor, resolved in this order:
/// 1. the innermost [`with_actor`] scope of the running task (even if it holds no actor: a scope never falls
///    back to a task's or thread's actor, so one request's actor cannot leak into another's);
/// 2. outside any scope, inside a Tokio task: the actor [`set_actor_context`] set in this task;
///    outside any Tokio task: the actor set on this thread;
/// 3. the registered [providers](register_actor_provider), in registration order; the first `Some` wins.
pub fn get_actor_context() -> Option<ActorContext> {
    current_actor().map(Arc::unwrap_or_clone)
}

/// Like [`get_actor_context`] but without cloning the actor (used on the hot path of emitting events).
pub(crate) fn current_actor() -> Option<Arc<ActorContext>> {
    let scoped = crate::scope::guard::current(&SCOPE);
    let explicit = match scoped {
        Some(a) => a,
        None => match tokio::task::try_id() {
            Some(task) => TASK_ACTORS.get(task),
            None => THREAD_ACTOR.with(|t| t.borrow().clone()),
        },
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
/// To carry it into a spawned task, wrap that task too: `tokio::spawn(fut.in_current_scope())`
/// ([`ScopeExt`](crate::ScopeExt)).
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
    WithActor { scope: Some(actor.map(Arc::new)), inner: fut }
}

/// [`with_actor_sync`] for an actor that may be absent (see [`scoped_actor`]).
pub(crate) fn scoped_actor_sync<R>(actor: Option<ActorContext>, f: impl FnOnce() -> R) -> R {
    let mut slot = Some(actor.map(Arc::new));
    let _guard = ScopeGuard::enter(&SCOPE, &mut slot);
    f()
}

pin_project_lite::pin_project! {
    /// A future running inside an actor scope; see [`with_actor`].
    #[must_use = "futures do nothing unless polled"]
    pub struct WithActor<F> {
        scope: Option<Option<Arc<ActorContext>>>,
        #[pin]
        inner: F,
    }
}

impl<F: Future> Future for WithActor<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _guard = ScopeGuard::enter(&SCOPE, this.scope);
        this.inner.poll(cx)
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
    fn task_actors_are_bounded_and_drop_the_oldest() {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let map = Arc::new(TaskActors::new(8));
        // 20 tasks set an actor and end without clearing it.
        let mut ids = Vec::new();
        for i in 0..20 {
            let map = map.clone();
            let task = async move {
                let id = tokio::task::id();
                map.set(id, Some(Arc::new(ActorContext::new(format!("left-{i}")))));
                assert_eq!(map.get(id).unwrap().actor_id, format!("left-{i}"));
                id
            };
            ids.push(rt.block_on(async { tokio::spawn(task).await.unwrap() }));
        }
        let len = map.len.load(std::sync::atomic::Ordering::Acquire);
        let live: usize = map.shards.iter().map(|s| s.lock().unwrap().len()).sum();
        assert_eq!(len, live, "the count matches the entries");
        assert!(len <= 8, "bounded by the cap: {len}");
        // the newest are kept, the oldest dropped
        assert_eq!(map.get(ids[19]).unwrap().actor_id, "left-19");
        assert!(map.get(ids[0]).is_none());
        // clearing removes and counts down
        map.set(ids[19], None);
        assert!(map.get(ids[19]).is_none());
        assert_eq!(map.len.load(std::sync::atomic::Ordering::Acquire), len - 1);
    }

    #[test]
    fn a_task_never_reads_the_threads_actor() {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        set_actor_context(Some(ActorContext::new("thread-actor")));
        let in_task =
            rt.block_on(async { tokio::spawn(async { get_actor_context().map(|a| a.actor_id) }).await.unwrap() });
        assert_eq!(in_task, None);
        let task = async {
            set_actor_context(Some(ActorContext::new("task-actor")));
            tokio::task::yield_now().await;
            let mine = get_actor_context().map(|a| a.actor_id);
            set_actor_context(None);
            mine
        };
        let in_task = rt.block_on(async { tokio::spawn(task).await.unwrap() });
        assert_eq!(in_task.as_deref(), Some("task-actor"));
        assert_eq!(get_actor_context().map(|a| a.actor_id).as_deref(), Some("thread-actor"), "the thread's is kept");
        set_actor_context(None);
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
