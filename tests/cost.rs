//! The cost module prices calls exactly as the Python `genai-prices` package does.
//!
//! # How the expected values were obtained
//!
//! Python 3.11.7, `pip install genai-prices==0.2.1` (PyPI). Its bundled price data was checked to be identical,
//! model for model (all 2,267 provider/model prices), to the data of the Rust crate `genai-prices` 0.2.1 that
//! `observer` uses; 0.2.2 and 0.2.3 already have newer data. The literals below are what this snippet printed
//! (on 2026-11-25; none of these models has a date-dependent price):
//!
//! ```python
//! from genai_prices import Usage, calc_price
//!
//! def show(provider, model, inp, out, cached=0):
//!     r = calc_price(Usage(input_tokens=inp, output_tokens=out, cache_read_tokens=cached), model, provider_id=provider)
//!     print(provider, model, inp, out, cached, '->', r.provider.id, r.model.id, r.input_price, r.output_price, r.total_price)
//!
//! show('openai', 'gpt-4o', 1000, 500)                                   # 0.0025 0.005 0.0075
//! show('anthropic', 'claude-3-5-sonnet-20241022', 2000, 500, 1500)     # 0.00195 0.0075 0.00945
//! show('anthropic', 'claude-3-5-sonnet-20241022', 2000, 500)           # 0.006 0.0075 0.0135
//! show('google', 'gemini-1.5-pro', 1000, 500)                          # 0.00125 0.0025 0.00375
//! show('google', 'gemini-1.5-pro', 200000, 500)                        # 0.5 0.005 0.505
//! show('google', 'gemini-2.0-flash', 10000, 2000, 4000)                # 0.0007 0.0008 0.0015
//! show('anthropic', 'claude-3-haiku-20240307', 1000, 500)              # 0.00025 0.000625 0.000875
//! show('anthropic', 'claude-3-haiku-20240307', 1000, 500, 400)         # 0.000162 0.000625 0.000787
//! show('perplexity', 'sonar', 1000, 500)                               # 0.001 0.0005 0.0135
//! show('azure', 'gpt-4o', 1000, 500)                                   # 0.0025 0.005 0.0075
//! show('bedrock', 'anthropic.claude-3-haiku-20240307-v1:0', 1000, 500) # 0.00025 0.000625 0.000875
//! show(None, 'gpt-4o', 1000, 500)                                      # 0.0025 0.005 0.0075
//! # get_price: the input and output price of 1,000 input and 1,000 output tokens
//! show('openai', 'gpt-4o', 1000, 1000)                                 # 0.0025 0.01 0.0125
//! show('google', 'gemini-1.5-pro', 1000, 1000)                         # 0.00125 0.005 0.00625
//! ```

mod common;

use std::io::Write;
use std::sync::{Arc, Barrier, Mutex};

use observer::cost::{resolve_model, ResolvedModel};
use observer::{calculate_cost, calculate_cost_cached, get_price, CostResult};

/// Relative tolerance: Python computes with `Decimal`, Rust with `f64`.
const TOLERANCE: f64 = 1e-12;

fn assert_close(actual: f64, expected: f64, what: &str) {
    let scale = expected.abs().max(f64::MIN_POSITIVE);
    assert!((actual - expected).abs() <= TOLERANCE * scale, "{what}: {actual} != {expected}");
}

/// Asserts a priced result against the Python `input_price`, `output_price` and `total_price`.
fn assert_python(result: &CostResult, input: f64, output: f64, total: f64) {
    let what = format!("{}/{}", result.provider, result.model);
    assert!(result.price_found, "{what} not priced");
    assert_eq!(result.currency, "USD");
    assert_close(result.input_cost, input, &format!("{what} input"));
    assert_close(result.output_cost, output, &format!("{what} output"));
    assert_close(result.total_cost, total, &format!("{what} total"));
}

fn assert_unpriced(result: &CostResult) {
    assert!(!result.price_found, "{result:?}");
    assert_eq!((result.input_cost, result.output_cost, result.total_cost), (0.0, 0.0, 0.0), "{result:?}");
    assert_eq!(result.currency, "USD");
}

#[test]
fn gpt_4o_equals_python() {
    let result = calculate_cost("openai", "gpt-4o", 1000, 500);
    assert_python(&result, 0.0025, 0.005, 0.0075);
    assert_eq!((result.input_tokens, result.output_tokens, result.cached_tokens), (1000, 500, 0));
    assert_eq!((result.provider.as_str(), result.model.as_str()), ("openai", "gpt-4o"));
}

#[test]
fn claude_3_5_sonnet_cached_tokens_equal_python() {
    let cached = calculate_cost_cached("anthropic", "claude-3-5-sonnet-20241022", 2000, 500, 1500);
    assert_python(&cached, 0.00195, 0.0075, 0.00945);
    assert_eq!(cached.cached_tokens, 1500);
    // Without the cache every input token costs the input rate.
    let uncached = calculate_cost_cached("anthropic", "claude-3-5-sonnet-20241022", 2000, 500, 0);
    assert_python(&uncached, 0.006, 0.0075, 0.0135);
    assert_eq!(uncached, calculate_cost("anthropic", "claude-3-5-sonnet-20241022", 2000, 500));
}

#[test]
fn raw_model_id_is_priced_as_the_model_it_matches() {
    let resolved = resolve_model("anthropic", "claude-3-5-sonnet-20241022");
    assert_eq!(resolved, Some(ResolvedModel { provider_id: "anthropic".into(), model_id: "claude-3-5-sonnet".into() }));
    let resolved = resolve_model("", "gpt-4o").expect("gpt-4o resolves without a provider");
    assert_eq!((resolved.provider_id.as_str(), resolved.model_id.as_str()), ("openai", "gpt-4o"));
    assert_eq!(resolve_model("openai", "no-such-model"), None);
}

#[test]
fn gemini_equals_python_including_tiers() {
    assert_python(&calculate_cost("google", "gemini-1.5-pro", 1000, 500), 0.00125, 0.0025, 0.00375);
    // Above 128K input tokens the whole call is charged at the higher tier.
    assert_python(&calculate_cost("google", "gemini-1.5-pro", 200_000, 500), 0.5, 0.005, 0.505);
    assert_python(&calculate_cost_cached("google", "gemini-2.0-flash", 10_000, 2000, 4000), 0.0007, 0.0008, 0.0015);
}

#[test]
fn claude_3_haiku_equals_python() {
    assert_python(&calculate_cost("anthropic", "claude-3-haiku-20240307", 1000, 500), 0.00025, 0.000625, 0.000875);
    assert_python(
        &calculate_cost_cached("anthropic", "claude-3-haiku-20240307", 1000, 500, 400),
        0.000162,
        0.000625,
        0.000787,
    );
}

#[test]
fn other_providers_equal_python() {
    // Perplexity charges per request too: the total is more than input + output.
    assert_python(&calculate_cost("perplexity", "sonar", 1000, 500), 0.001, 0.0005, 0.0135);
    // Azure prices OpenAI's models through genai-prices' fallback.
    assert_python(&calculate_cost("azure", "gpt-4o", 1000, 500), 0.0025, 0.005, 0.0075);
    assert_python(
        &calculate_cost("bedrock", "anthropic.claude-3-haiku-20240307-v1:0", 1000, 500),
        0.00025,
        0.000625,
        0.000875,
    );
    assert_python(&calculate_cost("", "gpt-4o", 1000, 500), 0.0025, 0.005, 0.0075);
}

#[test]
fn get_price_equals_python() {
    let price = get_price("openai", "gpt-4o").expect("gpt-4o is priced");
    assert_eq!((price.provider.as_str(), price.model.as_str()), ("openai", "gpt-4o"));
    assert_close(price.input_price_per_1k, 0.0025, "gpt-4o input per 1K");
    assert_close(price.output_price_per_1k, 0.01, "gpt-4o output per 1K");
    // Tiered prices: the base rate, below the first tier.
    let price = get_price("google", "gemini-1.5-pro").expect("gemini-1.5-pro is priced");
    assert_close(price.input_price_per_1k, 0.00125, "gemini-1.5-pro input per 1K");
    assert_close(price.output_price_per_1k, 0.005, "gemini-1.5-pro output per 1K");
    // Consistent with calculate_cost for 1,000 tokens.
    let price = get_price("anthropic", "claude-3-haiku-20240307").expect("claude-3-haiku is priced");
    assert_eq!(price.input_price_per_1k, calculate_cost("anthropic", "claude-3-haiku-20240307", 1000, 0).input_cost);
    assert_eq!(price.output_price_per_1k, calculate_cost("anthropic", "claude-3-haiku-20240307", 0, 1000).output_cost);

    assert_eq!(get_price("openai", "no-such-model"), None);
    assert_eq!(get_price("no-such-provider", "no-such-model"), None);
    assert_eq!(get_price("", ""), None);
}

#[test]
fn unknown_provider_or_model_costs_nothing() {
    for (provider, model) in [
        ("no-such-provider", "no-such-model"),
        ("openai", "no-such-model"),
        ("", "no-such-model"),
        ("", ""),
        ("openai", ""),
        ("  ", "  "),
        // A known provider that does not price the model is not second-guessed.
        ("openai", "claude-3-haiku-20240307"),
    ] {
        let result = calculate_cost_cached(provider, model, 1000, 500, 100);
        assert_unpriced(&result);
        assert_eq!((result.provider.as_str(), result.model.as_str()), (provider, model));
        assert_eq!((result.input_tokens, result.output_tokens, result.cached_tokens), (1000, 500, 100));
    }
}

#[test]
fn unknown_provider_falls_back_to_the_model() {
    assert_python(&calculate_cost("ollama", "gpt-4o", 1000, 500), 0.0025, 0.005, 0.0075);
    assert_python(&calculate_cost("my-proxy", "claude-3-haiku-20240307", 1000, 500), 0.00025, 0.000625, 0.000875);
}

#[test]
fn cached_tokens_above_input_are_clamped() {
    let clamped = calculate_cost_cached("anthropic", "claude-3-5-sonnet-20241022", 2000, 500, 5000);
    assert!(clamped.price_found);
    assert_eq!(clamped.cached_tokens, 2000);
    let all_cached = calculate_cost_cached("anthropic", "claude-3-5-sonnet-20241022", 2000, 500, 2000);
    assert_eq!(clamped, all_cached);
    // 2,000 cache reads at $0.30/M.
    assert_close(clamped.input_cost, 0.0006, "all cached");
    // No input at all.
    let none = calculate_cost_cached("anthropic", "claude-3-5-sonnet-20241022", 0, 0, 10);
    assert!(none.price_found);
    assert_eq!((none.cached_tokens, none.total_cost), (0, 0.0));
}

#[test]
fn provider_aliases() {
    let reference = calculate_cost("google", "gemini-1.5-pro", 1000, 500);
    for alias in ["gemini", "Google", "GOOGLE", " google ", "vertex_ai", "google-vertex", "google_genai"] {
        let result = calculate_cost(alias, "gemini-1.5-pro", 1000, 500);
        assert!(result.price_found, "{alias}");
        assert_eq!(result.total_cost, reference.total_cost, "{alias}");
        assert_eq!(result.provider, alias);
    }
    let reference = calculate_cost("anthropic", "claude-3-haiku-20240307", 1000, 500);
    for alias in ["claude", "Anthropic", "ANTHROPIC"] {
        assert_eq!(calculate_cost(alias, "claude-3-haiku-20240307", 1000, 500).total_cost, reference.total_cost);
    }
    let reference = calculate_cost("openai", "gpt-4o", 1000, 500);
    for alias in ["OpenAI", "azure_openai", "Azure OpenAI", "azure"] {
        let result = calculate_cost(alias, "gpt-4o", 1000, 500);
        assert_eq!(result.total_cost, reference.total_cost, "{alias}");
    }
    for alias in ["azure_openai", "Azure OpenAI"] {
        assert_eq!(resolve_model(alias, "gpt-4o").map(|r| r.provider_id).as_deref(), Some("azure"), "{alias}");
    }
    for alias in ["xai", "x-ai", "x.ai", "X_AI", "grok"] {
        let resolved = resolve_model(alias, "grok-3").expect(alias);
        assert_eq!(resolved.provider_id, "x-ai", "{alias}");
    }
    for alias in ["bedrock", "aws_bedrock", "AWS"] {
        let resolved = resolve_model(alias, "anthropic.claude-3-haiku-20240307-v1:0").expect(alias);
        assert_eq!(resolved.provider_id, "aws", "{alias}");
    }
}

#[test]
fn huge_token_counts_do_not_panic() {
    let result = calculate_cost_cached("anthropic", "claude-3-5-sonnet-20241022", u64::MAX, u64::MAX, u64::MAX);
    assert!(result.price_found);
    assert!(result.total_cost.is_finite() && result.total_cost > 0.0, "{result:?}");
    // Priced at the ceiling, and marked not trustworthy.
    let ceiling = observer::cost::MAX_TOKEN_COUNT;
    assert_eq!((result.input_tokens, result.output_tokens, result.cached_tokens), (ceiling, ceiling, ceiling));
    assert!(!result.trusted);
    let result = calculate_cost("google", "gemini-1.5-pro", u64::MAX, u64::MAX);
    assert!(result.total_cost.is_finite() && result.total_cost > 0.0, "{result:?}");
    assert_unpriced(&calculate_cost_cached("nope", "nope", u64::MAX, u64::MAX, u64::MAX));
}

#[test]
fn unknown_pair_warns_once() {
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);
    impl Write for Capture {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("capture lock").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        for _ in 0..5 {
            assert_unpriced(&calculate_cost("warn-test-provider", "warn-test-model-a", 10, 10));
            assert_unpriced(&calculate_cost("warn-test-provider", "warn-test-model-b", 10, 10));
        }
        // Known models never warn.
        assert!(calculate_cost("openai", "gpt-4o", 10, 10).price_found);
        // Swapped arguments: the warning says so.
        assert_unpriced(&calculate_cost("gpt-4o", "openai", 10, 10));
    });
    let logged = String::from_utf8(capture.0.lock().expect("capture lock").clone()).expect("utf-8 log");
    assert_eq!(logged.matches("model `warn-test-model-a`").count(), 1, "{logged}");
    assert_eq!(logged.matches("model `warn-test-model-b`").count(), 1, "{logged}");
    assert_eq!(logged.lines().count(), 3, "{logged}");
    assert!(logged.lines().any(|l| l.contains("model `openai`") && l.contains("swapped")), "{logged}");
    assert!(logged.contains("WARN") && logged.contains("price-unknown"), "{logged}");
}

/// Runs only in a child process, where nothing has loaded the price table yet: four threads price at once.
#[test]
#[ignore = "run by concurrent_first_use_is_safe"]
fn concurrent_first_use_child() {
    if std::env::var_os("OBSERVER_COST_CHILD").is_none() {
        return;
    }
    let start = Arc::new(Barrier::new(4));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                calculate_cost("openai", "gpt-4o", 1000, 500).total_cost
            })
        })
        .collect();
    for handle in handles {
        assert_close(handle.join().expect("no panic"), 0.0075, "concurrent first gpt-4o");
    }
}

/// The first use of the price table, from several threads at once, prices every call (in a fresh process: in
/// this one other tests have loaded the table already).
#[test]
fn concurrent_first_use_is_safe() {
    let output = common::child_test("concurrent_first_use_child")
        .env("OBSERVER_COST_CHILD", "1")
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success() && stdout.contains("1 passed"), "the child failed: {stdout}");
}

/// Python: `show('bedrock', 'anthropic.claude-3-haiku-20240307-v1:0', 1000, 500)` → 0.00025 0.000625 0.000875.
#[test]
fn bedrock_model_ids_are_priced_as_bedrock_whatever_the_provider_says() {
    for (provider, model) in [
        ("anthropic", "anthropic.claude-3-haiku-20240307-v1:0"),
        ("", "anthropic.claude-3-haiku-20240307-v1:0"),
        ("", "us.anthropic.claude-3-haiku-20240307-v1:0"),
        ("anthropic", "eu.anthropic.claude-3-haiku-20240307-v1:0"),
        ("bedrock", "anthropic.claude-3-haiku-20240307-v1:0"),
    ] {
        assert_python(&calculate_cost(provider, model, 1000, 500), 0.00025, 0.000625, 0.000875);
        assert_eq!(resolve_model(provider, model).map(|r| r.provider_id).as_deref(), Some("aws"), "{provider} {model}");
    }
}

/// `vendor/model` ids (LiteLLM, proxies) are priced as that vendor's model.
#[test]
fn vendor_prefixed_model_ids_are_priced_by_the_vendor() {
    let plain = calculate_cost("openai", "gpt-4o", 1000, 500);
    for (provider, model) in
        [("", "azure/gpt-4o"), ("", "openai/gpt-4o"), ("azure", "azure/gpt-4o"), ("custom", "openai/gpt-4o")]
    {
        let result = calculate_cost(provider, model, 1000, 500);
        assert_python(&result, plain.input_cost, plain.output_cost, plain.total_cost);
    }
    assert_eq!(resolve_model("", "azure/gpt-4o").map(|r| r.provider_id).as_deref(), Some("azure"));
    assert_unpriced(&calculate_cost("", "nobody/gpt-4o-nope", 1000, 500));
}

/// Every amount is rounded to 1e-10 USD: no binary float noise such as `0.0011250000000000001`.
#[test]
fn amounts_have_at_most_ten_decimals() {
    // Equal to itself written with 10 decimals: nothing beyond the 10th decimal (no float noise).
    let ten_decimals = |x: f64| format!("{x:.10}").parse::<f64>().unwrap() == x;
    for model in ["gpt-4o-mini", "gpt-4o", "claude-3-haiku-20240307", "gemini-2.0-flash"] {
        for (input, output, cached) in [(1500, 1500, 0), (333, 777, 100), (1, 3, 0), (12_345, 6_789, 4_321)] {
            let r = calculate_cost_cached("", model, input, output, cached);
            assert!(r.price_found, "{model}");
            for x in [r.input_cost, r.output_cost, r.total_cost] {
                assert!(ten_decimals(x), "{model} {input}/{output}/{cached}: {x}");
            }
        }
    }
    assert_eq!(observer::cost::round_usd(0.1 + 0.2).to_string(), "0.3");
}

/// Cache writes, reasoning and audio tokens are priced at their own rates, as genai-prices prices them.
/// Python: `calc_price(Usage(input_tokens=2000, cache_write_tokens=1000, cache_read_tokens=500, output_tokens=500),
/// 'claude-3-5-sonnet-20241022', provider_id='anthropic')` → 0.00540 0.0075 0.01290 (500×3 + 1000×3.75 + 500×0.30
/// per M input tokens); `calc_price(Usage(input_tokens=1000, output_tokens=1000, input_audio_tokens=400,
/// output_audio_tokens=600), 'gpt-audio', provider_id='openai')` → 0.0143 0.0424 0.0567 (genai-prices 0.2.3; the
/// rates of these two models are the same in the crate's data).
#[test]
fn every_usage_kind_is_priced_at_its_rate() {
    use observer::calculate_cost_usage;
    use observer::llm::TokenUsage;
    let usage = TokenUsage {
        input_tokens: 2000,
        output_tokens: 500,
        cached_tokens: 500,
        cache_creation_tokens: 1000,
        ..TokenUsage::default()
    };
    let r = calculate_cost_usage("anthropic", "claude-3-5-sonnet-20241022", &usage);
    assert_python(&r, 0.0054, 0.0075, 0.0129);
    assert_eq!(r.cache_creation_tokens, 1000);
    let audio = TokenUsage {
        input_tokens: 1000,
        output_tokens: 1000,
        input_audio_tokens: 400,
        output_audio_tokens: 600,
        ..TokenUsage::default()
    };
    assert_python(&calculate_cost_usage("openai", "gpt-audio", &audio), 0.0143, 0.0424, 0.0567);
}

/// Counts above the documented ceiling are priced at the ceiling, and the result says it is not trustworthy.
#[test]
fn absurd_counts_are_bounded_and_not_trusted() {
    use observer::cost::MAX_TOKEN_COUNT;
    let sane = calculate_cost("openai", "gpt-4o", 1000, 500);
    assert!(sane.trusted);
    let absurd = calculate_cost("openai", "gpt-4o", u64::MAX, 500);
    assert!(!absurd.trusted, "{absurd:?}");
    assert_eq!(absurd.input_tokens, MAX_TOKEN_COUNT);
    let ceiling = calculate_cost("openai", "gpt-4o", MAX_TOKEN_COUNT, 500);
    assert!(ceiling.trusted);
    assert_eq!(absurd.total_cost, ceiling.total_cost);
}

/// One-hour cache writes at their own rate. Python (genai-prices 0.2.3, same rates in the crate's data):
/// `calc_price(Usage(input_tokens=2000, cache_write_tokens=1000, cache_write_1h_tokens=400, output_tokens=0),
/// 'claude-3-5-sonnet-20241022', provider_id='anthropic').input_price` → 0.00765 (1000×3 + 600×3.75 + 400×6 per M).
#[test]
fn one_hour_cache_writes_are_priced_at_their_rate() {
    use observer::calculate_cost_usage;
    use observer::llm::TokenUsage;
    let usage = TokenUsage {
        input_tokens: 2000,
        cache_creation_tokens: 1000,
        cache_creation_1h_tokens: 400,
        ..TokenUsage::default()
    };
    assert_python(&calculate_cost_usage("anthropic", "claude-3-5-sonnet-20241022", &usage), 0.00765, 0.0, 0.00765);
}
