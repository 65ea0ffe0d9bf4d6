//! The span of one LLM call, what is recorded on it when the call ends, the cost and the optional audit event.

use std::time::{Duration, Instant};

use tracing::field::Empty;
use tracing::Span;

use super::detect::{Endpoint, Provider};
use super::extract::{parse_request, truncate, RequestInfo, ResponseInfo, Settings};
use super::sse::SseParser;
use super::TokenUsage;
use crate::llm::semconv::*;
use crate::{calculate_cost_usage, CostResult};

/// `error.type` attribute (OpenTelemetry general conventions).
pub(crate) const ERROR_TYPE: &str = "error.type";
/// `server.address` attribute.
pub(crate) const SERVER_ADDRESS: &str = "server.address";
/// `server.port` attribute.
pub(crate) const SERVER_PORT: &str = "server.port";
/// `http.response.status_code` attribute.
pub(crate) const HTTP_STATUS: &str = "http.response.status_code";
/// The call's duration in seconds (`gen_ai.client.operation.duration`, the GenAI duration metric's name), set by
/// [`record_llm_call`](super::record_llm_call), whose span does not last as long as the call.
pub(crate) const OPERATION_DURATION: &str = "gen_ai.client.operation.duration";
/// The most bytes of a non-streamed response body kept for reading its usage (a copy; the caller gets all).
pub(crate) const MAX_JSON_BYTES: usize = 16 << 20;

/// A count as a span value: `tracing-opentelemetry` exports `i64` as an integer but `u64` as text.
pub(crate) fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Records a content attribute (`gen_ai.input.messages`, …) on `span`: `value` redacted, as JSON text.
pub(crate) fn record_content(span: &Span, key: &'static str, value: serde_json::Value) {
    let value = crate::outbound::value(value);
    span.record(key, crate::llm::messages::to_attribute(&value).as_str());
}

/// A new client span for an LLM call, every attribute declared (recorded later).
pub(crate) fn new_span(provider: &str, operation: &str, request_model: Option<&str>) -> Span {
    let name = match request_model {
        Some(model) if !model.is_empty() => format!("{operation} {model}"),
        _ => operation.to_owned(),
    };
    tracing::info_span!(
        target: "observer::llm",
        "gen_ai.client",
        otel.name = %name,
        otel.kind = "client",
        otel.status_code = Empty,
        otel.status_description = Empty,
        { GEN_AI_OPERATION_NAME } = operation,
        { GEN_AI_PROVIDER_NAME } = provider,
        { GEN_AI_SYSTEM } = provider,
        { GEN_AI_REQUEST_MODEL } = request_model,
        { GEN_AI_REQUEST_TEMPERATURE } = Empty,
        { GEN_AI_REQUEST_MAX_TOKENS } = Empty,
        { GEN_AI_REQUEST_TOP_P } = Empty,
        { GEN_AI_RESPONSE_MODEL } = Empty,
        { GEN_AI_RESPONSE_ID } = Empty,
        { GEN_AI_RESPONSE_FINISH_REASONS } = Empty,
        { GEN_AI_USAGE_INPUT_TOKENS } = Empty,
        { GEN_AI_USAGE_OUTPUT_TOKENS } = Empty,
        { GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS } = Empty,
        { GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS } = Empty,
        { GEN_AI_USAGE_REASONING_OUTPUT_TOKENS } = Empty,
        { GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK } = Empty,
        { GEN_AI_COST } = Empty,
        { OBSERVER_COST_TRUSTED } = Empty,
        { SERVER_ADDRESS } = Empty,
        { SERVER_PORT } = Empty,
        { HTTP_STATUS } = Empty,
        { ERROR_TYPE } = Empty,
        { OPERATION_DURATION } = Empty,
        { GEN_AI_SYSTEM_INSTRUCTIONS } = Empty,
        { GEN_AI_INPUT_MESSAGES } = Empty,
        { GEN_AI_OUTPUT_MESSAGES } = Empty,
    )
}

/// Everything known about a finished call.
#[derive(Debug, Default)]
pub(crate) struct Outcome<'a> {
    pub(crate) provider: &'a str,
    pub(crate) operation: &'a str,
    pub(crate) request_model: Option<&'a str>,
    pub(crate) response_model: Option<&'a str>,
    pub(crate) response_id: Option<&'a str>,
    pub(crate) finish_reasons: &'a [String],
    pub(crate) usage: Option<TokenUsage>,
    /// `(error.type, description)`.
    pub(crate) error: Option<(String, String)>,
    pub(crate) duration: Duration,
    pub(crate) audit: bool,
    pub(crate) prompt_summary: Option<String>,
    pub(crate) prompt_chars: Option<usize>,
    pub(crate) response_summary: Option<String>,
    pub(crate) response_chars: Option<usize>,
    pub(crate) status: Option<u16>,
    /// `server.address` / `server.port` and, for streams, the time to the first chunk (for the metrics).
    pub(crate) server_address: Option<&'a str>,
    pub(crate) server_port: Option<u16>,
    pub(crate) time_to_first_chunk: Option<Duration>,
}

/// Records the outcome on `span`, prices the call and writes the audit event when enabled. Returns the cost when
/// there was usage to price.
pub(crate) fn complete(span: &Span, o: &Outcome<'_>) -> Option<CostResult> {
    if let Some(model) = o.response_model {
        span.record(GEN_AI_RESPONSE_MODEL, model);
    }
    if let Some(id) = o.response_id {
        span.record(GEN_AI_RESPONSE_ID, id);
    }
    let reasons: Vec<&str> = o.finish_reasons.iter().map(String::as_str).filter(|r| !r.is_empty()).collect();
    if !reasons.is_empty() {
        record_string_array(span, GEN_AI_RESPONSE_FINISH_REASONS, &reasons);
    }
    let model = o.response_model.or(o.request_model).unwrap_or("");
    let cost = o.usage.map(|u| {
        span.record(GEN_AI_USAGE_INPUT_TOKENS, int(u.input_tokens));
        span.record(GEN_AI_USAGE_OUTPUT_TOKENS, int(u.output_tokens));
        if u.cached_tokens > 0 {
            span.record(GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, int(u.cached_tokens));
        }
        if u.cache_creation_tokens > 0 {
            span.record(GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, int(u.cache_creation_tokens));
        }
        if u.reasoning_tokens > 0 {
            span.record(GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, int(u.reasoning_tokens));
        }
        let cost = calculate_cost_usage(o.provider, model, &u);
        if cost.price_found {
            span.record(GEN_AI_COST, cost.total_cost);
        }
        if !cost.trusted {
            span.record(OBSERVER_COST_TRUSTED, false);
        }
        cost
    });
    if let Some(status) = o.status {
        span.record(HTTP_STATUS, i64::from(status));
    }
    // Error texts may quote the request URL (reqwest's do): never record its query string or credentials.
    let error = o.error.as_ref().map(|(kind, description)| (redact_urls(kind), redact_urls(description)));
    if let Some((kind, description)) = &error {
        span.record(ERROR_TYPE, kind.as_ref());
        span.record("otel.status_code", "error");
        let description = if description.is_empty() { kind.as_ref() } else { description.as_ref() };
        span.record("otel.status_description", description);
    }
    if o.audit {
        audit(o, model, cost.as_ref(), error.as_ref().map(|(kind, _)| kind.as_ref()));
    }
    record_metrics(o, cost.as_ref(), error.as_ref().map(|(kind, _)| kind.as_ref()));
    cost
}

/// The GenAI client metrics of the call (the one place every LLM-layer and `record_llm_call` call is counted).
fn record_metrics(o: &Outcome<'_>, cost: Option<&CostResult>, error_type: Option<&str>) {
    crate::otel::record_llm(&crate::otel::LlmMetrics {
        operation: o.operation,
        provider: Some(o.provider),
        request_model: o.request_model,
        response_model: o.response_model,
        server_address: o.server_address,
        server_port: o.server_port,
        error_type,
        // A failed call without counts (`record_llm_call` passes a zero usage) reports no token usage.
        tokens: o
            .usage
            .filter(|u| error_type.is_none() || u.input_tokens > 0 || u.output_tokens > 0)
            .map(|u| (u.input_tokens, u.output_tokens)),
        duration: Some(o.duration),
        time_to_first_chunk: o.time_to_first_chunk,
        cost_usd: cost.filter(|c| c.price_found).map(|c| c.total_cost),
    });
}

/// `text` with every URL in it (`scheme://…`) cut before its query string and fragment and stripped of its
/// credentials (`user:password@`): `http://u:p@host/path?api-key=k` becomes `http://host/path`.
///
/// Hand-written rather than with the `url` crate: the URLs sit inside free error text (reqwest's messages), so
/// they must be found first, and a fragment `url` cannot parse must still lose its query and credentials.
pub(crate) fn redact_urls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains("://") {
        return std::borrow::Cow::Borrowed(text);
    }
    let ends_url = |c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`' | ')' | ']' | '}' | '|');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let after = &rest[at + 3..];
        let end = after.find(ends_url).unwrap_or(after.len());
        let (url_rest, tail) = after.split_at(end);
        out.push_str(&rest[..at + 3]);
        // Authority: up to the first `/`, `?` or `#`; credentials end at its last `@`.
        let authority_end = url_rest.find(['/', '?', '#']).unwrap_or(url_rest.len());
        let (authority, path) = url_rest.split_at(authority_end);
        out.push_str(authority.rsplit_once('@').map_or(authority, |(_, host)| host));
        out.push_str(&path[..path.find(['?', '#']).unwrap_or(path.len())]);
        rest = tail;
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

/// An array attribute: a string array on the OpenTelemetry span; the values joined by `,` for other subscribers.
fn record_string_array(span: &Span, key: &'static str, values: &[&str]) {
    #[cfg(feature = "otel")]
    {
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        let array: Vec<opentelemetry::StringValue> = values.iter().map(|v| (*v).to_owned().into()).collect();
        span.set_attribute(key, opentelemetry::Value::Array(array.into()));
    }
    #[cfg(not(feature = "otel"))]
    span.record(key, values.join(",").as_str());
}

fn audit(o: &Outcome<'_>, model: &str, cost: Option<&CostResult>, error_type: Option<&str>) {
    let mut event = crate::audit::log_llm_interaction(o.provider, model)
        .metadata("operation", o.operation)
        .metadata("duration_ms", o.duration.as_secs_f64() * 1000.0);
    if let Some(u) = o.usage {
        event = event
            .input_tokens(u.input_tokens)
            .output_tokens(u.output_tokens)
            .cached_tokens(u.cached_tokens)
            .metadata("cache_creation_tokens", u.cache_creation_tokens)
            .metadata("reasoning_tokens", u.reasoning_tokens);
    }
    if let Some(cost) = cost {
        event = event.cost(cost.total_cost);
        if !cost.trusted {
            event = event.metadata("cost_trusted", false);
        }
    }
    if let Some(id) = o.response_id {
        event = event.metadata("response_id", id);
    }
    if let Some(status) = o.status {
        event = event.metadata("http_status", status);
    }
    if let Some(kind) = error_type {
        event = event.metadata("error_type", kind);
    }
    if let Some(n) = o.prompt_chars {
        event = event.metadata("prompt_chars", n);
    }
    if let Some(n) = o.response_chars {
        event = event.metadata("response_chars", n);
    }
    if let Some(s) = &o.prompt_summary {
        event = event.prompt_summary(s.as_str());
    }
    if let Some(s) = &o.response_summary {
        event = event.response_summary(s.as_str());
    }
    crate::export::emit_or_fallback("LLM_INTERACTION", event.emit());
}

/// How the response body is observed.
#[derive(Debug)]
enum BodyMode {
    /// Not yet known (no response head yet).
    Pending,
    /// A JSON body: a bounded copy, parsed at the end.
    Json { copy: Vec<u8>, overflow: bool },
    /// An event stream, parsed as it passes.
    Sse(Box<SseParser>),
}

/// Follows one instrumented HTTP call from request to the end of its response body; records everything on its
/// span when finished (at the end of the body, on a transport or body error, or when dropped).
#[derive(Debug)]
pub(crate) struct Recorder {
    span: Span,
    endpoint: Endpoint,
    request: RequestInfo,
    settings: Settings,
    start: Instant,
    status: Option<u16>,
    info: ResponseInfo,
    mode: BodyMode,
    first_chunk_seen: bool,
    done: bool,
    /// For the metrics: `server.address`, `server.port`, the time to the first streamed chunk.
    server: Option<(String, Option<u16>)>,
    time_to_first_chunk: Option<Duration>,
}

impl Recorder {
    /// Opens the span of a call to `endpoint` with the request `body` (if readable).
    pub(crate) fn start(
        endpoint: Endpoint,
        host: Option<&str>,
        port: Option<u16>,
        body: Option<&[u8]>,
        settings: Settings,
    ) -> Self {
        let mut request = body.map(|b| parse_request(endpoint, b, &settings)).unwrap_or_default();
        let provider = endpoint.provider().as_str();
        let span = new_span(provider, endpoint.operation(), request.model.as_deref());
        if let Some(t) = request.temperature {
            span.record(GEN_AI_REQUEST_TEMPERATURE, t);
        }
        if let Some(n) = request.max_tokens {
            span.record(GEN_AI_REQUEST_MAX_TOKENS, int(n));
        }
        if let Some(p) = request.top_p {
            span.record(GEN_AI_REQUEST_TOP_P, p);
        }
        if let Some(host) = host {
            span.record(SERVER_ADDRESS, host);
        }
        if let Some(port) = port {
            span.record(SERVER_PORT, i64::from(port));
        }
        let input = std::mem::take(&mut request.input);
        if let Some(v) = input.system_instructions {
            record_content(&span, GEN_AI_SYSTEM_INSTRUCTIONS, v);
        }
        if let Some(v) = input.messages {
            record_content(&span, GEN_AI_INPUT_MESSAGES, v);
        }
        Self {
            span,
            endpoint,
            request,
            settings,
            start: Instant::now(),
            status: None,
            info: ResponseInfo::default(),
            mode: BodyMode::Pending,
            first_chunk_seen: false,
            done: false,
            server: host.map(|h| (h.to_owned(), port)),
            time_to_first_chunk: None,
        }
    }

    /// The call's span (to run the request inside it).
    pub(crate) fn span(&self) -> &Span {
        &self.span
    }

    /// The response head arrived.
    pub(crate) fn on_response(&mut self, status: u16, content_type: Option<&str>) {
        self.status = Some(status);
        let sse = content_type.is_some_and(|ct| ct.trim_start().to_ascii_lowercase().starts_with("text/event-stream"));
        self.mode =
            if sse { BodyMode::Sse(Box::default()) } else { BodyMode::Json { copy: Vec::new(), overflow: false } };
        if status >= 400 {
            self.info.error = Some((status.to_string(), String::new()));
        }
    }

    /// A piece of the response body passed to the caller.
    pub(crate) fn on_data(&mut self, bytes: &[u8]) {
        if bytes.is_empty() || self.done {
            return;
        }
        let (endpoint, chars) = (self.endpoint, self.settings.response_chars());
        match &mut self.mode {
            BodyMode::Pending => {}
            BodyMode::Json { copy, overflow } => {
                if !*overflow {
                    if copy.len() + bytes.len() > MAX_JSON_BYTES {
                        *overflow = true;
                        *copy = Vec::new();
                    } else {
                        copy.extend_from_slice(bytes);
                    }
                }
            }
            BodyMode::Sse(parser) => {
                if !self.first_chunk_seen {
                    self.first_chunk_seen = true;
                    let elapsed = self.start.elapsed();
                    self.time_to_first_chunk = Some(elapsed);
                    self.span.record(GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, elapsed.as_secs_f64());
                }
                let info = &mut self.info;
                parser.feed(bytes, &mut |data| info.apply_event(endpoint, data, chars));
            }
        }
    }

    /// The request failed before a response (transport error) or the body failed mid-way.
    pub(crate) fn on_error(&mut self, kind: &str, message: &str) {
        if !self.done {
            self.info.error = Some((kind.to_owned(), truncate(&redact_urls(message), 200)));
            self.finish();
        }
    }

    /// Records everything and ends the span. Idempotent.
    pub(crate) fn finish(&mut self) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let (endpoint, chars) = (self.endpoint, self.settings.response_chars());
        match std::mem::replace(&mut self.mode, BodyMode::Pending) {
            BodyMode::Json { copy, overflow: false } if !copy.is_empty() => {
                let http_error = self.info.error.clone();
                self.info.apply_body(endpoint, &copy, chars);
                // An HTTP error keeps its status as `error.type`; the body's message describes it.
                if let (Some((status, _)), Some((kind, message))) = (http_error, self.info.error.take()) {
                    let message = if message.is_empty() { kind } else { message };
                    self.info.error = Some((status, message));
                }
            }
            BodyMode::Sse(mut parser) => {
                let info = &mut self.info;
                parser.finish(&mut |data| info.apply_event(endpoint, data, chars));
            }
            _ => {}
        }
        let audit = self.settings.audit;
        let summary_chars = self.settings.summary_chars;
        if self.settings.capture.captures_response() {
            let reason = self.info.finish_reasons.first().map(String::as_str);
            if let Some(v) = crate::llm::messages::output_message(&self.info.text, reason) {
                record_content(&self.span, GEN_AI_OUTPUT_MESSAGES, v);
            }
        }
        let outcome = Outcome {
            provider: endpoint.provider().as_str(),
            operation: endpoint.operation(),
            request_model: self.request.model.as_deref(),
            response_model: self.info.model.as_deref(),
            response_id: self.info.id.as_deref(),
            finish_reasons: &self.info.finish_reasons,
            usage: self.info.token_usage(),
            error: self.info.error.take(),
            duration: self.start.elapsed(),
            audit,
            prompt_summary: self.request.prompt_summary.take(),
            prompt_chars: self.request.prompt_chars,
            response_summary: (audit && summary_chars > 0 && !self.info.text.is_empty())
                .then(|| truncate(&self.info.text, summary_chars)),
            response_chars: (audit && self.status.is_some()).then_some(self.info.text_chars),
            status: self.status,
            server_address: self.server.as_ref().map(|(h, _)| h.as_str()),
            server_port: self.server.as_ref().and_then(|(_, p)| *p),
            time_to_first_chunk: self.time_to_first_chunk,
        };
        complete(&self.span, &outcome);
        // `tracing-opentelemetry` ends a span at its last exit: enter it once more so that it ends now, with the
        // body, not when the response head arrived. Then close it (the caller may still hold the body).
        drop(self.span.enter());
        self.span = Span::none();
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Whether calls to `provider` are instrumented, and the effective settings, from the overrides and the global
/// config (both providers, no audit, when observer is not initialised).
pub(crate) fn resolve(
    provider: Provider,
    openai: Option<bool>,
    anthropic: Option<bool>,
    audit: Option<bool>,
    summary_chars: usize,
    capture: Option<crate::CaptureLevel>,
) -> Option<Settings> {
    let capture = capture.unwrap_or_else(crate::init::capture_level);
    if !capture.records() {
        return None;
    }
    let global = crate::init::llm_http_flags();
    let (enabled, by_config) = match provider {
        Provider::OpenAi => (openai.unwrap_or(global.instrument_openai), openai.is_none()),
        Provider::Anthropic => (anthropic.unwrap_or(global.instrument_anthropic), anthropic.is_none()),
    };
    if !enabled && by_config {
        notice_switched_off(provider);
    }
    enabled.then_some(Settings { audit: audit.unwrap_or(global.log_llm_interactions), summary_chars, capture })
}

/// Says once per provider and process that a call went untraced because the running config switches the
/// provider off: a middleware that silently does nothing is hard to diagnose.
fn notice_switched_off(provider: Provider) {
    use std::sync::atomic::{AtomicBool, Ordering};
    static OPENAI: AtomicBool = AtomicBool::new(false);
    static ANTHROPIC: AtomicBool = AtomicBool::new(false);
    let (flag, field) = match provider {
        Provider::OpenAi => (&OPENAI, "instrument_openai"),
        Provider::Anthropic => (&ANTHROPIC, "instrument_anthropic"),
    };
    if !flag.swap(true, Ordering::Relaxed) {
        crate::diag::report!(
            INFO,
            "llm-provider-off",
            "{} call not traced: ObserverConfig::{field} is false (set it in `init`, or override it on the middleware)",
            provider.as_str()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::redact_urls;

    #[test]
    fn urls_lose_query_strings_fragments_and_credentials() {
        let cases = [
            (
                "error sending request for url (https://me:pw@example.openai.azure.com/openai/deployments/x/chat/completions?api-key=SECRET&api-version=1)",
                "error sending request for url (https://example.openai.azure.com/openai/deployments/x/chat/completions)",
            ),
            ("see http://host:8080/v1/messages#frag and ws://u@h?k=v", "see http://host:8080/v1/messages and ws://h"),
            ("no url here", "no url here"),
            ("https://host", "https://host"),
            ("\"https://a@b/c?d\"", "\"https://b/c\""),
            ("::// odd ://", "::// odd ://"),
            ("ünïcode https://x/ÿ?q=ü ok", "ünïcode https://x/ÿ ok"),
        ];
        for (input, expected) in cases {
            assert_eq!(redact_urls(input), expected, "{input}");
        }
    }
}
