//! Spans straight to Kafka as OTLP-JSON (feature `otel-kafka`), for deployments without an OpenTelemetry
//! Collector: each message is what the collector's Kafka exporter writes with `encoding: otlp_json` (see
//! `otel-collector-config.yaml`), an OTLP `ExportTraceServiceRequest` in its JSON encoding.
//!
//! [`KafkaSpanExporter`] is an OpenTelemetry SDK [`SpanExporter`] that sends through a [`KafkaExporter`] (the
//! process's shared one: it never creates a producer of its own), so spans get the same delivery guarantees as
//! audit events: `export` never blocks on the broker, and what cannot be delivered goes to the durable spool.
//! [`TracingConfig::kafka_topic`](crate::trace::TracingConfig::kafka_topic) wires it into
//! [`configure_tracing`](crate::trace::configure_tracing) / [`otel_layer`](crate::trace::otel_layer).

use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::ResourceSpans;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use opentelemetry_sdk::Resource;

use super::KafkaExporter;
use crate::error::ConfigurationError;

/// The default topic of OTLP-JSON spans: `genesis-otel`, the topic of the guide's collector pipeline.
#[cfg_attr(docsrs, doc(cfg(feature = "otel-kafka")))]
pub const DEFAULT_OTEL_TOPIC: &str = "genesis-otel";

/// The default audit topic; never used for spans (one schema per topic).
const DEFAULT_AUDIT_TOPIC: &str = "genesis-audit-events";
/// The default agent trace stream topic (the SDK's own trace event JSON); never used for OTLP spans.
const DEFAULT_TRACE_STREAM_TOPIC: &str = "genesis-traces-streaming";

/// The largest payload sent as one message. A batch whose JSON is larger is split into several messages (by
/// spans), so that it stays below librdkafka's default `message.max.bytes` (1 000 000) with room for the key
/// and headers.
const MAX_MESSAGE_BYTES: usize = 900_000;

/// How long `force_flush` / `shutdown` wait for the broker's acknowledgements.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// An OpenTelemetry [`SpanExporter`] that writes every export batch as ONE Kafka message (split only when its
/// JSON exceeds 900 000 bytes): an OTLP `ExportTraceServiceRequest` in the OTLP/JSON encoding
/// (`resourceSpans[].scopeSpans[].spans[]`, lowerCamelCase field names, trace and span ids as lower-case hex),
/// key = the first span's trace id (hex), header `content-type: application/json`.
///
/// It sends through a [`KafkaExporter`] clone, normally the process's shared one
/// ([`observer::kafka_exporter`](crate::kafka_exporter)); it never creates a producer and never shuts the
/// exporter down (its `shutdown` only flushes). `export` never blocks on the broker: undeliverable messages go
/// to the exporter's durable spool. Every span is redacted by the process's redaction policy before it is
/// encoded (as [`RedactingSpanExporter`](crate::trace::RedactingSpanExporter) does for other exporters).
///
/// [`TracingConfig::kafka_topic`](crate::trace::TracingConfig::kafka_topic) installs it with the SDK's batch
/// processor. To use your own tracer provider or your own exporter:
///
/// ```no_run
/// use observer::trace::KafkaSpanExporter;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let kafka = observer::kafka_exporter().expect("observer::init with a Kafka config");
/// let exporter = KafkaSpanExporter::new(kafka, "genesis-otel")?;
/// let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().with_batch_exporter(exporter).build();
/// # drop(provider);
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[cfg_attr(docsrs, doc(cfg(feature = "otel-kafka")))]
pub struct KafkaSpanExporter {
    kafka: KafkaExporter,
    topic: String,
    resource: ResourceAttributesWithSchema,
}

impl KafkaSpanExporter {
    /// An exporter writing to `topic` through `kafka` (a clone of the shared exporter).
    ///
    /// # Errors
    /// A [`ConfigurationError`] naming `kafka_topic` when `topic` is not a valid Kafka topic name, or is the
    /// audit topic or the agent trace stream topic (of `kafka`'s config, or the defaults `genesis-audit-events`
    /// and `genesis-traces-streaming`): one schema per topic.
    pub fn new(kafka: KafkaExporter, topic: impl Into<String>) -> Result<Self, ConfigurationError> {
        let topic = topic.into();
        check_topic(&topic)?;
        let config = kafka.config();
        for (reserved, what) in [(&config.audit_topic, "audit topic"), (&config.trace_topic, "trace stream topic")] {
            if topic == *reserved {
                return Err(reserved_topic(&topic, what));
            }
        }
        Ok(Self { kafka, topic, resource: (&Resource::builder_empty().build()).into() })
    }

    /// The topic spans are written to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The messages (payload and key) of one batch: one, unless its JSON is too large.
    fn messages(&self, batch: Vec<SpanData>) -> Result<Vec<(Vec<u8>, String)>, OTelSdkError> {
        let Some(first) = batch.first() else { return Ok(Vec::new()) };
        let key = first.span_context.trace_id().to_string();
        let request =
            ExportTraceServiceRequest { resource_spans: group_spans_by_resource_and_scope(batch, &self.resource) };
        let mut out = Vec::new();
        encode(request, key, &mut out)?;
        Ok(out)
    }
}

/// Appends the OTLP-JSON of `request` to `out`, halving it by spans while it is too large.
fn encode(request: ExportTraceServiceRequest, key: String, out: &mut Vec<(Vec<u8>, String)>) -> OTelSdkResult {
    let json = serde_json::to_vec(&request)
        .map_err(|e| OTelSdkError::InternalFailure(format!("serialising spans as OTLP-JSON: {e}")))?;
    if json.len() <= MAX_MESSAGE_BYTES || span_count(&request.resource_spans) < 2 {
        // A single span larger than the limit is sent as is (the broker may refuse it; then it is spooled).
        out.push((json, key));
        return Ok(());
    }
    let (a, b) = split(request.resource_spans);
    for half in [a, b] {
        let key = first_trace_id(&half).unwrap_or_else(|| key.clone());
        encode(ExportTraceServiceRequest { resource_spans: half }, key, out)?;
    }
    Ok(())
}

fn span_count(resource_spans: &[ResourceSpans]) -> usize {
    resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum()
}

fn first_trace_id(resource_spans: &[ResourceSpans]) -> Option<String> {
    let span = resource_spans.iter().flat_map(|r| &r.scope_spans).flat_map(|s| &s.spans).next()?;
    Some(span.trace_id.iter().map(|b| format!("{b:02x}")).collect())
}

/// Splits the spans in two halves, keeping each span with its resource and scope.
fn split(resource_spans: Vec<ResourceSpans>) -> (Vec<ResourceSpans>, Vec<ResourceSpans>) {
    let mut left = span_count(&resource_spans) / 2;
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for mut rs in resource_spans {
        let mut rest = rs.clone();
        rest.scope_spans.clear();
        let mut keep = Vec::new();
        for mut ss in std::mem::take(&mut rs.scope_spans) {
            if left >= ss.spans.len() {
                left -= ss.spans.len();
                keep.push(ss);
            } else {
                let tail = ss.spans.split_off(left);
                left = 0;
                let mut moved = ss.clone();
                moved.spans = tail;
                if !ss.spans.is_empty() {
                    keep.push(ss);
                }
                rest.scope_spans.push(moved);
            }
        }
        if !keep.is_empty() {
            rs.scope_spans = keep;
            a.push(rs);
        }
        if !rest.scope_spans.is_empty() {
            b.push(rest);
        }
    }
    (a, b)
}

/// A Kafka topic name that may carry OTLP-JSON spans: legal (`[a-zA-Z0-9._-]`, at most 249 characters, not `.`
/// or `..`) and not one of the SDK's default audit and trace stream topics.
pub(crate) fn check_topic(topic: &str) -> Result<(), ConfigurationError> {
    crate::config::validate_topic("kafka_topic", topic)?;
    match topic {
        DEFAULT_AUDIT_TOPIC => Err(reserved_topic(topic, "audit topic")),
        DEFAULT_TRACE_STREAM_TOPIC => Err(reserved_topic(topic, "trace stream topic")),
        _ => Ok(()),
    }
}

fn reserved_topic(topic: &str, what: &str) -> ConfigurationError {
    ConfigurationError::new(
        "kafka_topic",
        format!(
            "`{topic}` is the {what}; OTLP-JSON spans need a topic of their own (one schema per topic), e.g. \
             `{DEFAULT_OTEL_TOPIC}`"
        ),
    )
}

impl SpanExporter for KafkaSpanExporter {
    fn export(&self, mut batch: Vec<SpanData>) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        // Spans leave the process redacted, whoever built this exporter.
        crate::otel::redact_batch(&mut batch);
        let res = self.messages(batch).and_then(|messages| {
            for (payload, key) in messages {
                self.kafka
                    .send(&self.topic, Some(&key), &[("content-type", "application/json")], &payload)
                    .map_err(|e| OTelSdkError::InternalFailure(format!("Kafka topic `{}`: {e}", self.topic)))?;
            }
            Ok(())
        });
        std::future::ready(res)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.kafka.flush(FLUSH_TIMEOUT).map_err(|e| OTelSdkError::InternalFailure(e.to_string()))
    }

    /// Flushes (bounded by `timeout`); the shared Kafka exporter itself stays open.
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.kafka.flush(timeout).map_err(|e| OTelSdkError::InternalFailure(e.to_string()))
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource.into();
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState};
    use opentelemetry::{InstrumentationScope, KeyValue};
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};

    use super::*;

    #[test]
    fn reserved_and_invalid_topics_are_refused() {
        for t in ["genesis-audit-events", "genesis-traces-streaming", "", "with space", "..", &"x".repeat(250)] {
            assert_eq!(check_topic(t).unwrap_err().field, "kafka_topic", "{t:?}");
        }
        check_topic(DEFAULT_OTEL_TOPIC).unwrap();
        check_topic("team.otel_spans-v1").unwrap();
    }

    fn span(trace: u128, id: u64, attr: &str) -> SpanData {
        SpanData {
            span_context: SpanContext::new(
                TraceId::from(trace),
                SpanId::from(id),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: "s".into(),
            start_time: std::time::SystemTime::UNIX_EPOCH,
            end_time: std::time::SystemTime::UNIX_EPOCH,
            attributes: vec![KeyValue::new("a", attr.to_owned())],
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: InstrumentationScope::builder("observer").build(),
        }
    }

    #[test]
    fn oversized_batches_are_split_by_spans() {
        let big = "x".repeat(MAX_MESSAGE_BYTES / 3);
        let batch: Vec<_> = (1..=5).map(|i| span(i, i as u64, &big)).collect();
        let resource = (&Resource::builder_empty().build()).into();
        let request = ExportTraceServiceRequest { resource_spans: group_spans_by_resource_and_scope(batch, &resource) };
        let mut out = Vec::new();
        encode(request, "k".into(), &mut out).unwrap();
        assert!(out.len() >= 2, "{}", out.len());
        let mut ids = Vec::new();
        for (payload, key) in &out {
            assert!(payload.len() <= MAX_MESSAGE_BYTES);
            let json: serde_json::Value = serde_json::from_slice(payload).unwrap();
            let spans = json["resourceSpans"][0]["scopeSpans"][0]["spans"].as_array().unwrap();
            assert_eq!(*key, spans[0]["traceId"].as_str().unwrap());
            ids.extend(spans.iter().map(|s| s["spanId"].as_str().unwrap().to_owned()));
        }
        let expected: Vec<_> = (1..=5u64).map(|i| format!("{i:016x}")).collect();
        assert_eq!(ids, expected, "every span once, in order");
    }
}
