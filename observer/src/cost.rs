//! LLM cost calculation over the `genai-prices` crate. (Placeholder: being implemented.)

use serde::{Deserialize, Serialize};

/// The cost of one LLM call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostResult {
    /// Cost of the input tokens in USD.
    pub input_cost: f64,
    /// Cost of the output tokens in USD.
    pub output_cost: f64,
    /// `input_cost + output_cost`.
    pub total_cost: f64,
    /// Input tokens (cached ones included).
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Cached input tokens (a subset of `input_tokens`).
    pub cached_tokens: u64,
    /// Provider id.
    pub provider: String,
    /// Model id.
    pub model: String,
    /// Always `"USD"`.
    pub currency: String,
    /// Whether a price was found; when false every cost is zero.
    pub price_found: bool,
}

/// Per-1K-token prices of a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelPrice {
    /// Provider id.
    pub provider: String,
    /// Model id.
    pub model: String,
    /// USD per 1,000 input tokens.
    pub input_price_per_1k: f64,
    /// USD per 1,000 output tokens.
    pub output_price_per_1k: f64,
}

/// Cost of a call without cached tokens.
pub fn calculate_cost(provider: &str, model: &str, input_tokens: u64, output_tokens: u64) -> CostResult {
    calculate_cost_cached(provider, model, input_tokens, output_tokens, 0)
}

/// Cost of a call where `cached_tokens` of the `input_tokens` were read from the provider's cache.
pub fn calculate_cost_cached(
    provider: &str,
    model: &str,
    input_tokens: u64,
    output_tokens: u64,
    cached_tokens: u64,
) -> CostResult {
    CostResult {
        input_cost: 0.0,
        output_cost: 0.0,
        total_cost: 0.0,
        input_tokens,
        output_tokens,
        cached_tokens,
        provider: provider.into(),
        model: model.into(),
        currency: "USD".into(),
        price_found: false,
    }
}

/// Per-1K prices of a model, or `None` when unknown.
pub fn get_price(_provider: &str, _model: &str) -> Option<ModelPrice> {
    None
}

/// Decodes the bundled price data now (about 150 ms) instead of on the first cost calculation.
pub fn warm_up() {}
