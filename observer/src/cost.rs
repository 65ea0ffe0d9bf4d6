//! LLM cost calculation, backed by the price data bundled with the [`genai_prices`] crate.
//!
//! Every price comes from the data embedded in `genai-prices` 0.2.1 (the same data as the Python `genai-prices`
//! package 0.2.1), so the numbers equal what `genai_prices.calc_price` computes for the same model and usage.
//! All amounts are US dollars (`currency` is always `"USD"`).
//!
//! ```
//! use observer::cost::{calculate_cost, calculate_cost_cached, get_price};
//!
//! // result = calculate_cost(provider="openai", model="gpt-4o", input_tokens=1000, output_tokens=500)
//! let result = calculate_cost("openai", "gpt-4o", 1000, 500);
//! assert!(result.price_found);
//! println!("{:.6} {}", result.total_cost, result.currency); // 0.007500 USD
//!
//! // result = calculate_cost(provider="anthropic", model="claude-3-5-sonnet-20241022",
//! //                         input_tokens=2000, output_tokens=500, cached_tokens=1500)
//! let result = calculate_cost_cached("anthropic", "claude-3-5-sonnet-20241022", 2000, 500, 1500);
//! // 500 uncached input tokens at $3/M plus 1,500 cache reads at $0.30/M (0.006 without the cache).
//! assert!((result.input_cost - 0.00195).abs() < 1e-12);
//!
//! // price = get_price("openai", "gpt-4o")  # provider, model, input_price_per_1k, output_price_per_1k, or None
//! let price = get_price("openai", "gpt-4o").expect("gpt-4o is priced");
//! println!("{} {}: ${}/1K in, ${}/1K out", price.provider, price.model, price.input_price_per_1k, price.output_price_per_1k);
//! assert!(get_price("openai", "no-such-model").is_none());
//!
//! // Unknown models cost nothing and never fail.
//! let unknown = calculate_cost("acme", "no-such-model", 1000, 500);
//! assert!(!unknown.price_found && unknown.total_cost == 0.0);
//! ```
//!
//! # Models
//!
//! The model id is passed to `genai-prices` exactly as given (matched case-insensitively by its rules), so a
//! dated id such as `claude-3-5-sonnet-20241022` is priced as the model whose rule it matches
//! (`claude-3-5-sonnet`), never mapped by this module to another model. [`resolve_model`] shows what an id
//! matched. Prices in effect *now* are used (some models have prices that change on a date); request-specific
//! variants (OpenAI service tiers, batch processing) are not applied.
//!
//! # Providers
//!
//! The provider string is the caller's. It is resolved in this order:
//!
//! 1. Empty or whitespace only: no provider, the model alone selects it (see step 4).
//! 2. This module's aliases, compared ignoring ASCII case and the separators `-`, `_`, `.`, `/` and space:
//!
//!    | given (any case or separators)                 | `genai-prices` provider id |
//!    |-----------------------------------------------|----------------------------|
//!    | `azure_openai`, `azure-openai`, `azure ai`    | `azure`                    |
//!    | `claude`                                       | `anthropic`                |
//!    | `x_ai`, `x.ai`, `grok`                         | `x-ai`                     |
//!    | `togetherai`, `Together AI`                    | `together`                 |
//!    | `fireworks-ai`, `fireworks_ai`                 | `fireworks`                |
//!    | `deepseek-ai`                                  | `deepseek`                 |
//!    | `zhipu`, `zhipu_ai`, `bigmodel`                | `zhipuai`                  |
//!    | `z-ai`, `z.ai`                                 | `zai`                      |
//!    | `kimi`                                         | `moonshotai`               |
//!    | `open-router`, `open_router`                   | `openrouter`               |
//!    | `pplx`, `perplexity-ai`                        | `perplexity`               |
//!    | `groqcloud`                                    | `groq`                     |
//!    | `minimax-ai`                                   | `minimax`                  |
//!    | `ovh`                                          | `ovhcloud`                 |
//!    | `workers-ai`, `cloudflare-workers-ai`          | `cloudflare`               |
//!
//! 3. Anything else goes to `genai-prices` unchanged, which matches provider ids case-insensitively (`openai`,
//!    `anthropic`, `google`, `aws`, `azure`, `mistral`, `groq`, …) and its own aliases: anything containing
//!    `google`, `vertex` or `gemini` is `google`; containing `bedrock` or `amazon` is `aws`; `xai` is `x-ai`;
//!    starting with `mistral` (e.g. `mistralai`) is `mistral`; containing `openai`, `anthropic`, `moonshot`,
//!    `cohere`, `voyage`, `cerebras`, `copilot` or `cloudflare` is that provider; `together-ai` and `together_ai`
//!    are `together`. `litellm` with a `provider/model` id prices the prefixed provider's model.
//! 4. A provider `genai-prices` does not know (e.g. `ollama`, `custom`) is treated like an empty one: the model id
//!    alone selects the provider when it can (`gpt-…` is OpenAI's, `claude…` Anthropic's, `gemini…` Google's, …).
//!
//! A provider that is known but does not price the model is not second-guessed: the price is not found. Some
//! providers fall back to others' models themselves (`azure` to OpenAI's and Anthropic's, `google` to
//! Anthropic's).
//!
//! # Cached tokens
//!
//! `cached_tokens` are the part of `input_tokens` read from the provider's prompt cache. They are charged at the
//! model's cache-read rate and the rest of the input at the input rate; a model without a cache-read price
//! charges them at the input rate. `cached_tokens` larger than `input_tokens` are clamped to `input_tokens`.
//!
//! # Unknown models
//!
//! An unknown provider/model pair costs `0.0` with `price_found: false`; it is never an error and never panics.
//! One `tracing` warning (target `observer::cost`) is logged per distinct pair, not per call; after
//! [`MAX_WARNED_PAIRS`] distinct pairs, one last warning says that further ones are not reported.
//!
//! # Performance
//!
//! Decoding the bundled data takes about 150 ms and happens once, on first use or in [`warm_up`] (which `init`
//! runs on a background thread). After that a calculation only matches the model and multiplies, typically a
//! few microseconds.

use std::collections::{HashMap, HashSet};
use std::sync::{LazyLock, Mutex, PoisonError};

use genai_prices::{Calculator, ErrorKind, PriceCalculation, PriceRequest, Usage, UsageKey};
use serde::{Deserialize, Serialize};

/// The currency of every amount in this module.
pub const CURRENCY: &str = "USD";

/// How many distinct unknown provider/model pairs are remembered to warn about each one only once.
pub const MAX_WARNED_PAIRS: usize = 1024;

/// The cost of one LLM call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostResult {
    /// Cost of the input tokens in USD, cached ones included (at the cache-read rate).
    pub input_cost: f64,
    /// Cost of the output tokens in USD.
    pub output_cost: f64,
    /// `input_cost + output_cost`, plus any per-request fee the price data has (only Perplexity's `sonar` models
    /// have one); equals `total_price` of `genai-prices`.
    pub total_cost: f64,
    /// Input tokens (cached ones included).
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Cached input tokens (a subset of `input_tokens`; clamped to it).
    pub cached_tokens: u64,
    /// Provider, as given by the caller.
    pub provider: String,
    /// Model id, as given by the caller.
    pub model: String,
    /// Always `"USD"`.
    pub currency: String,
    /// Whether a price was found; when false every cost is zero.
    pub price_found: bool,
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
/// Never fails: an unknown provider/model costs `0.0` with `price_found: false` (see the [module docs](self)).
pub fn calculate_cost(provider: &str, model: &str, input_tokens: u64, output_tokens: u64) -> CostResult {
    calculate_cost_cached(provider, model, input_tokens, output_tokens, 0)
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
    let cached_tokens = cached_tokens.min(input_tokens);
    let usage = token_usage(input_tokens, output_tokens, cached_tokens);
    let (input_cost, output_cost, total_cost, price_found) = match price(provider, model, &usage) {
        Ok(price) => (price.input_price, price.output_price, price.total_price, true),
        Err(reason) => {
            warn_unknown_once(provider, model, &reason);
            (0.0, 0.0, 0.0, false)
        }
    };
    CostResult {
        input_cost,
        output_cost,
        total_cost,
        input_tokens,
        output_tokens,
        cached_tokens,
        provider: provider.into(),
        model: model.into(),
        currency: CURRENCY.into(),
        price_found,
    }
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
        input_price_per_1k: price.input_price,
        output_price_per_1k: price.output_price,
    })
}

/// The provider and model of the price data that `provider`/`model` resolve to, or `None` when unknown.
///
/// Shows what a raw model id is priced as, e.g. `("anthropic", "claude-3-5-sonnet-20241022")` resolves to
/// provider `anthropic`, model `claude-3-5-sonnet`, and `("", "gpt-4o")` to provider `openai`.
pub fn resolve_model(provider: &str, model: &str) -> Option<ResolvedModel> {
    let price = price(provider, model, &Usage::new()).ok()?;
    Some(ResolvedModel { provider_id: price.provider_id, model_id: price.model_id })
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

/// The bundled calculator, or `None` if its data failed to decode (a broken `genai-prices` release), in which
/// case every price is unknown rather than every call panicking.
static CALCULATOR: LazyLock<Option<&'static Calculator>> =
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

/// The usage `genai-prices` prices: cache reads are a part of `input_tokens` there too.
fn token_usage(input_tokens: u64, output_tokens: u64, cached_tokens: u64) -> Usage {
    // u64 → f64 rounds above 2^53 tokens, far beyond any real call; the price stays finite.
    #[allow(clippy::cast_precision_loss)]
    let count = |tokens: u64| tokens as f64;
    let mut usage =
        Usage::from([(UsageKey::INPUT_TOKENS, count(input_tokens)), (UsageKey::OUTPUT_TOKENS, count(output_tokens))]);
    if cached_tokens > 0 {
        usage.insert(UsageKey::CACHE_READ_TOKENS, count(cached_tokens));
    }
    usage
}

/// Prices `usage` for the caller's provider/model, resolving the provider as the module docs describe.
fn price(provider: &str, model: &str, usage: &Usage) -> Result<PriceCalculation, NotFound> {
    let calculator = (*CALCULATOR).ok_or(NotFound::NoData)?;
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

/// This module's provider aliases, in compact form (lowercase, no separators), with their `genai-prices` ids.
const PROVIDER_ALIASES: &[(&str, &str)] = &[
    ("azureopenai", "azure"),
    ("azureai", "azure"),
    ("claude", "anthropic"),
    ("xai", "x-ai"),
    ("grok", "x-ai"),
    ("togetherai", "together"),
    ("fireworksai", "fireworks"),
    ("deepseekai", "deepseek"),
    ("zhipu", "zhipuai"),
    ("zhipuai", "zhipuai"),
    ("bigmodel", "zhipuai"),
    ("zai", "zai"),
    ("kimi", "moonshotai"),
    ("openrouter", "openrouter"),
    ("pplx", "perplexity"),
    ("perplexityai", "perplexity"),
    ("groqcloud", "groq"),
    ("minimaxai", "minimax"),
    ("ovh", "ovhcloud"),
    ("workersai", "cloudflare"),
    ("cloudflareworkersai", "cloudflare"),
];

/// The provider id to ask `genai-prices` for: `None` for an empty provider, an alias's target, or the trimmed
/// provider itself. Does not allocate.
fn provider_id(provider: &str) -> Option<&str> {
    let provider = provider.trim();
    if provider.is_empty() {
        return None;
    }
    let alias = PROVIDER_ALIASES.iter().find(|(alias, _)| compact_eq(provider, alias)).map(|(_, id)| *id);
    Some(alias.unwrap_or(provider))
}

/// Whether `text`, lowercased (ASCII) and without `-`, `_`, `.`, `/` and spaces, equals `compact`.
fn compact_eq(text: &str, compact: &str) -> bool {
    text.bytes()
        .filter(|b| !matches!(b, b'-' | b'_' | b'.' | b'/' | b' '))
        .map(|b| b.to_ascii_lowercase())
        .eq(compact.bytes())
}

/// The provider/model pairs already warned about, so each is warned about once.
static WARNED: LazyLock<Mutex<WarnedPairs>> = LazyLock::new(|| Mutex::new(WarnedPairs::new(MAX_WARNED_PAIRS)));

fn warn_unknown_once(provider: &str, model: &str, reason: &NotFound) {
    let first = WARNED.lock().unwrap_or_else(PoisonError::into_inner).first_time(provider, model);
    match first {
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
    fn provider_aliases() {
        assert_eq!(provider_id(""), None);
        assert_eq!(provider_id("  "), None);
        assert_eq!(provider_id(" openai "), Some("openai"));
        assert_eq!(provider_id("Azure OpenAI"), Some("azure"));
        assert_eq!(provider_id("azure_openai"), Some("azure"));
        assert_eq!(provider_id("x.ai"), Some("x-ai"));
        assert_eq!(provider_id("X_AI"), Some("x-ai"));
        assert_eq!(provider_id("Together AI"), Some("together"));
        assert_eq!(provider_id("fireworks-ai"), Some("fireworks"));
        // Passed through unchanged: genai-prices matches these itself.
        assert_eq!(provider_id("Gemini"), Some("Gemini"));
        assert_eq!(provider_id("huggingface_groq"), Some("huggingface_groq"));
        // Every alias target is a provider of the bundled data.
        let calculator = (*CALCULATOR).expect("bundled data decodes");
        for (alias, id) in PROVIDER_ALIASES {
            let found = calculator.find_provider(Some(id), None).expect("no regex error").map(|p| p.id());
            assert_eq!(found, Some(*id), "alias {alias}");
        }
    }

    #[test]
    fn cached_tokens_are_clamped() {
        let usage = token_usage(10, 5, 10);
        assert_eq!(usage.get(UsageKey::CACHE_READ_TOKENS), Some(10.0));
        let result = calculate_cost_cached("anthropic", "claude-3-haiku-20240307", 10, 5, 50);
        assert_eq!(result.cached_tokens, 10);
        assert!(result.price_found);
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
