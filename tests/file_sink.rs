//! The JSON-lines file sink over the life of a process: file permissions, the fsync window under steady load,
//! rotation and deletion of the file while running, and events emitted after the guard is dropped.
//! The tests share the process-wide pipeline, so they run one at a time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use observer::export::Record;
use observer::export::Sink;
use observer::{audit, AuditSink, ExporterError, FilePermissions, ObserverConfig, ResourceType};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phi/audit/events.jsonl");
    let guard = observer::init(ObserverConfig { audit_sink: AuditSink::file(&path), ..Default::default() }).unwrap();
    emit("perm", 1);
    drop(guard);
    assert_eq!(mode(&path), 0o600, "audit file");
    assert_eq!(mode(&dir.path().join("phi/audit")), 0o700, "created directory");
    assert_eq!(mode(&dir.path().join("phi")), 0o700, "created parent directory");

    // configurable
    let path = dir.path().join("shared/events.jsonl");
    let guard = observer::init(ObserverConfig {
        audit_sink: AuditSink::file(&path),
        file_permissions: FilePermissions { file_mode: 0o640, dir_mode: 0o750 },
        ..Default::default()
    })
    .unwrap();
    emit("perm", 1);
    drop(guard);
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
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let counting = Arc::new(CountingSink::default());
    let guard = observer::init(ObserverConfig {
        audit_sink: AuditSink::file(dir.path().join("steady.jsonl")),
        extra_sinks: vec![counting.clone()],
        ..Default::default()
    })
    .unwrap();
    // 100 events a second for 2.5 s: the dispatcher never goes idle, so only the window makes it sync.
    let started = Instant::now();
    let mut n = 0;
    while started.elapsed() < Duration::from_millis(2_500) && n < 1_000 {
        audit::log_create(ResourceType::Document, format!("steady-{n}")).emit().expect("queued");
        n += 1;
        std::thread::sleep(Duration::from_millis(10));
    }
    let syncs = counting.syncs.load(Ordering::Relaxed);
    assert!(syncs >= 2, "{syncs} syncs during 2.5 s of steady load with the default 1 s window");
    drop(guard);
    assert_eq!(counting.writes.load(Ordering::Relaxed), n);
}

#[test]
fn a_renamed_or_deleted_audit_file_is_recreated_at_the_configured_path() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let rotated = dir.path().join("audit.jsonl.1");
    let guard = observer::init(ObserverConfig { audit_sink: AuditSink::file(&path), ..Default::default() }).unwrap();
    let flush = || observer::flush(Duration::from_secs(10)).expect("flushed");

    emit("before", 5);
    flush();
    std::fs::rename(&path, &rotated).unwrap(); // logrotate without copytruncate
    emit("renamed", 5);
    flush();
    assert_eq!(resource_ids(&rotated), (0..5).map(|i| format!("before-{i}")).collect::<Vec<_>>());
    assert_eq!(resource_ids(&path), (0..5).map(|i| format!("renamed-{i}")).collect::<Vec<_>>());

    std::fs::remove_file(&path).unwrap();
    emit("deleted", 5);
    flush();
    assert_eq!(resource_ids(&path), (0..5).map(|i| format!("deleted-{i}")).collect::<Vec<_>>());
    let stats = observer::stats().unwrap();
    assert_eq!((stats.written, stats.failed, stats.sink_errors), (15, 0, 0), "{stats:?}");
    drop(guard);
}

#[test]
fn events_after_the_guard_is_dropped_go_to_the_configured_file() {
    let _serial = serial();
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
