//! [`AuditEvent`] and [`ChangeRecord`]: the audit event and its JSON shape.

use std::borrow::Cow;
use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::vocabulary::{AuditAction, AuditEventType, AuditOutcome, AuditSeverity, ResourceType};
use crate::actor::ActorContext;

/// The version of the audit event JSON schema, sent as `schema_version` and as a Kafka header.
pub const SCHEMA_VERSION: &str = "1.0";

/// One audit record. Its JSON is the guide's "Event Format" plus the additions of the wire-format notes:
/// `description`, `changes`, `service_version`, `environment`, `trace_id`/`span_id` and `schema_version`.
///
/// **One shape for every event**: every field is always present, each with one JSON type; what is unknown is `null`
/// (never left out, never `""`: an empty string is written as `null`), `changes` is `[]` when there are none, and
/// the `actor` object (or `null`) always has all its fields too. A consumer with a fixed schema reads every event
/// the same way.
///
/// Usually built by the [`audit`](mod@crate::audit) helpers; construct one directly with [`AuditEvent::new`]
/// for the exporter API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Unique, time-ordered id: `evt_` followed by a UUIDv7. Consumers de-duplicate on it.
    pub event_id: String,
    /// When the event was created, RFC 3339 UTC ending in `Z` (microsecond precision).
    #[serde(with = "timestamp")]
    pub timestamp: DateTime<Utc>,
    /// The emitting service (`ObserverConfig::service_name`; shared, so filling it in does not allocate).
    #[serde(serialize_with = "nullable::str", deserialize_with = "nullable::arc")]
    pub service_name: Arc<str>,
    /// The emitting service's version (`null` when not configured).
    #[serde(default = "empty_str", serialize_with = "nullable::str", deserialize_with = "nullable::arc")]
    pub service_version: Arc<str>,
    /// The deployment environment (`ObserverConfig::environment`; `null` when not configured).
    #[serde(default = "empty_str", serialize_with = "nullable::str", deserialize_with = "nullable::arc")]
    pub environment: Arc<str>,
    /// The event category.
    pub audit_type: AuditEventType,
    /// What was done.
    pub action: AuditAction,
    /// The kind of resource.
    pub resource_type: ResourceType,
    /// The resource's id; empty when unknown (e.g. a failed create whose id would have come from its result),
    /// written as `null`.
    #[serde(default, serialize_with = "nullable::str", deserialize_with = "nullable::string")]
    pub resource_id: String,
    /// A human-readable resource name (`null` when unknown or empty).
    #[serde(default, serialize_with = "nullable::opt")]
    pub resource_name: Option<String>,
    /// What happened, in words (`null` when unknown or empty).
    #[serde(default, serialize_with = "nullable::opt")]
    pub description: Option<String>,
    /// Who did it (from the actor context when not given explicitly; `null` when nobody is known).
    #[serde(default)]
    pub actor: Option<Arc<ActorContext>>,
    /// Whether it succeeded.
    #[serde(default)]
    pub outcome: AuditOutcome,
    /// How severe it is.
    #[serde(default)]
    pub severity: AuditSeverity,
    /// Field-level changes of an update (`[]` when none).
    #[serde(default)]
    pub changes: Vec<ChangeRecord>,
    /// Free-form details.
    #[serde(default)]
    pub metadata: Map<String, Value>,
    /// Trace id (32 hex digits) of the OpenTelemetry span current when the event was created (`null` without one).
    #[serde(default, serialize_with = "nullable::opt")]
    pub trace_id: Option<String>,
    /// Span id (16 hex digits) of the OpenTelemetry span current when the event was created (`null` without one).
    #[serde(default, serialize_with = "nullable::opt")]
    pub span_id: Option<String>,
    /// Version of this JSON schema ([`SCHEMA_VERSION`]).
    #[serde(default = "schema_version")]
    pub schema_version: Cow<'static, str>,
}

fn schema_version() -> Cow<'static, str> {
    Cow::Borrowed(SCHEMA_VERSION)
}

/// A shared empty string: cloning it is a reference-count increment, where `Arc::from("")` allocates.
fn empty_str() -> Arc<str> {
    static EMPTY: std::sync::LazyLock<Arc<str>> = std::sync::LazyLock::new(|| Arc::from(""));
    EMPTY.clone()
}

/// Serde helpers for the one-shape JSON: an empty string is written as `null`, and `null` reads back as empty.
pub(crate) mod nullable {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serializer};

    /// A string, `null` when empty.
    pub(crate) fn str<T: AsRef<str>, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
        match value.as_ref() {
            "" => s.serialize_none(),
            v => s.serialize_str(v),
        }
    }

    /// An optional string, `null` when absent or empty.
    pub(crate) fn opt<S: Serializer>(value: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
        match value.as_deref() {
            None | Some("") => s.serialize_none(),
            Some(v) => s.serialize_str(v),
        }
    }

    /// A string that may be `null` (read as empty).
    pub(crate) fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Option::<String>::deserialize(d).map(Option::unwrap_or_default)
    }

    /// A shared string that may be `null` (read as empty).
    pub(crate) fn arc<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<str>, D::Error> {
        string(d).map(Arc::from)
    }
}

impl AuditEvent {
    /// A new event with a fresh `event_id` and `timestamp`, outcome `SUCCESS`, severity `INFO`, no actor and
    /// an empty service name (the pipeline fills in the configured service name, version and environment
    /// where they are empty).
    pub fn new(
        audit_type: AuditEventType,
        action: AuditAction,
        resource_type: ResourceType,
        resource_id: impl Into<String>,
    ) -> Self {
        Self {
            event_id: new_event_id(),
            timestamp: Utc::now().trunc_subsecs(6),
            service_name: empty_str(),
            service_version: empty_str(),
            environment: empty_str(),
            audit_type,
            action,
            resource_type,
            resource_id: resource_id.into(),
            resource_name: None,
            description: None,
            actor: None,
            outcome: AuditOutcome::Success,
            severity: AuditSeverity::Info,
            changes: Vec::new(),
            metadata: Map::new(),
            trace_id: None,
            span_id: None,
            schema_version: schema_version(),
        }
    }

    /// The event as a JSON value.
    pub fn to_json(&self) -> Value {
        // Serialising this type cannot fail: every field is a string, number, enum or JSON value.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// A fresh event id: `evt_` + a UUIDv7 (time-ordered).
pub fn new_event_id() -> String {
    let mut buf = String::with_capacity(40);
    buf.push_str("evt_");
    let mut enc = uuid::Uuid::encode_buffer();
    buf.push_str(uuid::Uuid::now_v7().hyphenated().encode_lower(&mut enc));
    buf
}

/// One field-level change of an update: `{"field", "old_value", "new_value"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeRecord {
    /// The field that changed.
    pub field: String,
    /// Its value before (any JSON value).
    pub old_value: Value,
    /// Its value after (any JSON value).
    pub new_value: Value,
}

impl ChangeRecord {
    /// A change of `field` from `old_value` to `new_value`.
    pub fn new(field: impl Into<String>, old_value: impl Into<Value>, new_value: impl Into<Value>) -> Self {
        Self { field: field.into(), old_value: old_value.into(), new_value: new_value.into() }
    }
}

/// RFC 3339 UTC with a `Z` suffix and microseconds; accepts any RFC 3339 offset when reading.
mod timestamp {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&t.to_rfc3339_opts(SecondsFormat::Micros, true))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s).map(|t| t.with_timezone(&Utc)).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_unique_and_ordered() {
        let ids: Vec<String> = (0..1000).map(|_| new_event_id()).collect();
        assert!(ids.iter().all(|i| i.starts_with("evt_") && i.len() == 40));
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted, "UUIDv7 ids from one thread sort in creation order");
        sorted.dedup();
        assert_eq!(sorted.len(), 1000);
    }

    #[test]
    fn json_round_trip_and_spelling() {
        let mut e =
            AuditEvent::new(AuditEventType::DataModification, AuditAction::Create, ResourceType::Document, "doc-1");
        e.service_name = "svc".into();
        e.changes.push(ChangeRecord::new("title", "Draft", "Final"));
        let v = e.to_json();
        assert_eq!(v["audit_type"], "DATA_MODIFICATION");
        assert_eq!(v["resource_type"], "DOCUMENT");
        assert_eq!(v["outcome"], "SUCCESS");
        assert_eq!(v["changes"][0]["old_value"], "Draft");
        assert_eq!((&v["actor"], &v["resource_name"]), (&Value::Null, &Value::Null));
        assert_eq!(v["service_version"], Value::Null, "empty is written as null");
        let ts = v["timestamp"].as_str().unwrap();
        assert!(ts.ends_with('Z') && DateTime::parse_from_rfc3339(ts).is_ok(), "{ts}");
        let back: AuditEvent = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);

        // unknown is null, never "" nor left out; it reads back as unknown
        let mut unknown =
            AuditEvent::new(AuditEventType::DataModification, AuditAction::Create, ResourceType::Document, "");
        unknown.service_name = "svc".into();
        unknown.resource_name = Some(String::new());
        let v = unknown.to_json();
        for key in ["resource_id", "resource_name", "description", "actor", "trace_id", "span_id", "environment"] {
            assert_eq!(v.get(key), Some(&Value::Null), "{key}");
        }
        let back: AuditEvent = serde_json::from_value(v).unwrap();
        assert_eq!((back.resource_id.as_str(), back.resource_name), ("", None));
    }
}
