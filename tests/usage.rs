//! Token usage, model and provider extraction (`observer::llm::extract_llm_info`) on provider response bodies.
//!
//! The fixtures in `tests/data/llm/` follow the response bodies printed in each provider's API documentation
//! (OpenAI chat completions and Responses, Anthropic Messages with prompt caching, Gemini `generateContent`,
//! Bedrock Converse, LangChain `AIMessage`s serialised with `model_dump`), with cache and reasoning counts filled
//! in where the documented example has zeros.

use observer::llm::{detect_provider, extract_llm_info, Extractors, LlmInfo, TokenUsage};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/data/llm/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn usage(input: u64, output: u64, cached: u64, creation: u64, reasoning: u64) -> TokenUsage {
    TokenUsage {
        input_tokens: input,
        output_tokens: output,
        cached_tokens: cached,
        cache_creation_tokens: creation,
        reasoning_tokens: reasoning,
        ..TokenUsage::default()
    }
}

fn info(usage: TokenUsage, model: &str, provider: &str) -> LlmInfo {
    LlmInfo { usage: Some(usage), model: Some(model.into()), provider: Some(provider.into()) }
}

#[test]
fn openai_chat_completion() {
    let found = extract_llm_info(&fixture("openai_chat_completion.json"));
    assert_eq!(found, info(usage(2006, 300, 1920, 0, 192), "o3-mini-2025-01-31", "openai"));
    assert_eq!(found.usage.map(|u| u.total_tokens()), Some(2306));
}

#[test]
fn openai_responses() {
    let found = extract_llm_info(&fixture("openai_responses.json"));
    assert_eq!(found, info(usage(75, 1186, 0, 0, 1024), "o4-mini-2025-04-16", "openai"));
}

#[test]
fn anthropic_messages_with_cache() {
    // Anthropic's input_tokens (21) excludes the cache read (188,086) and the cache write (188).
    let found = extract_llm_info(&fixture("anthropic_messages.json"));
    assert_eq!(found, info(usage(188_295, 393, 188_086, 188, 0), "claude-3-5-sonnet-20241022", "anthropic"));
}

#[test]
fn gemini_generate_content() {
    // Thoughts are counted apart from the candidates: output = 11 + 456.
    let found = extract_llm_info(&fixture("gemini_generate_content.json"));
    assert_eq!(found, info(usage(2120, 467, 2048, 0, 456), "gemini-2.5-flash", "google"));
    assert_eq!(found.usage.map(|u| u.total_tokens()), Some(2587));
}

#[test]
fn bedrock_converse_has_no_model() {
    // Cache reads and writes are not part of inputTokens; the body names no model.
    let found = extract_llm_info(&fixture("bedrock_converse.json"));
    assert_eq!(found, LlmInfo { usage: Some(usage(2078, 628, 1024, 1024, 0)), model: None, provider: None });
    assert_eq!(found.usage.map(|u| u.total_tokens()), Some(2706));
}

#[test]
fn langchain_openai_message() {
    let found = extract_llm_info(&fixture("langchain_ai_message.json"));
    assert_eq!(found, info(usage(31, 5, 0, 0, 0), "gpt-4o-2024-08-06", "openai"));
}

#[test]
fn langchain_anthropic_message() {
    // response_metadata.usage (Anthropic names) and usage_metadata (cache included) agree once normalised;
    // only the former says how much was cached.
    let found = extract_llm_info(&fixture("langchain_anthropic_message.json"));
    assert_eq!(found, info(usage(1517, 11, 1500, 0, 0), "claude-3-5-sonnet-20240620", "anthropic"));
}

#[test]
fn nested_message_in_outputs() {
    let outputs = json!({"outputs": {"message": fixture("langchain_ai_message.json")}, "inputs": {"question": "hi"}});
    let found = extract_llm_info(&outputs);
    assert_eq!(found, info(usage(31, 5, 0, 0, 0), "gpt-4o-2024-08-06", "openai"));
}

#[test]
fn views_of_one_message_merge_by_max() {
    // The cached tokens are only in response_metadata.token_usage, the reasoning tokens only in usage_metadata.
    let mut message = fixture("langchain_ai_message.json");
    message["response_metadata"]["token_usage"]["prompt_tokens_details"]["cached_tokens"] = json!(24);
    message["usage_metadata"]["output_token_details"]["reasoning"] = json!(3);
    message["usage_metadata"].as_object_mut().map(|m| m.remove("input_token_details"));
    let found = extract_llm_info(&message);
    assert_eq!(found.usage, Some(usage(31, 5, 24, 0, 3)));
}

#[test]
fn arrays_are_summed() {
    let messages = json!({"messages": [
        fixture("langchain_ai_message.json"),
        {"content": "hello", "type": "human"},
        fixture("langchain_anthropic_message.json"),
    ]});
    let found = extract_llm_info(&messages);
    assert_eq!(found.usage, Some(usage(31 + 1517, 5 + 11, 1500, 0, 0)));
    // The first model in document order at the same depth.
    assert_eq!(found.model.as_deref(), Some("gpt-4o-2024-08-06"));
    assert_eq!(found.provider.as_deref(), Some("openai"));
}

#[test]
fn plain_output_from_the_guide() {
    let output = json!({"classification": "account", "model": "gpt-4o", "input_tokens": 100, "output_tokens": 50});
    assert_eq!(extract_llm_info(&output), info(TokenUsage::new(100, 50), "gpt-4o", "openai"));
}

#[test]
fn usage_without_model() {
    let found = extract_llm_info(&json!({"answer": "42", "usage": {"prompt_tokens": 12, "completion_tokens": 3}}));
    assert_eq!(found, LlmInfo { usage: Some(TokenUsage::new(12, 3)), model: None, provider: None });
}

#[test]
fn nothing_found() {
    assert_eq!(extract_llm_info(&json!({"answer": "42", "tokens": 3})), LlmInfo::default());
    assert_eq!(extract_llm_info(&json!("text")), LlmInfo::default());
}

#[test]
fn explicit_provider_wins() {
    let found = extract_llm_info(&json!({"model": "gpt-4o", "provider": "azure", "input_tokens": 1}));
    assert_eq!(found.provider.as_deref(), Some("azure"));
    let found = extract_llm_info(&json!({"model_name": "llama3", "response_metadata": {"ls_provider": "ollama"}}));
    assert_eq!(found.provider.as_deref(), Some("ollama"));
}

#[test]
fn detect_provider_by_data_and_family() {
    assert_eq!(detect_provider("gpt-4o").as_deref(), Some("openai"));
    assert_eq!(detect_provider("claude-3-5-sonnet-20241022").as_deref(), Some("anthropic"));
    assert_eq!(detect_provider("claude-99-future").as_deref(), Some("anthropic"));
    assert_eq!(detect_provider("mixtral-99x7b-future").as_deref(), Some("mistral"));
    assert_eq!(detect_provider("acme-model-1"), None);
    assert_eq!(detect_provider("  "), None);
}

#[test]
fn custom_extractor_closure() {
    // A made-up shape: {"engine": ..., "meter": {"in": .., "out": .., "from_cache": ..}}.
    let extractors = Extractors::builtin().extractor(|node: &Map<String, Value>| {
        let meter = node.get("meter")?.as_object()?;
        let count = |key: &str| meter.get(key).and_then(Value::as_u64).unwrap_or(0);
        Some(LlmInfo {
            usage: Some(TokenUsage {
                input_tokens: count("in"),
                output_tokens: count("out"),
                cached_tokens: count("from_cache"),
                ..TokenUsage::default()
            }),
            model: node.get("engine").and_then(Value::as_str).map(str::to_owned),
            provider: Some("acme".into()),
        })
    });
    let output = json!({"steps": [
        {"engine": "acme-large", "meter": {"in": 100, "out": 10, "from_cache": 60}},
        {"engine": "acme-small", "meter": {"in": 5, "out": 1}},
        {"usage": {"prompt_tokens": 7, "completion_tokens": 2}},
    ]});
    let found = extractors.extract(&output);
    assert_eq!(found, info(usage(112, 13, 60, 0, 0), "acme-large", "acme"));
    // Without it only the built-in shape is found.
    let found = extract_llm_info(&output);
    assert_eq!(found, LlmInfo { usage: Some(TokenUsage::new(7, 2)), model: None, provider: None });
    // Clones share the list.
    assert_eq!(format!("{:?}", extractors.clone()), "Extractors { custom: 1 }");
}

#[test]
fn very_deep_nesting_does_not_overflow() {
    // Built iteratively; serde_json drops a deep Value recursively, so build and drop it on a big stack.
    let handle = std::thread::Builder::new()
        .stack_size(256 * 1024 * 1024)
        .spawn(|| {
            let mut value = json!({"input_tokens": 1, "output_tokens": 1, "model": "gpt-4o"});
            for i in 0..10_000 {
                value = if i % 2 == 0 { Value::Array(vec![value]) } else { json!({ "child": value }) };
            }
            let found = extract_llm_info(&value);
            // Everything below the depth limit is ignored.
            assert_eq!(found, LlmInfo::default());
            let with_usage_on_top = json!({"input_tokens": 3, "nested": value});
            assert_eq!(extract_llm_info(&with_usage_on_top).usage, Some(TokenUsage::new(3, 0)));
        })
        .expect("spawn");
    handle.join().expect("no panic");
}

/// The keys the extractor reads, plus some others.
const KEYS: &[&str] = &[
    "usage",
    "usage_metadata",
    "usageMetadata",
    "response_metadata",
    "llm_output",
    "token_usage",
    "prompt_tokens",
    "completion_tokens",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "prompt_tokens_details",
    "completion_tokens_details",
    "input_tokens_details",
    "output_tokens_details",
    "input_token_details",
    "output_token_details",
    "cached_tokens",
    "reasoning_tokens",
    "cache_read",
    "cache_creation",
    "reasoning",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "prompt_cache_hit_tokens",
    "promptTokenCount",
    "candidatesTokenCount",
    "cachedContentTokenCount",
    "thoughtsTokenCount",
    "toolUsePromptTokenCount",
    "inputTokens",
    "outputTokens",
    "cacheReadInputTokens",
    "cacheWriteInputTokens",
    "model",
    "model_name",
    "model_id",
    "modelId",
    "modelVersion",
    "ls_model_name",
    "provider",
    "ls_provider",
    "outputs",
    "message",
    "content",
    "",
];

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let key = prop::sample::select(KEYS);
    let string = prop_oneof![
        key.clone().prop_map(str::to_owned),
        Just("1e400".to_owned()),
        Just("-3".to_owned()),
        Just("18446744073709551615".to_owned()),
        Just(" 12.5 ".to_owned()),
        any::<String>(),
        (0u64..1_000_000).prop_map(|n| n.to_string()),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (0u64..10_000).prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        string.prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 256, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..8)
                .prop_map(|entries| Value::Object(entries.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_json_never_panics_and_is_normalised(value in arbitrary_json()) {
        let extractors = Extractors::builtin().extractor(|node: &Map<String, Value>| {
            // A sloppy custom extractor: unnormalised counts.
            let n = node.get("content")?.as_u64()?;
            Some(LlmInfo { usage: Some(TokenUsage { cached_tokens: n, reasoning_tokens: n, ..TokenUsage::default() }), model: None, provider: None })
        });
        for found in [extract_llm_info(&value), extractors.extract(&value)] {
            if let Some(usage) = found.usage {
                prop_assert!(u128::from(usage.cached_tokens) + u128::from(usage.cache_creation_tokens)
                    <= u128::from(usage.input_tokens), "{usage:?}");
                prop_assert!(usage.reasoning_tokens <= usage.output_tokens, "{usage:?}");
            }
            prop_assert!(found.model.as_deref().is_none_or(|m| !m.is_empty() && m.trim() == m));
            prop_assert!(found.provider.as_deref().is_none_or(|p| !p.is_empty()));
        }
    }
}

#[test]
fn distinct_sibling_usages_are_summed() {
    let value = json!({
        "step1": {"model": "gpt-4o", "usage": {"prompt_tokens": 100, "completion_tokens": 50}},
        "step2": {"model": "gpt-4o", "usage": {"prompt_tokens": 30, "completion_tokens": 10}},
    });
    let found = extract_llm_info(&value).usage.expect("usage");
    assert_eq!((found.input_tokens, found.output_tokens), (130, 60));
    // The same usage reported twice on one object (a LangChain message) still counts once.
    let message = json!({
        "response_metadata": {"token_usage": {"prompt_tokens": 100, "completion_tokens": 20}},
        "usage_metadata": {"input_tokens": 100, "output_tokens": 20},
    });
    let found = extract_llm_info(&message).usage.expect("usage");
    assert_eq!((found.input_tokens, found.output_tokens), (100, 20));
}

#[test]
fn absurd_counts_are_capped_and_flagged() {
    use observer::cost::MAX_TOKEN_COUNT;
    let found = extract_llm_info(&json!({"prompt_tokens": 1e300, "completion_tokens": 5})).usage.expect("usage");
    assert_eq!(found.input_tokens, MAX_TOKEN_COUNT);
    assert!(found.capped);
    let found = extract_llm_info(&json!({"prompt_tokens": 10, "completion_tokens": 5})).usage.expect("usage");
    assert!(!found.capped);
}

#[test]
fn bedrock_and_vendor_prefixed_ids_get_the_provider_that_prices_them() {
    assert_eq!(detect_provider("anthropic.claude-3-haiku-20240307-v1:0").as_deref(), Some("aws"));
    assert_eq!(detect_provider("us.anthropic.claude-3-haiku-20240307-v1:0").as_deref(), Some("aws"));
    assert_eq!(detect_provider("us.anthropic.claude-99-future-v1:0").as_deref(), Some("aws"));
    assert_eq!(detect_provider("azure/gpt-4o").as_deref(), Some("azure"));
}

#[test]
fn anthropic_one_hour_cache_writes_are_read() {
    let body = json!({"usage": {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 0,
        "cache_creation_input_tokens": 1000,
        "cache_creation": {"ephemeral_5m_input_tokens": 600, "ephemeral_1h_input_tokens": 400}}});
    let found = extract_llm_info(&body).usage.expect("usage");
    assert_eq!((found.input_tokens, found.cache_creation_tokens, found.cache_creation_1h_tokens), (1010, 1000, 400));
}
