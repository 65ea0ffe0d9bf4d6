//! A child process that emits 50,000 audit events with Kafka enabled and exits right away (dropping the
//! init guard) loses none of them.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::kafka::{bootstrap, consume_until};
use observer::export::MemorySink;
use observer::FilePermissions;
use observer::{audit, AuditSink, KafkaConfig, ObserverConfig, ResourceType};

/// Its own topic: 100,000 events here would slow down every other test reading `observer-test-audit` from the start.
const TOPIC: &str = "observer-test-bulk";
const N: usize = 50_000;

/// Runs only in the child (started by the test below with `--ignored --exact`).
#[test]
#[ignore = "run by child_process_exiting_immediately_loses_nothing"]
fn child_emitter() {
    let run = std::env::var("OBSERVER_CHILD_RUN").expect("run id");
    let spool = std::env::var("OBSERVER_CHILD_SPOOL").expect("spool dir");
    let guard = observer::init(ObserverConfig {
        service_name: "child".into(),
        audit_sink: AuditSink::Memory(MemorySink::new()),
        kafka: Some(KafkaConfig {
            bootstrap_servers: bootstrap(),
            audit_topic: TOPIC.into(),
            spool_dir: Some(spool.into()),
            ..Default::default()
        }),
        ..Default::default()
    })
    .unwrap();
    for i in 0..N {
        audit::log_create(ResourceType::Document, format!("{run}-{i}")).emit().unwrap();
    }
    drop(guard); // and exit at once
}

#[test]
fn child_process_exiting_immediately_loses_nothing() {
    let run = format!("child-{}", std::process::id());
    let spool = tempfile::tempdir().unwrap();
    let status = common::child_test("child_emitter")
        .env("OBSERVER_CHILD_RUN", &run)
        .env("OBSERVER_CHILD_SPOOL", spool.path())
        .status()
        .unwrap();
    assert!(status.success(), "child failed: {status}");

    let prefix = format!("{run}-");
    let got = consume_until(&bootstrap(), TOPIC, Duration::from_secs(120), |msgs| {
        msgs.iter().filter(|m| m.payload["resource_id"].as_str().is_some_and(|r| r.starts_with(&prefix))).count() >= N
    });
    let ids: HashSet<&str> = got
        .iter()
        .filter(|m| m.payload["resource_id"].as_str().is_some_and(|r| r.starts_with(&prefix)))
        .filter_map(|m| m.payload["event_id"].as_str())
        .collect();
    let spooled: usize = std::fs::read_dir(spool.path())
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.unwrap().path()).ok())
        .map(|t| t.lines().count())
        .sum();
    assert_eq!(ids.len() + spooled, N, "{} on the topic, {spooled} left in the spool", ids.len());
    assert_eq!(ids.len(), N, "with the broker up, all of them were delivered before the child exited");
}

/// Runs only in the child (started by the test below): Kafka enabled, nobody listening, a short flush timeout.
#[test]
#[ignore = "run by exit_with_the_broker_unreachable_says_what_it_waits_for"]
fn child_with_the_broker_unreachable() {
    let spool = std::env::var("OBSERVER_CHILD_SPOOL").expect("spool dir");
    let guard = observer::init(ObserverConfig {
        service_name: "child".into(),
        audit_sink: AuditSink::Memory(MemorySink::new()),
        flush_timeout: Duration::from_secs(3),
        // The spool follows the SDK's file permissions (A8).
        file_permissions: FilePermissions { file_mode: 0o640, dir_mode: 0o750 },
        kafka: Some(KafkaConfig {
            bootstrap_servers: "127.0.0.1:9".into(),
            audit_topic: TOPIC.into(),
            spool_dir: Some(spool.into()),
            ..Default::default()
        }),
        ..Default::default()
    })
    .unwrap();
    for i in 0..5 {
        audit::log_create(ResourceType::Document, format!("unreachable-{i}")).emit().unwrap();
    }
    drop(guard);
}

/// A9: with the broker unreachable, the exit waits for acknowledgements up to `flush_timeout`: it says so on
/// stderr (how many messages, which brokers, until when), and what is not acknowledged ends up in the spool.
/// A8: the spool that `init` creates follows `ObserverConfig::file_permissions`.
#[test]
fn exit_with_the_broker_unreachable_says_what_it_waits_for() {
    let parent = tempfile::tempdir().unwrap();
    let spool = parent.path().join("spool");
    let out = common::child_test("child_with_the_broker_unreachable")
        .env("OBSERVER_CHILD_SPOOL", &spool)
        .env_remove("KAFKA_BOOTSTRAP_SERVERS")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed: {}\n{stderr}", out.status);
    let waiting = stderr.lines().find(|l| l.contains("waiting")).unwrap_or_else(|| panic!("no wait notice:\n{stderr}"));
    for part in ["5 messages", "127.0.0.1:9", "UTC", &spool.display().to_string()] {
        assert!(waiting.contains(part), "`{part}` missing from: {waiting}");
    }
    assert!(
        stderr.lines().any(|l| l.contains("5 messages") && l.contains("not acknowledged") && l.contains("spool")),
        "no report of what went to the spool:\n{stderr}"
    );
    let segments: Vec<std::path::PathBuf> = std::fs::read_dir(&spool)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("segment-"))
        .collect();
    let spooled: usize = segments.iter().map(|p| std::fs::read_to_string(p).unwrap().lines().count()).sum();
    assert_eq!(spooled, 5, "what was not acknowledged is in the spool");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&spool), 0o750, "spool directory");
        for segment in &segments {
            assert_eq!(mode(segment), 0o640, "{}", segment.display());
        }
    }
}
