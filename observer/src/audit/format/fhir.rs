//! FHIR R4 (4.0.1) `AuditEvent` rendering; the table is in `docs/FORMATS.md`.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::Value;

use super::{client_ip, meta_str, non_empty, user_agent, Extras};
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
const ACT_REASON: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
const PARTICIPATION: &str = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";
/// The identifier system of patient references (`hmac-sha256:` + hex: a keyed hash, not the patient's id).
pub(crate) const PATIENT_REF_SYSTEM: &str = "urn:autonomize-observer:patient-ref";

#[derive(Serialize, Clone, Copy)]
struct Coding<'a> {
    system: &'a str,
    code: &'a str,
    display: &'a str,
}

const fn coding<'a>(system: &'a str, code: &'a str, display: &'a str) -> Coding<'a> {
    Coding { system, code, display }
}

#[derive(Serialize)]
struct Concept<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    coding: Option<[Coding<'a>; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
}

#[derive(Serialize)]
struct Identifier<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<&'a str>,
    value: &'a str,
}

#[derive(Serialize)]
struct Reference<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    identifier: Option<Identifier<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    display: Option<Cow<'a, str>>,
}

#[derive(Serialize)]
struct Network {
    address: String,
    r#type: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Agent<'a> {
    r#type: Concept<'a>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    role: Vec<Concept<'a>>,
    who: Reference<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alt_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    requestor: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    network: Option<Network>,
}

#[derive(Serialize)]
struct Source<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    site: Option<&'a str>,
    observer: Reference<'a>,
    r#type: [Coding<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Detail<'a> {
    r#type: &'a str,
    value_string: Cow<'a, str>,
}

#[derive(Serialize)]
struct Entity<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    what: Option<Reference<'a>>,
    r#type: Coding<'a>,
    role: Coding<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    detail: Vec<Detail<'a>>,
}

/// One sub-extension: `valueString` or `valueCode`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SubExtension<'a> {
    url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    value_string: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value_boolean: Option<bool>,
}

#[derive(Serialize)]
struct Extension<'a> {
    url: &'a str,
    extension: Vec<SubExtension<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Resource<'a> {
    resource_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    extension: [Extension<'a>; 1],
    r#type: Coding<'a>,
    subtype: Vec<Coding<'a>>,
    action: &'a str,
    recorded: String,
    outcome: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome_desc: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    purpose_of_event: Vec<Concept<'a>>,
    agent: Vec<Agent<'a>>,
    source: Source<'a>,
    entity: Vec<Entity<'a>>,
}

fn opt(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

/// `(type, standard subtype, action)` of an action.
fn type_subtype_action(
    action: AuditAction,
    audit_type: AuditEventType,
) -> (Coding<'static>, Option<Coding<'static>>, &'static str) {
    const REST: Coding<'static> = coding(EVENT_TYPE, "rest", "Restful Operation");
    const AUTH: Coding<'static> = coding(DCM, "110114", "User Authentication");
    const EXPORT: Coding<'static> = coding(DCM, "110106", "Export");
    const APP: Coding<'static> = coding(DCM, "110100", "Application Activity");
    match action {
        AuditAction::Create => (REST, Some(coding(RESTFUL, "create", "create")), "C"),
        AuditAction::Read => (REST, Some(coding(RESTFUL, "read", "read")), "R"),
        AuditAction::Update => (REST, Some(coding(RESTFUL, "update", "update")), "U"),
        AuditAction::Delete => (REST, Some(coding(RESTFUL, "delete", "delete")), "D"),
        AuditAction::Export => (EXPORT, None, "R"),
        AuditAction::Import => (coding(DCM, "110107", "Import"), None, "C"),
        AuditAction::Login => (AUTH, Some(coding(DCM, "110122", "Login")), "E"),
        AuditAction::Logout => (AUTH, Some(coding(DCM, "110123", "Logout")), "E"),
        // Sharing data out (a disclosure: DATA_EXPORT / SHARE) is an export; other sharing changes who may access.
        AuditAction::Share if audit_type == AuditEventType::DataExport => (EXPORT, None, "R"),
        AuditAction::Share => (APP, None, "U"),
        // Execute (LLM calls, system operations) and any later action.
        _ => (APP, None, "E"),
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
fn agent(event: &AuditEvent) -> Agent<'_> {
    let service = non_empty(&event.service_name).unwrap_or("unknown");
    let processor = coding(ROLE_TYPE, "dataprocessor", "data processor");
    let Some(a) = event.actor.as_deref() else {
        return Agent {
            r#type: Concept { coding: Some([processor]), text: None },
            role: Vec::new(),
            who: Reference {
                identifier: Some(Identifier { system: None, value: service }),
                display: Some(Cow::Borrowed(service)),
            },
            alt_id: None,
            name: None,
            requestor: true,
            network: None,
        };
    };
    let human = matches!(a.actor_type.as_str(), "user" | "admin" | "");
    let role_type = if human { coding(ROLE_TYPE, "humanuser", "human user") } else { processor };
    let display = opt(&a.name).or(opt(&a.username)).or(non_empty(&a.actor_id)).unwrap_or("unknown");
    Agent {
        r#type: Concept { coding: Some([role_type]), text: None },
        role: a.roles.iter().map(|r| Concept { coding: None, text: Some(r) }).collect(),
        who: Reference {
            identifier: non_empty(&a.actor_id).map(|value| Identifier { system: None, value }),
            display: Some(Cow::Borrowed(display)),
        },
        alt_id: opt(&a.username).or(opt(&a.email)),
        name: opt(&a.name),
        requestor: true,
        network: client_ip(event).map(|address| Network { address, r#type: "2" }),
    }
}

/// `(entity type, object role)` of a resource type.
fn entity_kind(rt: ResourceType) -> (Coding<'static>, Coding<'static>) {
    const OBJECT: Coding<'static> = coding(ENTITY_TYPE, "2", "System Object");
    match rt {
        ResourceType::User => (coding(ENTITY_TYPE, "1", "Person"), coding(OBJECT_ROLE, "6", "User")),
        ResourceType::Organization => {
            (coding(ENTITY_TYPE, "3", "Organization"), coding(OBJECT_ROLE, "4", "Domain Resource"))
        }
        ResourceType::ApiKey
        | ResourceType::Token
        | ResourceType::Secret
        | ResourceType::Permission
        | ResourceType::Role => (OBJECT, coding(OBJECT_ROLE, "13", "Security Resource")),
        ResourceType::Database | ResourceType::Dataset | ResourceType::VectorStore => {
            (OBJECT, coding(OBJECT_ROLE, "17", "Data Repository"))
        }
        _ => (OBJECT, coding(OBJECT_ROLE, "4", "Domain Resource")),
    }
}

/// One `entity.detail`: a string value (JSON for anything but a string).
fn detail<'a>(key: &'a str, value: &'a Value) -> Detail<'a> {
    let value_string = match value {
        Value::String(s) => Cow::Borrowed(s.as_str()),
        other => Cow::Owned(other.to_string()),
    };
    Detail { r#type: key, value_string }
}

/// The entity the event is about, with the metadata and changes as details.
fn entity(event: &AuditEvent) -> Entity<'_> {
    let (ty, role) = entity_kind(event.resource_type);
    let id = non_empty(&event.resource_id);
    let name = opt(&event.resource_name);
    let what = (id.is_some() || name.is_some()).then(|| Reference {
        identifier: id.map(|value| Identifier { system: None, value }),
        display: name.map(Cow::Borrowed),
    });
    let mut details = Vec::with_capacity(2 + event.metadata.len());
    details.push(Detail { r#type: "resource_type", value_string: Cow::Borrowed(event.resource_type.as_str()) });
    if !event.changes.is_empty() {
        let changes = serde_json::to_string(&event.changes).unwrap_or_default();
        details.push(Detail { r#type: "changes", value_string: Cow::Owned(changes) });
    }
    if !event.data_categories.is_empty() {
        let categories = serde_json::to_string(&event.data_categories).unwrap_or_default();
        details.push(Detail { r#type: "data_categories", value_string: Cow::Owned(categories) });
    }
    details.extend(event.metadata.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| detail(k, v)));
    Entity { what, r#type: ty, role, description: opt(&event.description), detail: details }
}

/// The `AuditEvent.id`: the event id without its `evt_` prefix (a FHIR id allows no `_`), when that is a valid id.
fn resource_id(event_id: &str) -> Option<&str> {
    let id = event_id.strip_prefix("evt_").unwrap_or(event_id);
    (!id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'))
        .then_some(id)
}

/// The sub-extensions of [`EXTENSION_URL`].
fn extension<'a>(event: &'a AuditEvent, extras: &Extras<'a>) -> Extension<'a> {
    let string = |url: &'a str, v: Cow<'a, str>| SubExtension {
        url,
        value_string: Some(v),
        value_code: None,
        value_boolean: None,
    };
    let code =
        |url: &'a str, v: &'a str| SubExtension { url, value_string: None, value_code: Some(v), value_boolean: None };
    let mut subs = vec![
        string("eventId", Cow::Borrowed(&event.event_id)),
        code("auditType", event.audit_type.as_str()),
        code("severity", event.severity.as_str()),
        string("schemaVersion", Cow::Borrowed(&event.schema_version)),
    ];
    let optional: [(&str, Option<&'a str>); 5] = [
        ("serviceVersion", non_empty(&event.service_version)),
        ("traceId", opt(&event.trace_id)),
        ("spanId", opt(&event.span_id)),
        ("sessionId", event.actor.as_deref().and_then(|a| opt(&a.session_id))),
        ("tenantId", event.actor.as_deref().and_then(|a| opt(&a.tenant_id))),
    ];
    subs.extend(optional.into_iter().filter_map(|(url, v)| v.map(|v| string(url, Cow::Borrowed(v)))));
    if let Some(ua) = user_agent(event) {
        subs.push(string("userAgent", Cow::Owned(ua)));
    }
    // Disclosure fields without an AuditEvent element (recipient, purpose and patient have theirs).
    if let Some(days) = event.retention_days {
        subs.push(string("retentionDays", Cow::Owned(days.to_string())));
    }
    subs.extend(event.compliance_frameworks.iter().map(|f| string("complianceFramework", Cow::Borrowed(f))));
    if let Some(immutable) = event.immutable {
        subs.push(SubExtension {
            url: "immutable",
            value_string: None,
            value_code: None,
            value_boolean: Some(immutable),
        });
    }
    if let Some(c) = extras.chain {
        subs.push(string("chainId", Cow::Borrowed(c.chain_id)));
        // A string: R4 has no 64-bit integer type.
        subs.push(string("chainSeq", Cow::Owned(c.seq.to_string())));
        subs.push(string("chainHash", Cow::Borrowed(c.hash)));
    }
    Extension { url: EXTENSION_URL, extension: subs }
}

/// Writes the FHIR R4 `AuditEvent` resource for `event` to `out`.
pub(super) fn write(event: &AuditEvent, extras: &Extras<'_>, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    let (ty, std_subtype, action) = type_subtype_action(event.action, event.audit_type);
    let mut subtype: Vec<Coding<'_>> = std_subtype.into_iter().collect();
    subtype.push(coding(AUDIT_TYPE_SYSTEM, event.audit_type.as_str(), event.audit_type.as_str()));
    subtype.push(coding(ACTION_SYSTEM, event.action.as_str(), event.action.as_str()));
    let (outcome_code, outcome_desc) = outcome(event);
    let service = non_empty(&event.service_name).unwrap_or("unknown");
    let observer_display = match non_empty(&event.service_version) {
        Some(v) => Cow::Owned(format!("{service} {v}")),
        None => Cow::Borrowed(service),
    };
    let mut entities = vec![entity(event)];
    let destination = meta_str(event, "destination");
    if let (AuditEventType::DataExport, Some(dest)) = (event.audit_type, destination) {
        entities.push(Entity {
            what: Some(Reference { identifier: None, display: Some(Cow::Owned(dest)) }),
            r#type: coding(ENTITY_TYPE, "2", "System Object"),
            role: coding(OBJECT_ROLE, "16", "Data Destination"),
            description: None,
            detail: Vec::new(),
        });
    }
    // The patient a disclosure is about, by its keyed hash.
    if let Some(patient) = opt(&event.patient_ref) {
        entities.push(Entity {
            what: Some(Reference {
                identifier: Some(Identifier { system: Some(PATIENT_REF_SYSTEM), value: patient }),
                display: None,
            }),
            r#type: coding(ENTITY_TYPE, "1", "Person"),
            role: coding(OBJECT_ROLE, "1", "Patient"),
            description: None,
            detail: Vec::new(),
        });
    }
    let mut agents = vec![agent(event)];
    // The recipient of a disclosure: an information recipient, not the requestor.
    if let Some(recipient) = opt(&event.recipient) {
        agents.push(Agent {
            r#type: Concept { coding: Some([coding(PARTICIPATION, "IRCP", "information recipient")]), text: None },
            role: Vec::new(),
            who: Reference { identifier: None, display: Some(Cow::Borrowed(recipient)) },
            alt_id: None,
            name: None,
            requestor: false,
            network: None,
        });
    }
    let resource = Resource {
        resource_type: "AuditEvent",
        id: resource_id(&event.event_id),
        extension: [extension(event, extras)],
        r#type: ty,
        subtype,
        action,
        recorded: event.timestamp.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        outcome: outcome_code,
        outcome_desc,
        purpose_of_event: event
            .purpose_of_use
            .map(|p| Concept {
                coding: p.hl7_code().map(|code| [coding(ACT_REASON, code, p.as_str())]),
                text: Some(p.as_str()),
            })
            .into_iter()
            .collect(),
        agent: agents,
        source: Source {
            site: non_empty(&event.environment),
            observer: Reference {
                identifier: Some(Identifier { system: None, value: service }),
                display: Some(observer_display),
            },
            r#type: [coding(SOURCE_TYPE, "4", "Application Server")],
        },
        entity: entities,
    };
    serde_json::to_writer(out, &resource)
}
