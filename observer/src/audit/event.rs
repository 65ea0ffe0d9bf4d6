//! [`AuditEvent`] and [`ChangeRecord`]: the audit event and its JSON shape.

use std::borrow::Cow;
use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::vocabulary::{AuditAction, AuditEventType, AuditOutcome, AuditSeverity, PurposeOfUse, ResourceType};
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
/// **The disclosure fields are the exception**: `recipient`, `purpose_of_use`, `data_categories`, `patient_ref`,
/// `retention_days`, `compliance_frameworks` and `immutable` (for a HIPAA accounting of disclosures, see
/// [`audit::log_disclosure`](crate::audit::log_disclosure)) are written only when set, so an event that does not use
/// them has exactly the bytes it had before they existed; a missing one reads back as unset.
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
    /// Who received the information (a person or an organisation) when the event records a disclosure; left out
    /// of the JSON when unset or empty.
    #[serde(default, skip_serializing_if = "is_unset")]
    pub recipient: Option<String>,
    /// Why the information was used or disclosed; left out of the JSON when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose_of_use: Option<PurposeOfUse>,
    /// The kinds of protected health information involved, e.g. `["diagnoses", "lab_results"]`; left out of the
    /// JSON when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data_categories: Vec<String>,
    /// The patient the information is about, as a keyed hash (`hmac-sha256:` + 64 hex digits, see
    /// [`PatientKey::reference`](crate::audit::PatientKey::reference)): equal patients join across events
    /// without being readable. Never the patient's identifier in clear. Left out of the JSON when unset.
    #[serde(default, skip_serializing_if = "is_unset")]
    pub patient_ref: Option<String>,
    /// How many days the event must be kept; left out of the JSON when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
    /// The compliance frameworks the event is kept for, e.g. `["HIPAA"]`; left out of the JSON when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compliance_frameworks: Vec<String>,
    /// Whether the event must be stored where it cannot be changed (write-once storage); left out of the JSON when
    /// unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,
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

/// An optional string field written only when set and non-empty.
fn is_unset(value: &Option<String>) -> bool {
    value.as_deref().is_none_or(str::is_empty)
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
        let (timestamp, event_id) = stamp();
        Self {
            event_id,
            timestamp,
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
            recipient: None,
            purpose_of_use: None,
            data_categories: Vec::new(),
            patient_ref: None,
            retention_days: None,
            compliance_frameworks: Vec::new(),
            immutable: None,
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
    stamp().1
}

/// The ids' UUIDv7 counter: ids from this process sort in the order they were made (as `Uuid::now_v7`'s, whose
/// context is private to `uuid`).
static ID_CONTEXT: std::sync::Mutex<uuid::ContextV7> = std::sync::Mutex::new(uuid::ContextV7::new());

/// A new event's timestamp (microseconds) and id, from one reading of the clock: the id's UUIDv7 time is the
/// event's timestamp (to the millisecond), and the caller pays for one clock read, not two.
fn stamp() -> (DateTime<Utc>, String) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    let (secs, nanos) = match now {
        Ok(d) => (d.as_secs(), d.subsec_nanos()),
        // A clock before 1970: the UUID's time cannot be before it either.
        Err(_) => (0, 0),
    };
    let timestamp = i64::try_from(secs)
        .ok()
        .and_then(|s| DateTime::from_timestamp(s, nanos - nanos % 1_000))
        .unwrap_or_else(|| Utc::now().trunc_subsecs(6));
    let uuid = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(&ID_CONTEXT, secs, nanos));
    let mut id = String::with_capacity(40);
    id.push_str("evt_");
    id.push_str(uuid.hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer()));
    (timestamp, id)
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
    fn the_id_carries_the_timestamp() {
        for _ in 0..100 {
            let e = AuditEvent::new(AuditEventType::DataAccess, AuditAction::Read, ResourceType::Document, "d");
            let uuid = uuid::Uuid::parse_str(&e.event_id["evt_".len()..]).expect("uuid");
            assert_eq!(uuid.get_version_num(), 7);
            let (secs, nanos) = uuid.get_timestamp().expect("v7 time").to_unix();
            let id_ms = secs * 1000 + u64::from(nanos) / 1_000_000;
            assert_eq!(id_ms, e.timestamp.timestamp_millis() as u64, "{} at {}", e.event_id, e.timestamp);
            assert_eq!(e.timestamp.timestamp_subsec_nanos() % 1_000, 0, "microseconds");
        }
    }

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

    #[test]
    fn disclosure_fields_are_left_out_when_unset() {
        // An event written before the disclosure fields existed: its bytes are unchanged and it reads back.
        let old = r#"{"event_id":"evt_0190b6a4-6c1e-7000-8000-000000000000","timestamp":"2026-01-02T03:04:05.000006Z","service_name":"svc","service_version":null,"environment":null,"audit_type":"DATA_ACCESS","action":"READ","resource_type":"DOCUMENT","resource_id":"doc-1","resource_name":null,"description":"Read DOCUMENT doc-1","actor":null,"outcome":"SUCCESS","severity":"INFO","changes":[],"metadata":{},"trace_id":null,"span_id":null,"schema_version":"1.0"}"#;
        let e: AuditEvent = serde_json::from_str(old).unwrap();
        assert_eq!((e.recipient.as_ref(), e.purpose_of_use, e.retention_days, e.immutable), (None, None, None, None));
        assert!(e.data_categories.is_empty() && e.compliance_frameworks.is_empty() && e.patient_ref.is_none());
        assert_eq!(serde_json::to_string(&e).unwrap(), old, "an event without them keeps its bytes");
        let mut empty = e.clone();
        empty.recipient = Some(String::new());
        assert_eq!(serde_json::to_string(&empty).unwrap(), old, "an empty recipient is left out too");
    }

    #[test]
    fn disclosure_fields_round_trip() {
        let mut e = AuditEvent::new(AuditEventType::DataExport, AuditAction::Share, ResourceType::Document, "d");
        e.recipient = Some("Acme Insurance".into());
        e.purpose_of_use = Some(PurposeOfUse::Payment);
        e.data_categories = vec!["diagnoses".into(), "lab_results".into()];
        e.patient_ref = Some(format!("hmac-sha256:{}", "ab".repeat(32)));
        e.retention_days = Some(2190);
        e.compliance_frameworks = vec!["HIPAA".into()];
        e.immutable = Some(true);
        let v = e.to_json();
        assert_eq!(v["recipient"], "Acme Insurance");
        assert_eq!(v["purpose_of_use"], "PAYMENT");
        assert_eq!(v["data_categories"], serde_json::json!(["diagnoses", "lab_results"]));
        assert_eq!(v["retention_days"], 2190);
        assert_eq!(v["compliance_frameworks"], serde_json::json!(["HIPAA"]));
        assert_eq!(v["immutable"], true);
        let back: AuditEvent = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
    }
}
