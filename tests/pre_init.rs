//! Before `init`, events are written synchronously to the sink the environment names, so they are never
//! lost; after the guard is dropped they are written synchronously to the sink `init` configured.

use observer::{audit, ObserverConfig, ResourceType};

#[test]
fn events_before_init_and_after_shutdown_are_written_synchronously() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pre.jsonl");
    // SAFETY of set_var: this test binary has a single test, nothing else reads the environment concurrently.
    std::env::set_var("OBSERVER_AUDIT_FILE", &path);
    std::env::set_var("OBSERVER_SERVICE_NAME", "pre-init-service");

    assert!(!observer::is_initialized());
    let e = audit::log_read(ResourceType::Document, "before-init").emit().unwrap();
    assert_eq!(&*e.service_name, "pre-init-service");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(&e.event_id), "written before emit returned");

    let main_file = dir.path().join("main.jsonl");
    std::env::set_var("OBSERVER_AUDIT_FILE", &main_file);
    let guard = observer::init(ObserverConfig::default()).unwrap();
    let during = audit::log_read(ResourceType::Document, "during").emit().unwrap();
    drop(guard);
    assert!(std::fs::read_to_string(&main_file).unwrap().contains(&during.event_id));

    let after = audit::log_read(ResourceType::Document, "after-shutdown").emit().unwrap();
    let text = std::fs::read_to_string(&main_file).unwrap();
    assert!(text.contains(&after.event_id), "after shutdown the synchronous writer uses the configured file");
    assert_eq!(text.lines().count(), 2);
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1, "the pre-init file got only the first");
}
