//! Redaction of spans before they leave the process: [`RedactingSpanExporter`] wraps any `SpanExporter`, and
//! [`redact_batch`] is what it (and the Kafka span exporter, which always redacts) runs on each batch.
//!
//! Redacted, by the process's redaction policy: the span name, every attribute (string values, string arrays;
//! key rules apply to the attribute's key, whatever its value type), every event's name (a `tracing` event's
//! message) and attributes, link attributes and the error status description. The attributes the SDK itself
//! writes with values that are never content (operation, provider, model names, token counts, …: [`SDK_KEYS`])
//! pass untouched, so that a model name is never mistaken for an identifier. Resource attributes (the service's
//! own settings) are not redacted.
//!
//! Fails closed: if redacting a span panics, every string in it is replaced by a marker.
//!
//! The console layer of [`configure_tracing`](crate::trace::configure_tracing) prints through
//! [`RedactingFields`]: every field of a span or event redacted the same way before it reaches stderr.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use opentelemetry::{Array, KeyValue, StringValue, Value};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use opentelemetry_sdk::Resource;
use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::FormatFields;

use crate::llm::semconv::*;

/// What replaces every string of a span whose redaction failed.
pub(crate) const FAILED_MARKER: &str = "[REDACTION_FAILED]";

/// Attributes the SDK writes whose values are never user content (names of operations, providers and models,
/// ids it generates, counts, codes): not redacted.
pub(crate) const SDK_KEYS: &[&str] = &[
    GEN_AI_OPERATION_NAME,
    GEN_AI_PROVIDER_NAME,
    GEN_AI_SYSTEM,
    GEN_AI_REQUEST_MODEL,
    GEN_AI_RESPONSE_MODEL,
    GEN_AI_RESPONSE_ID,
    GEN_AI_RESPONSE_FINISH_REASONS,
    GEN_AI_USAGE_INPUT_TOKENS,
    GEN_AI_USAGE_OUTPUT_TOKENS,
    GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
    GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
    GEN_AI_REQUEST_TEMPERATURE,
    GEN_AI_REQUEST_MAX_TOKENS,
    GEN_AI_REQUEST_TOP_P,
    GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
    GEN_AI_COST,
    OBSERVER_COST_TRUSTED,
    "gen_ai.client.operation.duration",
    "server.address",
    "server.port",
    "http.response.status_code",
    "error.type",
    "component.type",
    "component.index",
    "agent.trace_id",
    "agent.total_spans",
    "code.lineno",
    "code.filepath",
    "code.namespace",
    "code.file.path",
    "code.line.number",
    "code.module.name",
    "thread.id",
    "thread.name",
    "busy_ns",
    "idle_ns",
    "level",
    "target",
];

/// Redacts every span of `batch` in place (see the [module docs](self)).
pub(crate) fn redact_batch(batch: &mut [SpanData]) {
    for span in batch {
        if catch_unwind(AssertUnwindSafe(|| redact_span(span))).is_err() {
            scrub(span);
        }
    }
}

fn redact_span(span: &mut SpanData) {
    redact_name(&mut span.name);
    span.attributes.retain_mut(redact_attribute);
    for event in &mut span.events.events {
        redact_name(&mut event.name);
        event.attributes.retain_mut(redact_attribute);
    }
    for link in &mut span.links.links {
        link.attributes.retain_mut(redact_attribute);
    }
    if let opentelemetry::trace::Status::Error { description } = &mut span.status {
        redact_name(description);
    }
}

fn redact_name(name: &mut Cow<'static, str>) {
    if let Cow::Owned(redacted) = crate::outbound::text(name) {
        *name = Cow::Owned(redacted);
    }
}

/// Redacts one attribute; `false` drops it (a key rule said so).
fn redact_attribute(kv: &mut KeyValue) -> bool {
    let key = kv.key.as_str();
    if SDK_KEYS.contains(&key) {
        return true;
    }
    let mut json = match &kv.value {
        Value::String(s) => serde_json::Value::String(s.as_str().to_owned()),
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::I64(i) => serde_json::Value::from(*i),
        Value::F64(f) => serde_json::Value::from(*f),
        Value::Array(Array::String(items)) => {
            serde_json::Value::Array(items.iter().map(|s| serde_json::Value::String(s.as_str().to_owned())).collect())
        }
        // Arrays of numbers and booleans hold no text: the key rules only (a masked key drops them).
        _ => {
            let mut probe = serde_json::Value::Null;
            return crate::outbound::field(key, &mut probe) && probe.is_null();
        }
    };
    let before = json.clone();
    if !crate::outbound::field(key, &mut json) {
        return false;
    }
    if json != before {
        kv.value = match json {
            serde_json::Value::String(s) => Value::String(s.into()),
            serde_json::Value::Array(items) if items.iter().all(serde_json::Value::is_string) => {
                let items: Vec<StringValue> =
                    items.into_iter().map(|v| StringValue::from(v.as_str().unwrap_or_default().to_owned())).collect();
                Value::Array(Array::String(items))
            }
            other => Value::String(json_text(&other).into()),
        };
    }
    true
}

fn json_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Fails closed: every string of `span` becomes the marker.
fn scrub(span: &mut SpanData) {
    span.name = Cow::Borrowed(FAILED_MARKER);
    let marker = |kv: &mut KeyValue| {
        if !SDK_KEYS.contains(&kv.key.as_str()) && matches!(kv.value, Value::String(_) | Value::Array(_)) {
            kv.value = Value::String(FAILED_MARKER.into());
        }
    };
    span.attributes.iter_mut().for_each(marker);
    for event in &mut span.events.events {
        event.name = Cow::Borrowed(FAILED_MARKER);
        event.attributes.iter_mut().for_each(marker);
    }
    for link in &mut span.links.links {
        link.attributes.iter_mut().for_each(marker);
    }
    if let opentelemetry::trace::Status::Error { description } = &mut span.status {
        *description = Cow::Borrowed(FAILED_MARKER);
    }
}

/// A `SpanExporter` that redacts every span before handing the batch to the exporter it wraps: the span name,
/// every attribute (key rules on its key; strings scanned) except the SDK's own non-content ones (model names,
/// token counts, …), event names and attributes, link attributes and the error description; a span whose
/// redaction panics is exported with every string replaced by `[REDACTION_FAILED]`. The OTLP exporters that [`configure_tracing`](crate::trace::configure_tracing) and
/// [`otel_layer`](crate::trace::otel_layer) install are wrapped in it, and the
/// [`KafkaSpanExporter`](crate::trace::KafkaSpanExporter) redacts by itself; wrap an exporter of your own in it
/// when you build your own tracer provider:
///
/// ```no_run
/// use observer::trace::RedactingSpanExporter;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let exporter = opentelemetry_otlp::SpanExporter::builder().with_http().build()?;
/// let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
///     .with_batch_exporter(RedactingSpanExporter::new(exporter))
///     .build();
/// # drop(provider); Ok(()) }
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "otel")))]
#[derive(Debug)]
pub struct RedactingSpanExporter<E> {
    inner: E,
}

impl<E: SpanExporter> RedactingSpanExporter<E> {
    /// Wraps `inner`.
    pub fn new(inner: E) -> Self {
        Self { inner }
    }
}

impl<E: SpanExporter> SpanExporter for RedactingSpanExporter<E> {
    fn export(&self, mut batch: Vec<SpanData>) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        redact_batch(&mut batch);
        self.inner.export(batch)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The console layer's field formatter: each field of a span or event is redacted by the process's policy (the
/// key rules apply to the field's name) before it is printed; a field the policy drops is not printed, and a
/// value whose redaction panics is printed as the failure marker.
pub(crate) struct RedactingFields;

impl<'writer> FormatFields<'writer> for RedactingFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'writer>, fields: R) -> std::fmt::Result {
        let mut visitor = ConsoleFields::default();
        fields.record(&mut visitor);
        writer.write_str(&visitor.out)
    }
}

/// Collects `message key=value …`, each value redacted.
#[derive(Default)]
struct ConsoleFields {
    out: String,
}

impl ConsoleFields {
    fn push(&mut self, field: &Field, value: String) {
        let mut json = serde_json::Value::String(value);
        let keep =
            catch_unwind(AssertUnwindSafe(|| crate::outbound::field(field.name(), &mut json))).unwrap_or_else(|_| {
                json = FAILED_MARKER.into();
                true
            });
        if !keep {
            return;
        }
        let text = match json {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        };
        if !self.out.is_empty() {
            self.out.push(' ');
        }
        if field.name() == "message" {
            self.out.push_str(&text);
        } else {
            let _ = write!(self.out, "{}={text}", field.name());
        }
    }
}

impl Visit for ConsoleFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.push(field, format!("{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanContext, SpanKind, Status};
    use opentelemetry::InstrumentationScope;
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};

    use super::*;

    fn span(attributes: Vec<KeyValue>, event: &str) -> SpanData {
        let mut events = SpanEvents::default();
        events.events.push(opentelemetry::trace::Event::new(
            event.to_owned(),
            std::time::SystemTime::now(),
            vec![KeyValue::new("detail", "call 617-555-0123")],
            0,
        ));
        SpanData {
            span_context: SpanContext::empty_context(),
            parent_span_id: opentelemetry::trace::SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: "lookup jane.roe@example.org".into(),
            start_time: std::time::SystemTime::now(),
            end_time: std::time::SystemTime::now(),
            attributes,
            dropped_attributes_count: 0,
            events,
            links: SpanLinks::default(),
            status: Status::error("failed for SSN 123-45-6789"),
            instrumentation_scope: InstrumentationScope::builder("t").build(),
        }
    }

    #[test]
    fn every_string_is_redacted_but_the_sdks_own_attributes() {
        let mut batch = vec![span(
            vec![
                KeyValue::new(GEN_AI_REQUEST_MODEL, "gpt-4o-2024-08-06"),
                KeyValue::new("server.address", "10.0.0.7"),
                KeyValue::new("note", "SSN 123-45-6789"),
                KeyValue::new("ssn", 123_456_789_i64),
                KeyValue::new("emails", Value::Array(Array::String(vec!["jane.roe@example.org".into()]))),
            ],
            "called 617-555-0123",
        )];
        redact_batch(&mut batch);
        let s = &batch[0];
        let text = format!("{} {:?} {:?} {:?}", s.name, s.attributes, s.events.events, s.status);
        for leak in ["jane.roe@example.org", "123-45-6789", "617-555-0123", "123456789"] {
            assert!(!text.contains(leak), "{leak} in {text}");
        }
        let attr = |k: &str| s.attributes.iter().find(|kv| kv.key.as_str() == k).map(|kv| kv.value.to_string());
        assert_eq!(attr(GEN_AI_REQUEST_MODEL).as_deref(), Some("gpt-4o-2024-08-06"));
        assert_eq!(attr("server.address").as_deref(), Some("10.0.0.7"));
        assert!(attr("note").is_some_and(|n| n.starts_with("SSN ")), "text around an identifier stays");
    }

    #[test]
    fn a_failed_redaction_leaves_only_markers() {
        let mut s = span(vec![KeyValue::new("note", "SSN 123-45-6789"), KeyValue::new(GEN_AI_COST, 0.5)], "e");
        scrub(&mut s);
        assert_eq!(s.name, FAILED_MARKER);
        assert_eq!(s.attributes[0].value.to_string(), FAILED_MARKER);
        assert_eq!(s.attributes[1].value, Value::F64(0.5));
        assert_eq!(s.events.events[0].name, FAILED_MARKER);
        assert_eq!(s.events.events[0].attributes[0].value.to_string(), FAILED_MARKER);
        assert_eq!(s.status, Status::error(FAILED_MARKER));
    }
}
