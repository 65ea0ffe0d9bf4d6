//! Actor context: scopes follow their future across `.await` and worker threads and never leak into other
//! tasks; the resolution order is scope → thread → providers.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::memory_sink;
use observer::{
    audit, get_actor_context, register_actor_provider, set_actor_context, with_actor, ActorContext, ResourceType,
    ScopeExt,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actors_stay_isolated_across_1000_concurrent_tasks() {
    let sink = memory_sink();
    const TASKS: usize = 1000;
    let mut handles = Vec::with_capacity(TASKS);
    for i in 0..TASKS {
        let actor = ActorContext::new(format!("isolation-user-{i}"));
        handles.push(tokio::spawn(with_actor(actor, async move {
            let me = format!("isolation-user-{i}");
            for round in 0..5 {
                assert_eq!(get_actor_context().map(|a| a.actor_id), Some(me.clone()), "task {i} round {round}");
                if round % 2 == 0 {
                    tokio::task::yield_now().await;
                } else {
                    tokio::time::sleep(Duration::from_micros((i % 7) as u64 * 100)).await;
                }
            }
            // set_actor_context inside a scope changes only this task's actor
            set_actor_context(Some(ActorContext::new(format!("{me}-changed"))));
            tokio::task::yield_now().await;
            assert_eq!(get_actor_context().map(|a| a.actor_id), Some(format!("{me}-changed")));
            let e = audit::log_read(ResourceType::Document, format!("isolation-doc-{i}")).emit().unwrap();
            assert_eq!(e.actor.as_ref().unwrap().actor_id, format!("{me}-changed"));
            // a spawned child sees the actor only when wrapped
            let inherited =
                tokio::spawn(async { get_actor_context().map(|a| a.actor_id) }.in_current_scope()).await.unwrap();
            assert_eq!(inherited, Some(format!("{me}-changed")));
            let bare = tokio::spawn(async { get_actor_context().map(|a| a.actor_id) }).await.unwrap();
            assert!(
                bare.is_none_or(|id| !id.starts_with("isolation-user-")),
                "an unwrapped task must not inherit a request's actor"
            );
        })));
    }
    for h in handles {
        h.await.unwrap();
    }
    // Outside every scope, nothing leaked onto this thread.
    assert!(get_actor_context().is_none_or(|a| !a.actor_id.starts_with("isolation-user-")));
    observer::flush(Duration::from_secs(10)).unwrap();
    let events = sink.events();
    let mut matched = 0;
    for e in events.iter().filter(|e| e.resource_id.starts_with("isolation-doc-")) {
        let i = e.resource_id.trim_start_matches("isolation-doc-");
        assert_eq!(e.actor.as_ref().unwrap().actor_id, format!("isolation-user-{i}-changed"));
        matched += 1;
    }
    assert_eq!(matched, TASKS);
}

#[test]
fn resolution_order_scope_thread_provider() {
    memory_sink();
    // A provider only answers on threads that opt in, so other tests in this binary are unaffected.
    thread_local!(static USE_PROVIDER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });
    register_actor_provider(|| USE_PROVIDER.with(|u| u.get()).then(|| ActorContext::new("from-provider")));
    std::thread::spawn(|| {
        USE_PROVIDER.with(|u| u.set(true));
        assert_eq!(get_actor_context().unwrap().actor_id, "from-provider");
        set_actor_context(Some(ActorContext::system()));
        assert_eq!(get_actor_context().unwrap().actor_id, "system", "the thread actor wins over providers");
        observer::actor::with_actor_sync(ActorContext::service("payment-service"), || {
            assert_eq!(
                get_actor_context().unwrap().actor_id,
                "service:payment-service",
                "a scope wins over the thread"
            );
            set_actor_context(None);
            assert_eq!(
                get_actor_context().unwrap().actor_id,
                "from-provider",
                "a cleared scope does not fall back to the thread actor, only to providers"
            );
        });
        assert_eq!(get_actor_context().unwrap().actor_id, "system");
        set_actor_context(None);
        let e = audit::log_read(ResourceType::Session, "provider-session").emit().unwrap();
        assert_eq!(e.actor.as_ref().unwrap().actor_id, "from-provider");
    })
    .join()
    .unwrap();
}

#[test]
fn explicit_actor_wins_and_system_service_actors_serialise() {
    memory_sink();
    let e = audit::log_create(ResourceType::Flow, "flow-x").actor(ActorContext::service("scheduler")).emit().unwrap();
    let j = serde_json::to_value(&e).unwrap();
    assert_eq!(
        j["actor"],
        serde_json::json!({"actor_id": "service:scheduler", "actor_type": "service", "name": "scheduler",
            "email": null, "username": null, "roles": [], "groups": [], "session_id": null, "ip_address": null,
            "user_agent": null, "tenant_id": null, "organization_id": null})
    );
    let sys = serde_json::to_value(ActorContext::system()).unwrap();
    assert_eq!(sys["actor_type"], "system");
}

/// The guide's "Set Actor Context at Request Start" middleware, translated literally: set the actor when the
/// request starts (outside any scope), await the handler, clear it with `None` at the end. Each request runs in
/// its own task (as a server runs each connection), 4 worker threads, 256 requests at once with awaits between
/// the events: every event must carry its own request's user.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn best_practice_2_middleware_records_each_requests_user() {
    let sink = memory_sink();
    const REQUESTS: usize = 256;
    const EVENTS_PER_REQUEST: usize = 4;

    async fn handler(request: usize) -> String {
        for n in 0..EVENTS_PER_REQUEST {
            // awaits between the events let other requests run on this worker thread meanwhile
            if n % 2 == 0 {
                tokio::task::yield_now().await;
            } else {
                tokio::time::sleep(Duration::from_micros((request % 5) as u64 * 50)).await;
            }
            audit::log_read(ResourceType::Document, format!("bp2-req-{request}-event-{n}")).emit().unwrap();
        }
        format!("response {request}")
    }

    async fn auth_middleware(request: usize, user: String) -> String {
        set_actor_context(Some(ActorContext::new(user)));
        let response = handler(request).await;
        set_actor_context(None); // Clean up
        response
    }

    let barrier = Arc::new(tokio::sync::Barrier::new(REQUESTS));
    let mut requests = Vec::with_capacity(REQUESTS);
    for i in 0..REQUESTS {
        let barrier = barrier.clone();
        requests.push(tokio::spawn(async move {
            barrier.wait().await;
            auth_middleware(i, format!("bp2-user-{i}")).await
        }));
    }
    for (i, r) in requests.into_iter().enumerate() {
        assert_eq!(r.await.unwrap(), format!("response {i}"));
    }
    observer::flush(Duration::from_secs(10)).unwrap();
    let mut wrong = Vec::new();
    let mut seen = 0;
    for e in sink.events().iter().filter(|e| e.resource_id.starts_with("bp2-req-")) {
        seen += 1;
        let request = e.resource_id.trim_start_matches("bp2-req-").split('-').next().unwrap();
        let want = format!("bp2-user-{request}");
        let got = e.actor.as_ref().map(|a| a.actor_id.clone());
        if got.as_deref() != Some(want.as_str()) {
            wrong.push(format!("{}: {got:?}", e.resource_id));
        }
    }
    assert_eq!(seen, REQUESTS * EVENTS_PER_REQUEST);
    assert!(
        wrong.is_empty(),
        "{} of {seen} events have another request's actor, e.g. {:?}",
        wrong.len(),
        &wrong[..3.min(wrong.len())]
    );
}

/// A task that set an actor outside any scope (and never cleared it) must not lend it to other tasks on the same
/// worker thread, e.g. a plain `tokio::spawn` inside another user's `with_actor` scope.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn plain_spawn_inside_with_actor_never_sees_another_tasks_actor() {
    let sink = memory_sink();
    // Request A: sets its actor the guide's way and ends without clearing it (e.g. it returned early).
    tokio::spawn(async { set_actor_context(Some(ActorContext::new("leaky-user-a"))) }).await.unwrap();
    // Request B, scoped to user B, spawns a plain task that emits (it runs on the same, single worker thread).
    let child = with_actor(ActorContext::new("scoped-user-b"), async {
        tokio::spawn(async {
            let e = audit::log_read(ResourceType::Document, "leak-check-doc").emit().unwrap();
            e.actor.as_ref().map(|a| a.actor_id.clone())
        })
        .await
        .unwrap()
    })
    .await;
    assert_ne!(child.as_deref(), Some("leaky-user-a"), "a plain task recorded another request's actor");
    assert_eq!(child, None, "an unwrapped task has no actor (wrap it with `.in_current_scope()` to inherit)");
    // Nor does any later task on that thread.
    let later = tokio::spawn(async { get_actor_context().map(|a| a.actor_id) }).await.unwrap();
    assert_eq!(later, None);
    observer::flush(Duration::from_secs(10)).unwrap();
    assert!(sink.events().iter().any(|e| e.resource_id == "leak-check-doc"));
}
