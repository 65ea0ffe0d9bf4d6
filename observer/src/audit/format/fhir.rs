//! FHIR R4 (4.0.1) `AuditEvent` rendering; the table is in `docs/FORMATS.md`.

use serde_json::{json, Value};

use super::{client_ip, meta_str, non_empty, object, user_agent, Extras};
use crate::audit::event::AuditEvent;
use crate::audit::vocabulary::{AuditAction, AuditEventType, AuditOutcome, ResourceType};

/// The extension that carries what FHIR R4 has no element for (event id, guide type, severity, trace and
/// integrity-chain fields), as sub-extensions.
pub(crate) const EXTENSION_URL: &str = "urn:autonomize-observer:fhir:StructureDefinition:audit-event";
/// The code system of the guide's event types (`audit_type`), as an `AuditEvent.subtype` coding.
pub(crate) const AUDIT_TYPE_SYSTEM: &str = "urn:autonomize-observer:audit-type";
/// The code system of the guide's actions, as an `AuditEvent.subtype` coding.
pub(crate) const ACTION_SYSTEM: &str = "urn:autonomize-observer:audit-action";

const DCM: &str = "http://dicom.nema.org/resources/ontology/DCM";
const EVENT_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-event-type";
const RESTFUL: &str = "http://hl7.org/fhir/restful-interaction";
const ENTITY_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-entity-type";
const OBJECT_ROLE: &str = "http://terminology.hl7.org/CodeSystem/object-role";
const ROLE_TYPE: &str = "http://terminology.hl7.org/CodeSystem/extra-security-role-type";
const SOURCE_TYPE: &str = "http://terminology.hl7.org/CodeSystem/security-source-type";

fn coding(system: &str, code: &str, display: &str) -> Value {
    json!({"system": system, "code": code, "display": display})
}

/// `(type, standard subtype, action)` of an action.
fn type_subtype_action(action: AuditAction) -> (Value, Option<Value>, &'static str) {
    let rest = || coding(EVENT_TYPE, "rest", "Restful Operation");
    match action {
        AuditAction::Create => (rest(), Some(coding(RESTFUL, "create", "create")), "C"),
        AuditAction::Read => (rest(), Some(coding(RESTFUL, "read", "read")), "R"),
        AuditAction::Update => (rest(), Some(coding(RESTFUL, "update", "update")), "U"),
        AuditAction::Delete => (rest(), Some(coding(RESTFUL, "delete", "delete")), "D"),
        AuditAction::Export => (coding(DCM, "110106", "Export"), None, "R"),
        AuditAction::Import => (coding(DCM, "110107", "Import"), None, "C"),
        AuditAction::Login => (coding(DCM, "110114", "User Authentication"), Some(coding(DCM, "110122", "Login")), "E"),
        AuditAction::Logout => {
            (coding(DCM, "110114", "User Authentication"), Some(coding(DCM, "110123", "Logout")), "E")
        }
        // Sharing changes who may access the resource.
        AuditAction::Share => (coding(DCM, "110100", "Application Activity"), None, "U"),
        // Execute (LLM calls, system operations) and any later action.
        _ => (coding(DCM, "110100", "Application Activity"), None, "E"),
    }
}

/// `(outcome, outcomeDesc)`: 0 success, 4 minor failure (refused, failed, partly done).
fn outcome(event: &AuditEvent) -> (&'static str, Option<String>) {
    let reason = meta_str(event, "reason");
    let desc = |what: &str| Some(reason.as_ref().map_or_else(|| what.to_owned(), |r| format!("{what}: {r}")));
    match event.outcome {
        AuditOutcome::Success => ("0", reason),
        AuditOutcome::Failure => ("4", desc("FAILURE")),
        AuditOutcome::Denied => ("4", desc("DENIED")),
        AuditOutcome::Partial => ("4", desc("PARTIAL")),
    }
}

/// The requestor agent: the actor; with no actor, the service that recorded the event.
fn agent(event: &AuditEvent) -> Value {
    let service = non_empty(&event.service_name).unwrap_or("unknown");
    let Some(a) = event.actor.as_deref() else {
        return json!({
            "type": {"coding": [coding(ROLE_TYPE, "dataprocessor", "data processor")]},
            "who": {"identifier": {"value": service}, "display": service},
            "requestor": true,
        });
    };
    let human = matches!(a.actor_type.as_str(), "user" | "admin" | "");
    let role_type = if human {
        coding(ROLE_TYPE, "humanuser", "human user")
    } else {
        coding(ROLE_TYPE, "dataprocessor", "data processor")
    };
    let roles: Vec<Value> = a.roles.iter().map(|r| json!({"text": r})).collect();
    let display = a.name.as_deref().or(a.username.as_deref()).filter(|s| !s.is_empty()).or(non_empty(&a.actor_id));
    let who = object([
        ("identifier", non_empty(&a.actor_id).map(|id| json!({"value": id}))),
        ("display", Some(Value::from(display.unwrap_or("unknown")))),
    ]);
    object([
        ("type", Some(json!({"coding": [role_type]}))),
        ("role", (!roles.is_empty()).then_some(Value::Array(roles))),
        ("who", Some(who)),
        ("altId", a.username.as_deref().or(a.email.as_deref()).filter(|s| !s.is_empty()).map(Value::from)),
        ("name", a.name.as_deref().filter(|s| !s.is_empty()).map(Value::from)),
        ("requestor", Some(Value::Bool(true))),
        ("network", client_ip(event).map(|ip| json!({"address": ip, "type": "2"}))),
    ])
}

/// `(entity type, object role)` of a resource type.
fn entity_kind(rt: ResourceType) -> (Value, Value) {
    let person = || coding(ENTITY_TYPE, "1", "Person");
    let object = || coding(ENTITY_TYPE, "2", "System Object");
    match rt {
        ResourceType::User => (person(), coding(OBJECT_ROLE, "6", "User")),
        ResourceType::Organization => {
            (coding(ENTITY_TYPE, "3", "Organization"), coding(OBJECT_ROLE, "4", "Domain Resource"))
        }
        ResourceType::ApiKey
        | ResourceType::Token
        | ResourceType::Secret
        | ResourceType::Permission
        | ResourceType::Role => (object(), coding(OBJECT_ROLE, "13", "Security Resource")),
        ResourceType::Database | ResourceType::Dataset | ResourceType::VectorStore => {
            (object(), coding(OBJECT_ROLE, "17", "Data Repository"))
        }
        _ => (object(), coding(OBJECT_ROLE, "4", "Domain Resource")),
    }
}

/// One `entity.detail`: a string value (JSON for anything but a string).
fn detail(key: &str, value: &Value) -> Value {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    json!({"type": key, "valueString": text})
}

/// The entity the event is about, with the metadata and changes as details.
fn entity(event: &AuditEvent) -> Value {
    let (ty, role) = entity_kind(event.resource_type);
    let what = object([
        ("identifier", non_empty(&event.resource_id).map(|id| json!({"value": id}))),
        ("display", event.resource_name.as_deref().filter(|s| !s.is_empty()).map(Value::from)),
    ]);
    let mut details = vec![detail("resource_type", &Value::from(event.resource_type.as_str()))];
    if !event.changes.is_empty() {
        details.push(detail("changes", &json!(event.changes)));
    }
    details.extend(event.metadata.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| detail(k, v)));
    object([
        ("what", what.as_object().is_some_and(|m| !m.is_empty()).then_some(what)),
        ("type", Some(ty)),
        ("role", Some(role)),
        ("description", event.description.as_deref().filter(|s| !s.is_empty()).map(Value::from)),
        ("detail", Some(Value::Array(details))),
    ])
}

/// The `AuditEvent.id`: the event id without its `evt_` prefix (a FHIR id allows no `_`), when that is a valid id.
fn resource_id(event_id: &str) -> Option<&str> {
    let id = event_id.strip_prefix("evt_").unwrap_or(event_id);
    (!id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'))
        .then_some(id)
}

/// The sub-extensions of [`EXTENSION_URL`].
fn extension(event: &AuditEvent, extras: &Extras<'_>) -> Value {
    let mut subs = vec![
        json!({"url": "eventId", "valueString": event.event_id}),
        json!({"url": "auditType", "valueCode": event.audit_type.as_str()}),
        json!({"url": "severity", "valueCode": event.severity.as_str()}),
        json!({"url": "schemaVersion", "valueString": event.schema_version}),
    ];
    let mut push = |url: &str, value: Option<&str>| {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            subs.push(json!({"url": url, "valueString": v}));
        }
    };
    push("serviceVersion", Some(&event.service_version));
    push("traceId", event.trace_id.as_deref());
    push("spanId", event.span_id.as_deref());
    push("sessionId", event.actor.as_deref().and_then(|a| a.session_id.as_deref()));
    push("tenantId", event.actor.as_deref().and_then(|a| a.tenant_id.as_deref()));
    push("userAgent", user_agent(event).as_deref());
    if let Some(c) = extras.chain {
        subs.push(json!({"url": "chainId", "valueString": c.chain_id}));
        // A string: R4 has no 64-bit integer type.
        subs.push(json!({"url": "chainSeq", "valueString": c.seq.to_string()}));
        subs.push(json!({"url": "chainHash", "valueString": c.hash}));
    }
    json!([{"url": EXTENSION_URL, "extension": subs}])
}

/// The FHIR R4 `AuditEvent` resource for `event`.
pub(super) fn to_value(event: &AuditEvent, extras: &Extras<'_>) -> Value {
    let (ty, std_subtype, action) = type_subtype_action(event.action);
    let mut subtypes: Vec<Value> = std_subtype.into_iter().collect();
    subtypes.push(coding(AUDIT_TYPE_SYSTEM, event.audit_type.as_str(), event.audit_type.as_str()));
    subtypes.push(coding(ACTION_SYSTEM, event.action.as_str(), event.action.as_str()));
    let (outcome_code, outcome_desc) = outcome(event);
    let service = non_empty(&event.service_name).unwrap_or("unknown");
    let observer_display = match non_empty(&event.service_version) {
        Some(v) => format!("{service} {v}"),
        None => service.to_owned(),
    };
    let mut entities = vec![entity(event)];
    if event.audit_type == AuditEventType::DataExport {
        if let Some(dest) = meta_str(event, "destination") {
            entities.push(json!({
                "what": {"display": dest},
                "type": coding(ENTITY_TYPE, "2", "System Object"),
                "role": coding(OBJECT_ROLE, "16", "Data Destination"),
            }));
        }
    }
    object([
        ("resourceType", Some(Value::from("AuditEvent"))),
        ("id", resource_id(&event.event_id).map(Value::from)),
        ("extension", Some(extension(event, extras))),
        ("type", Some(ty)),
        ("subtype", Some(Value::Array(subtypes))),
        ("action", Some(Value::from(action))),
        ("recorded", Some(Value::from(event.timestamp.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)))),
        ("outcome", Some(Value::from(outcome_code))),
        ("outcomeDesc", outcome_desc.map(Value::from)),
        ("agent", Some(json!([agent(event)]))),
        (
            "source",
            Some(object([
                ("site", non_empty(&event.environment).map(Value::from)),
                ("observer", Some(json!({"identifier": {"value": service}, "display": observer_display}))),
                ("type", Some(json!([coding(SOURCE_TYPE, "4", "Application Server")]))),
            ])),
        ),
        ("entity", Some(Value::Array(entities))),
    ])
}
