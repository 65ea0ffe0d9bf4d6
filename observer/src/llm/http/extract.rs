//! What the instrumentation reads from request and response bodies: request parameters, response model, id,
//! finish reasons, token usage (normalised across providers) and, when enabled, short text summaries.
//!
//! Nothing here fails: a body of an unexpected shape just yields less.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::detect::Endpoint;
use super::TokenUsage;
use crate::llm::messages::{input_content, InputContent, RequestShape};
use crate::llm::usage::builtin_usage;

/// The effective switches for one call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) audit: bool,
    pub(crate) summary_chars: usize,
    /// Never [`CaptureLevel::None`](crate::CaptureLevel::None): such calls are not recorded at all.
    pub(crate) capture: crate::CaptureLevel,
}

impl Settings {
    /// How many characters of the response text to keep: enough for the output message at
    /// `RequestResponse`, for the audit summary otherwise (none below `RequestResponse`).
    pub(crate) fn response_chars(&self) -> usize {
        if !self.capture.captures_response() {
            0
        } else {
            self.summary_chars.max(crate::llm::messages::MAX_PART_CHARS + 1)
        }
    }
}

/// Request parameters read from the JSON request body.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct RequestInfo {
    pub(crate) model: Option<String>,
    pub(crate) temperature: Option<f64>,
    pub(crate) max_tokens: Option<u64>,
    pub(crate) top_p: Option<f64>,
    pub(crate) stream: bool,
    /// The start of the last user input (only when summaries are enabled).
    pub(crate) prompt_summary: Option<String>,
    /// Characters of the last user input.
    pub(crate) prompt_chars: Option<usize>,
    /// The messages and system instructions (only at `CaptureLevel::Request` and above).
    pub(crate) input: InputContent,
}

/// The request fields read without building a JSON tree (unknown fields are skipped).
#[derive(Deserialize)]
struct Params {
    model: Option<String>,
    temperature: Option<f64>,
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
    max_output_tokens: Option<u64>,
    top_p: Option<f64>,
    stream: Option<bool>,
}

/// Reads the request parameters; with `settings.audit`, the length of the last user input; at
/// `CaptureLevel::Request` and above, its start (`summary_chars > 0`) and the messages in the conventions' format.
pub(crate) fn parse_request(endpoint: Endpoint, body: &[u8], settings: &Settings) -> RequestInfo {
    let (summary_chars, audit, capture) = (settings.summary_chars, settings.audit, settings.capture);
    let mut info = match serde_json::from_slice::<Params>(body) {
        Ok(p) => RequestInfo {
            model: p.model,
            temperature: p.temperature,
            max_tokens: p.max_tokens.or(p.max_completion_tokens).or(p.max_output_tokens),
            top_p: p.top_p,
            stream: p.stream.unwrap_or(false),
            ..RequestInfo::default()
        },
        // A field of an unexpected type: read what is readable from the tree.
        Err(_) => match serde_json::from_slice::<Value>(body) {
            Ok(v) => RequestInfo {
                model: v.get("model").and_then(Value::as_str).map(str::to_owned),
                temperature: v.get("temperature").and_then(Value::as_f64),
                max_tokens: ["max_tokens", "max_completion_tokens", "max_output_tokens"]
                    .iter()
                    .find_map(|k| v.get(k).and_then(Value::as_u64)),
                top_p: v.get("top_p").and_then(Value::as_f64),
                stream: v.get("stream").and_then(Value::as_bool).unwrap_or(false),
                ..RequestInfo::default()
            },
            Err(_) => return RequestInfo::default(),
        },
    };
    if audit || capture.captures_request() {
        if let Ok(v) = serde_json::from_slice::<Value>(body) {
            if audit {
                if let Some(text) = last_user_input(endpoint, &v) {
                    info.prompt_chars = Some(text.chars().count());
                    if summary_chars > 0 && capture.captures_request() {
                        info.prompt_summary = Some(truncate(&text, summary_chars));
                    }
                }
            }
            if capture.captures_request() {
                info.input = input_content(shape(endpoint), &v);
            }
        }
    }
    info
}

/// The request body shape of an endpoint.
fn shape(endpoint: Endpoint) -> RequestShape {
    match endpoint {
        Endpoint::ChatCompletions => RequestShape::Chat,
        Endpoint::Messages => RequestShape::Anthropic,
        Endpoint::Responses => RequestShape::Responses,
        Endpoint::Completions | Endpoint::Embeddings => RequestShape::Inputs,
    }
}

/// The text of the last user message (chat, messages, responses) or the input (embeddings, completions).
fn last_user_input(endpoint: Endpoint, v: &Value) -> Option<String> {
    match endpoint {
        Endpoint::ChatCompletions | Endpoint::Messages => {
            let messages = v.get("messages")?.as_array()?;
            let last = messages.iter().rev().find(|m| m.get("role").and_then(Value::as_str) == Some("user"))?;
            content_text(last.get("content")?)
        }
        Endpoint::Responses => match v.get("input")? {
            Value::String(s) => Some(s.clone()),
            Value::Array(items) => {
                let last = items.iter().rev().find(|m| m.get("role").and_then(Value::as_str) == Some("user"))?;
                content_text(last.get("content")?)
            }
            _ => None,
        },
        Endpoint::Embeddings => content_text(v.get("input")?),
        Endpoint::Completions => content_text(v.get("prompt")?),
    }
}

/// Text of a content value: a string, or the `text` of the parts of an array (strings or `{ "text": .. }`).
fn content_text(content: &Value) -> Option<String> {
    match content {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => {
            let texts: Vec<&str> = parts
                .iter()
                .filter_map(|p| match p {
                    Value::String(s) => Some(s.as_str()),
                    other => other.get("text").and_then(Value::as_str),
                })
                .collect();
            (!texts.is_empty()).then(|| texts.join(" "))
        }
        _ => None,
    }
}

/// The first `max_chars` characters of `text`, with `…` when cut.
pub(crate) fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

/// What the response said so far.
#[derive(Debug, Default, Clone)]
pub(crate) struct ResponseInfo {
    pub(crate) id: Option<String>,
    pub(crate) model: Option<String>,
    /// One per choice (by index), or the single stop reason.
    pub(crate) finish_reasons: Vec<String>,
    /// The response's usage object(s), merged key by key (streamed usage arrives in parts; later values replace
    /// earlier ones). Normalised at the end by the crate's one usage normaliser.
    pub(crate) usage: Map<String, Value>,
    /// The start of the output text (only when summaries are enabled), and the characters seen.
    pub(crate) text: String,
    pub(crate) text_chars: usize,
    /// An error reported in the body (`type`, `message`).
    pub(crate) error: Option<(String, String)>,
    /// Whether any usage was found.
    pub(crate) has_usage: bool,
}

impl ResponseInfo {
    /// The usage normalised (input includes cache reads and writes, output includes reasoning) by
    /// [`builtin_usage`], the one usage normaliser (`llm/usage.rs`): the same shapes, lenient counts (strings,
    /// floats), DeepSeek's cache hits and the [`MAX_TOKEN_COUNT`](crate::llm::usage::MAX_TOKEN_COUNT) ceiling.
    pub(crate) fn token_usage(&self) -> Option<TokenUsage> {
        if !self.has_usage {
            return None;
        }
        builtin_usage(&self.usage)
    }

    fn add_usage(&mut self, usage: &Value) {
        if let Some(object) = usage.as_object().filter(|o| !o.is_empty()) {
            for (key, value) in object {
                self.usage.insert(key.clone(), value.clone());
            }
            self.has_usage = true;
        }
    }

    fn set_finish_reason(&mut self, index: usize, reason: &str) {
        // Indices come from the network: keep the list small whatever they say.
        let index = index.min(127);
        if self.finish_reasons.len() <= index {
            self.finish_reasons.resize(index + 1, String::new());
        }
        reason.clone_into(&mut self.finish_reasons[index]);
    }

    fn push_text(&mut self, text: &str, summary_chars: usize) {
        self.text_chars = self.text_chars.saturating_add(text.chars().count());
        if summary_chars == 0 {
            return;
        }
        let have = self.text.chars().count();
        if have < summary_chars {
            self.text.extend(text.chars().take(summary_chars - have));
        }
    }

    fn set_str(slot: &mut Option<String>, v: &Value, key: &str) {
        if let Some(s) = v.get(key).and_then(Value::as_str) {
            if slot.as_deref() != Some(s) {
                *slot = Some(s.to_owned());
            }
        }
    }

    fn set_error(&mut self, err: &Value) {
        let kind = err.get("type").or_else(|| err.get("code")).and_then(Value::as_str).unwrap_or("error");
        let message = err.get("message").and_then(Value::as_str).unwrap_or("");
        self.error = Some((kind.to_owned(), truncate(message, 200)));
    }

    /// Applies a complete (non-streamed) JSON response body.
    pub(crate) fn apply_body(&mut self, endpoint: Endpoint, body: &[u8], summary_chars: usize) {
        if let Ok(v) = serde_json::from_slice::<Value>(body) {
            self.apply_object(endpoint, &v, summary_chars);
        }
    }

    fn apply_object(&mut self, endpoint: Endpoint, v: &Value, summary_chars: usize) {
        if let Some(err) = v.get("error").filter(|e| e.is_object()) {
            self.set_error(err);
        }
        Self::set_str(&mut self.id, v, "id");
        Self::set_str(&mut self.model, v, "model");
        match endpoint {
            Endpoint::ChatCompletions | Endpoint::Completions | Endpoint::Embeddings => {
                if let Some(choices) = v.get("choices").and_then(Value::as_array) {
                    for (i, choice) in choices.iter().enumerate() {
                        let index = choice.get("index").and_then(Value::as_u64).map_or(i, |n| n as usize);
                        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                            self.set_finish_reason(index, reason);
                        }
                        if index == 0 {
                            let text = choice
                                .get("message")
                                .or_else(|| choice.get("delta"))
                                .and_then(|m| m.get("content"))
                                .or_else(|| choice.get("text"))
                                .and_then(Value::as_str);
                            if let Some(text) = text {
                                self.push_text(text, summary_chars);
                            }
                        }
                    }
                }
                if let Some(u) = v.get("usage") {
                    self.add_usage(u);
                }
            }
            Endpoint::Responses => self.apply_responses_object(v, summary_chars),
            Endpoint::Messages => {
                if let Some(reason) = v.get("stop_reason").and_then(Value::as_str) {
                    self.set_finish_reason(0, reason);
                }
                if let Some(content) = v.get("content").and_then(Value::as_array) {
                    for block in content {
                        if let Some(text) = block.get("text").and_then(Value::as_str) {
                            self.push_text(text, summary_chars);
                        }
                    }
                }
                if let Some(u) = v.get("usage") {
                    self.add_usage(u);
                }
            }
        }
    }

    /// A Responses API `response` object.
    fn apply_responses_object(&mut self, v: &Value, summary_chars: usize) {
        let status = v.get("status").and_then(Value::as_str);
        let incomplete = v.get("incomplete_details").and_then(|d| d.get("reason")).and_then(Value::as_str);
        if let Some(reason) = incomplete.or(status) {
            self.set_finish_reason(0, reason);
        }
        if let Some(output) = v.get("output").and_then(Value::as_array) {
            for item in output {
                for part in item.get("content").and_then(Value::as_array).into_iter().flatten() {
                    if part.get("type").and_then(Value::as_str) == Some("output_text") {
                        if let Some(text) = part.get("text").and_then(Value::as_str) {
                            self.push_text(text, summary_chars);
                        }
                    }
                }
            }
        }
        if let Some(u) = v.get("usage") {
            self.add_usage(u);
        }
    }

    /// Applies the `data` of one streamed event.
    pub(crate) fn apply_event(&mut self, endpoint: Endpoint, data: &[u8], summary_chars: usize) {
        let data = data.trim_ascii();
        if data.is_empty() || data == b"[DONE]" {
            return;
        }
        let Ok(v) = serde_json::from_slice::<Value>(data) else { return };
        match endpoint {
            Endpoint::Messages => self.apply_anthropic_event(&v, summary_chars),
            Endpoint::Responses => self.apply_responses_event(&v, summary_chars),
            // Chat and completion chunks have the shape of a response (with `delta`), usage in the last one.
            _ => self.apply_object(endpoint, &v, summary_chars),
        }
    }

    fn apply_anthropic_event(&mut self, v: &Value, summary_chars: usize) {
        match v.get("type").and_then(Value::as_str) {
            Some("message_start") => {
                if let Some(message) = v.get("message") {
                    self.apply_object(Endpoint::Messages, message, summary_chars);
                }
            }
            Some("content_block_delta") => {
                if let Some(text) = v.get("delta").and_then(|d| d.get("text")).and_then(Value::as_str) {
                    self.push_text(text, summary_chars);
                }
            }
            Some("message_delta") => {
                if let Some(reason) = v.get("delta").and_then(|d| d.get("stop_reason")).and_then(Value::as_str) {
                    self.set_finish_reason(0, reason);
                }
                if let Some(u) = v.get("usage") {
                    self.add_usage(u);
                }
            }
            Some("error") => {
                if let Some(err) = v.get("error") {
                    self.set_error(err);
                }
            }
            _ => {}
        }
    }

    fn apply_responses_event(&mut self, v: &Value, summary_chars: usize) {
        let kind = v.get("type").and_then(Value::as_str).unwrap_or("");
        match kind {
            "response.output_text.delta" => {
                if let Some(delta) = v.get("delta").and_then(Value::as_str) {
                    self.push_text(delta, summary_chars);
                }
            }
            "error" => self.set_error(v.get("error").unwrap_or(v)),
            _ => {
                if let Some(response) = v.get("response").filter(|r| r.is_object()) {
                    Self::set_str(&mut self.id, response, "id");
                    Self::set_str(&mut self.model, response, "model");
                    // The text came as deltas: take only status and usage from the final object.
                    let status = response.get("status").and_then(Value::as_str);
                    let incomplete =
                        response.get("incomplete_details").and_then(|d| d.get("reason")).and_then(Value::as_str);
                    if let Some(reason) = incomplete.or(status) {
                        self.set_finish_reason(0, reason);
                    }
                    if let Some(u) = response.get("usage") {
                        self.add_usage(u);
                    }
                    if kind == "response.failed" {
                        match response.get("error").filter(|e| e.is_object()) {
                            Some(err) => self.set_error(err),
                            None => self.error = Some(("response.failed".into(), String::new())),
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CaptureLevel;

    fn settings(summary_chars: usize, capture: CaptureLevel) -> Settings {
        Settings { audit: true, summary_chars, capture }
    }

    #[test]
    fn anthropic_usage_counts_cache_tokens_once() {
        let body = br#"{"id":"msg_1","type":"message","model":"claude-3-5-sonnet-20241022","stop_reason":"end_turn",
            "content":[{"type":"text","text":"Hi"}],
            "usage":{"input_tokens":500,"cache_read_input_tokens":1500,"cache_creation_input_tokens":100,"output_tokens":50}}"#;
        let mut info = ResponseInfo::default();
        info.apply_body(Endpoint::Messages, body, 10);
        let usage = info.token_usage().unwrap();
        assert_eq!(
            usage,
            TokenUsage {
                input_tokens: 2100,
                output_tokens: 50,
                cached_tokens: 1500,
                cache_creation_tokens: 100,
                ..TokenUsage::default()
            }
        );
        // genai-prices reads the same body to the same input total.
        let extracted = genai_prices::Calculator::bundled()
            .extract_provider_usage(&genai_prices::ExtractRequest::new(&body[..]).with_provider_id("anthropic"))
            .unwrap();
        assert_eq!(extracted.usage.get("input_tokens"), Some(2100.0));
        assert_eq!(extracted.usage.get("cache_read_tokens"), Some(1500.0));
        assert_eq!(info.finish_reasons, vec!["end_turn".to_owned()]);
        assert_eq!(info.text, "Hi");
    }

    #[test]
    fn garbage_yields_nothing() {
        for body in [&b""[..], b"null", b"[1,2]", b"{\"usage\": 5}", b"{\"choices\": [{\"index\": 99999999999}]}"] {
            for endpoint in [Endpoint::ChatCompletions, Endpoint::Responses, Endpoint::Messages, Endpoint::Embeddings] {
                let mut info = ResponseInfo::default();
                info.apply_body(endpoint, body, 5);
                info.apply_event(endpoint, body, 5);
                assert!(info.token_usage().is_none());
                let _ = parse_request(endpoint, body, &settings(5, CaptureLevel::RequestResponse));
            }
        }
    }

    #[test]
    fn request_params() {
        let body = br#"{"model":"gpt-4o","temperature":0.2,"max_completion_tokens":64,"top_p":0.9,"stream":true,
            "messages":[{"role":"user","content":"Hello there, world"}]}"#;
        let info = parse_request(Endpoint::ChatCompletions, body, &settings(5, CaptureLevel::Request));
        assert_eq!(info.model.as_deref(), Some("gpt-4o"));
        assert_eq!(
            (info.temperature, info.max_tokens, info.top_p, info.stream),
            (Some(0.2), Some(64), Some(0.9), true)
        );
        assert_eq!(info.prompt_summary.as_deref(), Some("Hello…"));
        assert_eq!(info.prompt_chars, Some(18));
        // A field of another type does not hide the others.
        let quiet = Settings { audit: false, ..settings(0, CaptureLevel::Metadata) };
        let info = parse_request(Endpoint::ChatCompletions, br#"{"model":"m","temperature":"hot"}"#, &quiet);
        assert_eq!((info.model.as_deref(), info.temperature), (Some("m"), None));
        // At Metadata: the length, never the text.
        let info = parse_request(Endpoint::ChatCompletions, body, &settings(5, CaptureLevel::Metadata));
        assert_eq!((info.prompt_summary, info.prompt_chars), (None, Some(18)));
        assert_eq!(info.input, InputContent::default());
        let info = parse_request(Endpoint::ChatCompletions, body, &settings(0, CaptureLevel::Request));
        assert_eq!(info.input.messages.unwrap()[0]["parts"][0]["content"], "Hello there, world");
    }
}
