//! Tokens, model, provider and cost: of one component output (or LLM call), as sent in `span_end` /
//! `llm_call_end` metadata, and summed over a trace ([`AgentTotals`]).

use serde::Serialize;
use serde_json::{Map, Value};

use crate::llm::usage::{LlmInfo, TokenUsage};

/// Tokens, model, provider and cost of one output.
pub(super) struct Priced {
    pub(super) usage: Option<TokenUsage>,
    pub(super) model: Option<String>,
    pub(super) provider: Option<String>,
    pub(super) cost: Option<f64>,
    /// False when the cost comes from a count above the ceiling (see `CostResult::trusted`).
    pub(super) trusted: bool,
}

impl Priced {
    pub(super) fn new(info: LlmInfo, model_hint: Option<&str>, provider_hint: Option<&str>) -> Self {
        let model = info.model.or_else(|| model_hint.map(str::to_owned));
        let provider = info
            .provider
            .or_else(|| provider_hint.map(str::to_owned))
            .or_else(|| model.as_deref().and_then(crate::llm::usage::detect_provider));
        let (cost, trusted) = match (&info.usage, &model) {
            (Some(u), Some(m)) => {
                let c = crate::cost::cost_usage(provider.as_deref().unwrap_or(""), m, u);
                ((c.price_source != crate::cost::PriceSource::Unpriced).then_some(c.total_cost), c.trusted)
            }
            (Some(u), None) => (None, !u.capped),
            _ => (None, true),
        };
        Self { usage: info.usage, model, provider, cost, trusted }
    }

    /// Writes the metadata keys of this output (its strings move into the map).
    pub(super) fn write(self, m: &mut Map<String, Value>) {
        if let Some(model) = self.model {
            m.insert("model".into(), model.into());
        }
        if let Some(p) = self.provider {
            m.insert("provider".into(), p.into());
        }
        if let Some(u) = &self.usage {
            m.insert("input_tokens".into(), u.input_tokens.into());
            m.insert("output_tokens".into(), u.output_tokens.into());
            if u.cached_tokens > 0 {
                m.insert("cached_tokens".into(), u.cached_tokens.into());
            }
            if u.reasoning_tokens > 0 {
                m.insert("reasoning_tokens".into(), u.reasoning_tokens.into());
            }
        }
        if let Some(c) = self.cost {
            m.insert("cost".into(), c.into());
        }
        if !self.trusted {
            m.insert("cost_trusted".into(), Value::Bool(false));
        }
    }
}

/// Token and cost totals of a trace (components ended so far).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct AgentTotals {
    /// Components ended (`span_end` events).
    pub spans: u64,
    /// Components that ended with an error.
    pub failed_spans: u64,
    /// Input tokens, cached ones included.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Cached input tokens.
    pub cached_tokens: u64,
    /// Reasoning output tokens.
    pub reasoning_tokens: u64,
    /// USD, of the components whose model has a price (rounded to 1e-10 USD, see
    /// [`round_usd`](crate::cost::round_usd)).
    pub total_cost: f64,
    /// Components whose cost is not trustworthy (a token count above
    /// [`MAX_TOKEN_COUNT`](crate::cost::MAX_TOKEN_COUNT), priced at that ceiling); `trace_end` then says
    /// `cost_trusted: false`.
    pub untrusted_costs: u64,
}

impl AgentTotals {
    /// Adds one ended component: its tokens, cost and trust, and whether it failed.
    pub(super) fn add(&mut self, priced: &Priced, failed: bool) {
        self.spans += 1;
        self.failed_spans += u64::from(failed);
        if let Some(u) = &priced.usage {
            self.input_tokens = self.input_tokens.saturating_add(u.input_tokens);
            self.output_tokens = self.output_tokens.saturating_add(u.output_tokens);
            self.cached_tokens = self.cached_tokens.saturating_add(u.cached_tokens);
            self.reasoning_tokens = self.reasoning_tokens.saturating_add(u.reasoning_tokens);
        }
        self.total_cost = crate::cost::round_usd(self.total_cost + priced.cost.unwrap_or(0.0));
        self.untrusted_costs += u64::from(!priced.trusted);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn usage(input: u64, output: u64) -> TokenUsage {
        TokenUsage { input_tokens: input, output_tokens: output, ..Default::default() }
    }

    #[test]
    fn a_known_model_is_priced_and_its_provider_detected() {
        let info = LlmInfo { usage: Some(usage(1000, 500)), model: Some("gpt-4o".into()), ..Default::default() };
        let p = Priced::new(info, None, None);
        assert_eq!(p.provider.as_deref(), Some("openai"));
        let expected = crate::calculate_cost("openai", "gpt-4o", 1000, 500).total_cost;
        assert_eq!(p.cost, Some(expected));
        assert!(p.trusted);
        let mut m = Map::new();
        p.write(&mut m);
        assert_eq!(
            Value::Object(m),
            json!({"model": "gpt-4o", "provider": "openai", "input_tokens": 1000, "output_tokens": 500, "cost": expected})
        );
    }

    #[test]
    fn hints_fill_in_what_the_output_does_not_say() {
        let info = LlmInfo { usage: Some(usage(10, 5)), ..Default::default() };
        let p = Priced::new(info, Some("claude-3-5-sonnet-20241022"), Some("anthropic"));
        assert_eq!(p.model.as_deref(), Some("claude-3-5-sonnet-20241022"));
        assert_eq!(p.provider.as_deref(), Some("anthropic"));
        assert!(p.cost.is_some());
        // What the output says wins over the hints.
        let info = LlmInfo { model: Some("gpt-4o".into()), provider: Some("azure".into()), ..Default::default() };
        let p = Priced::new(info, Some("other-model"), Some("other"));
        assert_eq!((p.model.as_deref(), p.provider.as_deref()), (Some("gpt-4o"), Some("azure")));
    }

    #[test]
    fn no_model_no_cost_and_no_usage_no_tokens() {
        let p = Priced::new(LlmInfo { usage: Some(usage(3, 4)), ..Default::default() }, None, None);
        assert_eq!((p.cost, p.trusted), (None, true));
        let mut m = Map::new();
        p.write(&mut m);
        assert_eq!(Value::Object(m), json!({"input_tokens": 3, "output_tokens": 4}));

        let p = Priced::new(LlmInfo::default(), None, None);
        let mut m = Map::new();
        p.write(&mut m);
        assert!(m.is_empty(), "{m:?}");
    }

    #[test]
    fn an_unknown_model_has_no_cost() {
        let info = LlmInfo { usage: Some(usage(10, 5)), model: Some("no-such-model-xyz".into()), ..Default::default() };
        assert_eq!(Priced::new(info, None, None).cost, None);
    }

    #[test]
    fn capped_counts_are_marked_untrusted() {
        let capped = TokenUsage { capped: true, ..usage(10, 5) };
        let p = Priced::new(LlmInfo { usage: Some(capped), ..Default::default() }, None, None);
        assert!(!p.trusted);
        let mut m = Map::new();
        p.write(&mut m);
        assert_eq!(m["cost_trusted"], json!(false));
    }

    #[test]
    fn cached_and_reasoning_tokens_are_written_only_when_present() {
        let u = TokenUsage { cached_tokens: 7, reasoning_tokens: 9, ..usage(10, 5) };
        let mut m = Map::new();
        Priced::new(LlmInfo { usage: Some(u), ..Default::default() }, None, None).write(&mut m);
        assert_eq!((m["cached_tokens"].clone(), m["reasoning_tokens"].clone()), (json!(7), json!(9)));
    }

    #[test]
    fn totals_add_up_components_saturating_and_rounded() {
        let mut t = AgentTotals::default();
        let one = Priced {
            usage: Some(TokenUsage { cached_tokens: 2, ..usage(10, 5) }),
            model: None,
            provider: None,
            cost: Some(0.1),
            trusted: true,
        };
        let two =
            Priced { usage: Some(usage(u64::MAX, 1)), model: None, provider: None, cost: Some(0.2), trusted: false };
        t.add(&one, false);
        t.add(&two, true);
        t.add(&Priced::new(LlmInfo::default(), None, None), false);
        assert_eq!((t.spans, t.failed_spans, t.untrusted_costs), (3, 1, 1));
        assert_eq!((t.input_tokens, t.output_tokens, t.cached_tokens), (u64::MAX, 6, 2));
        assert_eq!(t.total_cost, 0.3, "rounded: not 0.30000000000000004");
    }
}
