//! How a process ends, and what the user is told: every event emitted before SIGTERM / SIGINT or before the
//! documented exit path is in the file; the SDK's warnings reach stderr when no `tracing` subscriber listens; a
//! guard dropped right after `init` is reported.
//!
//! Each test re-runs this test binary as a child process (`--ignored --exact child_…`), since signals, exits and
//! `init` are process-wide; the children do nothing unless `OBSERVER_LIFECYCLE_CHILD` is set. Unix only (signals).
#![cfg(unix)]

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use observer::{audit, AuditSink, ObserverConfig, ResourceType};

const N: usize = 20_000;

/// The child's audit file, or `None` when this is not a child run.
fn child_file() -> Option<String> {
    std::env::var("OBSERVER_LIFECYCLE_CHILD").ok()
}

fn child_command(name: &str, file: &Path) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
    cmd.args(["--ignored", "--exact", name, "--nocapture", "--test-threads=1"])
        .env("OBSERVER_LIFECYCLE_CHILD", file)
        // Events written without `init` go to the working directory's default file: keep them in the temp dir.
        .current_dir(file.parent().expect("a directory"))
        .env_remove("RUST_LOG")
        .env_remove("OBSERVER_AUDIT_FILE")
        .env_remove("OBSERVER_AUDIT_SINK");
    cmd
}

fn run_child(name: &str, file: &Path) -> Output {
    child_command(name, file).output().expect("run the child")
}

fn init_file(file: &str) -> observer::ObserverGuard {
    observer::init(ObserverConfig {
        service_name: "lifecycle".into(),
        audit_sink: AuditSink::file(file),
        ..Default::default()
    })
    .expect("init")
}

fn emit_all(run: &str) {
    for i in 0..N {
        audit::log_create(ResourceType::Document, format!("{run}-{i}")).emit().expect("emit");
    }
}

/// The distinct `resource_id`s of `run` in `file`; every line must parse.
fn recorded(file: &Path, run: &str) -> HashSet<String> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let prefix = format!("{run}-");
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("unparsable line {l:?}: {e}")))
        .filter_map(|e| e["resource_id"].as_str().map(str::to_owned))
        .filter(|id| id.starts_with(&prefix))
        .collect()
}

/// Waits (at most 60 s) for the child to print `READY` on stdout.
fn wait_ready(child: &mut Child) {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.ends_with("READY") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60)).expect("the child got ready");
}

fn send_signal(child: &Child, signal: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).expect("pid")).expect("a child pid");
    rustix::process::kill_process(pid, signal).expect("send the signal");
}

/// Waits (at most 90 s) for the child to end.
fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the child did not end within 90 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ----- A plain program stopped by SIGTERM / SIGINT ----------------------------------------------------------------

#[test]
#[ignore = "child of sigterm_and_sigint_drain_every_event"]
fn child_plain_program_waiting_for_a_signal() {
    let Some(file) = child_file() else { return };
    let _guard = init_file(&file);
    observer::shutdown_on_signals().expect("signal handlers");
    emit_all("signal");
    println!("READY");
    // The program's own work; the signal ends it.
    std::thread::sleep(Duration::from_secs(60));
    panic!("no signal arrived");
}

#[test]
fn sigterm_and_sigint_drain_every_event() {
    use rustix::process::Signal;
    for (signal, name) in [(Signal::TERM, "SIGTERM"), (Signal::INT, "SIGINT")] {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("audit.jsonl");
        let mut child = child_command("child_plain_program_waiting_for_a_signal", &file)
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the child");
        wait_ready(&mut child);
        send_signal(&child, signal);
        let status = wait_exit(&mut child);
        let got = recorded(&file, "signal").len();
        assert_eq!(got, N, "{name}: every event emitted before the signal is in the file (child {status})");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(signal.as_raw()), "the child ends as {name} would: {status}");
    }
}

// ----- A tokio server stopped by SIGTERM --------------------------------------------------------------------------

#[test]
#[ignore = "child of an_async_server_drains_on_sigterm_through_shutdown_signal"]
fn child_async_server() {
    let Some(file) = child_file() else { return };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let _guard = init_file(&file);
    rt.block_on(async {
        let stop = observer::shutdown_signal();
        emit_all("async");
        println!("READY");
        // The server's graceful shutdown: wait for the signal, at most 60 s.
        tokio::time::timeout(Duration::from_secs(60), stop).await.expect("the signal arrived");
    });
    println!("the server stopped");
}

#[test]
fn an_async_server_drains_on_sigterm_through_shutdown_signal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("audit.jsonl");
    let mut child = child_command("child_async_server", &file).stdout(Stdio::piped()).spawn().expect("spawn the child");
    wait_ready(&mut child);
    send_signal(&child, rustix::process::Signal::TERM);
    let status = wait_exit(&mut child);
    assert!(status.success(), "main returned normally after the signal: {status}");
    assert_eq!(recorded(&file, "async").len(), N, "every event is in the file");
}

// ----- The documented exit path -----------------------------------------------------------------------------------

#[test]
#[ignore = "child of the_documented_exit_path_drains_every_event"]
fn child_exits_with_process_exit() {
    let Some(file) = child_file() else { return };
    let _guard = init_file(&file);
    emit_all("exit");
    observer::exit(3);
}

#[test]
fn the_documented_exit_path_drains_every_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("audit.jsonl");
    let output = run_child("child_exits_with_process_exit", &file);
    assert_eq!(output.status.code(), Some(3), "the exit code is kept");
    assert_eq!(recorded(&file, "exit").len(), N, "every event emitted before the exit is in the file");
}

// ----- Warnings reach stderr when no subscriber listens -------------------------------------------------------------

#[test]
#[ignore = "child of a_second_init_is_reported_on_stderr_without_a_subscriber"]
fn child_second_init() {
    let Some(file) = child_file() else { return };
    if std::env::var_os("CHILD_WITH_SUBSCRIBER").is_some() {
        tracing_subscriber::fmt().with_writer(std::io::stdout).init();
    }
    let _guard = init_file(&file);
    let second = observer::init(ObserverConfig { service_name: "second".into(), ..Default::default() }).expect("init");
    assert_eq!(second.status(), observer::InitStatus::AlreadyInitialized);
}

#[test]
fn a_second_init_is_reported_on_stderr_without_a_subscriber() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = run_child("child_second_init", &dir.path().join("audit.jsonl"));
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.lines().any(|l| l.starts_with("observer: warning:") && l.contains("init called again")),
        "stderr names the ignored init: {stderr}"
    );

    // With a subscriber, the warning is a `tracing` event (here printed to stdout) and stderr stays quiet.
    let output = child_command("child_second_init", &dir.path().join("audit2.jsonl"))
        .env("CHILD_WITH_SUBSCRIBER", "1")
        .output()
        .expect("run the child");
    assert!(output.status.success());
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("init called again"), "the subscriber got the warning: {stdout}");
    assert!(!stderr.contains("init called again"), "not duplicated on stderr: {stderr}");
}

// ----- A guard dropped right after init -------------------------------------------------------------------------------

#[test]
#[ignore = "child of a_guard_dropped_at_once_is_reported"]
fn child_drops_the_guard_at_once() {
    let Some(file) = child_file() else { return };
    let _ = init_file(&file);
    audit::log_read(ResourceType::Document, "after-the-guard").emit().expect("emit");
}

#[test]
fn a_guard_dropped_at_once_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = run_child("child_drops_the_guard_at_once", &dir.path().join("audit.jsonl"));
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("dropped right after observer::init") && stderr.contains("let _guard = observer::init(..)?;"),
        "stderr says the guard was dropped and how to bind it: {stderr}"
    );

    // A short program that binds its guard and emits nothing is not warned about.
    let output = run_child("child_short_program", &dir.path().join("short.jsonl"));
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("dropped right after"), "no false alarm: {stderr}");
}

#[test]
#[ignore = "child of a_guard_dropped_at_once_is_reported"]
fn child_short_program() {
    let Some(file) = child_file() else { return };
    let _guard = init_file(&file);
    println!("nothing to audit");
}

// ----- A panic that unwinds -------------------------------------------------------------------------------------------

#[test]
#[ignore = "child of a_panic_that_unwinds_drains_through_the_guard"]
fn child_panics() {
    let Some(file) = child_file() else { return };
    let _guard = init_file(&file);
    emit_all("panic");
    panic!("the application failed");
}

/// The README's claim for unwinding panics: the guard drops while `main` unwinds, so nothing is lost.
#[test]
fn a_panic_that_unwinds_drains_through_the_guard() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("audit.jsonl");
    let output = run_child("child_panics", &file);
    assert!(!output.status.success(), "the child failed");
    assert_eq!(recorded(&file, "panic").len(), N, "every event emitted before the panic is in the file");
}

// ----- The broker down, with no subscriber ----------------------------------------------------------------------------

#[cfg(feature = "kafka")]
#[test]
#[ignore = "child of a_broker_that_is_down_is_reported_on_stderr_without_a_subscriber"]
fn child_broker_down() {
    let Some(file) = child_file() else { return };
    let spool = Path::new(&file).with_file_name("spool");
    let guard = observer::init(ObserverConfig {
        audit_sink: AuditSink::file(&file),
        kafka: Some(observer::KafkaConfig {
            // Nobody listens on port 1.
            bootstrap_servers: "127.0.0.1:1".into(),
            spool_dir: Some(spool),
            message_timeout: Duration::from_secs(1),
            ..Default::default()
        }),
        flush_timeout: Duration::from_secs(2),
        ..Default::default()
    })
    .expect("init: a broker that is down does not fail it");
    audit::log_read(ResourceType::Document, "while-the-broker-is-down").emit().expect("emit");
    // librdkafka reports the failed connection within a second or two.
    std::thread::sleep(Duration::from_secs(3));
    drop(guard);
}

#[cfg(feature = "kafka")]
#[test]
fn a_broker_that_is_down_is_reported_on_stderr_without_a_subscriber() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = child_command("child_broker_down", &dir.path().join("audit.jsonl"))
        .env_remove("KAFKA_BOOTSTRAP_SERVERS")
        .env_remove("OBSERVER_SPOOL_DIR")
        .output()
        .expect("run the child");
    assert!(output.status.success(), "child failed: {}", String::from_utf8_lossy(&output.stdout));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.lines().any(|l| l.starts_with("observer: warning: Kafka unreachable")),
        "stderr says the broker is unreachable: {stderr}"
    );
}
