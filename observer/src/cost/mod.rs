//! LLM cost calculation, backed by the price data bundled with the [`genai_prices`] crate, fresher data loaded
//! from a file or URL ([`PriceRefresher`]), and your own prices ([`PriceOverride`](crate::PriceOverride)).
//!
//! All amounts are US dollars (`currency` is always `"USD"`), rounded to [`USD_DECIMALS`] (10) decimal places
//! by [`round_usd`], so that they are written without binary float noise (`0.001125`, not
//! `0.0011250000000000001`) and add up like the bill.
//!
//! ```
//! use observer::llm::TokenUsage;
//! use observer::{calculate_cost, calculate_cost_cached, calculate_cost_usage, get_price};
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
//! assert_eq!(result.input_cost, 0.00195);
//!
//! // Every usage kind at its own rate: here 1,000 of the input tokens were written to the cache ($3.75/M).
//! let usage = TokenUsage { input_tokens: 2000, output_tokens: 500, cache_creation_tokens: 1000, ..Default::default() };
//! let result = calculate_cost_usage("anthropic", "claude-3-5-sonnet-20241022", &usage);
//! assert_eq!(result.input_cost, 0.00675);
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
//! # Price data
//!
//! Unless fresh data is loaded (below), every price comes from the data embedded in the Rust `genai-prices` crate
//! 0.2.1, which is the data of the
//! Python `genai-prices` package 0.2.1: for the same model and usage the numbers equal what that Python release's
//! `calc_price` computes (up to the rounding above). They are **not** necessarily what the Python
//! `autonomize-observer` package computes today: it prices with whichever Python `genai-prices` release is
//! installed, and newer releases have newer data (in November 2026, Python `genai-prices` 0.2.3 knew 63 models
//! this data lacks and priced about 65 others differently). When reconciling costs across services, compare the
//! `genai-prices` versions first; [`resolve_model`] shows which entry of this data a model id matched.
//!
//! ## Fresh data and overrides
//!
//! [`PriceConfig`](crate::PriceConfig) (`ObserverConfig::prices`, env `OBSERVER_PRICES_*`) loads newer data in the
//! same JSON format from a file or an https URL (e.g. [`GENAI_PRICES_DATA_URL`]), on a background thread, at
//! start and every `refresh_interval`; `init` starts the [`PriceRefresher`] and its guard stops it. Calculations
//! never wait for it: the data in effect is swapped atomically ([`arc_swap`]), and a calculation only loads it.
//! A load is checked before it is used: malformed or empty data (no model), an HTTP error, or more than
//! [`MAX_PRICE_DATA_BYTES`] is refused ([`PriceDataError`]) and the data in effect (the bundled data, or the last
//! good data) stays; failures are counted in [`price_data_status`] and reported once per streak. Loaded data
//! prices the models it has; the bundled data prices the others.
//!
//! Your [`PriceOverride`](crate::PriceOverride)s (config or `overrides_file`) take precedence over any data, both
//! for the id the caller gives and for the model the data resolves it to. Every result says what priced it:
//! [`CostResult::price_source`](crate::CostResult::price_source) ([`PriceSource`]).
//!
//! # Models
//!
//! The model id is passed to `genai-prices` as given (matched case-insensitively by its rules), so a dated id such
//! as `claude-3-5-sonnet-20241022` is priced as the model whose rule it matches (`claude-3-5-sonnet`), never mapped
//! by this module to another model. Two id shapes are routed first:
//!
//! - **Bedrock model ids** (`anthropic.claude-3-haiku-20240307-v1:0`, region-prefixed
//!   `us.anthropic.claude-…`, `amazon.nova-pro-v1:0`, `meta.llama3-…`: `[region.]vendor.model`) are priced as
//!   Bedrock's (`genai-prices` provider `aws`), whatever provider is given: no other provider serves those ids.
//! - **`vendor/model` ids** (LiteLLM and proxies: `azure/gpt-4o`, `openai/gpt-4o`) that the given provider does not
//!   price are priced as `model` of `vendor`, when `vendor` is a provider of the data (after the aliases below).
//!
//! [`resolve_model`] shows what an id matched. Prices in effect *now* are used (some models have prices that
//! change on a date); request-specific variants (OpenAI service tiers, batch processing) are not applied.
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
//! A provider that is known but does not price the model is not second-guessed (except for the two id shapes
//! above): the price is not found. Some providers fall back to others' models themselves (`azure` to OpenAI's and
//! Anthropic's, `google` to Anthropic's).
//!
//! # Usage kinds
//!
//! [`calculate_cost_usage`] prices every kind of [`TokenUsage`](crate::llm::TokenUsage) at the model's own rate for it,
//! as `genai-prices` does: cache reads (`cached_tokens`), cache writes (`cache_creation_tokens`, of which
//! `cache_creation_1h_tokens` at the one-hour rate when the model has one), input and output audio tokens, and
//! reasoning tokens (at the output rate unless the model has a reasoning rate). All of them are parts of `input_tokens`
//! / `output_tokens` (see [`TokenUsage`](crate::llm::TokenUsage)); a part the model has no rate for is charged at the
//! input or output rate. [`calculate_cost_cached`](crate::calculate_cost_cached) is the common case of cache reads
//! only; `cached_tokens` larger than `input_tokens` are clamped to `input_tokens`.
//!
//! # Absurd counts
//!
//! A token count above [`MAX_TOKEN_COUNT`] (one billion, far beyond any model's context) is priced as `MAX_TOKEN_COUNT`
//! and the result has `trusted: false`; so is a usage marked [`capped`](crate::llm::TokenUsage::capped) by the
//! extraction. Events carry the flag as `cost_trusted: false`. Price multi-call totals call by call, not as one sum
//! above the ceiling.
//!
//! # Unknown models
//!
//! An unknown provider/model pair costs `0.0` with `price_found: false`; it is never an error and never panics.
//! One `tracing` warning (target `observer::cost`) is logged per distinct pair, not per call; after
//! [`MAX_WARNED_PAIRS`] distinct pairs, one last warning says that further ones are not reported. When the model
//! looks like a provider and the provider like a model (swapped arguments), the warning says so.
//!
//! # Performance
//!
//! Decoding the bundled data takes about 150 ms and happens once, on first use or in [`warm_up`] (which `init`
//! runs on a background thread). After that a calculation only matches the model and multiplies, typically a
//! few microseconds.
//!
//! The guide's functions and types ([`calculate_cost`](crate::calculate_cost),
//! [`calculate_cost_cached`](crate::calculate_cost_cached), [`calculate_cost_usage`],
//! [`get_price`](crate::get_price), [`CostResult`](crate::CostResult), [`ModelPrice`](crate::ModelPrice)) are at
//! the crate root; this module holds the rest.

mod data;
mod overrides;
pub(crate) mod price;
mod provider;

pub use crate::llm::usage::MAX_TOKEN_COUNT;
pub use data::{
    price_data_status, PriceDataError, PriceDataStatus, PriceRefresher, PriceSource, GENAI_PRICES_DATA_URL,
    MAX_PRICE_DATA_BYTES,
};
pub use price::{resolve_model, round_usd, warm_up, ResolvedModel, CURRENCY, MAX_WARNED_PAIRS, USD_DECIMALS};

pub(crate) use price::{calculate_cost_usage, cost_usage, model_provider};
pub(crate) use price::{is_bedrock_model_id, warm_up_in_background};
