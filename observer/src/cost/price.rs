//! Prices: the bundled `genai-prices` data, the provider aliases and model routing, and the cost of a usage.

use std::collections::{HashMap, HashSet};
use std::sync::{LazyLock, Mutex, PoisonError, RwLock};

use genai_prices::{Calculator, ErrorKind, PriceCalculation, PriceRequest, Usage, UsageKey};
use serde::{Deserialize, Serialize};

use super::data::{self, PriceSource};
use super::overrides;
use super::provider::provider_id;
use crate::llm::usage::{TokenUsage, MAX_TOKEN_COUNT};

/// The currency of every amount in this module.
pub const CURRENCY: &str = "USD";

/// How many distinct unknown provider/model pairs are remembered to warn about each one only once.
pub const MAX_WARNED_PAIRS: usize = 1024;

/// Decimal places of every amount of money the crate computes or writes (1e-10 USD).
pub const USD_DECIMALS: i32 = 10;

/// `usd` rounded to [`USD_DECIMALS`] decimal places (half away from zero): the one rounding of money in the
/// crate, applied to every cost in results, audit events, agent trace events and span attributes.
///
/// The result is the `f64` nearest to a decimal with at most 10 decimal places, so it is written as that decimal
/// (`0.1 + 0.2` becomes `0.3`). Not finite values become `0.0`; amounts too large to hold 10 decimals in an `f64`
/// (above about 900,000 USD) are returned unchanged.
#[must_use]
pub fn round_usd(usd: f64) -> f64 {
    const SCALE: f64 = 1e10;
    if !usd.is_finite() {
        return 0.0;
    }
    let scaled = usd * SCALE;
    // Beyond 2^53 an f64 has no fraction left to round.
    if scaled.abs() >= 9_007_199_254_740_992.0 {
        return usd;
    }
    scaled.round() / SCALE
}

/// The cost of one LLM call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostResult {
    /// Cost of the input tokens in USD, cached, cache-write and audio ones included (each at its rate).
    pub input_cost: f64,
    /// Cost of the output tokens in USD.
    pub output_cost: f64,
    /// `input_cost + output_cost`, plus any per-request fee the price data has (only Perplexity's `sonar` models
    /// have one); equals `total_price` of `genai-prices`.
    pub total_cost: f64,
    /// Input tokens (cached ones included), as priced (at most [`MAX_TOKEN_COUNT`]).
    pub input_tokens: u64,
    /// Output tokens, as priced (at most [`MAX_TOKEN_COUNT`]).
    pub output_tokens: u64,
    /// Cached input tokens (a subset of `input_tokens`; clamped to it).
    pub cached_tokens: u64,
    /// Input tokens written to the cache (a subset of `input_tokens`; clamped to it).
    #[serde(default)]
    pub cache_creation_tokens: u64,
    /// Provider, as given by the caller.
    pub provider: String,
    /// Model id, as given by the caller.
    pub model: String,
    /// Always `"USD"`.
    pub currency: String,
    /// Whether a price was found; when false every cost is zero.
    pub price_found: bool,
    /// `false` when a token count was above [`MAX_TOKEN_COUNT`] (priced as the ceiling) or the usage was marked
    /// [`capped`](TokenUsage::capped): the cost is not trustworthy (see the [module docs](crate::cost#absurd-counts)).
    #[serde(default = "yes")]
    pub trusted: bool,
    /// Which data priced the call: the bundled `genai-prices` data, data loaded from
    /// [`PriceConfig::data`](crate::PriceConfig::data), one of your [`PriceOverride`](crate::PriceOverride)s, or
    /// [`PriceSource::Unpriced`] when no price was found. Absent from results serialised before it existed:
    /// `Bundled`.
    #[serde(default)]
    pub price_source: PriceSource,
}

fn yes() -> bool {
    true
}

/// Per-1K-token prices of a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelPrice {
    /// Provider, as given by the caller.
    pub provider: String,
    /// Model id, as given by the caller.
    pub model: String,
    /// USD per 1,000 input tokens.
    pub input_price_per_1k: f64,
    /// USD per 1,000 output tokens.
    pub output_price_per_1k: f64,
}

/// The provider and model of the price data that a provider/model pair matched; see [`resolve_model`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedModel {
    /// The `genai-prices` provider id, e.g. `anthropic`.
    pub provider_id: String,
    /// The `genai-prices` model id, e.g. `claude-3-5-sonnet` for `claude-3-5-sonnet-20241022`.
    pub model_id: String,
}

/// Cost of a call without cached tokens.
///
/// Never fails: an unknown provider/model costs `0.0` with `price_found: false` (see the [module docs](crate::cost)).
pub fn calculate_cost(provider: &str, model: &str, input_tokens: u64, output_tokens: u64) -> CostResult {
    calculate_cost_usage(provider, model, &TokenUsage::new(input_tokens, output_tokens))
}

/// Cost of a call where `cached_tokens` of the `input_tokens` were read from the provider's cache.
///
/// Cached tokens are charged at the model's cache-read rate, the other input tokens at the input rate.
/// `cached_tokens` above `input_tokens` are clamped to `input_tokens` (and reported so in the result). Never
/// fails: an unknown provider/model costs `0.0` with `price_found: false`.
pub fn calculate_cost_cached(
    provider: &str,
    model: &str,
    input_tokens: u64,
    output_tokens: u64,
    cached_tokens: u64,
) -> CostResult {
    let usage = TokenUsage { cached_tokens, ..TokenUsage::new(input_tokens, output_tokens) };
    calculate_cost_usage(provider, model, &usage)
}

/// Cost of a call with every kind of usage `genai-prices` prices: cache reads and writes, audio input and output,
/// reasoning (see the [module docs](crate::cost#usage-kinds)).
///
/// The usage is normalised first (parts clamped to their totals); counts above [`MAX_TOKEN_COUNT`] are priced as
/// the ceiling and the result is marked `trusted: false`. Never fails: an unknown provider/model costs `0.0` with
/// `price_found: false`.
pub fn calculate_cost_usage(provider: &str, model: &str, usage: &TokenUsage) -> CostResult {
    cost_with(provider, model, usage, price)
}

/// [`calculate_cost_usage`] as it was before price data could be loaded (the bundled data alone, no `ArcSwap`
/// load): the baseline of the `cost` bench.
#[doc(hidden)]
pub fn calculate_cost_bundled_only(provider: &str, model: &str, input_tokens: u64, output_tokens: u64) -> CostResult {
    let bundled_only = |provider: &str, model: &str, usage: &Usage| {
        let calculator = (*CALCULATOR).ok_or(NotFound::NoData)?;
        price_in(calculator, provider, model, usage).map(|p| Price::from_data(p, PriceSource::Bundled))
    };
    cost_with(provider, model, &TokenUsage::new(input_tokens, output_tokens), bundled_only)
}

fn cost_with(
    provider: &str,
    model: &str,
    usage: &TokenUsage,
    price: impl FnOnce(&str, &str, &Usage) -> Result<Price, NotFound>,
) -> CostResult {
    let Costed { usage, input_cost, output_cost, total_cost, trusted, price_source } =
        costed(provider, model, usage, price);
    CostResult {
        input_cost,
        output_cost,
        total_cost,
        input_tokens: usage.input_tokens,
        output_tokens: usage.output_tokens,
        cached_tokens: usage.cached_tokens,
        cache_creation_tokens: usage.cache_creation_tokens,
        provider: provider.into(),
        model: model.into(),
        currency: CURRENCY.into(),
        price_found: price_source != PriceSource::Unpriced,
        trusted,
        price_source,
    }
}

/// The amounts of a [`CostResult`] without its strings (the agent tracer prices every component output).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Costed {
    /// The usage as priced (normalised, bounded).
    pub(crate) usage: TokenUsage,
    pub(crate) input_cost: f64,
    pub(crate) output_cost: f64,
    pub(crate) total_cost: f64,
    pub(crate) trusted: bool,
    pub(crate) price_source: PriceSource,
}

/// [`calculate_cost_usage`]'s amounts, without building its strings.
pub(crate) fn cost_usage(provider: &str, model: &str, usage: &TokenUsage) -> Costed {
    costed(provider, model, usage, price)
}

fn costed(
    provider: &str,
    model: &str,
    usage: &TokenUsage,
    price: impl FnOnce(&str, &str, &Usage) -> Result<Price, NotFound>,
) -> Costed {
    let (usage, within_bounds) = bounded(usage);
    let (input_cost, output_cost, total_cost, price_source) = match price(provider, model, &genai_usage(&usage)) {
        Ok(price) => (round_usd(price.input), round_usd(price.output), round_usd(price.total), price.source),
        Err(reason) => {
            warn_unknown_once(provider, model, &reason);
            (0.0, 0.0, 0.0, PriceSource::Unpriced)
        }
    };
    Costed { usage, input_cost, output_cost, total_cost, trusted: within_bounds && !usage.capped, price_source }
}

/// Per-1K prices of a model (USD per 1,000 tokens), or `None` when unknown.
///
/// These are the model's current base prices: exactly what [`calculate_cost`] charges for 1,000 input or
/// 1,000 output tokens. For tiered prices (e.g. `gemini-1.5-pro`, whose rates double above 128K input tokens)
/// this is the rate below the first tier (every tier in the data starts above 1,000 tokens); `calculate_cost`
/// applies the tier a call falls into. Cache-read rates and per-request fees are not part of it. Does not
/// warn about unknown models.
pub fn get_price(provider: &str, model: &str) -> Option<ModelPrice> {
    let usage = Usage::from([(UsageKey::INPUT_TOKENS, 1_000.0), (UsageKey::OUTPUT_TOKENS, 1_000.0)]);
    let price = price(provider, model, &usage).ok()?;
    Some(ModelPrice {
        provider: provider.into(),
        model: model.into(),
        input_price_per_1k: round_usd(price.input),
        output_price_per_1k: round_usd(price.output),
    })
}

/// The provider and model of the price data that `provider`/`model` resolve to, or `None` when unknown.
///
/// Shows what a raw model id is priced as, e.g. `("anthropic", "claude-3-5-sonnet-20241022")` resolves to
/// provider `anthropic`, model `claude-3-5-sonnet`, `("", "gpt-4o")` to provider `openai`, a Bedrock id such as
/// `("anthropic", "anthropic.claude-3-haiku-20240307-v1:0")` to provider `aws`, and `("", "azure/gpt-4o")` to
/// provider `azure`.
pub fn resolve_model(provider: &str, model: &str) -> Option<ResolvedModel> {
    let price = price(provider, model, &Usage::new()).ok()?;
    Some(ResolvedModel { provider_id: price.provider_id, model_id: price.model_id })
}

/// The provider id that `model` alone resolves to (`resolve_model("", model)`'s `provider_id`), remembered per set
/// of prices in effect: a refresh or new overrides install a new set, whose memo starts empty. Matching a model
/// costs about as much as pricing it (microseconds); extraction asks this for every output that names a model
/// without its provider.
pub(crate) fn model_provider(model: &str) -> Option<String> {
    model_provider_in(data::current().as_deref(), model)
}

/// [`model_provider`] with the prices in effect given (`None`: nothing configured).
fn model_provider_in(state: Option<&data::Prices>, model: &str) -> Option<String> {
    let memo = state.map_or(&*BUNDLED_MODEL_PROVIDERS, |p| &p.model_providers);
    memo.get_or_resolve(model, |model| price_with(state, "", model, &Usage::new()).ok().map(|p| p.provider_id))
}

/// The memo of [`model_provider`] while nothing is configured (the bundled data alone, which never changes).
static BUNDLED_MODEL_PROVIDERS: LazyLock<ModelProviders> = LazyLock::new(ModelProviders::default);

/// Model id → the provider id it resolves to (`None`: not in the data), for one set of prices; at most
/// [`ModelProviders::CAPACITY`] ids (further ones are resolved each time).
#[derive(Default)]
pub(crate) struct ModelProviders(RwLock<HashMap<Box<str>, Option<Box<str>>>>);

impl ModelProviders {
    /// Model ids remembered (they come from outputs: bounded).
    const CAPACITY: usize = 4096;

    fn get_or_resolve(&self, model: &str, resolve: impl FnOnce(&str) -> Option<String>) -> Option<String> {
        if let Some(hit) = self.0.read().unwrap_or_else(PoisonError::into_inner).get(model) {
            return hit.as_deref().map(str::to_owned);
        }
        let resolved = resolve(model);
        let mut memo = self.0.write().unwrap_or_else(PoisonError::into_inner);
        if memo.len() < Self::CAPACITY {
            memo.insert(model.into(), resolved.as_deref().map(Box::from));
        }
        resolved
    }
}

/// Decodes the bundled price data now (about 150 ms) instead of on the first cost calculation.
///
/// Idempotent and thread-safe: the data is decoded once per process; calls made while it is decoding wait
/// for it. `init` calls this on a background thread.
pub fn warm_up() {
    if let Some(calculator) = *CALCULATOR {
        // Also runs the model matching once, including the compact-date fallback and its regular expression.
        let usage = Usage::from([(UsageKey::INPUT_TOKENS, 1.0)]);
        let _ = calculator.calculate(&PriceRequest::new("gpt-4o-20240806", &usage).with_provider_id("openai"));
    }
}

/// Starts [`warm_up`] on a background thread, once per process (`init` and `AgentTracer::new` call it, so that
/// no caller's first cost calculation, and no measured duration, pays for decoding the data).
pub(crate) fn warm_up_in_background() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        let _ = std::thread::Builder::new().name("observer-warmup".into()).spawn(warm_up);
    });
}

/// The bundled calculator, or `None` if its data failed to decode (a broken `genai-prices` release), in which
/// case every price is unknown rather than every call panicking.
pub(super) static CALCULATOR: LazyLock<Option<&'static Calculator>> =
    LazyLock::new(|| match std::panic::catch_unwind(Calculator::bundled) {
        Ok(calculator) => Some(calculator),
        Err(_) => {
            crate::diag::report!(
                ERROR,
                "prices-broken",
                "the bundled genai-prices data failed to decode; all costs are 0"
            );
            None
        }
    });

/// A priced call, whichever data priced it (amounts in USD, not rounded).
#[derive(Debug)]
struct Price {
    input: f64,
    output: f64,
    total: f64,
    provider_id: String,
    model_id: String,
    source: PriceSource,
}

impl Price {
    fn from_data(price: PriceCalculation, source: PriceSource) -> Self {
        Self {
            input: price.input_price,
            output: price.output_price,
            total: price.total_price,
            provider_id: price.provider_id,
            model_id: price.model_id,
            source,
        }
    }

    fn from_override(price: overrides::OverridePrice) -> Self {
        Self {
            input: price.input,
            output: price.output,
            total: price.input + price.output,
            provider_id: price.provider_id,
            model_id: price.model_id,
            source: PriceSource::Override,
        }
    }
}

/// Why a price was not found.
#[derive(Debug)]
enum NotFound {
    /// The bundled data failed to decode.
    NoData,
    /// `genai-prices` found no provider or model (or rejected the request).
    Lookup(genai_prices::Error),
}

impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoData => f.write_str("no price data"),
            Self::Lookup(error) => error.fmt(f),
        }
    }
}

/// `usage` normalised, every count at most [`MAX_TOKEN_COUNT`]; and whether every count already was.
fn bounded(usage: &TokenUsage) -> (TokenUsage, bool) {
    let mut within = true;
    let mut bound = |n: u64| {
        if n > MAX_TOKEN_COUNT {
            within = false;
        }
        n.min(MAX_TOKEN_COUNT)
    };
    let usage = TokenUsage {
        input_tokens: bound(usage.input_tokens),
        output_tokens: bound(usage.output_tokens),
        cached_tokens: bound(usage.cached_tokens),
        cache_creation_tokens: bound(usage.cache_creation_tokens),
        cache_creation_1h_tokens: bound(usage.cache_creation_1h_tokens),
        reasoning_tokens: bound(usage.reasoning_tokens),
        input_audio_tokens: bound(usage.input_audio_tokens),
        output_audio_tokens: bound(usage.output_audio_tokens),
        capped: usage.capped,
    };
    (usage.normalised(), within)
}

/// The usage `genai-prices` prices: the parts are parts of `input_tokens` / `output_tokens` there too.
fn genai_usage(usage: &TokenUsage) -> Usage {
    // Counts are at most MAX_TOKEN_COUNT (1e9): exact in an f64.
    #[allow(clippy::cast_precision_loss)]
    let count = |tokens: u64| tokens as f64;
    let mut out = Usage::from([
        (UsageKey::INPUT_TOKENS, count(usage.input_tokens)),
        (UsageKey::OUTPUT_TOKENS, count(usage.output_tokens)),
    ]);
    for (key, tokens) in [
        (UsageKey::CACHE_READ_TOKENS, usage.cached_tokens),
        (UsageKey::CACHE_WRITE_TOKENS, usage.cache_creation_tokens),
        (UsageKey::CACHE_WRITE_1H_TOKENS, usage.cache_creation_1h_tokens),
        (UsageKey::INPUT_AUDIO_TOKENS, usage.input_audio_tokens),
        (UsageKey::OUTPUT_REASONING_TOKENS, usage.reasoning_tokens),
        (UsageKey::OUTPUT_AUDIO_TOKENS, usage.output_audio_tokens),
    ] {
        if tokens > 0 {
            out.insert(key, count(tokens));
        }
    }
    out
}

/// Bedrock's model vendors (the `vendor.` of `[region.]vendor.model` ids).
const BEDROCK_VENDORS: &[&str] = &[
    "anthropic",
    "amazon",
    "meta",
    "mistral",
    "cohere",
    "ai21",
    "deepseek",
    "openai",
    "qwen",
    "writer",
    "twelvelabs",
    "stability",
    "luma",
    "moonshot",
    "moonshotai",
    "minimax",
    "google",
    "nvidia",
];

/// Bedrock's cross-region inference prefixes (the `region.` of `region.vendor.model` ids).
const BEDROCK_REGIONS: &[&str] = &["us", "eu", "apac", "au", "jp", "ca", "us-gov", "global"];

/// Whether `model` is an Amazon Bedrock model id: `[region.]vendor.model`, e.g.
/// `anthropic.claude-3-haiku-20240307-v1:0` or `us.anthropic.claude-3-5-sonnet-20240620-v1:0`.
pub(crate) fn is_bedrock_model_id(model: &str) -> bool {
    // ASCII case-insensitive comparisons: no lowercase copy on the pricing path.
    let model = model.trim();
    let one_of = |part: &str, list: &[&str]| list.iter().any(|known| known.eq_ignore_ascii_case(part));
    let after_region = match model.split_once('.') {
        Some((region, rest)) if one_of(region, BEDROCK_REGIONS) => rest,
        _ => model,
    };
    match after_region.split_once('.') {
        Some((vendor, rest)) => one_of(vendor, BEDROCK_VENDORS) && !rest.is_empty() && !rest.starts_with('.'),
        None => false,
    }
}

/// Prices `usage` for the caller's provider/model: an override of the pair, else the loaded data, else the
/// bundled data (an override of the model the data resolved the pair to wins over the data's price).
fn price(provider: &str, model: &str, usage: &Usage) -> Result<Price, NotFound> {
    price_with(data::current().as_deref(), provider, model, usage)
}

/// [`price`] with the prices in effect given (`None`: nothing configured).
fn price_with(state: Option<&data::Prices>, provider: &str, model: &str, usage: &Usage) -> Result<Price, NotFound> {
    let Some(prices) = state else {
        // Nothing configured: the bundled data alone, as before price data could be loaded.
        let calculator = (*CALCULATOR).ok_or(NotFound::NoData)?;
        return price_in(calculator, provider, model, usage).map(|p| Price::from_data(p, PriceSource::Bundled));
    };
    if let Some(o) = overrides::find(&prices.overrides, provider, model) {
        return Ok(Price::from_override(o.price(usage)));
    }
    let loaded = prices.loaded.as_ref().map(|l| price_in(&l.calculator, provider, model, usage));
    let found = match loaded {
        Some(Ok(p)) => Ok(Price::from_data(p, PriceSource::Loaded)),
        // Models the loaded data lacks are priced by the bundled data.
        Some(Err(loaded_reason)) => match *CALCULATOR {
            Some(calculator) => {
                price_in(calculator, provider, model, usage).map(|p| Price::from_data(p, PriceSource::Bundled))
            }
            None => Err(loaded_reason),
        },
        None => {
            let calculator = (*CALCULATOR).ok_or(NotFound::NoData)?;
            price_in(calculator, provider, model, usage).map(|p| Price::from_data(p, PriceSource::Bundled))
        }
    }?;
    if !prices.overrides.is_empty() {
        if let Some(o) = overrides::find(&prices.overrides, &found.provider_id, &found.model_id) {
            return Ok(Price::from_override(o.price(usage)));
        }
    }
    Ok(found)
}

/// [`price`] in one set of data: Bedrock and `vendor/model` routing as the module docs describe.
fn price_in(calculator: &Calculator, provider: &str, model: &str, usage: &Usage) -> Result<PriceCalculation, NotFound> {
    if is_bedrock_model_id(model) {
        if let Ok(price) = calculator.calculate(&PriceRequest::new(model.trim(), usage).with_provider_id("aws")) {
            return Ok(price);
        }
    }
    let direct = price_as_given(calculator, provider, model, usage);
    if direct.is_ok() {
        return direct;
    }
    // `vendor/model`: priced as the vendor's model when the vendor is a provider of the data.
    if let Some((vendor, rest)) = model.trim().split_once('/') {
        let vendor_id = provider_id(vendor);
        let known = vendor_id
            .and_then(|id| calculator.find_provider(Some(id), None).ok().flatten())
            .is_some_and(|p| !p.id().is_empty());
        if known && !rest.trim().is_empty() {
            if let Ok(price) = price_inner(calculator, vendor, rest.trim(), usage) {
                return Ok(price);
            }
        }
    }
    direct
}

/// [`price`] of the part after a `vendor/`: Bedrock routing and the provider as given, no further split.
fn price_inner(
    calculator: &Calculator,
    provider: &str,
    model: &str,
    usage: &Usage,
) -> Result<PriceCalculation, NotFound> {
    if is_bedrock_model_id(model) {
        if let Ok(price) = calculator.calculate(&PriceRequest::new(model, usage).with_provider_id("aws")) {
            return Ok(price);
        }
    }
    price_as_given(calculator, provider, model, usage)
}

/// The provider as given (after this module's aliases), falling back to the model alone for unknown providers.
fn price_as_given(
    calculator: &Calculator,
    provider: &str,
    model: &str,
    usage: &Usage,
) -> Result<PriceCalculation, NotFound> {
    let request = PriceRequest::new(model, usage);
    let result = match provider_id(provider) {
        None => calculator.calculate(&request),
        Some(id) => match calculator.calculate(&request.clone().with_provider_id(id)) {
            Err(error) if error.kind() == ErrorKind::ProviderNotFound => calculator.calculate(&request),
            result => result,
        },
    };
    result.map_err(NotFound::Lookup)
}

/// The provider/model pairs already warned about, so each is warned about once.
static WARNED: LazyLock<Mutex<WarnedPairs>> = LazyLock::new(|| Mutex::new(WarnedPairs::new(MAX_WARNED_PAIRS)));

fn warn_unknown_once(provider: &str, model: &str, reason: &NotFound) {
    let first = WARNED.lock().unwrap_or_else(PoisonError::into_inner).first_time(provider, model);
    match first {
        First::Yes if looks_swapped(provider, model) => crate::diag::report!(
            WARN,
            "price-unknown",
            "no price for provider `{provider}`, model `{model}` ({reason}), but the swapped pair has one: the \
             arguments are (provider, model); its cost is recorded as 0 (warned once per pair)"
        ),
        First::Yes => crate::diag::report!(
            WARN,
            "price-unknown",
            "no price for provider `{provider}`, model `{model}` ({reason}); its cost is recorded as 0 (warned once \
             per pair)"
        ),
        First::CapacityReached => crate::diag::report!(
            WARN,
            "price-unknown",
            "no price for provider `{provider}`, model `{model}`; more than {MAX_WARNED_PAIRS} unpriced pairs, \
             further ones are not reported"
        ),
        First::No => {}
    }
}

/// Whether `model`/`provider` (swapped) is priced while `provider`/`model` is not: the arguments were swapped.
fn looks_swapped(provider: &str, model: &str) -> bool {
    !provider.trim().is_empty() && price(model, provider, &Usage::new()).is_ok()
}

/// Whether a pair is seen for the first time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum First {
    /// First time: warn.
    Yes,
    /// Seen before, or new after the capacity was reached: stay quiet.
    No,
    /// New, and the set just became full: say that further pairs are not reported.
    CapacityReached,
}

/// A bounded set of provider/model pairs; looking a pair up does not allocate.
#[derive(Debug)]
struct WarnedPairs {
    by_provider: HashMap<Box<str>, HashSet<Box<str>>>,
    len: usize,
    capacity: usize,
    capacity_reported: bool,
}

impl WarnedPairs {
    fn new(capacity: usize) -> Self {
        Self { by_provider: HashMap::new(), len: 0, capacity, capacity_reported: false }
    }

    fn first_time(&mut self, provider: &str, model: &str) -> First {
        if self.by_provider.get(provider).is_some_and(|models| models.contains(model)) {
            return First::No;
        }
        if self.len >= self.capacity {
            if self.capacity_reported {
                return First::No;
            }
            self.capacity_reported = true;
            return First::CapacityReached;
        }
        self.by_provider.entry(provider.into()).or_default().insert(model.into());
        self.len += 1;
        First::Yes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warned_pairs_warn_once_per_pair() {
        let mut pairs = WarnedPairs::new(3);
        assert_eq!(pairs.first_time("acme", "m1"), First::Yes);
        assert_eq!(pairs.first_time("acme", "m1"), First::No);
        assert_eq!(pairs.first_time("acme", "m2"), First::Yes);
        assert_eq!(pairs.first_time("other", "m1"), First::Yes);
        assert_eq!(pairs.first_time("other", "m1"), First::No);
        // Full: one notice, then silence, while known pairs stay known.
        assert_eq!(pairs.first_time("acme", "m3"), First::CapacityReached);
        assert_eq!(pairs.first_time("acme", "m4"), First::No);
        assert_eq!(pairs.first_time("acme", "m2"), First::No);
        assert_eq!(pairs.len, 3);
    }

    #[test]
    fn empty_strings_are_a_pair_too() {
        let mut pairs = WarnedPairs::new(2);
        assert_eq!(pairs.first_time("", ""), First::Yes);
        assert_eq!(pairs.first_time("", ""), First::No);
    }

    #[test]
    fn cached_tokens_are_clamped() {
        let (usage, within) = bounded(&TokenUsage { cached_tokens: 50, ..TokenUsage::new(10, 5) });
        assert!(within);
        assert_eq!(genai_usage(&usage).get(UsageKey::CACHE_READ_TOKENS), Some(10.0));
        let result = calculate_cost_cached("anthropic", "claude-3-haiku-20240307", 10, 5, 50);
        assert_eq!(result.cached_tokens, 10);
        assert!(result.price_found);
    }

    #[test]
    fn bedrock_ids() {
        for id in [
            "anthropic.claude-3-haiku-20240307-v1:0",
            "us.anthropic.claude-3-5-sonnet-20240620-v1:0",
            "US-GOV.anthropic.claude-x",
            "amazon.nova-pro-v1:0",
            "meta.llama3-70b-instruct-v1:0",
            " global.anthropic.claude-sonnet-4-20250514-v1:0 ",
        ] {
            assert!(is_bedrock_model_id(id), "{id}");
        }
        for id in [
            "claude-3-haiku-20240307",
            "gpt-3.5-turbo",
            "anthropic/claude-3",
            "us.",
            "anthropic.",
            "meta-llama.x",
            "o1",
        ] {
            assert!(!is_bedrock_model_id(id), "{id}");
        }
    }

    #[test]
    fn money_rounding() {
        assert_eq!(round_usd(0.1 + 0.2), 0.3);
        assert_eq!(round_usd(0.001_125_000_000_000_000_1), 0.001125);
        assert_eq!(round_usd(-0.000_000_000_05), -0.000_000_000_1);
        assert_eq!(round_usd(f64::NAN), 0.0);
        assert_eq!(round_usd(f64::INFINITY), 0.0);
        assert_eq!(round_usd(1e300), 1e300);
        assert_eq!(round_usd(0.0), 0.0);
    }

    #[test]
    fn swapped_arguments_are_recognised() {
        assert!(looks_swapped("gpt-4o", "openai"));
        assert!(!looks_swapped("openai", "gpt-4o-nope"));
        assert!(!looks_swapped("", "openai"));
    }

    #[test]
    fn the_provider_of_a_model_is_remembered_per_set_of_prices() {
        assert_eq!(model_provider_in(None, "gpt-4o").as_deref(), Some("openai"));
        assert_eq!(model_provider_in(None, "gpt-4o").as_deref(), Some("openai"), "remembered");
        assert_eq!(model_provider_in(None, "house-model-xyz"), None);
        // New prices (a refresh, new overrides) come with a new memo: what they price is seen at once.
        let overrides = overrides::compile(&[crate::PriceOverride::new("acme", "house-model-xyz", 1.0, 2.0)], &[]);
        let prices = data::Prices { overrides, ..Default::default() };
        assert_eq!(model_provider_in(Some(&prices), "house-model-xyz").as_deref(), Some("acme"));
        assert_eq!(model_provider_in(Some(&prices), "house-model-xyz").as_deref(), Some("acme"));
        assert_eq!(model_provider_in(None, "house-model-xyz"), None, "the bundled data's memo is its own");
        assert_eq!(model_provider_in(Some(&prices), "gpt-4o").as_deref(), Some("openai"));
    }

    #[test]
    fn the_model_memo_is_bounded() {
        let memo = ModelProviders::default();
        for i in 0..ModelProviders::CAPACITY + 10 {
            assert_eq!(memo.get_or_resolve(&format!("m{i}"), |_| Some("p".into())).as_deref(), Some("p"));
        }
        assert_eq!(memo.0.read().unwrap().len(), ModelProviders::CAPACITY);
        // Beyond the capacity an id is resolved each time, never answered wrongly.
        assert_eq!(memo.get_or_resolve("late", |_| None), None);
    }

    #[test]
    fn hot_path_is_cheap() {
        warm_up();
        let start = std::time::Instant::now();
        for _ in 0..1_000 {
            std::hint::black_box(calculate_cost_cached("anthropic", "claude-3-5-sonnet-20241022", 2000, 500, 1500));
        }
        let per_call = start.elapsed() / 1_000;
        // Generous bound for slow debug builds; a re-decode would take ~150 ms.
        assert!(per_call < std::time::Duration::from_millis(5), "{per_call:?} per call");
    }
}
