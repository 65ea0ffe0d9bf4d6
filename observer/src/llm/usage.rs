//! The one usage normaliser: token usage, model and provider found in arbitrary LLM or component output JSON.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, LazyLock};

use serde_json::{Map, Value};

/// Objects and arrays nested deeper than this below the root value are not searched.
const MAX_DEPTH: usize = Extractors::MAX_DEPTH;

/// At most this many objects and arrays are visited by one extraction.
const MAX_NODES: usize = Extractors::MAX_NODES;

/// The largest token count believed for one key of one usage (one billion tokens, a hundred times the largest
/// context window of any model). A larger count (e.g. `1e300`, which would otherwise become `u64::MAX`) is lowered
/// to this ceiling and the usage marked [`capped`](TokenUsage::capped); its cost is then marked not trustworthy
/// ([`CostResult::trusted`](crate::CostResult::trusted)).
pub const MAX_TOKEN_COUNT: u64 = 1_000_000_000;

/// Token counts of one or more LLM calls.
///
/// Invariant (normalised): `cached_tokens`, `cache_creation_tokens` and `input_audio_tokens` are parts of
/// `input_tokens` (together at most `input_tokens`), `cache_creation_1h_tokens` a part of `cache_creation_tokens`;
/// `reasoning_tokens` and `output_audio_tokens` are parts of
/// `output_tokens` (together at most `output_tokens`). Everything this module returns holds it; [`merge_max`] and
/// [`add`] restore it on their results. [`calculate_cost_usage`](crate::calculate_cost_usage) prices each
/// part at its own rate.
///
/// [`merge_max`]: TokenUsage::merge_max
/// [`add`]: TokenUsage::add
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct TokenUsage {
    /// Input (prompt) tokens, cached, cache-creation and audio tokens included.
    pub input_tokens: u64,
    /// Output (completion) tokens, reasoning and audio tokens included.
    pub output_tokens: u64,
    /// Input tokens read from the provider's cache.
    pub cached_tokens: u64,
    /// Input tokens written to the provider's cache.
    pub cache_creation_tokens: u64,
    /// The part of `cache_creation_tokens` written with a one-hour lifetime (Anthropic's
    /// `cache_creation.ephemeral_1h_input_tokens`, priced higher than the default five minutes).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_creation_1h_tokens: u64,
    /// Output tokens spent on reasoning.
    pub reasoning_tokens: u64,
    /// Input tokens that are audio (not read from the cache).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub input_audio_tokens: u64,
    /// Output tokens that are audio (not reasoning).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub output_audio_tokens: u64,
    /// A count above [`MAX_TOKEN_COUNT`] was found and lowered to it: the counts (and any cost computed from
    /// them) are not trustworthy.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub capped: bool,
}

// `serde(skip_serializing_if)` takes a reference.
#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl TokenUsage {
    /// A usage of `input_tokens` and `output_tokens`, without cached or reasoning tokens.
    #[must_use]
    pub fn new(input_tokens: u64, output_tokens: u64) -> Self {
        Self { input_tokens, output_tokens, ..Self::default() }
    }

    /// Input plus output tokens (saturating).
    #[must_use]
    pub fn total_tokens(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }

    /// Whether every count is zero.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        Self { capped: false, ..*self } == Self::default()
    }

    /// Field-wise maximum with `other`: combines two views of the same call. The result is normalised (parts
    /// clamped to their totals).
    pub fn merge_max(&mut self, other: &TokenUsage) {
        self.input_tokens = self.input_tokens.max(other.input_tokens);
        self.output_tokens = self.output_tokens.max(other.output_tokens);
        self.cached_tokens = self.cached_tokens.max(other.cached_tokens);
        self.cache_creation_tokens = self.cache_creation_tokens.max(other.cache_creation_tokens);
        self.cache_creation_1h_tokens = self.cache_creation_1h_tokens.max(other.cache_creation_1h_tokens);
        self.reasoning_tokens = self.reasoning_tokens.max(other.reasoning_tokens);
        self.input_audio_tokens = self.input_audio_tokens.max(other.input_audio_tokens);
        self.output_audio_tokens = self.output_audio_tokens.max(other.output_audio_tokens);
        self.capped |= other.capped;
        self.normalise();
    }

    /// Field-wise saturating sum with `other`: combines different calls. The result is normalised (parts clamped
    /// to their totals, which only matters when a total saturates).
    pub fn add(&mut self, other: &TokenUsage) {
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
        self.cached_tokens = self.cached_tokens.saturating_add(other.cached_tokens);
        self.cache_creation_tokens = self.cache_creation_tokens.saturating_add(other.cache_creation_tokens);
        self.cache_creation_1h_tokens = self.cache_creation_1h_tokens.saturating_add(other.cache_creation_1h_tokens);
        self.reasoning_tokens = self.reasoning_tokens.saturating_add(other.reasoning_tokens);
        self.input_audio_tokens = self.input_audio_tokens.saturating_add(other.input_audio_tokens);
        self.output_audio_tokens = self.output_audio_tokens.saturating_add(other.output_audio_tokens);
        self.capped |= other.capped;
        self.normalise();
    }

    /// Clamps the parts to their totals: cached tokens first, then cache-creation tokens (and their one-hour part
    /// to them), then audio tokens, to the input tokens; reasoning tokens, then audio tokens, to the output tokens.
    fn normalise(&mut self) {
        self.cached_tokens = self.cached_tokens.min(self.input_tokens);
        let rest = self.input_tokens - self.cached_tokens;
        self.cache_creation_tokens = self.cache_creation_tokens.min(rest);
        self.cache_creation_1h_tokens = self.cache_creation_1h_tokens.min(self.cache_creation_tokens);
        self.input_audio_tokens = self.input_audio_tokens.min(rest - self.cache_creation_tokens);
        self.reasoning_tokens = self.reasoning_tokens.min(self.output_tokens);
        self.output_audio_tokens = self.output_audio_tokens.min(self.output_tokens - self.reasoning_tokens);
    }

    /// This usage with the [`TokenUsage`] invariant restored (parts lowered to fit their totals, never the totals
    /// raised).
    #[must_use]
    pub fn normalised(mut self) -> Self {
        self.normalise();
        self
    }

    /// Whether this is the same usage as `other` reported again: equal input and output totals.
    fn same_totals(&self, other: &TokenUsage) -> bool {
        self.input_tokens == other.input_tokens && self.output_tokens == other.output_tokens
    }
}

/// What was found in one output.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LlmInfo {
    /// The token usage, `None` when no token count was found.
    pub usage: Option<TokenUsage>,
    /// The model id, e.g. `gpt-4o-2024-08-06`.
    pub model: Option<String>,
    /// The provider id, e.g. `openai`.
    pub provider: Option<String>,
}

/// A user-supplied extractor for their own output shapes; called on every JSON object node (depth-first).
///
/// Its results merge with the built-in ones by the module's [merge rule](crate::llm#merge-rule); its `usage` is
/// normalised (clamped) like the built-in shapes'. Implemented for closures:
///
/// ```
/// use observer::llm::{Extractors, LlmInfo, TokenUsage};
///
/// let extractors = Extractors::builtin().extractor(|node: &serde_json::Map<String, serde_json::Value>| {
///     let tokens = node.get("tokens")?.as_object()?;
///     let usage = TokenUsage::new(tokens.get("in")?.as_u64()?, tokens.get("out")?.as_u64()?);
///     Some(LlmInfo { usage: Some(usage), model: None, provider: None })
/// });
/// let info = extractors.extract(&serde_json::json!({"result": {"tokens": {"in": 7, "out": 3}}}));
/// assert_eq!(info.usage, Some(TokenUsage::new(7, 3)));
/// ```
pub trait UsageExtractor: Send + Sync + 'static {
    /// What `node` holds, or `None` when it is not a shape this extractor knows.
    fn extract(&self, node: &Map<String, Value>) -> Option<LlmInfo>;
}

impl<F> UsageExtractor for F
where
    F: Fn(&Map<String, Value>) -> Option<LlmInfo> + Send + Sync + 'static,
{
    fn extract(&self, node: &Map<String, Value>) -> Option<LlmInfo> {
        self(node)
    }
}

/// The built-in shapes plus any added ones. Cheap to clone; [`Default`] is [`Extractors::builtin`].
#[derive(Clone)]
pub struct Extractors {
    custom: Arc<Vec<Arc<dyn UsageExtractor>>>,
}

static BUILTIN: LazyLock<Extractors> = LazyLock::new(|| Extractors { custom: Arc::new(Vec::new()) });

impl Extractors {
    /// Objects and arrays nested deeper than this below the root value are not searched.
    pub const MAX_DEPTH: usize = 64;

    /// At most this many objects and arrays are visited by one extraction.
    pub const MAX_NODES: usize = 100_000;

    /// The built-in shapes only.
    #[must_use]
    pub fn builtin() -> Self {
        BUILTIN.clone()
    }

    /// These extractors plus `e`, which runs after the ones added before it.
    #[must_use]
    pub fn extractor(self, e: impl UsageExtractor) -> Self {
        let mut custom = Vec::with_capacity(self.custom.len() + 1);
        custom.extend(self.custom.iter().cloned());
        custom.push(Arc::new(e) as Arc<dyn UsageExtractor>);
        Self { custom: Arc::new(custom) }
    }

    /// Searches `value` as the [module docs](crate::llm#token-usage-in-output-json) describe.
    pub fn extract(&self, value: &Value) -> LlmInfo {
        extract_with(value, &self.custom)
    }
}

impl Default for Extractors {
    fn default() -> Self {
        Self::builtin()
    }
}

impl fmt::Debug for Extractors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Extractors").field("custom", &self.custom.len()).finish()
    }
}

/// [`Extractors::builtin`]`.extract(value)`, without allocating.
#[must_use]
pub fn extract_llm_info(value: &Value) -> LlmInfo {
    extract_with(value, &[])
}

/// The provider id for a model id, or `None` if unknown.
///
/// The provider of the bundled price data ([`crate::cost::resolve_model`]`("", model)`) when it knows the model,
/// otherwise by the model's family: `gpt-`, `o1`, `o3`, `o4`, `chatgpt`, `text-embedding`, … → `openai`; `claude` →
/// `anthropic`; `gemini`, `gemma` → `google`; `mistral`, `mixtral`, `codestral`, … → `mistral`; `llama` →
/// `meta`; `command` → `cohere`; `grok` → `x-ai`; `deepseek` → `deepseek`. The family is matched at the
/// start of the id or after a `vendor/` path. A Bedrock model id (`anthropic.claude-3-haiku-20240307-v1:0`,
/// region-prefixed `us.anthropic.…`, `amazon.nova-…`, `meta.llama…`) is `aws`'s, the provider that prices it.
#[must_use]
pub fn detect_provider(model: &str) -> Option<String> {
    let model = model.trim();
    if model.is_empty() {
        return None;
    }
    if let Some(provider) = crate::cost::model_provider(model) {
        if !provider.is_empty() {
            return Some(provider);
        }
    }
    provider_by_family(model).map(str::to_owned)
}

/// Model families: a prefix (lowercase) and its provider.
const FAMILIES: &[(&str, &str)] = &[
    ("gpt-", "openai"),
    ("gpt4", "openai"),
    ("gpt3", "openai"),
    ("chatgpt", "openai"),
    ("o1", "openai"),
    ("o3", "openai"),
    ("o4", "openai"),
    ("text-embedding", "openai"),
    ("text-davinci", "openai"),
    ("davinci", "openai"),
    ("babbage", "openai"),
    ("dall-e", "openai"),
    ("whisper", "openai"),
    ("tts-", "openai"),
    ("omni-moderation", "openai"),
    ("text-moderation", "openai"),
    ("codex", "openai"),
    ("claude", "anthropic"),
    ("gemini", "google"),
    ("gemma", "google"),
    ("text-bison", "google"),
    ("chat-bison", "google"),
    ("mistral", "mistral"),
    ("mixtral", "mistral"),
    ("open-mistral", "mistral"),
    ("open-mixtral", "mistral"),
    ("codestral", "mistral"),
    ("ministral", "mistral"),
    ("pixtral", "mistral"),
    ("magistral", "mistral"),
    ("devstral", "mistral"),
    ("llama", "meta"),
    ("meta-llama", "meta"),
    ("command", "cohere"),
    ("grok", "x-ai"),
    ("deepseek", "deepseek"),
];

fn provider_by_family(model: &str) -> Option<&'static str> {
    if crate::cost::is_bedrock_model_id(model) {
        return Some("aws");
    }
    let lower = model.to_ascii_lowercase();
    let base = lower.rsplit('/').next().unwrap_or(&lower);
    // The id itself, then what follows each `.` (Bedrock's `region.vendor.model`).
    let candidates = std::iter::once(base).chain(base.match_indices('.').map(|(i, _)| base.get(i + 1..).unwrap_or("")));
    for candidate in candidates {
        for (prefix, provider) in FAMILIES {
            if family_matches(candidate, prefix) {
                return Some(provider);
            }
        }
    }
    None
}

/// Whether `id` starts with `prefix`; the short OpenAI reasoning families (`o1`, `o3`, `o4`) must be followed by
/// the end or a `-` (`o1`, `o3-mini`), not by more letters or digits.
fn family_matches(id: &str, prefix: &str) -> bool {
    let Some(rest) = id.strip_prefix(prefix) else { return false };
    if prefix.len() == 2 {
        return rest.is_empty() || rest.starts_with('-');
    }
    true
}

// ---------------------------------------------------------------------------------------------------------------
// The search.

/// Model keys, in priority order.
const MODEL_KEYS: &[&str] = &["model", "model_name", "model_id", "modelId", "modelVersion", "ls_model_name"];
/// Provider keys, in priority order.
const PROVIDER_KEYS: &[&str] = &["provider", "ls_provider"];
/// Members that hold the usage of the object's own response (another view of it, merged by maximum).
const VIEW_KEYS: &[&str] =
    &["usage", "usage_metadata", "usageMetadata", "token_usage", "response_metadata", "llm_output", "generation_info"];
/// Detail objects read as part of a recognised shape (not searched again).
const DETAIL_KEYS: &[&str] = &[
    "prompt_tokens_details",
    "completion_tokens_details",
    "input_tokens_details",
    "output_tokens_details",
    "input_token_details",
    "output_token_details",
    "cache_creation",
];

/// A name found at a depth (nearest to the root wins; on a tie the first found).
type Named<'v> = Option<(usize, Cow<'v, str>)>;

#[derive(Default)]
struct Found<'v> {
    usage: Option<TokenUsage>,
    model: Named<'v>,
    provider: Named<'v>,
}

impl<'v> Found<'v> {
    fn add(&mut self, other: Found<'v>) {
        merge_usage(&mut self.usage, other.usage, TokenUsage::add);
        self.merge_names(other.model, other.provider);
    }

    fn merge_names(&mut self, model: Named<'v>, provider: Named<'v>) {
        nearest(&mut self.model, model);
        nearest(&mut self.provider, provider);
    }
}

fn merge_usage(into: &mut Option<TokenUsage>, other: Option<TokenUsage>, op: fn(&mut TokenUsage, &TokenUsage)) {
    match (into.as_mut(), other) {
        (Some(into), Some(other)) => op(into, &other),
        (None, Some(other)) => *into = Some(other),
        (_, None) => {}
    }
}

fn nearest<'v>(into: &mut Named<'v>, other: Named<'v>) {
    if let Some((depth, name)) = other {
        match into {
            Some((current, _)) if *current <= depth => {}
            _ => *into = Some((depth, name)),
        }
    }
}

struct Search<'e> {
    custom: &'e [Arc<dyn UsageExtractor>],
    /// Objects and arrays that may still be visited.
    budget: usize,
}

fn extract_with(value: &Value, custom: &[Arc<dyn UsageExtractor>]) -> LlmInfo {
    let mut search = Search { custom, budget: MAX_NODES };
    let found = search.visit(value, 0);
    let model = found.model.map(|(_, model)| model.into_owned());
    let provider = found
        .provider
        .map(|(_, provider)| provider.into_owned())
        .or_else(|| model.as_deref().and_then(detect_provider));
    LlmInfo { usage: found.usage, model, provider }
}

impl Search<'_> {
    /// What `value` (at `depth` below the root) holds. Recurses at most `MAX_DEPTH` levels.
    fn visit<'v>(&mut self, value: &'v Value, depth: usize) -> Found<'v> {
        let mut found = Found::default();
        if depth > MAX_DEPTH || self.budget == 0 || !matches!(value, Value::Object(_) | Value::Array(_)) {
            return found;
        }
        self.budget -= 1;
        match value {
            Value::Array(items) => {
                for item in items {
                    if matches!(item, Value::Object(_) | Value::Array(_)) {
                        let child = self.visit(item, depth + 1);
                        found.add(child);
                    }
                }
            }
            Value::Object(map) => {
                for extractor in self.custom {
                    if let Some(info) = extractor.extract(map) {
                        found.usage = merged(found.usage, info.usage.map(TokenUsage::normalised));
                        let model = non_empty(info.model).map(|m| (depth, Cow::Owned(m)));
                        let provider = non_empty(info.provider).map(|p| (depth, Cow::Owned(p)));
                        found.merge_names(model, provider);
                    }
                }
                let builtin = builtin_usage(map);
                found.usage = merged(found.usage, builtin);
                let model = first_string(map, MODEL_KEYS).map(|m| (depth, Cow::Borrowed(m)));
                let provider = first_string(map, PROVIDER_KEYS).map(|p| (depth, Cow::Borrowed(p)));
                found.merge_names(model, provider);
                // Members: views of this object's own response merge with it by maximum; the others are
                // distinct calls, summed, unless one repeats a usage already found (same totals).
                let mut calls: Vec<TokenUsage> = Vec::new();
                for (key, child) in map {
                    if !matches!(child, Value::Object(_) | Value::Array(_))
                        || (builtin.is_some() && DETAIL_KEYS.contains(&key.as_str()))
                    {
                        continue;
                    }
                    let child = self.visit(child, depth + 1);
                    found.merge_names(child.model, child.provider);
                    let Some(usage) = child.usage else { continue };
                    if VIEW_KEYS.contains(&key.as_str()) {
                        found.usage = merged(found.usage, Some(usage));
                    } else if let Some(same) = calls.iter_mut().find(|c| c.same_totals(&usage)) {
                        same.merge_max(&usage);
                    } else {
                        calls.push(usage);
                    }
                }
                let sum = calls.into_iter().reduce(|mut sum, call| {
                    sum.add(&call);
                    sum
                });
                // An object that reports the total of its members: the larger of the two.
                found.usage = merged(found.usage, sum);
            }
            _ => {}
        }
        found
    }
}

fn merged(a: Option<TokenUsage>, b: Option<TokenUsage>) -> Option<TokenUsage> {
    let mut a = a;
    merge_usage(&mut a, b, TokenUsage::merge_max);
    a
}

fn non_empty(name: Option<String>) -> Option<String> {
    let name = name?;
    let trimmed = name.trim();
    if trimmed.is_empty() {
        None
    } else if trimmed.len() == name.len() {
        Some(name)
    } else {
        Some(trimmed.to_owned())
    }
}

fn first_string<'v>(map: &'v Map<String, Value>, keys: &[&str]) -> Option<&'v str> {
    keys.iter().find_map(|key| map.get(*key)?.as_str().map(str::trim).filter(|s| !s.is_empty()))
}

/// A token count: a non-negative integer, a non-negative finite float (truncated), or a string holding either.
fn count(value: &Value) -> Option<u64> {
    match value {
        Value::Number(number) => number.as_u64().or_else(|| float_count(number.as_f64()?)),
        Value::String(text) => {
            let text = text.trim();
            text.parse::<u64>().ok().or_else(|| float_count(text.parse::<f64>().ok()?))
        }
        _ => None,
    }
}

fn float_count(value: f64) -> Option<u64> {
    // `as` saturates at u64::MAX; -0.0 counts as 0.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    (value.is_finite() && value >= 0.0).then(|| value.trunc() as u64)
}

/// Reads the counts of one object, lowering each above [`MAX_TOKEN_COUNT`] to it and remembering that it did.
struct Counts<'m> {
    map: &'m Map<String, Value>,
    capped: std::cell::Cell<bool>,
}

impl Counts<'_> {
    fn bounded(&self, value: Option<&Value>) -> Option<u64> {
        let n = count(value?)?;
        if n > MAX_TOKEN_COUNT {
            self.capped.set(true);
            return Some(MAX_TOKEN_COUNT);
        }
        Some(n)
    }

    fn num(&self, key: &str) -> Option<u64> {
        self.bounded(self.map.get(key))
    }

    fn nested(&self, outer: &str, key: &str) -> Option<u64> {
        self.bounded(self.map.get(outer)?.as_object()?.get(key))
    }
}

/// The usage of the built-in shapes on one usage object (merged by maximum), normalised; `None` when it holds
/// no token count. The one normaliser of the crate: the LLM HTTP instrumentation reads provider responses with
/// it too.
pub(crate) fn builtin_usage(map: &Map<String, Value>) -> Option<TokenUsage> {
    // Most objects of an output hold no usage: one pass over a small object's keys says so (each shape below
    // needs one of these keys), instead of looking each key up.
    if map.len() <= 32 && !map.keys().any(|k| is_shape_key(k)) {
        return None;
    }
    let c = Counts { map, capped: std::cell::Cell::new(false) };
    let mut usage = None;

    // OpenAI chat completions (and LangChain's `token_usage`, which copies it; DeepSeek's cache hits).
    let (prompt, completion) = (c.num("prompt_tokens"), c.num("completion_tokens"));
    if prompt.is_some() || completion.is_some() {
        let cached = max_of(c.nested("prompt_tokens_details", "cached_tokens"), c.num("prompt_cache_hit_tokens"));
        let shape = TokenUsage {
            input_tokens: prompt.unwrap_or(0),
            output_tokens: completion.unwrap_or(0),
            cached_tokens: cached,
            reasoning_tokens: c.nested("completion_tokens_details", "reasoning_tokens").unwrap_or(0),
            input_audio_tokens: c.nested("prompt_tokens_details", "audio_tokens").unwrap_or(0),
            output_audio_tokens: c.nested("completion_tokens_details", "audio_tokens").unwrap_or(0),
            ..TokenUsage::default()
        };
        usage = merged(usage, Some(shape.normalised()));
    }

    // OpenAI Responses, LangChain `usage_metadata`, Anthropic.
    let (input, output) = (c.num("input_tokens"), c.num("output_tokens"));
    if map.contains_key("cache_read_input_tokens") || map.contains_key("cache_creation_input_tokens") {
        let (read, creation) = (c.num("cache_read_input_tokens"), c.num("cache_creation_input_tokens"));
        if input.is_some() || output.is_some() || read.is_some() || creation.is_some() {
            let (read, creation) = (read.unwrap_or(0), creation.unwrap_or(0));
            let shape = TokenUsage {
                input_tokens: input.unwrap_or(0).saturating_add(read).saturating_add(creation),
                output_tokens: output.unwrap_or(0),
                cached_tokens: read,
                cache_creation_tokens: creation,
                cache_creation_1h_tokens: c.nested("cache_creation", "ephemeral_1h_input_tokens").unwrap_or(0),
                ..TokenUsage::default()
            };
            usage = merged(usage, Some(shape.normalised()));
        }
    } else if input.is_some() || output.is_some() {
        let shape = TokenUsage {
            input_tokens: input.unwrap_or(0),
            output_tokens: output.unwrap_or(0),
            cached_tokens: max_of(
                c.nested("input_tokens_details", "cached_tokens"),
                c.nested("input_token_details", "cache_read"),
            ),
            cache_creation_tokens: c.nested("input_token_details", "cache_creation").unwrap_or(0),
            cache_creation_1h_tokens: c.nested("input_token_details", "ephemeral_1h_input_tokens").unwrap_or(0),
            reasoning_tokens: max_of(
                c.nested("output_tokens_details", "reasoning_tokens"),
                c.nested("output_token_details", "reasoning"),
            ),
            input_audio_tokens: max_of(
                c.nested("input_tokens_details", "audio_tokens"),
                c.nested("input_token_details", "audio"),
            ),
            output_audio_tokens: max_of(
                c.nested("output_tokens_details", "audio_tokens"),
                c.nested("output_token_details", "audio"),
            ),
            ..TokenUsage::default()
        };
        usage = merged(usage, Some(shape.normalised()));
    }

    // Gemini: the prompt count includes the cached content; thoughts are counted apart from the candidates.
    let gemini = [
        c.num("promptTokenCount"),
        c.num("candidatesTokenCount"),
        c.num("cachedContentTokenCount"),
        c.num("thoughtsTokenCount"),
        c.num("toolUsePromptTokenCount"),
    ];
    if gemini.iter().any(Option::is_some) {
        let [prompt, candidates, cached, thoughts, tool_use] = gemini.map(|n| n.unwrap_or(0));
        let shape = TokenUsage {
            input_tokens: prompt.saturating_add(tool_use),
            output_tokens: candidates.saturating_add(thoughts),
            cached_tokens: cached,
            reasoning_tokens: thoughts,
            ..TokenUsage::default()
        };
        usage = merged(usage, Some(shape.normalised()));
    }

    // Bedrock Converse: cache reads and writes are not part of `inputTokens`.
    let bedrock =
        [c.num("inputTokens"), c.num("outputTokens"), c.num("cacheReadInputTokens"), c.num("cacheWriteInputTokens")];
    if bedrock.iter().any(Option::is_some) {
        let [input, output, read, write] = bedrock.map(|n| n.unwrap_or(0));
        let shape = TokenUsage {
            input_tokens: input.saturating_add(read).saturating_add(write),
            output_tokens: output,
            cached_tokens: read,
            cache_creation_tokens: write,
            ..TokenUsage::default()
        };
        usage = merged(usage, Some(shape.normalised()));
    }

    if c.capped.get() {
        if let Some(u) = usage.as_mut() {
            u.capped = true;
        }
    }
    usage
}

/// The keys of which [`builtin_usage`] needs one to find a usage: the totals of each shape it reads (the other
/// keys it reads are only read beside one of these).
fn is_shape_key(key: &str) -> bool {
    matches!(
        key,
        "prompt_tokens"
            | "completion_tokens"
            | "input_tokens"
            | "output_tokens"
            | "cache_read_input_tokens"
            | "cache_creation_input_tokens"
            | "promptTokenCount"
            | "candidatesTokenCount"
            | "cachedContentTokenCount"
            | "thoughtsTokenCount"
            | "toolUsePromptTokenCount"
            | "inputTokens"
            | "outputTokens"
            | "cacheReadInputTokens"
            | "cacheWriteInputTokens"
    )
}

fn max_of(a: Option<u64>, b: Option<u64>) -> u64 {
    a.unwrap_or(0).max(b.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn usage(value: Value) -> Option<TokenUsage> {
        extract_llm_info(&value).usage
    }

    #[test]
    fn each_shape_key_alone_is_a_usage_and_objects_without_one_are_skipped() {
        for key in [
            "prompt_tokens",
            "completion_tokens",
            "input_tokens",
            "output_tokens",
            "cache_read_input_tokens",
            "cache_creation_input_tokens",
            "promptTokenCount",
            "candidatesTokenCount",
            "cachedContentTokenCount",
            "thoughtsTokenCount",
            "toolUsePromptTokenCount",
            "inputTokens",
            "outputTokens",
            "cacheReadInputTokens",
            "cacheWriteInputTokens",
        ] {
            assert!(is_shape_key(key), "{key}");
            let mut one = Map::new();
            one.insert(key.to_owned(), json!(5));
            assert!(builtin_usage(&one).is_some(), "{key}");
        }
        // Read only beside a total of its shape.
        let map = json!({"prompt_cache_hit_tokens": 5, "prompt_tokens_details": {"cached_tokens": 1}});
        assert_eq!(builtin_usage(map.as_object().unwrap()), None);
    }

    fn full(input: u64, output: u64, cached: u64, creation: u64, reasoning: u64) -> TokenUsage {
        TokenUsage {
            input_tokens: input,
            output_tokens: output,
            cached_tokens: cached,
            cache_creation_tokens: creation,
            reasoning_tokens: reasoning,
            ..TokenUsage::default()
        }
    }

    #[test]
    fn token_usage_basics() {
        let mut a = TokenUsage::new(10, 5);
        assert_eq!(a.total_tokens(), 15);
        assert!(!a.is_empty());
        assert!(TokenUsage::default().is_empty());
        assert_eq!(TokenUsage::new(u64::MAX, 1).total_tokens(), u64::MAX);
        a.merge_max(&full(8, 7, 3, 0, 2));
        assert_eq!(a, full(10, 7, 3, 0, 2));
        a.add(&full(1, 1, 1, 0, 1));
        assert_eq!(a, full(11, 8, 4, 0, 3));
    }

    #[test]
    fn merge_and_add_keep_the_invariant() {
        // Each view is consistent, their maximum is not: the parts are clamped.
        let mut a = full(10, 4, 10, 0, 0);
        a.merge_max(&full(10, 4, 0, 10, 4));
        assert_eq!(a, full(10, 4, 10, 0, 4));
        let mut b = full(u64::MAX, u64::MAX, u64::MAX, 0, u64::MAX);
        b.add(&full(u64::MAX, 0, 0, u64::MAX, 0));
        assert_eq!(b, full(u64::MAX, u64::MAX, u64::MAX, 0, u64::MAX));
    }

    #[test]
    fn shapes_are_normalised() {
        let openai = json!({"usage": {"prompt_tokens": 100, "completion_tokens": 50,
            "prompt_tokens_details": {"cached_tokens": 40}, "completion_tokens_details": {"reasoning_tokens": 20}}});
        assert_eq!(usage(openai), Some(full(100, 50, 40, 0, 20)));
        let responses = json!({"usage": {"input_tokens": 100, "output_tokens": 50,
            "input_tokens_details": {"cached_tokens": 40}, "output_tokens_details": {"reasoning_tokens": 20}}});
        assert_eq!(usage(responses), Some(full(100, 50, 40, 0, 20)));
        let anthropic = json!({"usage": {"input_tokens": 10, "output_tokens": 50,
            "cache_read_input_tokens": 60, "cache_creation_input_tokens": 30}});
        assert_eq!(usage(anthropic), Some(full(100, 50, 60, 30, 0)));
        // A null cache key still marks Anthropic; it adds nothing.
        let anthropic = json!({"input_tokens": 10, "output_tokens": 5, "cache_creation_input_tokens": null});
        assert_eq!(usage(anthropic), Some(full(10, 5, 0, 0, 0)));
        let langchain = json!({"usage_metadata": {"input_tokens": 100, "output_tokens": 50,
            "input_token_details": {"cache_read": 60, "cache_creation": 30}, "output_token_details": {"reasoning": 5}}});
        assert_eq!(usage(langchain), Some(full(100, 50, 60, 30, 5)));
        let gemini = json!({"usageMetadata": {"promptTokenCount": 100, "candidatesTokenCount": 50,
            "cachedContentTokenCount": 60, "thoughtsTokenCount": 25, "totalTokenCount": 175}});
        assert_eq!(usage(gemini), Some(full(100, 75, 60, 0, 25)));
        let bedrock = json!({"usage": {"inputTokens": 10, "outputTokens": 50, "cacheReadInputTokens": 60,
            "cacheWriteInputTokens": 30, "totalTokens": 150}});
        assert_eq!(usage(bedrock), Some(full(100, 50, 60, 30, 0)));
    }

    #[test]
    fn inconsistent_data_is_clamped() {
        let openai = json!({"prompt_tokens": 10, "completion_tokens": 5,
            "prompt_tokens_details": {"cached_tokens": 40}, "completion_tokens_details": {"reasoning_tokens": 20}});
        assert_eq!(usage(openai), Some(full(10, 5, 10, 0, 5)));
        let langchain = json!({"input_tokens": 10, "output_tokens": 5,
            "input_token_details": {"cache_read": 6, "cache_creation": 6}});
        assert_eq!(usage(langchain), Some(full(10, 5, 6, 4, 0)));
        let anthropic =
            json!({"input_tokens": u64::MAX, "cache_read_input_tokens": 5, "cache_creation_input_tokens": 5});
        let capped = TokenUsage { capped: true, ..full(MAX_TOKEN_COUNT + 10, 0, 5, 5, 0) };
        assert_eq!(usage(anthropic), Some(capped));
    }

    #[test]
    fn numbers_are_lenient() {
        assert_eq!(usage(json!({"input_tokens": "12", "output_tokens": " 7 "})), Some(TokenUsage::new(12, 7)));
        assert_eq!(usage(json!({"input_tokens": 12.9, "output_tokens": "7.5"})), Some(TokenUsage::new(12, 7)));
        let capped = TokenUsage { capped: true, ..TokenUsage::new(1000, MAX_TOKEN_COUNT) };
        assert_eq!(usage(json!({"input_tokens": "1e3", "output_tokens": 1e30})), Some(capped));
        assert_eq!(usage(json!({"input_tokens": -0.0, "output_tokens": "-0"})), Some(TokenUsage::new(0, 0)));
        // Negative, non-numeric and non-finite values are ignored like absent keys.
        assert_eq!(usage(json!({"input_tokens": -5, "output_tokens": 3})), Some(TokenUsage::new(0, 3)));
        assert_eq!(usage(json!({"input_tokens": -5, "output_tokens": "x"})), None);
        assert_eq!(usage(json!({"input_tokens": true, "output_tokens": [1], "prompt_tokens": {}})), None);
        assert_eq!(usage(json!({"input_tokens": "NaN", "output_tokens": "inf", "prompt_tokens": "-1.5"})), None);
        assert_eq!(usage(json!({"completion_tokens": "-inf"})), None);
    }

    #[test]
    fn zero_usage_is_some_and_nothing_is_none() {
        assert_eq!(usage(json!({"usage": {"input_tokens": 0, "output_tokens": 0}})), Some(TokenUsage::default()));
        assert_eq!(usage(json!({"text": "hello", "total_tokens": 5, "tokens": 3})), None);
        assert_eq!(usage(json!(null)), None);
        assert_eq!(usage(json!(42)), None);
    }

    #[test]
    fn objects_merge_by_max_and_arrays_sum() {
        let message = json!({
            "response_metadata": {"token_usage": {"prompt_tokens": 100, "completion_tokens": 20,
                "prompt_tokens_details": {"cached_tokens": 64}}, "model_name": "gpt-4o-2024-08-06"},
            "usage_metadata": {"input_tokens": 100, "output_tokens": 20, "total_tokens": 120,
                "output_token_details": {"reasoning": 8}},
        });
        assert_eq!(usage(message.clone()), Some(full(100, 20, 64, 0, 8)));
        let list = json!([message, {"usage": {"prompt_tokens": 1, "completion_tokens": 2}}, "text", null]);
        assert_eq!(usage(list), Some(full(101, 22, 64, 0, 8)));
        // Members that are not views of the object's own response are distinct calls: summed.
        let both = json!({"a": {"input_tokens": 5, "output_tokens": 1}, "b": {"input_tokens": 3, "output_tokens": 9}});
        assert_eq!(usage(both), Some(TokenUsage::new(8, 10)));
        // Unless one repeats a usage already found (same totals): counted once, details merged.
        let twice = json!({"a": {"input_tokens": 5, "output_tokens": 1}, "b": {"prompt_tokens": 5, "completion_tokens": 1,
            "prompt_tokens_details": {"cached_tokens": 2}}});
        assert_eq!(usage(twice), Some(full(5, 1, 2, 0, 0)));
        // An object that reports the total of its members next to them: the larger, not the sum.
        let total = json!({"usage": {"input_tokens": 8, "output_tokens": 10},
            "a": {"input_tokens": 5, "output_tokens": 1}, "b": {"input_tokens": 3, "output_tokens": 9}});
        assert_eq!(usage(total), Some(TokenUsage::new(8, 10)));
    }

    #[test]
    fn details_are_not_searched_twice() {
        // Total keys inside a consumed detail object are not a usage of their own.
        let value = json!({"prompt_tokens": 10, "completion_tokens": 1,
            "prompt_tokens_details": {"cached_tokens": 2, "prompt_tokens": 1000}});
        assert_eq!(usage(value), Some(full(10, 1, 2, 0, 0)));
        // Without a recognised shape on the parent, the object is searched like any other.
        assert_eq!(usage(json!({"prompt_tokens_details": {"prompt_tokens": 7}})), Some(TokenUsage::new(7, 0)));
    }

    #[test]
    fn model_and_provider() {
        let info = extract_llm_info(&json!({
            "outputs": {"message": {"response_metadata": {"model_name": "deep", "ls_provider": "acme"}}},
            "model_id": "  ",
            "meta": {"model": "shallow"},
        }));
        assert_eq!(info.model.as_deref(), Some("shallow"));
        assert_eq!(info.provider.as_deref(), Some("acme"));
        assert_eq!(info.usage, None);
        let info = extract_llm_info(&json!({"model": 5, "modelId": " claude-3-haiku-20240307 "}));
        assert_eq!(info.model.as_deref(), Some("claude-3-haiku-20240307"));
        assert_eq!(info.provider.as_deref(), Some("anthropic"));
        let info = extract_llm_info(&json!([{"model": "first"}, {"model": "second"}]));
        assert_eq!(info.model.as_deref(), Some("first"));
        assert_eq!(info.provider, None);
    }

    #[test]
    fn providers_by_family() {
        assert_eq!(provider_by_family("gpt-4o-mini"), Some("openai"));
        assert_eq!(provider_by_family("o3-mini"), Some("openai"));
        assert_eq!(provider_by_family("o1"), Some("openai"));
        assert_eq!(provider_by_family("o1x"), None);
        assert_eq!(provider_by_family("Claude-Future-9"), Some("anthropic"));
        assert_eq!(provider_by_family("us.anthropic.claude-9-sonnet-v1:0"), Some("aws"));
        assert_eq!(provider_by_family("meta.llama9-70b-instruct-v1:0"), Some("aws"));
        assert_eq!(provider_by_family("meta-llama/Llama-9-70B"), Some("meta"));
        assert_eq!(provider_by_family("gemini-9-ultra"), Some("google"));
        assert_eq!(provider_by_family("mixtral-99x7b"), Some("mistral"));
        assert_eq!(provider_by_family("command-z"), Some("cohere"));
        assert_eq!(provider_by_family("acme-1"), None);
        assert_eq!(detect_provider(""), None);
        assert_eq!(detect_provider("no-such-model-xyz"), None);
        assert_eq!(detect_provider("gpt-4o").as_deref(), Some("openai"));
        assert_eq!(detect_provider("claude-3-5-sonnet-20241022").as_deref(), Some("anthropic"));
    }

    #[test]
    fn custom_extractors() {
        let extractors = Extractors::default().extractor(|node: &Map<String, Value>| {
            let n = node.get("n")?.as_u64()?;
            Some(LlmInfo { usage: Some(full(n, n, n + 5, 0, 0)), model: Some(" custom ".into()), provider: None })
        });
        assert_eq!(format!("{extractors:?}"), "Extractors { custom: 1 }");
        let info = extractors.extract(&json!({"model": "builtin", "n": 3, "input_tokens": 5}));
        // Clamped to (3, 3, 3), then merged by max with the built-in shape; the custom model wins on the same object.
        assert_eq!(info.usage, Some(full(5, 3, 3, 0, 0)));
        assert_eq!(info.model.as_deref(), Some("custom"));
        let info = extractors.extract(&json!([{"n": 1}, {"n": 2}]));
        assert_eq!(info.usage, Some(full(3, 3, 3, 0, 0)));
        // The built-in list is unchanged.
        assert_eq!(Extractors::builtin().extract(&json!({"n": 1})).usage, None);
    }

    #[test]
    fn limits() {
        let mut value = json!({"input_tokens": 1, "output_tokens": 1});
        for _ in 0..MAX_DEPTH {
            value = json!([value]);
        }
        assert_eq!(usage(value.clone()), Some(TokenUsage::new(1, 1)));
        assert_eq!(usage(json!([value])), None);
        let wide = Value::Array((0..MAX_NODES + 10).map(|_| json!({"input_tokens": 1})).collect());
        assert_eq!(usage(wide).map(|u| u.input_tokens), Some(MAX_NODES as u64 - 1));
    }
}
