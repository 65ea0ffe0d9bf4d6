//! How the SDK's cost grows with load: three scenarios, each printing a small table with the peak memory
//! (VmHWM of /proc/self/status) of every measured process. Loopback only; the broker is the test broker.
//!
//! ```sh
//! for s in spool-drain traces latency; do          # a fresh broker per scenario (its memory grows)
//!     eval "$(scripts/kafka-broker.sh start)"
//!     cargo run --release --example load --features kafka -- $s
//!     scripts/kafka-broker.sh stop
//! done
//! ```
//!
//! Add `--scale 0.1` for a quick try (a tenth of the events and of the duration). Each variant runs in a process
//! of its own (this program started again with `--child ...`), so that every peak RSS belongs to one variant.
//!
//! * `spool-drain`: 1,000,000 audit events emitted while the broker is unreachable (the bootstrap is a closed
//!   loopback port), so the Kafka sink spools them to disk; then a second process opens the same spool directory
//!   with the broker up, and its background thread re-sends the spool. Its drain rate is compared with the live
//!   export rate of the same number of events to the same broker, measured in the same run: the exporter sending
//!   the same messages (`KafkaExporter::send`, what replay does, keeping librdkafka's queue below its limit), and
//!   the whole pipeline (`emit` → dispatcher → Kafka sink, redaction on; a fifth of the events, as context). Every
//!   event is accounted for: acknowledged, in the spool, or reported.
//! * `traces`: 1,000 concurrent agent traces (tasks on a Tokio runtime, all open at once, yielding after every
//!   call) × 20 components, beside 1 trace × 20,000 components; with the Kafka trace sink (until acknowledged)
//!   and with no sink. Events/s counts `trace_start`, `span_start`, `span_end` and `trace_end`.
//! * `latency`: 8 threads emitting 100,000 typical audit events/s (a description, metadata with identifiers in
//!   free text, a change: as in `benches/redaction.rs`) in total for 10 s (open loop: each thread keeps its
//!   own schedule and never waits for the SDK), the latency of every `emit()` measured on the caller's thread;
//!   into the JSON-lines file sink and into Kafka, with redaction on (the default) and off. The pipeline's
//!   counters say how many were refused (`QueueFull`), went to the stderr fallback, or were written.

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use observer::export::{KafkaExporter, KafkaStats, KafkaTopicSink};
use observer::trace::{AgentTrace, AgentTracer, TraceSink};
use observer::{
    audit, ActorContext, AuditError, AuditFormat, AuditSink, ChangeRecord, KafkaConfig, ObserverConfig,
    RedactionConfig, ResourceType,
};
use serde_json::{json, Value};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// A closed loopback port: nothing listens on the discard port, so the broker is "down".
const UNREACHABLE: &str = "127.0.0.1:9";
const AUDIT_TOPIC: &str = "genesis-audit-events";
const TRACE_TOPIC: &str = "genesis-traces-streaming";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("--child") => child(&args[1..]),
        Some(scenario @ ("spool-drain" | "traces" | "latency")) => scale(&args[1..]).and_then(|s| match scenario {
            "spool-drain" => spool_drain(s),
            "traces" => traces(s),
            _ => latency(s),
        }),
        _ => Err("usage: load spool-drain|traces|latency [--scale F]   (see the top of examples/load.rs)".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("load: {e}");
            ExitCode::FAILURE
        }
    }
}

fn scale(args: &[String]) -> Result<f64, Error> {
    match args {
        [] => Ok(1.0),
        [flag, f] if flag == "--scale" => match f.parse::<f64>() {
            Ok(s) if s > 0.0 && s <= 1.0 => Ok(s),
            _ => Err(format!("--scale must be in (0, 1], not {f}").into()),
        },
        _ => Err(format!("unexpected arguments {args:?}").into()),
    }
}

fn scaled(n: u64, scale: f64) -> u64 {
    ((n as f64 * scale) as u64).max(1)
}

fn bootstrap() -> Result<String, Error> {
    std::env::var("KAFKA_BOOTSTRAP_SERVERS")
        .map_err(|_| "start the broker first: eval \"$(scripts/kafka-broker.sh start)\"".into())
}

/// Peak resident memory of this process so far (VmHWM), in MiB; `None` where /proc is not there.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn rss() -> String {
    peak_rss_mib().map_or_else(|| "n/a".into(), |m| format!("{m:.0} MiB"))
}

fn rate(events: u64, elapsed: Duration) -> f64 {
    events as f64 / elapsed.as_secs_f64()
}

/// Runs this program again as `--child ARGS` and returns what it printed. Table rows start with `|`.
fn run_child(args: &[&str]) -> Result<String, Error> {
    run_child_with(args, &[])
}

/// [`run_child`] with environment variables set for the child.
fn run_child_with(args: &[&str], env: &[(&str, &str)]) -> Result<String, Error> {
    // The child's stderr (the SDK's warnings, e.g. that Kafka is unreachable) goes straight to ours.
    let out = Command::new(std::env::current_exe()?)
        .arg("--child")
        .args(args)
        .envs(env.iter().copied())
        .stderr(Stdio::inherit())
        .output()?;
    let stdout = String::from_utf8(out.stdout)?;
    if !out.status.success() {
        return Err(format!("child {args:?} failed ({}):\n{stdout}", out.status).into());
    }
    Ok(stdout)
}

/// Prints a table: the header, then the rows of every child's output, then the other lines (counters).
fn print_table(header: &[&str], outputs: &[String]) {
    println!("| {} |", header.join(" | "));
    println!("|{}", "---|".repeat(header.len()));
    for line in outputs.iter().flat_map(|o| o.lines()).filter(|l| l.starts_with('|')) {
        println!("{line}");
    }
    println!();
    for line in outputs.iter().flat_map(|o| o.lines()).filter(|l| !l.starts_with('|')) {
        println!("{line}");
    }
}

fn child(args: &[String]) -> Result<(), Error> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["spool-fill", dir, n] => spool_fill(Path::new(dir), n.parse()?),
        ["spool-drain", dir, n] => spool_replay(Path::new(dir), n.parse()?),
        ["live-exporter", dir, n] => live_exporter(Path::new(dir), n.parse()?),
        ["live-pipeline", dir, n] => live_pipeline(Path::new(dir), n.parse()?),
        ["traces", shape, sink, dir, scale] => trace_load(shape, sink == &"kafka", Path::new(dir), scale.parse()?),
        ["latency", sink, redaction, dir, secs] => {
            emit_latency(sink == &"kafka", redaction == &"on", Path::new(dir), Duration::from_secs_f64(secs.parse()?))
        }
        _ => Err(format!("unknown child {args:?}").into()),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// spool-drain

fn spool_drain(scale: f64) -> Result<(), Error> {
    bootstrap()?;
    let n = scaled(1_000_000, scale).to_string();
    let dir = tempfile::Builder::new().prefix("observer-load-").tempdir()?;
    let d = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    println!("spool-drain: {n} audit events; spools and files under {}", dir.path().display());
    // The pipeline's live rate is context (the broker keeps every message in memory: a fifth of the events).
    let fifth = (n.parse::<u64>()? / 5).max(1).to_string();
    let outputs = vec![
        run_child(&["live-exporter", &d("live-exporter"), &n])?,
        // `init` takes KAFKA_BOOTSTRAP_SERVERS over the config: the outage is that variable naming a closed port.
        run_child_with(&["spool-fill", &d("spool"), &n], &[("KAFKA_BOOTSTRAP_SERVERS", UNREACHABLE)])?,
        run_child(&["spool-drain", &d("spool"), &n])?,
        run_child(&["live-pipeline", &d("live-pipeline"), &fifth])?,
    ];
    print_table(&["phase", "events", "seconds", "events/s", "peak RSS"], &outputs);
    // The events/s column of the rows: live exporter, outage, drain, live pipeline.
    let rates: Vec<f64> = outputs
        .iter()
        .filter_map(|o| o.lines().find(|l| l.starts_with('|')))
        .filter_map(|row| row.split('|').nth(4)?.trim().parse().ok())
        .collect();
    if let [live, _, drain, pipeline] = rates[..] {
        println!(
            "drain / live export: {:.2} against the exporter (target ≥ 0.8), {:.2} against the pipeline",
            drain / live,
            drain / pipeline
        );
    }
    Ok(())
}

/// The spool's segment files: how many, and the size of the largest (replay reads one whole segment at a time).
fn segments(dir: &Path) -> Result<(usize, u64), Error> {
    let mut sizes = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with("segment-") {
            sizes.push(entry.metadata()?.len());
        }
    }
    Ok((sizes.len(), sizes.into_iter().max().unwrap_or(0)))
}

/// The audit event number `i` of the spool-drain scenario.
fn nth_event(i: u64) -> audit::AuditBuilder {
    audit::log_create(ResourceType::Document, format!("doc-{i}")).resource_name(format!("Document {i}"))
}

/// The Kafka settings of the scenario: a spool under `dir`, large enough for the whole outage.
fn kafka_config(bootstrap: String, dir: &Path) -> KafkaConfig {
    KafkaConfig {
        bootstrap_servers: bootstrap,
        audit_topic: AUDIT_TOPIC.into(),
        trace_topic: TRACE_TOPIC.into(),
        spool_dir: Some(dir.to_owned()),
        spool_max_bytes: 8 << 30,
        ..Default::default()
    }
}

/// Emits `n` events; when the queue is full the caller waits a millisecond and tries again (this scenario
/// is about the spool, not about a caller that outruns the dispatcher). Returns how many retries that took.
fn emit_all(n: u64, deadline: Instant) -> Result<u64, Error> {
    let mut retries = 0;
    for i in 0..n {
        let mut builder = nth_event(i);
        loop {
            match builder.emit() {
                Ok(_) => break,
                Err(AuditError::QueueFull { .. }) if Instant::now() < deadline => {
                    retries += 1;
                    std::thread::sleep(Duration::from_millis(1));
                    builder = nth_event(i);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(retries)
}

/// Waits (bounded by `deadline`) until `done` holds; returns whether it did.
fn wait_until(deadline: Instant, mut done: impl FnMut() -> bool) -> bool {
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

fn kafka_counters(s: &KafkaStats) -> String {
    format!(
        "produced {}, acknowledged {} (replayed {}), delivery failures {}, spooled {}, in the spool {} ({} MiB), \
         not spoolable {}, rejected {}, quarantined {}, in flight {}",
        s.produced,
        s.acknowledged,
        s.replayed,
        s.delivery_failures,
        s.spooled,
        s.spool_records,
        s.spool_bytes >> 20,
        s.spool_overflow,
        s.rejected,
        s.spool_quarantined,
        s.in_flight
    )
}

/// The broker down: every event goes to the spool (librdkafka's queue fills, then the rest is spooled at once;
/// what was queued is spooled when its message timeout passes, or by the shutdown's purge).
fn spool_fill(dir: &Path, n: u64) -> Result<(), Error> {
    let kafka = KafkaConfig { message_timeout: Duration::from_secs(2), ..kafka_config(UNREACHABLE.into(), dir) };
    let guard = observer::init(ObserverConfig {
        service_name: "load".into(),
        kafka: Some(kafka),
        audit_sink: AuditSink::None,
        flush_timeout: Duration::from_secs(2),
        ..Default::default()
    })?;
    let exporter = observer::kafka_exporter().ok_or("Kafka is configured")?;
    let start = Instant::now();
    let retries = emit_all(n, start + Duration::from_secs(600))?;
    let drained = wait_until(start + Duration::from_secs(900), || observer::stats().is_some_and(|s| s.pending == 0));
    let stats = observer::stats().ok_or("initialised")?;
    drop(guard); // waits for acknowledgements (none come), then purges what librdkafka holds into the spool
    let elapsed = start.elapsed();
    let k = exporter.stats();
    println!(
        "| outage: `emit` → Kafka sink → spool (broker unreachable) | {n} | {:.1} | {:.0} | {} |",
        elapsed.as_secs_f64(),
        rate(n, elapsed),
        rss()
    );
    println!(
        "outage: pipeline accepted {}, written {}, fallback {}, QueueFull retried {retries}, pending {}{}; Kafka: {}",
        stats.accepted,
        stats.written,
        stats.failed,
        stats.pending,
        if drained { "" } else { " (TIMED OUT waiting for the dispatcher)" },
        kafka_counters(&k)
    );
    // At least once: more than `n` would be duplicates (allowed, said here); fewer would be a loss.
    let accounted = k.spool_records + k.acknowledged + k.spool_overflow + k.rejected;
    if accounted > n {
        println!("outage: {} more messages than events (duplicates)", accounted - n);
    }
    if accounted < n || stats.failed != 0 {
        return Err(format!("{n} events emitted, {accounted} accounted for by the exporter").into());
    }
    Ok(())
}

/// The broker back: a new process opens the spool and its background thread re-sends it, oldest segment first.
fn spool_replay(dir: &Path, n: u64) -> Result<(), Error> {
    let (count, largest) = segments(dir)?;
    let start = Instant::now();
    let exporter = KafkaExporter::new(kafka_config(bootstrap()?, dir))?;
    let before = exporter.stats().spool_records;
    let done = wait_until(start + Duration::from_secs(1200), || {
        let s = exporter.stats();
        s.spool_records == 0 && s.in_flight == 0
    });
    let elapsed = start.elapsed();
    let k = exporter.stats();
    println!(
        "| drain: the spool re-sent by a new process | {before} | {:.1} | {:.0} | {} |",
        elapsed.as_secs_f64(),
        rate(before, elapsed),
        rss()
    );
    println!(
        "drain: {count} segments, the largest {} MiB; {}{}",
        largest >> 20,
        kafka_counters(&k),
        if done { "" } else { " (TIMED OUT before the spool was empty)" }
    );
    exporter.shutdown(Duration::from_secs(10))?;
    if before > n {
        println!("drain: the spool held {} more records than events were emitted (duplicates)", before - n);
    }
    if before < n || k.replayed != before || k.spool_records != 0 {
        return Err(format!("{n} spooled, {before} found in the spool, {} re-sent and acknowledged", k.replayed).into());
    }
    Ok(())
}

/// Most messages the live sender leaves in librdkafka's queue (its limit is 100,000: past it the exporter
/// spools, and this phase would measure the spool too).
const LIVE_IN_FLIGHT: u64 = 50_000;

/// The same number of messages, live: the exporter sends them (serialised as the Kafka sink does, with its key
/// and headers) as fast as librdkafka's queue takes them, then waits for every acknowledgement.
fn live_exporter(dir: &Path, n: u64) -> Result<(), Error> {
    let exporter = KafkaExporter::new(kafka_config(bootstrap()?, dir))?;
    let start = Instant::now();
    let deadline = start + Duration::from_secs(600);
    for i in 0..n {
        if i % 1_000 == 0 {
            wait_until(deadline, || exporter.stats().in_flight < LIVE_IN_FLIGHT);
        }
        let builder = nth_event(i);
        let event = builder.peek();
        let payload = serde_json::to_vec(event)?;
        let key = format!("{}:{}", event.resource_type.as_str(), event.resource_id);
        let headers = [
            ("event_type", event.audit_type.as_str()),
            ("event_id", event.event_id.as_str()),
            ("schema_version", audit::SCHEMA_VERSION),
            ("content-type", AuditFormat::Json.content_type()),
            ("format", AuditFormat::Json.as_str()),
        ];
        exporter.send(AUDIT_TOPIC, Some(&key), &headers, &payload)?;
    }
    let flushed = exporter.flush(Duration::from_secs(600));
    let elapsed = start.elapsed();
    let k = exporter.stats();
    println!(
        "| live: `KafkaExporter::send`, same messages | {n} | {:.1} | {:.0} | {} |",
        elapsed.as_secs_f64(),
        rate(k.acknowledged, elapsed),
        rss()
    );
    println!("live, exporter: {}", kafka_counters(&k));
    flushed?;
    exporter.shutdown(Duration::from_secs(10))?;
    Ok(())
}

/// The same events, live through the whole pipeline (redaction on, as by default), until acknowledged.
fn live_pipeline(dir: &Path, n: u64) -> Result<(), Error> {
    let guard = observer::init(ObserverConfig {
        service_name: "load".into(),
        kafka: Some(kafka_config(bootstrap()?, dir)),
        audit_sink: AuditSink::None,
        ..Default::default()
    })?;
    let exporter = observer::kafka_exporter().ok_or("Kafka is configured")?;
    let start = Instant::now();
    let retries = emit_all(n, start + Duration::from_secs(600))?;
    let acked = wait_until(start + Duration::from_secs(900), || exporter.stats().acknowledged >= n);
    let elapsed = start.elapsed();
    let stats = observer::stats().ok_or("initialised")?;
    let k = exporter.stats();
    println!(
        "| live: `emit` → dispatcher → Kafka sink (redaction on) | {n} | {:.1} | {:.0} | {} |",
        elapsed.as_secs_f64(),
        rate(k.acknowledged, elapsed),
        rss()
    );
    println!(
        "live, pipeline: accepted {}, written {}, fallback {}, QueueFull retried {retries}{}; Kafka: {}",
        stats.accepted,
        stats.written,
        stats.failed,
        if acked { "" } else { " (TIMED OUT waiting for acknowledgements)" },
        kafka_counters(&k)
    );
    drop(guard);
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// traces

fn traces(scale: f64) -> Result<(), Error> {
    let dir = tempfile::Builder::new().prefix("observer-load-").tempdir()?;
    let d = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let s = scale.to_string();
    let mut outputs = Vec::new();
    for shape in ["concurrent", "single"] {
        for sink in ["none", "kafka"] {
            if sink == "kafka" {
                bootstrap()?;
            }
            outputs.push(run_child(&["traces", shape, sink, &d(&format!("{shape}-{sink}")), &s])?);
        }
    }
    print_table(&["traces × components", "sink", "events", "seconds (median)", "events/s", "peak RSS"], &outputs);
    Ok(())
}

/// A component's outputs: a model and its usage, so extraction and pricing run as for an LLM call.
fn outputs() -> Value {
    json!({"classification": "account", "model": "gpt-4o",
           "usage": {"prompt_tokens": 100, "completion_tokens": 50, "prompt_tokens_details": {"cached_tokens": 20}}})
}

/// One trace of `components` components, yielding to the other tasks after every call.
async fn one_trace(tracer: AgentTracer, components: u64, all_started: Arc<tokio::sync::Barrier>) {
    tracer.start_trace();
    all_started.wait().await;
    for c in 0..components {
        let id = format!("c{c}");
        tracer.add_trace(&id, "Classifier", "llm", json!({"query": "How do I reset my password?"}));
        tokio::task::yield_now().await;
        tracer.end_trace(&id, "Classifier", outputs(), None);
        tokio::task::yield_now().await;
    }
    tracer.end(json!({"query": "q"}), json!({"answer": "a"}), None, None);
}

/// How many times each trace variant runs in its process (the runs are short: the median is reported).
const ROUNDS: usize = 5;

fn trace_load(shape: &str, kafka: bool, dir: &Path, scale: f64) -> Result<(), Error> {
    let (traces, components) = match shape {
        "concurrent" => (scaled(1_000, scale), 20),
        _ => (1, scaled(20_000, scale)),
    };
    let events = traces * (2 + 2 * components);
    observer::cost::warm_up();
    let sink = if kafka { Some(KafkaTopicSink::new(&kafka_config(bootstrap()?, dir), TRACE_TOPIC)?) } else { None };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let mut seconds = Vec::new();
    for _ in 0..ROUNDS {
        let all_started = Arc::new(tokio::sync::Barrier::new(traces as usize));
        let start = Instant::now();
        runtime.block_on(async {
            let mut tasks = Vec::new();
            for t in 0..traces {
                let tracer = AgentTracer::new(AgentTrace { trace_name: format!("flow {t}"), ..Default::default() })?;
                let tracer = match &sink {
                    Some(sink) => tracer.sink(sink.clone()),
                    None => tracer,
                };
                tasks.push(tokio::spawn(one_trace(tracer, components, all_started.clone())));
            }
            for task in tasks {
                task.await?;
            }
            Ok::<_, Error>(())
        })?;
        if let Some(sink) = &sink {
            sink.flush(Duration::from_secs(300))?;
        }
        seconds.push(start.elapsed().as_secs_f64());
    }
    seconds.sort_by(f64::total_cmp);
    let median = seconds[ROUNDS / 2];
    let sink_name = if kafka { "Kafka (until acknowledged)" } else { "none" };
    println!(
        "| {traces} × {components} | {sink_name} | {events} | {median:.2} | {:.0} | {} |",
        events as f64 / median,
        rss()
    );
    println!(
        "{traces} × {components}, sink {sink_name}: {ROUNDS} rounds, events/s from {:.0} to {:.0}",
        events as f64 / seconds[ROUNDS - 1],
        events as f64 / seconds[0]
    );
    if let Some(sink) = &sink {
        let k = sink.exporter().stats();
        println!("{traces} × {components}, Kafka: {}", kafka_counters(&k));
        if k.acknowledged != events * ROUNDS as u64 {
            return Err(format!("{} events sent, {} acknowledged", events * ROUNDS as u64, k.acknowledged).into());
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// latency

const THREADS: u64 = 8;
const RATE: u64 = 100_000;

fn latency(scale: f64) -> Result<(), Error> {
    let dir = tempfile::Builder::new().prefix("observer-load-").tempdir()?;
    let secs = (10.0 * scale).to_string();
    let mut outputs = Vec::new();
    for sink in ["file", "kafka"] {
        if sink == "kafka" {
            bootstrap()?;
        }
        for redaction in ["on", "off"] {
            let d = dir.path().join(format!("{sink}-{redaction}")).to_string_lossy().into_owned();
            outputs.push(run_child(&["latency", sink, redaction, &d, &secs])?);
        }
    }
    print_table(
        &["sink", "redaction", "emitted", "p50", "p99", "p99.9", "max", "QueueFull", "fallback", "written", "peak RSS"],
        &outputs,
    );
    Ok(())
}

/// A typical audit event (as in `benches/redaction.rs`): a description, a few metadata fields (one with free
/// text holding identifiers), a change.
fn typical_event() -> audit::AuditBuilder {
    audit::log_update(ResourceType::Document, "doc-123")
        .resource_name("Discharge summary")
        .description("Updated discharge summary for Patient: Jane Roe, MRN: 00442211")
        .metadata("department", "cardiology")
        .metadata("reason", "follow-up call to (617) 555-0123 scheduled for 03/02/2025")
        .metadata("tokens", json!({"input": 812, "output": 133}))
        .changes([ChangeRecord::new("status", "draft", "final")])
}

/// One caller thread: `n` emits, one every `period` on its own schedule (a late emit does not shift the next).
/// Returns the latency histograms (ns) of all emits and of the accepted ones, and how many were refused with
/// `QueueFull`.
fn paced_emits(n: u64, period: Duration, stop: Instant) -> Result<(Histogram, Histogram, u64), Error> {
    observer::set_actor_context(Some(
        ActorContext::new("user-123").email("user@example.com").roles(["admin", "analyst"]),
    ));
    let (mut all, mut accepted) = (histogram()?, histogram()?);
    let mut queue_full = 0;
    let start = Instant::now();
    for i in 0..n {
        let due = start + period * (i as u32);
        let now = Instant::now();
        if now >= stop {
            break;
        }
        if due > now {
            std::thread::sleep(due - now);
        }
        let t = Instant::now();
        let result = typical_event().emit();
        let ns = t.elapsed().as_nanos() as u64;
        all.saturating_record(ns);
        match result {
            Ok(_) => accepted.saturating_record(ns),
            Err(AuditError::QueueFull { .. }) => queue_full += 1,
            Err(e) => return Err(e.into()),
        }
    }
    Ok((all, accepted, queue_full))
}

type Histogram = hdrhistogram::Histogram<u64>;

/// Nanoseconds from 1 ns to a minute, 3 significant digits.
fn histogram() -> Result<Histogram, Error> {
    Ok(Histogram::new_with_bounds(1, 60_000_000_000, 3)?)
}

fn percentiles(h: &Histogram) -> String {
    format!(
        "p50 {} p99 {} p99.9 {} max {}",
        micros(h.value_at_quantile(0.5)),
        micros(h.value_at_quantile(0.99)),
        micros(h.value_at_quantile(0.999)),
        micros(h.max())
    )
}

fn micros(ns: u64) -> String {
    format!("{:.1} µs", ns as f64 / 1000.0)
}

fn emit_latency(kafka: bool, redaction: bool, dir: &Path, duration: Duration) -> Result<(), Error> {
    let guard = observer::init(ObserverConfig {
        service_name: "load".into(),
        kafka: if kafka { Some(kafka_config(bootstrap()?, &dir.join("spool"))) } else { None },
        audit_sink: if kafka { AuditSink::None } else { AuditSink::file(dir.join("audit.jsonl")) },
        redaction: RedactionConfig { enabled: redaction, ..Default::default() },
        flush_timeout: Duration::from_secs(120),
        ..Default::default()
    })?;
    let per_thread = (RATE / THREADS) * duration.as_secs_f64().ceil() as u64;
    let period = Duration::from_nanos(1_000_000_000 * THREADS / RATE);
    // A generous bound: a thread that falls behind still stops at the end of the run.
    let stop = Instant::now() + duration + Duration::from_secs(1);
    let start = Instant::now();
    let threads: Vec<_> =
        (0..THREADS).map(|_| std::thread::spawn(move || paced_emits(per_thread, period, stop))).collect();
    let (mut hist, mut accepted) = (histogram()?, histogram()?);
    let mut queue_full = 0;
    for t in threads {
        let (h, a, q) = t.join().map_err(|_| "a caller thread panicked")??;
        hist.add(h)?;
        accepted.add(a)?;
        queue_full += q;
    }
    let elapsed = start.elapsed();
    let attempted = hist.len();
    let flushed = observer::flush(Duration::from_secs(120));
    let until_written = start.elapsed();
    let s = observer::stats().ok_or("initialised")?;
    let exporter = observer::kafka_exporter();
    drop(guard);
    println!(
        "| {} | {} | {attempted} ({:.0}/s) | {} | {} | {} | {} | {} | {} | {} | {} |",
        if kafka { "Kafka" } else { "file" },
        if redaction { "on" } else { "off" },
        rate(attempted, elapsed),
        micros(hist.value_at_quantile(0.5)),
        micros(hist.value_at_quantile(0.99)),
        micros(hist.value_at_quantile(0.999)),
        micros(hist.max()),
        s.rejected_queue_full,
        s.failed,
        s.written,
        rss()
    );
    println!(
        "{} redaction {}: emits {attempted}, refused QueueFull (callers saw) {queue_full}, pipeline accepted {} + \
         QueueFull {} = {}, written {} + fallback {} + pending {}, sink errors {}; written {:.0}/s (until the flush \
         returned); accepted emits only: {}{}{}",
        if kafka { "Kafka" } else { "file" },
        if redaction { "on" } else { "off" },
        s.accepted,
        s.rejected_queue_full,
        s.accepted + s.rejected_queue_full,
        s.written,
        s.failed,
        s.pending,
        s.sink_errors,
        rate(s.written, until_written),
        percentiles(&accepted),
        exporter.map(|e| format!("; Kafka: {}", kafka_counters(&e.stats()))).unwrap_or_default(),
        match flushed {
            Ok(()) => String::new(),
            Err(e) => format!(" (flush: {e})"),
        }
    );
    if s.accepted + s.rejected_queue_full != attempted || queue_full != s.rejected_queue_full {
        return Err("the counters do not add up".into());
    }
    Ok(())
}
