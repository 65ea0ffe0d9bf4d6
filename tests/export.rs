//! The audit pipeline and its sinks. Each test runs on a [`Pipeline`] of its own (made current with
//! `export::with_pipeline_sync`), so they run in parallel in this one binary; what must be seen on stderr is
//! checked in a child process.
//!
//! The JSON-lines file sink over the life of a process: file permissions, the fsync window under steady load,
//! rotation and deletion of the file while running, a full disk, a torn write; a full queue never blocks or
//! panics (the caller gets `AuditError::QueueFull` with the event back, and it is counted); a failing or panicking
//! sink does not take the pipeline down and its events go to the stderr fallback; and (the one test on the
//! process's pipeline) events emitted after the guard is dropped.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use observer::export::{self, MemorySink, Pipeline, Record, Sink};
use observer::{audit, AuditError, AuditSink, ExporterError, FilePermissions, ObserverConfig, ResourceType, ScopeExt};

/// A pipeline of the test's own.
fn pipeline(config: ObserverConfig) -> Pipeline {
    Pipeline::new(config).expect("pipeline")
}

fn lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is one JSON event"))
        .collect()
}

fn resource_ids(path: &std::path::Path) -> Vec<String> {
    lines(path).iter().map(|v| v["resource_id"].as_str().unwrap().to_owned()).collect()
}

fn emit(prefix: &str, n: usize) {
    for i in 0..n {
        audit::log_create(ResourceType::Document, format!("{prefix}-{i}")).emit().expect("queued");
    }
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
#[cfg(unix)]
fn the_audit_file_and_its_new_directories_are_owner_only_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phi/audit/events.jsonl");
    let p = pipeline(ObserverConfig { audit_sink: AuditSink::file(&path), ..Default::default() });
    export::with_pipeline_sync(&p, || emit("perm", 1));
    drop(p);
    assert_eq!(mode(&path), 0o600, "audit file");
    assert_eq!(mode(&dir.path().join("phi/audit")), 0o700, "created directory");
    assert_eq!(mode(&dir.path().join("phi")), 0o700, "created parent directory");

    // configurable
    let path = dir.path().join("shared/events.jsonl");
    let p = pipeline(ObserverConfig {
        audit_sink: AuditSink::file(&path),
        file_permissions: FilePermissions { file_mode: 0o640, dir_mode: 0o750 },
        ..Default::default()
    });
    export::with_pipeline_sync(&p, || emit("perm", 1));
    drop(p);
    assert_eq!(mode(&path), 0o640);
    assert_eq!(mode(&dir.path().join("shared")), 0o750);
}

/// Counts the dispatcher's calls.
#[derive(Debug, Default)]
struct CountingSink {
    writes: AtomicUsize,
    syncs: AtomicUsize,
}

impl Sink for CountingSink {
    fn name(&self) -> String {
        "counting".into()
    }

    fn write(&self, _record: Record<'_>) -> Result<(), ExporterError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn sync(&self) -> Result<(), ExporterError> {
        self.syncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

#[test]
fn steady_load_is_synced_at_least_every_sync_interval() {
    let dir = tempfile::tempdir().unwrap();
    let counting = Arc::new(CountingSink::default());
    let p = pipeline(ObserverConfig {
        audit_sink: AuditSink::file(dir.path().join("steady.jsonl")),
        extra_sinks: vec![counting.clone()],
        ..Default::default()
    });
    // 100 events a second for 2.5 s: the dispatcher never goes idle, so only the window makes it sync.
    let started = Instant::now();
    let mut n = 0;
    export::with_pipeline_sync(&p, || {
        while started.elapsed() < Duration::from_millis(2_500) && n < 1_000 {
            audit::log_create(ResourceType::Document, format!("steady-{n}")).emit().expect("queued");
            n += 1;
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    let syncs = counting.syncs.load(Ordering::Relaxed);
    assert!(syncs >= 2, "{syncs} syncs during 2.5 s of steady load with the default 1 s window");
    drop(p);
    assert_eq!(counting.writes.load(Ordering::Relaxed), n);
}

#[test]
fn a_renamed_or_deleted_audit_file_is_recreated_at_the_configured_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let rotated = dir.path().join("audit.jsonl.1");
    let p = pipeline(ObserverConfig { audit_sink: AuditSink::file(&path), ..Default::default() });
    let emit_flushed = |prefix: &str| {
        export::with_pipeline_sync(&p, || emit(prefix, 5));
        p.flush(Duration::from_secs(10)).expect("flushed");
    };

    emit_flushed("before");
    std::fs::rename(&path, &rotated).unwrap(); // logrotate without copytruncate
    emit_flushed("renamed");
    assert_eq!(resource_ids(&rotated), (0..5).map(|i| format!("before-{i}")).collect::<Vec<_>>());
    assert_eq!(resource_ids(&path), (0..5).map(|i| format!("renamed-{i}")).collect::<Vec<_>>());

    std::fs::remove_file(&path).unwrap();
    emit_flushed("deleted");
    assert_eq!(resource_ids(&path), (0..5).map(|i| format!("deleted-{i}")).collect::<Vec<_>>());
    let stats = p.stats();
    assert_eq!((stats.written, stats.failed, stats.sink_errors), (15, 0, 0), "{stats:?}");
}

/// The only test of this binary on the process's pipeline.
#[test]
fn events_after_the_guard_is_dropped_go_to_the_configured_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("configured.jsonl");
    let guard = observer::init(ObserverConfig {
        service_name: "late-service".into(),
        audit_sink: AuditSink::file(&path),
        ..Default::default()
    })
    .unwrap();
    emit("during", 1);
    drop(guard);
    let late = audit::log_create(ResourceType::Document, "late").emit().expect("written synchronously");
    assert_eq!(&*late.service_name, "late-service");
    let ids = resource_ids(&path);
    assert_eq!(ids, ["during-0", "late"], "the late event is in the configured file");
    #[cfg(unix)]
    assert_eq!(mode(&path), 0o600);
}

/// Blocks in `write` until released, so the queue fills up; fails every 2nd write after release.
#[derive(Debug, Default)]
struct GateSink {
    open: AtomicBool,
    writes: AtomicUsize,
}

impl Sink for GateSink {
    fn name(&self) -> String {
        "gate".into()
    }

    fn write(&self, _record: Record<'_>) -> Result<(), ExporterError> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.open.load(Ordering::Acquire) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        if self.writes.fetch_add(1, Ordering::Relaxed) % 2 == 1 {
            return Err(ExporterError::Custom { sink: self.name(), source: "simulated failure".into() });
        }
        Ok(())
    }
}

#[test]
fn full_queue_returns_the_event_and_a_failing_sink_is_counted() {
    let gate = Arc::new(GateSink::default());
    let memory = MemorySink::new();
    let p = pipeline(ObserverConfig {
        queue_capacity: 8,
        audit_sink: AuditSink::Memory(memory.clone()),
        extra_sinks: vec![gate.clone()],
        ..Default::default()
    });

    let mut accepted = Vec::new();
    let mut rejected = Vec::new();
    let started = Instant::now();
    for i in 0..100 {
        match export::with_pipeline_sync(&p, || audit::log_create(ResourceType::File, format!("f-{i}")).emit()) {
            Ok(e) => accepted.push(e.event_id.clone()),
            Err(AuditError::QueueFull { capacity, event }) => {
                assert_eq!(capacity, 8);
                assert_eq!(event.resource_id, format!("f-{i}"), "the caller gets its event back");
                rejected.push(event.event_id.clone());
            }
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert!(started.elapsed() < Duration::from_secs(5), "emitting never blocks on a stuck sink");
    // capacity 8 in the queue + at most one batch in the dispatcher's hands
    assert!(
        !rejected.is_empty() && accepted.len() <= 8 + 1024,
        "accepted {} rejected {}",
        accepted.len(),
        rejected.len()
    );
    let stats = p.stats();
    assert_eq!(stats.rejected_queue_full as usize, rejected.len());
    assert_eq!(stats.accepted as usize, accepted.len());

    gate.open.store(true, Ordering::Release);
    p.shutdown().expect("the memory sink flushes fine");
    // every accepted event reached the healthy sink; the gate sink's failures were counted
    let got: Vec<String> = memory.events().into_iter().map(|e| e.event_id).collect();
    assert_eq!(got, accepted);
    assert_eq!(gate.writes.load(Ordering::Relaxed), accepted.len());
}

/// Panics on its 5th write; counts every call.
#[derive(Debug, Default)]
struct PanickySink {
    writes: AtomicUsize,
}

impl Sink for PanickySink {
    fn name(&self) -> String {
        "panicky".into()
    }

    fn write(&self, _record: Record<'_>) -> Result<(), ExporterError> {
        if self.writes.fetch_add(1, Ordering::Relaxed) == 4 {
            panic!("simulated sink bug");
        }
        Ok(())
    }
}

/// Runs only in the child process started by `a_panicking_sink_is_taken_out_and_the_pipeline_keeps_going`
/// (its working directory is a fresh temporary directory, so a stray pre-init default file would show).
#[test]
#[ignore = "run by a_panicking_sink_is_taken_out_and_the_pipeline_keeps_going"]
fn panicking_sink_child() {
    let Ok(file) = std::env::var("OBSERVER_TEST_AUDIT_FILE") else { return };
    let panicky = Arc::new(PanickySink::default());
    let guard = observer::init(ObserverConfig {
        audit_sink: AuditSink::file(&file),
        extra_sinks: vec![panicky.clone()],
        ..Default::default()
    })
    .unwrap();
    for i in 0..1_000 {
        audit::log_create(ResourceType::File, format!("p-{i}")).emit().expect("queued");
        if i < 10 {
            // One event per batch around the panic, so that exactly one event is the sink's victim.
            observer::flush(Duration::from_secs(10)).expect("flushed");
        }
    }
    observer::flush(Duration::from_secs(30)).expect("the file sink is healthy");
    let stats = observer::stats().unwrap();
    assert_eq!(stats.accepted, 1_000, "{stats:?}");
    assert_eq!(stats.sink_panics, 1, "{stats:?}");
    assert_eq!(stats.failed, 1, "the event the sink panicked on: {stats:?}");
    assert_eq!(stats.written, 999, "{stats:?}");
    assert_eq!(stats.pending, 0, "{stats:?}");
    assert_eq!(panicky.writes.load(Ordering::Relaxed), 5, "the sink is not called after its panic");
    guard.shutdown().expect("clean shutdown");
}

#[test]
fn a_panicking_sink_is_taken_out_and_the_pipeline_keeps_going() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("logs/audit.jsonl");
    let out = common::child_test("panicking_sink_child")
        .env("OBSERVER_TEST_AUDIT_FILE", &file)
        .env_remove("OBSERVER_AUDIT_FILE")
        .env_remove("OBSERVER_AUDIT_SINK")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed: {}\n{stderr}", String::from_utf8_lossy(&out.stdout));
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line parses"))
        .collect();
    assert_eq!(lines.len(), 1_000, "the file sink holds every event");
    let fifth = lines[4]["event_id"].as_str().unwrap();
    assert!(
        stderr.lines().any(|l| l.starts_with("observer-audit-fallback: ") && l.contains(fifth)),
        "the event the sink panicked on is on the stderr fallback:\n{stderr}"
    );
    assert!(stderr.contains("sink panicky panicked") && stderr.contains("taken out"), "reported loudly:\n{stderr}");
    assert!(!dir.path().join("observer-audit.jsonl").exists(), "nothing went to the pre-init default file");
}

/// Blocks in `write` until released (and says when it is blocked); never fails.
#[cfg(all(feature = "llm-http", feature = "web"))]
#[derive(Debug, Default)]
struct BlockSink {
    entered: AtomicBool,
    open: AtomicBool,
}

#[cfg(all(feature = "llm-http", feature = "web"))]
impl Sink for BlockSink {
    fn name(&self) -> String {
        "block".into()
    }

    fn write(&self, _record: Record<'_>) -> Result<(), ExporterError> {
        self.entered.store(true, Ordering::Release);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.open.load(Ordering::Acquire) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }
}

/// Runs only in the child started by `the_sdks_own_events_are_not_dropped_on_a_full_queue`.
#[test]
#[ignore = "run by the_sdks_own_events_are_not_dropped_on_a_full_queue"]
#[cfg(all(feature = "llm-http", feature = "web"))]
fn sdk_events_child() {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    if std::env::var("OBSERVER_TEST_SDK_EVENTS").is_err() {
        return;
    }
    let gate = Arc::new(BlockSink::default());
    let guard = observer::init(ObserverConfig {
        queue_capacity: 1,
        audit_sink: AuditSink::Memory(MemorySink::new()),
        extra_sinks: vec![gate.clone()],
        ..Default::default()
    })
    .unwrap();
    // One event blocks the dispatcher, one fills the queue.
    audit::log_create(ResourceType::File, "blocking").emit().expect("queued");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !gate.entered.load(Ordering::Acquire) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    audit::log_create(ResourceType::File, "queued").emit().expect("queued");
    assert!(matches!(audit::log_create(ResourceType::File, "x").emit(), Err(AuditError::QueueFull { .. })));

    observer::llm::record_llm_call(&observer::llm::LlmCall {
        provider: "openai".into(),
        model: "gpt-4o".into(),
        log_interaction: Some(true),
        ..Default::default()
    });
    let verifier = observer::actor::TokenVerifier::hmac_secret(b"0123456789abcdef0123456789abcdef").unwrap();
    let app = axum::Router::new()
        .route("/documents", axum::routing::get(|| async { "ok" }))
        .layer(observer::web::ObserverLayer::new(verifier));
    let request = Request::get("/documents").header("authorization", "Bearer not.a.jwt").body(Body::empty()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let response = runtime.block_on(app.oneshot(request)).unwrap();
    assert_eq!(response.status(), 401);

    gate.open.store(true, Ordering::Release);
    let _ = guard.shutdown();
}

#[test]
#[cfg(all(feature = "llm-http", feature = "web"))]
fn the_sdks_own_events_are_not_dropped_on_a_full_queue() {
    let out = common::child_test("sdk_events_child").env("OBSERVER_TEST_SDK_EVENTS", "1").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed: {}\n{stderr}", String::from_utf8_lossy(&out.stdout));
    let fallback: Vec<serde_json::Value> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("observer-audit-fallback: "))
        .map(|l| serde_json::from_str(l).expect("one JSON event"))
        .collect();
    assert!(fallback.iter().any(|e| e["metadata"]["model"] == "gpt-4o"), "the LLM interaction event:\n{stderr}");
    assert!(fallback.iter().any(|e| e["audit_type"] == "AUTHENTICATION" && e["outcome"] == "FAILURE"), "{stderr}");
}

/// Runs only in the child started by `a_failing_file_is_counted_and_its_events_go_to_stderr`.
#[test]
#[ignore = "run by a_failing_file_is_counted_and_its_events_go_to_stderr"]
#[cfg(target_os = "linux")]
fn failing_file_child() {
    if std::env::var("OBSERVER_TEST_FAILING_FILE").is_err() {
        return;
    }
    // `/dev/full`: every write fails with ENOSPC.
    let p = pipeline(ObserverConfig { audit_sink: AuditSink::file("/dev/full"), ..Default::default() });
    export::with_pipeline_sync(&p, || emit("lost", 10));
    let err = p.flush(Duration::from_secs(10)).expect_err("the flush reports the failing sink");
    assert!(err.to_string().contains("/dev/full"), "{err}");
    let stats = p.stats();
    assert!(stats.sink_errors >= 1, "{stats:?}");
    assert_eq!((stats.failed, stats.written, stats.pending), (10, 0, 0), "{stats:?}");
    // still accepting events after the failure
    export::with_pipeline_sync(&p, || emit("after", 1));
    let _ = p.shutdown();
}

/// A file sink that cannot write never panics or blocks the caller: the failures are counted and every event's
/// JSON line is on stderr (`observer-audit-fallback: `), once.
#[test]
#[cfg(target_os = "linux")]
fn a_failing_file_is_counted_and_its_events_go_to_stderr() {
    let out = common::child_test("failing_file_child").env("OBSERVER_TEST_FAILING_FILE", "1").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed: {}\n{stderr}", String::from_utf8_lossy(&out.stdout));
    let mut on_fallback: Vec<String> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("observer-audit-fallback: "))
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            v["resource_id"].as_str().unwrap().to_owned()
        })
        .collect();
    on_fallback.sort();
    let mut expected: Vec<String> = (0..10).map(|i| format!("lost-{i}")).chain(["after-0".to_owned()]).collect();
    expected.sort();
    assert_eq!(on_fallback, expected, "every event once on the stderr fallback:\n{stderr}");
    assert!(stderr.contains("/dev/full"), "the failure is reported:\n{stderr}");
}

/// Runs only in the child started by `a_torn_write_leaves_only_whole_lines_and_exact_counters`, under a small
/// file-size limit (RLIMIT_FSIZE; SIGXFSZ ignored): writes past it are cut short, then fail, like a full disk.
#[test]
#[ignore = "run by a_torn_write_leaves_only_whole_lines_and_exact_counters"]
#[cfg(unix)]
fn torn_write_child() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let Ok(file) = std::env::var("OBSERVER_TEST_AUDIT_FILE") else { return };
    let guard = observer::init(ObserverConfig { audit_sink: AuditSink::file(&file), ..Default::default() }).unwrap();
    // Batches of three events: some are cut in the middle of a line, later ones fail outright.
    for round in 0..10 {
        for k in 0..3 {
            audit::log_create(ResourceType::File, format!("full-{round}-{k}")).emit().expect("queued");
        }
        let _ = observer::flush(Duration::from_secs(10));
    }
    // Space again.
    let limit = getrlimit(Resource::Fsize);
    setrlimit(Resource::Fsize, rustix::process::Rlimit { current: limit.maximum, maximum: limit.maximum }).unwrap();
    for round in 0..10 {
        for k in 0..3 {
            audit::log_create(ResourceType::File, format!("free-{round}-{k}")).emit().expect("queued");
        }
        observer::flush(Duration::from_secs(10)).expect("the file is writable again");
    }
    let stats = observer::stats().unwrap();
    println!("STATS written={} failed={} pending={}", stats.written, stats.failed, stats.pending);
    guard.shutdown().expect("clean shutdown");
}

#[test]
#[cfg(unix)]
fn a_torn_write_leaves_only_whole_lines_and_exact_counters() {
    use std::collections::HashSet;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let out = std::process::Command::new("sh")
        .args(["-c", "trap '' XFSZ; ulimit -S -f 8 && exec \"$0\" \"$@\""])
        .arg(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "torn_write_child", "--nocapture", "--test-threads=1"])
        .env("OBSERVER_TEST_AUDIT_FILE", &file)
        .env_remove("OBSERVER_AUDIT_FILE")
        .env_remove("OBSERVER_AUDIT_SINK")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed: {}\n{stdout}\n{stderr}", out.status);

    let ids = |lines: Vec<&str>| -> Vec<String> {
        lines
            .into_iter()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: a torn line: {l}"));
                v["resource_id"].as_str().unwrap().to_owned()
            })
            .collect()
    };
    let text = std::fs::read_to_string(&file).unwrap();
    let in_file = ids(text.lines().collect());
    let on_fallback = ids(stderr.lines().filter_map(|l| l.strip_prefix("observer-audit-fallback: ")).collect());
    assert!(!on_fallback.is_empty(), "the size limit was hit");
    let file_set: HashSet<&String> = in_file.iter().collect();
    let fallback_set: HashSet<&String> = on_fallback.iter().collect();
    assert_eq!(file_set.len(), in_file.len(), "no duplicates in the file");
    assert_eq!(fallback_set.len(), on_fallback.len(), "no duplicates on the fallback");
    assert!(file_set.is_disjoint(&fallback_set), "an event is in the file or on the fallback, not both");
    let all: HashSet<String> = ["full", "free"]
        .iter()
        .flat_map(|p| (0..10).flat_map(move |r| (0..3).map(move |k| format!("{p}-{r}-{k}"))))
        .collect();
    let union: HashSet<String> = file_set.union(&fallback_set).map(|s| (*s).clone()).collect();
    assert_eq!(union, all, "every event is in the file or on the fallback");
    assert!(
        (0..10).all(|r| (0..3).all(|k| file_set.contains(&format!("free-{r}-{k}")))),
        "written again once there is space"
    );
    let stats = stdout.lines().find_map(|l| l.split_once("STATS ").map(|(_, s)| s)).expect("the child's counters");
    assert_eq!(
        stats,
        format!("written={} failed={} pending=0", in_file.len(), on_fallback.len()),
        "the counters match the file and the fallback"
    );
}

/// Which pipeline an event went to: the innermost scope's, and the outer one again after it.
#[test]
fn a_scope_sends_events_to_its_pipeline_and_nested_scopes_restore_the_outer_one() {
    let (outer_sink, inner_sink) = (MemorySink::new(), MemorySink::new());
    let outer = pipeline(ObserverConfig { audit_sink: AuditSink::Memory(outer_sink.clone()), ..Default::default() });
    let inner = pipeline(ObserverConfig {
        service_name: "inner".into(),
        audit_sink: AuditSink::Memory(inner_sink.clone()),
        ..Default::default()
    });
    export::with_pipeline_sync(&outer, || {
        emit("outer", 1);
        let recorded = export::with_pipeline_sync(&inner, || {
            audit::log_read(ResourceType::Document, "inner-0").emit().expect("queued")
        });
        assert_eq!(&*recorded.service_name, "inner", "the scope's pipeline fills in its service fields");
        emit("outer-again", 1);
    });
    outer.flush(Duration::from_secs(10)).unwrap();
    inner.flush(Duration::from_secs(10)).unwrap();
    let ids = |sink: &MemorySink| sink.events().into_iter().map(|e| e.resource_id).collect::<Vec<_>>();
    assert_eq!(ids(&outer_sink), ["outer-0", "outer-again-0"]);
    assert_eq!(ids(&inner_sink), ["inner-0"]);
}

/// The future form follows the task across `.await`s and worker threads; `in_current_scope` carries it into a
/// spawned task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_future_keeps_its_pipeline_across_awaits_and_threads() {
    let sink = MemorySink::new();
    let p = pipeline(ObserverConfig { audit_sink: AuditSink::Memory(sink.clone()), ..Default::default() });
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            tokio::spawn(export::with_pipeline(&p, async move {
                for i in 0..9 {
                    audit::log_read(ResourceType::Document, format!("t{t}-{i}")).emit().expect("queued");
                    tokio::task::yield_now().await;
                }
                let spawned = async move { audit::log_read(ResourceType::Document, format!("t{t}-9")).emit() };
                tokio::spawn(spawned.in_current_scope()).await.unwrap().expect("queued");
            }))
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    p.shutdown().expect("drained");
    assert_eq!(sink.len(), 80);
}

/// Dropping a pipeline drains it, as the guard does for the process's.
#[test]
fn dropping_a_pipeline_writes_everything_queued() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dropped.jsonl");
    let p = pipeline(ObserverConfig { audit_sink: AuditSink::file(&path), ..Default::default() });
    export::with_pipeline_sync(&p, || emit("queued", 1_000));
    drop(p);
    assert_eq!(resource_ids(&path).len(), 1_000);
}
