//! The user's [`PriceOverride`]s, compiled for matching without allocating, and the cost of a usage at their
//! rates.

use genai_prices::{Usage, UsageKey};

use super::provider::provider_id;
use crate::config::PriceOverride;

/// A [`PriceOverride`] ready to match: the provider as a `genai-prices` id (aliases applied), both trimmed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Override {
    /// `None`: any provider.
    provider: Option<String>,
    model: String,
    input_mtok: f64,
    output_mtok: f64,
    cache_read_mtok: f64,
    cache_write_mtok: f64,
}

/// The priced parts of one call at an override's rates (USD, not rounded).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OverridePrice {
    pub(crate) input: f64,
    pub(crate) output: f64,
    pub(crate) provider_id: String,
    pub(crate) model_id: String,
}

/// The overrides in match order: `first` (the file's), then `then` (the config's). Entries are assumed valid.
pub(crate) fn compile(first: &[PriceOverride], then: &[PriceOverride]) -> std::sync::Arc<[Override]> {
    first
        .iter()
        .chain(then)
        .map(|o| Override {
            provider: provider_id(&o.provider).map(str::to_owned),
            model: o.model.trim().to_owned(),
            input_mtok: o.input_mtok,
            output_mtok: o.output_mtok,
            cache_read_mtok: o.cache_read_mtok.unwrap_or(o.input_mtok),
            cache_write_mtok: o.cache_write_mtok.unwrap_or(o.input_mtok),
        })
        .collect()
}

/// The first override for the caller's `provider`/`model` (an empty provider on either side matches any).
pub(crate) fn find<'a>(overrides: &'a [Override], provider: &str, model: &str) -> Option<&'a Override> {
    let model = model.trim();
    let provider = provider_id(provider);
    overrides.iter().find(|o| {
        o.model.eq_ignore_ascii_case(model)
            && match (&o.provider, provider) {
                (Some(theirs), Some(ours)) => theirs.eq_ignore_ascii_case(ours),
                _ => true,
            }
    })
}

impl Override {
    /// The cost of `usage` at these rates; `input_tokens` / `output_tokens` include their parts, as in
    /// `genai-prices`.
    pub(crate) fn price(&self, usage: &Usage) -> OverridePrice {
        let get = |key| usage.get(key).unwrap_or(0.0);
        let input = get(UsageKey::INPUT_TOKENS);
        let cache_read = get(UsageKey::CACHE_READ_TOKENS).min(input);
        let cache_write = get(UsageKey::CACHE_WRITE_TOKENS).min(input - cache_read);
        let plain = input - cache_read - cache_write;
        let per_token = 1e-6;
        OverridePrice {
            input: (plain * self.input_mtok + cache_read * self.cache_read_mtok + cache_write * self.cache_write_mtok)
                * per_token,
            output: get(UsageKey::OUTPUT_TOKENS) * self.output_mtok * per_token,
            provider_id: self.provider.clone().unwrap_or_default(),
            model_id: self.model.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(pairs: &[(UsageKey, f64)]) -> Usage {
        pairs.iter().cloned().collect()
    }

    #[test]
    fn matching_ignores_case_aliases_and_empty_providers() {
        let list = compile(
            &[PriceOverride::new("Azure OpenAI", "My-Model", 1.0, 2.0)],
            &[PriceOverride::new("", "anywhere", 1.0, 1.0), PriceOverride::new("azure", "my-model", 9.0, 9.0)],
        );
        // The file's entry (first) wins over the config's for the same pair.
        assert_eq!(find(&list, "azure_openai", " my-model ").map(|o| o.input_mtok), Some(1.0));
        assert_eq!(find(&list, "AZURE", "MY-MODEL").map(|o| o.input_mtok), Some(1.0));
        assert!(find(&list, "openai", "my-model").is_none());
        assert!(find(&list, "", "my-model").is_some());
        assert!(find(&list, "whatever", "anywhere").is_some());
        assert!(find(&list, "azure", "other").is_none());
    }

    #[test]
    fn rates_apply_per_kind_of_token() {
        let o = &compile(&[PriceOverride::new("p", "m", 2.0, 8.0).cache_read_mtok(0.5)], &[])[0];
        let p = o.price(&usage(&[
            (UsageKey::INPUT_TOKENS, 1_000_000.0),
            (UsageKey::CACHE_READ_TOKENS, 400_000.0),
            (UsageKey::CACHE_WRITE_TOKENS, 100_000.0),
            (UsageKey::OUTPUT_TOKENS, 500_000.0),
        ]));
        // 500K plain at $2/M, 400K cache reads at $0.5/M, 100K cache writes at the input rate.
        assert!((p.input - (1.0 + 0.2 + 0.2)).abs() < 1e-12, "{p:?}");
        assert!((p.output - 4.0).abs() < 1e-12, "{p:?}");
        // Parts larger than the input are clamped.
        let p = o.price(&usage(&[(UsageKey::INPUT_TOKENS, 10.0), (UsageKey::CACHE_READ_TOKENS, 50.0)]));
        assert!((p.input - 10.0 * 0.5e-6).abs() < 1e-18, "{p:?}");
    }
}
