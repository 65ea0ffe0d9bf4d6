//! The price data in effect: newer `genai-prices` data loaded from a file or URL and the user's overrides, held
//! behind one [`ArcSwapOption`] (callers only load it: lock-free, never blocked by a refresh), and the
//! [`PriceRefresher`] thread that keeps them fresh.

use std::hash::{Hash, Hasher};
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::{ArcSwapOption, Guard};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use genai_prices::Calculator;
use serde::{Deserialize, Serialize};

use super::overrides::Override;
use crate::config::{PriceConfig, PriceDataSource, PriceOverride};
use crate::error::ConfigurationError;

/// The largest price data file or download accepted (the bundled data is under 1 MiB).
pub const MAX_PRICE_DATA_BYTES: u64 = 32 * 1024 * 1024;

/// The current v2 provider-data feed of `genai-prices` (the same JSON format as the bundled data), for
/// [`PriceDataSource::Url`].
pub const GENAI_PRICES_DATA_URL: &str = genai_prices::REMOTE_DATA_URL;

/// How long stopping a refresher waits for its thread before leaving it to end on its own (it then changes
/// nothing: a stopped refresher never installs data).
const STOP_WAIT: Duration = Duration::from_secs(1);

/// Which data priced a [`CostResult`](crate::CostResult).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PriceSource {
    /// The data bundled with the `genai-prices` crate (also for results written before this field existed).
    #[default]
    Bundled,
    /// Data loaded from [`PriceConfig::data`] (a file or URL).
    Loaded,
    /// A [`PriceOverride`] of your own.
    Override,
    /// No price was found (`price_found: false`, every cost zero).
    Unpriced,
}

/// Why price data or overrides could not be loaded. The data in effect stays as it was.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PriceDataError {
    /// The file could not be read.
    #[error("cannot read price file `{path}`: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The URL could not be fetched (connection, TLS, timeout).
    #[error("cannot fetch price data from `{url}`: {message}")]
    Fetch {
        /// The URL without user information, query and fragment.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The server answered with a status other than 2xx.
    #[error("price data URL `{url}` answered HTTP {status}")]
    Status {
        /// The URL without user information, query and fragment.
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The file or download is larger than [`MAX_PRICE_DATA_BYTES`].
    #[error("price data from `{origin}` is larger than {limit} bytes")]
    TooLarge {
        /// The path or redacted URL.
        origin: String,
        /// The limit.
        limit: u64,
    },
    /// Not valid `genai-prices` v2 data (or not a valid overrides file).
    #[error("invalid price data from `{origin}`: {message}")]
    Invalid {
        /// The path or redacted URL.
        origin: String,
        /// What is wrong with it.
        message: String,
    },
    /// Valid JSON, but no model to price: an empty file, `[]`, or providers without models.
    #[error("price data from `{origin}` is empty (no model priced); refused")]
    Empty {
        /// The path or redacted URL.
        origin: String,
    },
    /// The refresher was stopped, or its thread is gone.
    #[error("the price refresher is stopped")]
    Stopped,
}

/// What is in effect and how the refreshes went; see [`price_data_status`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PriceDataStatus {
    /// [`PriceSource::Loaded`] when loaded data is in effect (the bundled data then prices only the models it
    /// lacks), else [`PriceSource::Bundled`].
    pub source: PriceSource,
    /// The file or redacted URL the data in effect came from, when loaded.
    pub origin: Option<String>,
    /// When the data in effect was loaded.
    pub loaded_at: Option<SystemTime>,
    /// Models in the loaded data (0 when none is loaded).
    pub models: usize,
    /// Overrides in effect (from the config and the overrides file).
    pub overrides: usize,
    /// Refreshes that succeeded (new data installed, or unchanged) since the refresher started.
    pub refreshes: u64,
    /// Refreshes that failed (the previous data was kept) since the refresher started.
    pub failures: u64,
    /// Why the last refresh failed, when it did (cleared by the next success).
    pub last_error: Option<String>,
    /// Whether the refresher is reading or downloading data right now.
    pub fetching: bool,
}

/// The data loaded from a [`PriceDataSource`].
pub(crate) struct Loaded {
    pub(crate) calculator: Calculator,
    origin: String,
    loaded_at: SystemTime,
    models: usize,
    digest: u64,
}

/// What callers price with besides the bundled data.
#[derive(Default)]
pub(crate) struct Prices {
    /// Loaded data; `None`: the bundled data alone.
    pub(crate) loaded: Option<Arc<Loaded>>,
    /// Overrides in match order (the file's, then the config's).
    pub(crate) overrides: Arc<[Override]>,
    /// The provider each model id alone resolves to with these prices (new, so empty, with every change).
    pub(crate) model_providers: super::price::ModelProviders,
}

/// `None`: the bundled data only, no overrides (nothing was ever configured).
static STATE: ArcSwapOption<Prices> = ArcSwapOption::const_empty();

/// The prices in effect, for one calculation: a lock-free load.
pub(crate) fn current() -> Guard<Option<Arc<Prices>>> {
    STATE.load()
}

/// Serialises writers of [`STATE`] and holds the generation of the refresher that owns it: a refresher only
/// installs while its generation is the current one (a newer refresher replaced it otherwise).
static WRITER: Mutex<u64> = Mutex::new(0);

/// Counters of the current generation.
struct Counters {
    refreshes: AtomicU64,
    failures: AtomicU64,
    /// The generation fetching right now (0: none).
    fetching: AtomicU64,
    last_error: Mutex<Option<String>>,
}

static COUNTERS: Counters = Counters {
    refreshes: AtomicU64::new(0),
    failures: AtomicU64::new(0),
    fetching: AtomicU64::new(0),
    last_error: Mutex::new(None),
};

/// Replaces the prices when `generation` still owns them; returns whether it did.
fn install(generation: u64, update: impl FnOnce(&Prices) -> Prices) -> bool {
    let owner = WRITER.lock().unwrap_or_else(PoisonError::into_inner);
    if *owner != generation {
        return false;
    }
    let old = STATE.load_full();
    let new = update(old.as_deref().unwrap_or(&Prices::default()));
    STATE.store(Some(Arc::new(new)));
    true
}

/// What is in effect and how the refreshes of the current [`PriceRefresher`] went. Cheap; never blocks on a
/// refresh.
pub fn price_data_status() -> PriceDataStatus {
    let state = STATE.load();
    let loaded = state.as_ref().and_then(|p| p.loaded.clone());
    let generation = *WRITER.lock().unwrap_or_else(PoisonError::into_inner);
    PriceDataStatus {
        source: if loaded.is_some() { PriceSource::Loaded } else { PriceSource::Bundled },
        origin: loaded.as_ref().map(|l| l.origin.clone()),
        loaded_at: loaded.as_ref().map(|l| l.loaded_at),
        models: loaded.as_ref().map_or(0, |l| l.models),
        overrides: state.as_ref().map_or(0, |p| p.overrides.len()),
        refreshes: COUNTERS.refreshes.load(Ordering::Relaxed),
        failures: COUNTERS.failures.load(Ordering::Relaxed),
        last_error: COUNTERS.last_error.lock().unwrap_or_else(PoisonError::into_inner).clone(),
        fetching: generation != 0 && COUNTERS.fetching.load(Ordering::Relaxed) == generation,
    }
}

/// Decodes and checks `bytes` as `genai-prices` v2 data: a payload that does not decode, or that prices no
/// model, is refused.
pub(crate) fn decode(bytes: &[u8], origin: &str) -> Result<Loaded, PriceDataError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(PriceDataError::Empty { origin: origin.into() });
    }
    let calculator = std::panic::catch_unwind(|| Calculator::from_json(bytes))
        .map_err(|_| PriceDataError::Invalid { origin: origin.into(), message: "the decoder panicked".into() })?
        .map_err(|e| PriceDataError::Invalid { origin: origin.into(), message: e.to_string() })?;
    let models = calculator.providers().map(|p| p.models().count()).sum();
    if models == 0 {
        return Err(PriceDataError::Empty { origin: origin.into() });
    }
    Ok(Loaded { calculator, origin: origin.into(), loaded_at: SystemTime::now(), models, digest: digest(bytes) })
}

fn digest(bytes: &[u8]) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut hasher);
    hasher.finish()
}

/// Reads at most [`MAX_PRICE_DATA_BYTES`] of `path`.
fn read_file(path: &Path) -> Result<Vec<u8>, PriceDataError> {
    let origin = || path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| PriceDataError::Read { path: origin(), source })?;
    let mut bytes = Vec::new();
    file.take(MAX_PRICE_DATA_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| PriceDataError::Read { path: origin(), source })?;
    if bytes.len() as u64 > MAX_PRICE_DATA_BYTES {
        return Err(PriceDataError::TooLarge { origin: origin(), limit: MAX_PRICE_DATA_BYTES });
    }
    Ok(bytes)
}

/// Reads and checks an overrides file: a JSON array of [`PriceOverride`] objects.
pub(crate) fn read_overrides(path: &Path) -> Result<Vec<PriceOverride>, PriceDataError> {
    let bytes = read_file(path)?;
    let origin = || path.display().to_string();
    let list: Vec<PriceOverride> = serde_json::from_slice(&bytes).map_err(|e| PriceDataError::Invalid {
        origin: origin(),
        message: format!("not an array of overrides: {e}"),
    })?;
    for (i, o) in list.iter().enumerate() {
        o.validate().map_err(|m| PriceDataError::Invalid { origin: origin(), message: format!("entry {i}: {m}") })?;
    }
    Ok(list)
}

/// Commands to the refresher thread.
enum Command {
    /// Refresh now and say how it went.
    Now(Sender<Result<(), PriceDataError>>),
}

/// Keeps fresh price data and your overrides in effect: started by `init` from [`ObserverConfig::prices`]
/// (and stopped by its guard), or by you.
///
/// Starting one replaces what a previous refresher installed: the new overrides are in effect at once, the
/// bundled data until the source loads. The source is loaded on a background thread (`observer-prices`) right
/// away and every [`refresh_interval`](PriceConfig::refresh_interval); no caller ever waits for it. A load that
/// fails (unreadable, unreachable, malformed, empty) keeps the data in effect, is counted
/// ([`price_data_status`]) and reported once (a `tracing` warning, target `observer`, kind
/// `prices-refresh-failed`) until a refresh succeeds again. Dropping the refresher (or [`stop`](Self::stop))
/// ends the thread (waiting at most one second for a download in progress, which is then abandoned); the last
/// data loaded stays in effect.
///
/// [`ObserverConfig::prices`]: crate::ObserverConfig::prices
#[derive(Debug)]
pub struct PriceRefresher {
    generation: u64,
    commands: Option<Sender<Command>>,
    thread: Option<JoinHandle<()>>,
    stopped: Arc<AtomicBool>,
    fetch_timeout: Duration,
}

impl PriceRefresher {
    /// Validates `config`, installs its overrides (the overrides file is read now) and starts the background
    /// refresh when there is a data source or an overrides file.
    ///
    /// # Errors
    /// [`ConfigurationError`] for an invalid config or an unreadable or invalid overrides file
    /// (`prices.overrides_file`). A data source that fails to load is not an error: the bundled data stays in
    /// effect and the failure is reported.
    pub fn start(config: &PriceConfig) -> Result<Self, ConfigurationError> {
        config.validate()?;
        let from_file = match &config.overrides_file {
            Some(path) => {
                read_overrides(path).map_err(|e| ConfigurationError::new("prices.overrides_file", e.to_string()))?
            }
            None => Vec::new(),
        };
        let overrides = super::overrides::compile(&from_file, &config.overrides);
        let generation = {
            let mut owner = WRITER.lock().unwrap_or_else(PoisonError::into_inner);
            *owner += 1;
            COUNTERS.refreshes.store(0, Ordering::Relaxed);
            COUNTERS.failures.store(0, Ordering::Relaxed);
            *COUNTERS.last_error.lock().unwrap_or_else(PoisonError::into_inner) = None;
            STATE.store(Some(Arc::new(Prices { loaded: None, overrides, model_providers: Default::default() })));
            *owner
        };
        let stopped = Arc::new(AtomicBool::new(false));
        let mut refresher = Self {
            generation,
            commands: None,
            thread: None,
            stopped: stopped.clone(),
            fetch_timeout: config.fetch_timeout,
        };
        if config.data.is_none() && config.overrides_file.is_none() {
            return Ok(refresher);
        }
        let (tx, rx) = crossbeam_channel::bounded(4);
        let worker = Worker {
            generation,
            stopped,
            data: config.data.clone(),
            overrides_file: config.overrides_file.clone(),
            config_overrides: config.overrides.clone(),
            overrides_digest: None,
            interval: config.refresh_interval,
            fetch_timeout: config.fetch_timeout,
            failing: false,
            #[cfg(feature = "prices-http")]
            http: None,
            #[cfg(feature = "prices-http")]
            validators: Validators::default(),
            #[cfg(feature = "prices-http")]
            pending_validators: None,
        };
        let thread = std::thread::Builder::new()
            .name("observer-prices".into())
            .spawn(move || worker.run(&rx))
            .map_err(|e| ConfigurationError::new("prices", format!("cannot start the refresh thread: {e}")))?;
        refresher.commands = Some(tx);
        refresher.thread = Some(thread);
        Ok(refresher)
    }

    /// Refreshes now on the refresher's thread and waits for the outcome (at most the fetch timeout plus a few
    /// seconds): for a deployment that just updated its file, and for tests. Calculations never wait for it.
    ///
    /// # Errors
    /// Why the data or the overrides file could not be loaded (the previous ones stay in effect), or
    /// [`PriceDataError::Stopped`] when there is nothing to refresh or the refresher is stopped.
    pub fn refresh_now(&self) -> Result<(), PriceDataError> {
        let commands = self.commands.as_ref().ok_or(PriceDataError::Stopped)?;
        let (tx, rx) = crossbeam_channel::bounded(1);
        commands.send(Command::Now(tx)).map_err(|_| PriceDataError::Stopped)?;
        // Queued behind at most a few refreshes, each bounded by the fetch timeout.
        let wait = self.fetch_timeout.saturating_mul(5).saturating_add(Duration::from_secs(5));
        rx.recv_timeout(wait).map_err(|_| PriceDataError::Stopped)?
    }

    /// Stops the background refresh (as dropping does); the data in effect stays.
    pub fn stop(self) {}

    /// Whether this refresher still owns the prices in effect (no later one replaced it).
    pub fn is_current(&self) -> bool {
        *WRITER.lock().unwrap_or_else(PoisonError::into_inner) == self.generation
    }
}

impl Drop for PriceRefresher {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        // Disconnecting the channel wakes the thread at once when it is waiting for the next refresh.
        self.commands = None;
        let Some(thread) = self.thread.take() else { return };
        let deadline = Instant::now() + STOP_WAIT;
        while !thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if thread.is_finished() {
            let _ = thread.join();
        }
        // Otherwise a download is in progress: bounded by the fetch timeout, after which the thread sees
        // `stopped` and ends without installing anything.
    }
}

/// The refresher thread's state.
struct Worker {
    generation: u64,
    stopped: Arc<AtomicBool>,
    data: Option<PriceDataSource>,
    overrides_file: Option<std::path::PathBuf>,
    config_overrides: Vec<PriceOverride>,
    /// Digest of the overrides file last installed.
    overrides_digest: Option<u64>,
    interval: Duration,
    fetch_timeout: Duration,
    /// Whether the last refresh failed (a failure is reported once per streak).
    failing: bool,
    #[cfg(feature = "prices-http")]
    http: Option<(tokio::runtime::Runtime, reqwest::Client)>,
    /// The validators of the data in effect (sent with the next request).
    #[cfg(feature = "prices-http")]
    validators: Validators,
    /// The validators of the last download, until its data is in effect.
    #[cfg(feature = "prices-http")]
    pending_validators: Option<Validators>,
}

/// The HTTP validators of a download: its `ETag` and `Last-Modified`.
#[cfg(feature = "prices-http")]
#[derive(Debug, Default)]
struct Validators {
    etag: Option<reqwest::header::HeaderValue>,
    last_modified: Option<reqwest::header::HeaderValue>,
}

impl Worker {
    fn run(mut self, commands: &Receiver<Command>) {
        let mut next = Instant::now();
        loop {
            let reply = match commands.recv_deadline(next) {
                Ok(Command::Now(reply)) => Some(reply),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            if self.stopped.load(Ordering::SeqCst) {
                return;
            }
            let outcome = self.refresh();
            if let Some(reply) = reply {
                let _ = reply.send(outcome);
            }
            next = Instant::now() + self.interval;
        }
    }

    /// One refresh: the overrides file, then the data; counts and reports the outcome.
    fn refresh(&mut self) -> Result<(), PriceDataError> {
        let mut outcome = self.refresh_overrides();
        if let Some(source) = self.data.clone() {
            let data = self.refresh_data(&source);
            outcome = outcome.and(data);
        }
        if self.stopped.load(Ordering::SeqCst) || !self.owns_state() {
            return outcome;
        }
        match &outcome {
            Ok(()) => {
                COUNTERS.refreshes.fetch_add(1, Ordering::Relaxed);
                *COUNTERS.last_error.lock().unwrap_or_else(PoisonError::into_inner) = None;
                if std::mem::take(&mut self.failing) {
                    crate::diag::report!(INFO, "prices-refreshed", "price data refreshed again after failures");
                }
            }
            Err(e) => {
                COUNTERS.failures.fetch_add(1, Ordering::Relaxed);
                *COUNTERS.last_error.lock().unwrap_or_else(PoisonError::into_inner) = Some(e.to_string());
                if !std::mem::replace(&mut self.failing, true) {
                    crate::diag::report!(
                        WARN,
                        "prices-refresh-failed",
                        "price refresh failed, the previous price data stays in effect: {e} (reported once until \
                         a refresh succeeds; failures are counted in observer::cost::price_data_status)"
                    );
                }
            }
        }
        outcome
    }

    fn owns_state(&self) -> bool {
        *WRITER.lock().unwrap_or_else(PoisonError::into_inner) == self.generation
    }

    fn refresh_overrides(&mut self) -> Result<(), PriceDataError> {
        let Some(path) = &self.overrides_file else { return Ok(()) };
        let bytes_digest = read_file(path).map(|b| digest(&b))?;
        if self.overrides_digest == Some(bytes_digest) {
            return Ok(());
        }
        let from_file = read_overrides(path)?;
        let overrides = super::overrides::compile(&from_file, &self.config_overrides);
        if self.stopped.load(Ordering::SeqCst) {
            return Ok(());
        }
        if install(self.generation, |old| Prices {
            loaded: old.loaded.clone(),
            overrides,
            model_providers: Default::default(),
        }) {
            self.overrides_digest = Some(bytes_digest);
        }
        Ok(())
    }

    fn refresh_data(&mut self, source: &PriceDataSource) -> Result<(), PriceDataError> {
        COUNTERS.fetching.store(self.generation, Ordering::Relaxed);
        let bytes = self.read(source);
        let _ = COUNTERS.fetching.compare_exchange(self.generation, 0, Ordering::Relaxed, Ordering::Relaxed);
        // `None`: the server said the data we hold is current (HTTP 304).
        let Some(bytes) = bytes? else { return Ok(()) };
        let current = STATE.load_full();
        let unchanged = current.as_ref().and_then(|p| p.loaded.as_ref()).is_some_and(|l| l.digest == digest(&bytes));
        if unchanged {
            self.accept_validators();
            return Ok(());
        }
        let loaded = Arc::new(decode(&bytes, &source.display_name())?);
        drop(bytes);
        if self.stopped.load(Ordering::SeqCst) {
            return Ok(());
        }
        let models = loaded.models;
        if install(self.generation, |old| Prices {
            loaded: Some(loaded),
            overrides: old.overrides.clone(),
            model_providers: Default::default(),
        }) {
            self.accept_validators();
            tracing::info!(target: "observer", kind = "prices-loaded", origin = %source.display_name(), models, "price data loaded");
        }
        Ok(())
    }

    /// The bytes of `source`, or `None` when the server says the data in effect is current.
    fn read(&mut self, source: &PriceDataSource) -> Result<Option<Vec<u8>>, PriceDataError> {
        match source {
            PriceDataSource::File(path) => read_file(path).map(Some),
            PriceDataSource::Url(url) => self.fetch(url),
        }
    }

    /// The validators of the last download now describe the data in effect: send them next time.
    fn accept_validators(&mut self) {
        #[cfg(feature = "prices-http")]
        {
            self.validators = self.pending_validators.take().unwrap_or_default();
        }
    }

    #[cfg(not(feature = "prices-http"))]
    fn fetch(&mut self, url: &str) -> Result<Option<Vec<u8>>, PriceDataError> {
        // `PriceConfig::validate` refuses URLs without the feature; kept total all the same.
        let _ = self.fetch_timeout;
        Err(PriceDataError::Fetch {
            url: crate::config::redact_url(url),
            message: "the feature `prices-http` is not enabled".into(),
        })
    }

    /// Downloads `url` (at most [`MAX_PRICE_DATA_BYTES`], within the fetch timeout) on a current-thread Tokio
    /// runtime owned by this thread; a conditional request (`If-None-Match` / `If-Modified-Since`) once data from
    /// the URL is in effect, so an unchanged feed costs one small response (`None`).
    #[cfg(feature = "prices-http")]
    fn fetch(&mut self, url: &str) -> Result<Option<Vec<u8>>, PriceDataError> {
        let shown = crate::config::redact_url(url);
        let failed = |message: String| PriceDataError::Fetch { url: shown.clone(), message };
        if self.http.is_none() {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| failed(format!("cannot start the HTTP runtime: {e}")))?;
            let client = reqwest::Client::builder()
                .timeout(self.fetch_timeout)
                .connect_timeout(self.fetch_timeout)
                // https stays https, redirects included; plain http was allowed (to loopback) by the config check.
                .https_only(url.trim().get(..8).is_some_and(|s| s.eq_ignore_ascii_case("https://")))
                .redirect(reqwest::redirect::Policy::limited(5))
                .user_agent(concat!("autonomize-observer/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| failed(describe(&e.without_url())))?;
            self.http = Some((runtime, client));
        }
        let Some((runtime, client)) = &self.http else { unreachable!("set above") };
        let timeout = self.fetch_timeout;
        let mut request = client.get(url.trim());
        if let Some(etag) = &self.validators.etag {
            request = request.header(reqwest::header::IF_NONE_MATCH, etag.clone());
        }
        if let Some(modified) = &self.validators.last_modified {
            request = request.header(reqwest::header::IF_MODIFIED_SINCE, modified.clone());
        }
        let conditional = self.validators.etag.is_some() || self.validators.last_modified.is_some();
        let pending = &mut self.pending_validators;
        runtime.block_on(async {
            let download = async {
                let mut response = request.send().await.map_err(|e| failed(describe(&e.without_url())))?;
                let status = response.status();
                if status == reqwest::StatusCode::NOT_MODIFIED && conditional {
                    return Ok(None);
                }
                if !status.is_success() {
                    return Err(PriceDataError::Status { url: shown.clone(), status: status.as_u16() });
                }
                let too_large = || PriceDataError::TooLarge { origin: shown.clone(), limit: MAX_PRICE_DATA_BYTES };
                if response.content_length().is_some_and(|n| n > MAX_PRICE_DATA_BYTES) {
                    return Err(too_large());
                }
                let mut body = Vec::new();
                while let Some(chunk) = response.chunk().await.map_err(|e| failed(describe(&e.without_url())))? {
                    if (body.len() + chunk.len()) as u64 > MAX_PRICE_DATA_BYTES {
                        return Err(too_large());
                    }
                    body.extend_from_slice(&chunk);
                }
                let header = |name| response.headers().get(name).cloned();
                *pending = Some(Validators {
                    etag: header(reqwest::header::ETAG),
                    last_modified: header(reqwest::header::LAST_MODIFIED),
                });
                Ok(Some(body))
            };
            // reqwest's timeout covers the whole request; this bound also covers the runtime itself.
            tokio::time::timeout(timeout.saturating_add(Duration::from_secs(1)), download)
                .await
                .unwrap_or_else(|_| Err(failed(format!("no answer within {timeout:?}"))))
        })
    }
}

/// An error and its causes, `: `-separated (reqwest's own message names only the step that failed).
#[cfg(feature = "prices-http")]
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_refuses_malformed_and_empty_data() {
        assert!(matches!(decode(b"", "t"), Err(PriceDataError::Empty { .. })));
        assert!(matches!(decode(b"  \n", "t"), Err(PriceDataError::Empty { .. })));
        assert!(matches!(decode(b"[]", "t"), Err(PriceDataError::Empty { .. })));
        let no_models = br#"[{"id": "acme", "name": "Acme", "api_pattern": "acme", "models": []}]"#;
        assert!(matches!(decode(no_models, "t"), Err(PriceDataError::Empty { .. })));
        let err = decode(b"{not json", "prices.json").err().expect("refused");
        assert!(matches!(err, PriceDataError::Invalid { .. }), "{err}");
        assert!(err.to_string().contains("prices.json"), "{err}");
        let wrong_shape = br#"{"providers": []}"#;
        assert!(matches!(decode(wrong_shape, "t"), Err(PriceDataError::Invalid { .. })));
    }
}
