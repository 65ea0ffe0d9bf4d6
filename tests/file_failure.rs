//! A file sink that cannot write (here `/dev/full`: every write fails with ENOSPC) never panics or blocks
//! the caller; failures are counted and the events go to stderr instead.

use std::time::Duration;

use observer::{audit, AuditSink, ObserverConfig, ResourceType};

#[test]
#[cfg(target_os = "linux")]
fn failing_file_is_counted_not_fatal() {
    let guard =
        observer::init(ObserverConfig { audit_sink: AuditSink::file("/dev/full"), ..Default::default() }).unwrap();
    for i in 0..10 {
        audit::log_create(ResourceType::File, format!("lost-{i}")).emit().expect("queued");
    }
    let err = observer::flush(Duration::from_secs(10)).expect_err("the flush reports the failing sink");
    assert!(err.to_string().contains("/dev/full"), "{err}");
    let stats = observer::stats().unwrap();
    assert!(stats.sink_errors >= 1, "{stats:?}");
    assert_eq!(stats.pending, 0);
    // still accepting events after the failure
    audit::log_create(ResourceType::File, "after").emit().expect("queued");
    let _ = guard.shutdown();
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
