//! Fresh price data and overrides: a file or URL that adds a model and changes a price is used after a refresh,
//! a malformed or empty one keeps the previous data, an unreachable URL never delays a caller, overrides win.
//!
//! The price data in effect is process-wide, so the tests of this binary run one at a time (`SERIAL`); each
//! starts its own `PriceRefresher`, which replaces what the previous one installed. Test data:
//! `tests/data/prices/fresh-v1.json` reprices `gpt-4o` (bundled: $2.50 / $10 per million input / output tokens)
//! to $2 / $8 and adds `gpt-observer-test-1` ($1 / $3), which the bundled data lacks; `fresh-v2.json` reprices
//! `gpt-4o` to $3 / $12.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use observer::cost::{price_data_status, PriceDataError, PriceRefresher, PriceSource};
use observer::{calculate_cost, calculate_cost_cached, get_price, PriceConfig, PriceDataSource, PriceOverride};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    failure_reports(); // the counting subscriber is installed before any refresher runs
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/prices").join(name)
}

/// Copies a test data file over `to` atomically (a reader sees the old or the new file, never half of one).
fn install_file(name: &str, to: &Path) {
    let tmp = to.with_extension("tmp");
    std::fs::copy(data(name), &tmp).unwrap();
    std::fs::rename(&tmp, to).unwrap();
}

fn write_file(to: &Path, bytes: &[u8]) {
    let tmp = to.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, to).unwrap();
}

/// Polls `done` every 10 ms for at most 20 s.
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}; status {:?}", price_data_status());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// 1,000 input and 500 output tokens of `gpt-4o`: bundled 0.0025 + 0.005.
fn gpt_4o_total() -> f64 {
    calculate_cost("openai", "gpt-4o", 1000, 500).total_cost
}

const BUNDLED_GPT_4O: f64 = 0.0075;
const V1_GPT_4O: f64 = 0.006;
const V2_GPT_4O: f64 = 0.009;

fn file_config(path: &Path, interval: Duration) -> PriceConfig {
    PriceConfig { data: Some(PriceDataSource::File(path.into())), refresh_interval: interval, ..Default::default() }
}

/// The v1 data is in effect: the changed price, the added model, and the bundled data for the rest.
fn assert_v1_in_effect() {
    let changed = calculate_cost("openai", "gpt-4o", 1000, 500);
    assert_eq!((changed.total_cost, changed.price_source), (V1_GPT_4O, PriceSource::Loaded), "{changed:?}");
    // A dated id matched by the data's rule is repriced too; cached tokens at the data's cache-read rate.
    let cached = calculate_cost_cached("", "gpt-4o-2024-08-06", 1000, 0, 500);
    assert_eq!(cached.input_cost, 0.0015, "{cached:?}");
    let added = calculate_cost("openai", "gpt-observer-test-1", 1000, 500);
    assert!(added.price_found, "{added:?}");
    assert_eq!((added.total_cost, added.price_source), (0.0025, PriceSource::Loaded));
    let price = get_price("openai", "gpt-4o").unwrap();
    assert_eq!((price.input_price_per_1k, price.output_price_per_1k), (0.002, 0.008));
    // Models the loaded data lacks keep their bundled price.
    let other = calculate_cost("anthropic", "claude-3-haiku-20240307", 1000, 500);
    assert_eq!((other.total_cost, other.price_source), (0.000875, PriceSource::Bundled), "{other:?}");
}

#[test]
fn a_file_adds_a_model_and_changes_a_price_used_after_each_background_refresh() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("prices.json");
    install_file("fresh-v1.json", &file);
    // Nothing loaded yet: the bundled data (a fresh refresher starts from it).
    let refresher = PriceRefresher::start(&file_config(&file, Duration::from_millis(50))).unwrap();
    wait_until("the file is loaded", || price_data_status().source == PriceSource::Loaded);
    assert_v1_in_effect();
    let status = price_data_status();
    assert_eq!(status.models, 2);
    assert_eq!(status.origin.as_deref(), Some(file.display().to_string().as_str()));
    assert!(status.loaded_at.is_some() && status.refreshes >= 1 && status.failures == 0, "{status:?}");

    // The file is rewritten while the refresher runs: the next background refresh (no refresh_now) uses it.
    install_file("fresh-v2.json", &file);
    wait_until("the rewritten file is used", || gpt_4o_total() == V2_GPT_4O);
    assert_eq!(calculate_cost("openai", "gpt-4o", 1000, 500).price_source, PriceSource::Loaded);
    assert_eq!(calculate_cost("openai", "gpt-observer-test-1", 1000, 500).total_cost, 0.0025);
    drop(refresher);
}

#[test]
fn a_malformed_or_empty_file_keeps_the_previous_data_and_is_reported_once() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("prices.json");
    install_file("fresh-v1.json", &file);
    let refresher = PriceRefresher::start(&file_config(&file, Duration::from_secs(3600))).unwrap();
    refresher.refresh_now().unwrap();
    assert_v1_in_effect();
    let reports_before = failure_reports().load(Ordering::SeqCst);

    install_file("malformed.json", &file);
    let err = refresher.refresh_now().unwrap_err();
    assert!(matches!(err, PriceDataError::Invalid { .. }), "{err}");
    assert!(err.to_string().contains("prices.json"), "the error names the file: {err}");
    assert_v1_in_effect();

    for empty in [&b""[..], b"[]", br#"[{"id": "acme", "name": "Acme", "api_pattern": "acme", "models": []}]"#] {
        write_file(&file, empty);
        let err = refresher.refresh_now().unwrap_err();
        assert!(matches!(err, PriceDataError::Empty { .. }), "{err}");
        assert_v1_in_effect();
    }
    std::fs::remove_file(&file).unwrap();
    assert!(matches!(refresher.refresh_now().unwrap_err(), PriceDataError::Read { .. }));
    assert_v1_in_effect();

    let status = price_data_status();
    assert_eq!(status.failures, 5, "{status:?}");
    assert!(status.last_error.as_deref().is_some_and(|e| e.contains("cannot read")), "{status:?}");
    // Five failures in a row, one report.
    assert_eq!(failure_reports().load(Ordering::SeqCst), reports_before + 1);

    install_file("fresh-v2.json", &file);
    refresher.refresh_now().unwrap();
    assert_eq!(gpt_4o_total(), V2_GPT_4O);
    let status = price_data_status();
    assert_eq!((status.failures, status.last_error), (5, None));
}

#[test]
fn overrides_win_over_the_data_and_their_file_is_reread() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("overrides.json");
    let config = PriceConfig {
        overrides: vec![
            PriceOverride::new("vllm", "my-finetune", 0.4, 0.8),
            // A negotiated rate for a model the data prices: wins, for its dated ids too.
            PriceOverride::new("openai", "gpt-4o", 1.0, 4.0),
        ],
        ..Default::default()
    };
    // Without a file: in effect as soon as `start` returns, no thread needed.
    let refresher = PriceRefresher::start(&config).unwrap();
    let own = calculate_cost("vllm", "My-Finetune", 1_000_000, 500_000);
    assert_eq!((own.total_cost, own.price_source, own.price_found), (0.8, PriceSource::Override, true));
    for (provider, model) in [("openai", "GPT-4o"), ("", "gpt-4o"), ("", "gpt-4o-2024-08-06")] {
        let r = calculate_cost(provider, model, 1000, 500);
        assert_eq!((r.total_cost, r.price_source), (0.003, PriceSource::Override), "{provider}/{model}");
    }
    // OpenAI's negotiated rate is not Azure's.
    let azure = calculate_cost("azure_openai", "gpt-4o", 1000, 500);
    assert_eq!((azure.total_cost, azure.price_source), (BUNDLED_GPT_4O, PriceSource::Bundled));
    assert_eq!(get_price("vllm", "my-finetune").map(|p| p.output_price_per_1k), Some(0.0008));
    assert_eq!(calculate_cost("other", "my-finetune", 1000, 500).price_source, PriceSource::Unpriced);
    assert_eq!(price_data_status().overrides, 2);
    drop(refresher);

    // From a file, re-read at every refresh; its entries win over the config's.
    install_file("overrides.json", &file);
    let refresher = PriceRefresher::start(&PriceConfig {
        overrides_file: Some(file.clone()),
        refresh_interval: Duration::from_millis(50),
        ..config.clone()
    })
    .unwrap();
    assert_eq!(calculate_cost("openai", "gpt-4o", 1_000_000, 0).total_cost, 0.5);
    assert_eq!(calculate_cost_cached("openai", "gpt-4o", 1_000_000, 0, 1_000_000).total_cost, 0.25);
    assert_eq!(calculate_cost("vllm", "llama-3.1-70b-ft", 1_000_000, 1_000_000).total_cost, 1.2);
    assert_eq!(calculate_cost("vllm", "my-finetune", 1_000_000, 0).total_cost, 0.4);
    let rewritten = br#"[{"provider": "vllm", "model": "llama-3.1-70b-ft", "input_mtok": 0.1, "output_mtok": 0.1}]"#;
    write_file(&file, rewritten);
    wait_until("the rewritten overrides are used", || {
        calculate_cost("vllm", "llama-3.1-70b-ft", 1_000_000, 1_000_000).total_cost == 0.2
    });
    // gpt-4o falls back to the config's override once the file no longer has it.
    assert_eq!(calculate_cost("openai", "gpt-4o", 1_000_000, 0).total_cost, 1.0);
    // A malformed overrides file at a refresh keeps the previous overrides.
    write_file(&file, br#"[{"provider": "vllm", "model": "llama-3.1-70b-ft", "input_per_1k": 9}]"#);
    assert!(matches!(refresher.refresh_now().unwrap_err(), PriceDataError::Invalid { .. }));
    assert_eq!(calculate_cost("vllm", "llama-3.1-70b-ft", 1_000_000, 1_000_000).total_cost, 0.2);
    drop(refresher);

    // ... and at start, a clear configuration error.
    let err = PriceRefresher::start(&PriceConfig { overrides_file: Some(file), ..Default::default() }).unwrap_err();
    assert_eq!(err.field, "prices.overrides_file");
    assert!(err.message.contains("input_per_1k"), "{err}");
}

#[test]
fn init_starts_the_refresher_from_the_config_and_its_guard_stops_it() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("prices.json");
    install_file("fresh-v1.json", &file);
    let guard = observer::init(observer::ObserverConfig {
        audit_sink: observer::AuditSink::Memory(observer::export::MemorySink::new()),
        prices: PriceConfig {
            overrides: vec![PriceOverride::new("", "in-house", 1.0, 1.0)],
            ..file_config(&file, Duration::from_millis(20))
        },
        ..Default::default()
    })
    .unwrap();
    wait_until("init's refresher loads the file", || gpt_4o_total() == V1_GPT_4O);
    assert_eq!(calculate_cost("self-hosted", "in-house", 1_000_000, 0).total_cost, 1.0);
    assert!(refresher_threads() >= 1);
    drop(guard);
    wait_until("the refresh thread has ended", || refresher_threads() == 0);
    // The last data loaded stays in effect after shutdown.
    assert_eq!(gpt_4o_total(), V1_GPT_4O);
}

/// Threads named `observer-prices` in this process (Linux: `/proc/self/task/*/comm`).
fn refresher_threads() -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { panic!("this test needs /proc (Linux)") };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim() == "observer-prices")
        .count()
}

/// How many `prices-refresh-failed` reports the SDK emitted (a global `tracing` subscriber counts them: the
/// reports come from the refresher's thread).
fn failure_reports() -> &'static AtomicUsize {
    static COUNT: OnceLock<Arc<AtomicUsize>> = OnceLock::new();
    COUNT.get_or_init(|| {
        use tracing_subscriber::layer::SubscriberExt;
        let count = Arc::new(AtomicUsize::new(0));
        let subscriber =
            tracing_subscriber::registry().with(KindCounter { kind: "prices-refresh-failed", count: count.clone() });
        tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber in this binary");
        count
    })
}

struct KindCounter {
    kind: &'static str,
    count: Arc<AtomicUsize>,
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for KindCounter {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Kind(Option<String>);
        impl tracing::field::Visit for Kind {
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                if field.name() == "kind" {
                    self.0 = Some(value.to_owned());
                }
            }
            fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
        }
        let mut kind = Kind(None);
        event.record(&mut kind);
        if kind.0.as_deref() == Some(self.kind) {
            self.count.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// A loopback HTTP server for the URL tests: answers every request with the current `body` (and `status`), or,
/// while `hold` is set, reads the request, says so, and never answers until released (bounded: 60 s).
#[cfg(feature = "prices-http")]
mod server {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{TcpListener, TcpStream};

    use super::*;

    pub struct Server {
        pub port: u16,
        pub body: Arc<Mutex<(u16, Vec<u8>)>>,
        pub hold: Arc<std::sync::atomic::AtomicBool>,
        pub requests_held: Arc<AtomicUsize>,
        /// Requests answered 304 Not Modified (their `If-None-Match` named the current body's `ETag`).
        pub not_modified: Arc<AtomicUsize>,
        release: Arc<std::sync::atomic::AtomicBool>,
        stop: Arc<std::sync::atomic::AtomicBool>,
    }

    impl Server {
        pub fn start(status: u16, body: Vec<u8>) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.set_nonblocking(true).unwrap();
            let server = Self {
                port: listener.local_addr().unwrap().port(),
                body: Arc::new(Mutex::new((status, body))),
                hold: Arc::default(),
                requests_held: Arc::default(),
                not_modified: Arc::default(),
                release: Arc::default(),
                stop: Arc::default(),
            };
            let (body, hold, held, release, stop, not_modified) = (
                server.body.clone(),
                server.hold.clone(),
                server.requests_held.clone(),
                server.release.clone(),
                server.stop.clone(),
                server.not_modified.clone(),
            );
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(120);
                while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                    let Ok((stream, _)) = listener.accept() else {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    };
                    let (body, hold, held, release) = (body.clone(), hold.clone(), held.clone(), release.clone());
                    let not_modified = not_modified.clone();
                    std::thread::spawn(move || serve(stream, &body, &hold, &held, &release, &not_modified));
                }
            });
            server
        }

        pub fn url(&self) -> String {
            format!("http://127.0.0.1:{}/v2/data.json?token=s3cr3t", self.port)
        }

        pub fn release_held(&self) {
            self.release.store(true, Ordering::SeqCst);
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.release.store(true, Ordering::SeqCst);
            self.stop.store(true, Ordering::SeqCst);
        }
    }

    fn serve(
        mut stream: TcpStream,
        body: &Mutex<(u16, Vec<u8>)>,
        hold: &std::sync::atomic::AtomicBool,
        held: &AtomicUsize,
        release: &std::sync::atomic::AtomicBool,
        not_modified: &AtomicUsize,
    ) {
        stream.set_nonblocking(false).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        let mut if_none_match = None;
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("if-none-match") {
                    if_none_match = Some(value.trim().to_owned());
                }
            }
            line.clear();
        }
        if hold.load(Ordering::SeqCst) {
            // The request is in: the fetch is pending from here on, until released.
            held.fetch_add(1, Ordering::SeqCst);
            let deadline = Instant::now() + Duration::from_secs(60);
            while !release.load(Ordering::SeqCst) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            return; // closes without an answer
        }
        let (status, bytes) = body.lock().unwrap().clone();
        // FNV-1a of the body as its ETag.
        let etag = format!(
            "\"{:x}\"",
            bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3))
        );
        let (status, bytes) = if if_none_match.as_deref() == Some(etag.as_str()) {
            not_modified.fetch_add(1, Ordering::SeqCst);
            (304, Vec::new())
        } else {
            (status, bytes)
        };
        let head = format!(
            "HTTP/1.1 {status} X\r\nETag: {etag}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            bytes.len()
        );
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(&bytes);
        let _ = stream.flush();
        let _ = stream.read(&mut [0; 1]); // until the client closes (bounded by the read timeout)
    }
}

#[cfg(feature = "prices-http")]
fn url_config(url: String) -> PriceConfig {
    PriceConfig {
        data: Some(PriceDataSource::Url(url)),
        refresh_interval: Duration::from_secs(3600),
        fetch_timeout: Duration::from_secs(60),
        ..Default::default()
    }
}

#[cfg(feature = "prices-http")]
#[test]
fn a_url_adds_a_model_and_changes_a_price_used_after_a_refresh() {
    let _serial = serial();
    let read = |name| std::fs::read(data(name)).unwrap();
    let server = server::Server::start(200, read("fresh-v1.json"));
    let refresher = PriceRefresher::start(&url_config(server.url())).unwrap();
    refresher.refresh_now().unwrap();
    assert_v1_in_effect();
    let status = price_data_status();
    // The origin is shown without the query (it may hold a token).
    assert_eq!(status.origin, Some(format!("http://127.0.0.1:{}/v2/data.json", server.port)));

    *server.body.lock().unwrap() = (200, read("fresh-v2.json"));
    refresher.refresh_now().unwrap();
    assert_eq!(gpt_4o_total(), V2_GPT_4O);
    assert_eq!(calculate_cost("openai", "gpt-observer-test-1", 1000, 500).total_cost, 0.0025);

    // Unchanged feed: a conditional request (the ETag of the data in effect), answered 304, is a successful refresh.
    assert_eq!(server.not_modified.load(Ordering::SeqCst), 0);
    let refreshes = price_data_status().refreshes;
    refresher.refresh_now().unwrap();
    assert_eq!(server.not_modified.load(Ordering::SeqCst), 1);
    assert_eq!(price_data_status().refreshes, refreshes + 1);
    assert_eq!(gpt_4o_total(), V2_GPT_4O);

    // A server error and a malformed download keep the data in effect; errors never show the token.
    *server.body.lock().unwrap() = (500, b"oops".to_vec());
    let err = refresher.refresh_now().unwrap_err();
    assert!(matches!(err, PriceDataError::Status { status: 500, .. }), "{err}");
    assert!(!err.to_string().contains("s3cr3t"), "{err}");
    *server.body.lock().unwrap() = (200, read("malformed.json"));
    assert!(matches!(refresher.refresh_now().unwrap_err(), PriceDataError::Invalid { .. }));
    assert_eq!(gpt_4o_total(), V2_GPT_4O);
}

#[cfg(feature = "prices-http")]
#[test]
fn an_unreachable_url_falls_back_without_delaying_any_caller() {
    let _serial = serial();
    // A closed port: the fetch fails, the bundled data stays in effect.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let refresher = PriceRefresher::start(&url_config(format!("http://127.0.0.1:{closed}/prices.json"))).unwrap();
    let err = refresher.refresh_now().unwrap_err();
    assert!(matches!(err, PriceDataError::Fetch { .. }), "{err}");
    let r = calculate_cost("openai", "gpt-4o", 1000, 500);
    assert_eq!((r.total_cost, r.price_source), (BUNDLED_GPT_4O, PriceSource::Bundled));
    assert!(price_data_status().failures >= 1);
    drop(refresher);

    // A server that takes the request and never answers: callers are served while the fetch is pending.
    let server = server::Server::start(200, Vec::new());
    server.hold.store(true, Ordering::SeqCst);
    let refresher = PriceRefresher::start(&url_config(server.url())).unwrap();
    wait_until("the fetch is pending at the server", || server.requests_held.load(Ordering::SeqCst) == 1);
    assert!(price_data_status().fetching);
    let callers: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(|| (0..100).map(|_| calculate_cost("openai", "gpt-4o", 1000, 500)).collect::<Vec<_>>())
        })
        .collect();
    for caller in callers {
        for r in caller.join().unwrap() {
            assert_eq!((r.total_cost, r.price_source), (BUNDLED_GPT_4O, PriceSource::Bundled));
        }
    }
    assert_eq!(get_price("openai", "gpt-4o").map(|p| p.input_price_per_1k), Some(0.0025));
    // Every call above returned while the fetch was still pending: the server has not answered, the refresher
    // is still fetching.
    assert!(price_data_status().fetching, "{:?}", price_data_status());
    assert_eq!(server.requests_held.load(Ordering::SeqCst), 1);
    assert_eq!(price_data_status().refreshes + price_data_status().failures, 0);
    // Stopping does not wait for the pending fetch either.
    drop(refresher);
    assert!(price_data_status().fetching, "stopped while the fetch was still pending");
    server.release_held();
    wait_until("the abandoned fetch has ended", || !price_data_status().fetching);
    // A stopped refresher installs nothing and counts nothing.
    assert_eq!(price_data_status().refreshes + price_data_status().failures, 0);
    assert_eq!(gpt_4o_total(), BUNDLED_GPT_4O);
}
