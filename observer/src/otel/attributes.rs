//! What the rest of the crate writes on the OpenTelemetry span behind a `tracing` span: attributes, the error
//! status, and the current trace and span ids (for audit events). Without the `otel` feature the writers are
//! no-ops.

#[cfg(feature = "otel")]
use opentelemetry::trace::{Status, TraceContextExt};
#[cfg(feature = "otel")]
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// A span attribute value.
pub(crate) type AttrValue = serde_json::Value;

/// Sets an attribute on `span`'s OpenTelemetry span (no-op without the `otel` feature or without an
/// OpenTelemetry layer). Values: strings, numbers and booleans map to OTEL scalars; `null` sets nothing; arrays
/// and objects become their JSON text.
pub(crate) fn set_span_attribute(span: &::tracing::Span, key: &str, value: &AttrValue) {
    #[cfg(feature = "otel")]
    if let Some(v) = otel_value(value) {
        span.set_attribute(key.to_owned(), v);
    }
    #[cfg(not(feature = "otel"))]
    let _ = (span, key, value);
}

/// Marks `span`'s OpenTelemetry span as failed with `message` (no-op without the `otel` feature).
pub(crate) fn set_span_error(span: &::tracing::Span, message: &str) {
    #[cfg(feature = "otel")]
    span.set_status(Status::error(message.to_owned()));
    #[cfg(not(feature = "otel"))]
    let _ = (span, message);
}

/// The OTEL value of an attribute: scalars as such, `null` as `None`, arrays and objects as JSON text.
#[cfg(feature = "otel")]
fn otel_value(value: &AttrValue) -> Option<opentelemetry::Value> {
    use serde_json::Value;
    Some(match value {
        Value::Null => return None,
        Value::String(s) => s.clone().into(),
        Value::Bool(b) => (*b).into(),
        Value::Number(n) => match (n.as_i64(), n.is_u64()) {
            (Some(i), _) => i.into(),
            // Beyond i64: keep it exact as text.
            (None, true) => n.to_string().into(),
            (None, false) => n.as_f64().unwrap_or(f64::NAN).into(),
        },
        Value::Array(_) | Value::Object(_) => value.to_string().into(),
    })
}

/// `(trace_id, span_id)` of the current span's OpenTelemetry context, in lower-case hex (32 and 16 digits).
#[cfg(feature = "otel")]
pub(crate) fn current_trace_ids() -> Option<(String, String)> {
    let span = ::tracing::Span::current();
    if span.is_none() {
        return None;
    }
    let cx = span.context();
    let otel_span = cx.span();
    let sc = otel_span.span_context();
    sc.is_valid().then(|| (sc.trace_id().to_string(), sc.span_id().to_string()))
}

#[cfg(all(test, feature = "otel"))]
mod tests {
    use opentelemetry::Value as OtelValue;
    use opentelemetry_sdk::trace::SpanData;
    use serde_json::json;

    use super::*;
    use crate::otel::layer::tests::with_otel;

    fn attr(span: &SpanData, key: &str) -> Option<OtelValue> {
        span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.clone())
    }

    #[test]
    fn attributes_map_to_otel_values() {
        let spans = with_otel(|| {
            let span = ::tracing::info_span!("step");
            set_span_attribute(&span, "s", &json!("text"));
            set_span_attribute(&span, "b", &json!(true));
            set_span_attribute(&span, "i", &json!(-42));
            set_span_attribute(&span, "f", &json!(2.5));
            set_span_attribute(&span, "big", &json!(u64::MAX));
            set_span_attribute(&span, "arr", &json!([1, "two"]));
            set_span_attribute(&span, "obj", &json!({"k": 1}));
            set_span_attribute(&span, "null", &json!(null));
            let _e = span.enter();
            // Also after the OpenTelemetry span was built (entered).
            set_span_attribute(&span, "late", &json!(7));
        });
        let [span] = spans.as_slice() else { panic!("one span expected: {spans:?}") };
        assert_eq!(span.name, "step");
        assert_eq!(attr(span, "s"), Some(OtelValue::from("text")));
        assert_eq!(attr(span, "b"), Some(OtelValue::Bool(true)));
        assert_eq!(attr(span, "i"), Some(OtelValue::I64(-42)));
        assert_eq!(attr(span, "f"), Some(OtelValue::F64(2.5)));
        assert_eq!(attr(span, "big"), Some(OtelValue::from(u64::MAX.to_string())));
        assert_eq!(attr(span, "arr"), Some(OtelValue::from(r#"[1,"two"]"#)));
        assert_eq!(attr(span, "obj"), Some(OtelValue::from(r#"{"k":1}"#)));
        assert_eq!(attr(span, "null"), None);
        assert_eq!(attr(span, "late"), Some(OtelValue::I64(7)));
    }

    #[test]
    fn errors_set_the_status() {
        let spans = with_otel(|| {
            let failed = ::tracing::info_span!("failed");
            set_span_error(&failed, "payment declined");
            let _ok = ::tracing::info_span!("ok");
        });
        let failed = spans.iter().find(|s| s.name == "failed").unwrap();
        assert_eq!(failed.status, Status::error("payment declined"));
        let ok = spans.iter().find(|s| s.name == "ok").unwrap();
        assert_eq!(ok.status, Status::Unset);
    }

    #[test]
    fn current_trace_ids_are_the_current_spans() {
        let mut seen = Vec::new();
        let spans = with_otel(|| {
            assert_eq!(current_trace_ids(), None, "no span");
            let outer = ::tracing::info_span!("outer");
            let _o = outer.enter();
            seen.push(current_trace_ids().unwrap());
            let inner = ::tracing::info_span!("inner");
            let _i = inner.enter();
            seen.push(current_trace_ids().unwrap());
            // Below the exported level: the OpenTelemetry layer does not see it.
            let _d = ::tracing::debug_span!("debug").entered();
        });
        assert_eq!(spans.len(), 2, "{spans:?}");
        for (name, (trace_id, span_id)) in ["outer", "inner"].iter().zip(&seen) {
            let span = spans.iter().find(|s| s.name == *name).unwrap();
            assert_eq!(trace_id.len(), 32);
            assert_eq!(span_id.len(), 16);
            assert_eq!(*trace_id, span.span_context.trace_id().to_string());
            assert_eq!(*span_id, span.span_context.span_id().to_string());
        }
        assert_eq!(seen[0].0, seen[1].0, "same trace");
        // Without any OpenTelemetry layer there are no ids.
        let plain = tracing_subscriber::registry();
        ::tracing::subscriber::with_default(plain, || {
            let _s = ::tracing::info_span!("plain").entered();
            assert_eq!(current_trace_ids(), None);
        });
    }
}
