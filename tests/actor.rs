//! Actor context: scopes follow their future across `.await` and worker threads and never leak into other
//! tasks; the resolution order is scope → thread → providers.

mod common;

use std::time::Duration;

use common::memory_sink;
use observer::{
    audit, get_actor_context, register_actor_provider, set_actor_context, with_actor, ActorContext, ActorScopeExt,
    ResourceType,
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
                tokio::spawn(async { get_actor_context().map(|a| a.actor_id) }.with_current_actor()).await.unwrap();
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
        serde_json::json!({"actor_id": "service:scheduler", "actor_type": "service", "name": "scheduler"})
    );
    let sys = serde_json::to_value(ActorContext::system()).unwrap();
    assert_eq!(sys["actor_type"], "system");
}
