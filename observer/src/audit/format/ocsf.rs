//! OCSF rendering: API Activity (6003) for data operations, LLM calls and everything else, Authentication (3002)
//! for login and logout. Schema version [`AuditFormat::OCSF_VERSION`]; the table is in `docs/FORMATS.md`.

use serde_json::{json, Value};

use super::{client_ip, meta_str, non_empty, object, title, user_agent, Extras};
use crate::actor::ActorContext;
use crate::audit::event::AuditEvent;
use crate::audit::vocabulary::{AuditAction, AuditOutcome, AuditSeverity};
use crate::config::AuditFormat;

/// `metadata.product` of every event: this SDK.
const PRODUCT_NAME: &str = "Autonomize Observer";
const VENDOR_NAME: &str = "Autonomize";
/// `metadata.log_name` of every event.
const LOG_NAME: &str = "audit";

/// The OCSF class of an event: (class_uid, class_name, category_uid, category_name).
#[derive(Clone, Copy)]
struct Class {
    uid: u32,
    name: &'static str,
    category_uid: u32,
    category_name: &'static str,
}

const API_ACTIVITY: Class =
    Class { uid: 6003, name: "API Activity", category_uid: 6, category_name: "Application Activity" };
const AUTHENTICATION: Class =
    Class { uid: 3002, name: "Authentication", category_uid: 3, category_name: "Identity & Access Management" };

/// The class and `(activity_id, activity_name)` of an action.
fn class_and_activity(action: AuditAction) -> (Class, u32, String) {
    match action {
        AuditAction::Login => (AUTHENTICATION, 1, "Logon".into()),
        AuditAction::Logout => (AUTHENTICATION, 2, "Logoff".into()),
        AuditAction::Create => (API_ACTIVITY, 1, "Create".into()),
        AuditAction::Read => (API_ACTIVITY, 2, "Read".into()),
        AuditAction::Update => (API_ACTIVITY, 3, "Update".into()),
        AuditAction::Delete => (API_ACTIVITY, 4, "Delete".into()),
        // Execute, Share, Export, Import (and any later action): "Other", named by the action.
        other => (API_ACTIVITY, 99, title(other.as_str())),
    }
}

/// `(severity_id, severity)`.
fn severity(s: AuditSeverity) -> (u32, &'static str) {
    match s {
        AuditSeverity::Info => (1, "Informational"),
        AuditSeverity::Low => (2, "Low"),
        AuditSeverity::Medium => (3, "Medium"),
        AuditSeverity::High => (4, "High"),
        AuditSeverity::Critical => (5, "Critical"),
    }
}

/// `(status_id, status, status_detail)`.
fn status(event: &AuditEvent) -> (u32, &'static str, Option<String>) {
    let reason = meta_str(event, "reason");
    match event.outcome {
        AuditOutcome::Success => (1, "Success", reason),
        AuditOutcome::Failure => (2, "Failure", reason),
        AuditOutcome::Denied => {
            (2, "Failure", Some(reason.map_or_else(|| "Denied".to_owned(), |r| format!("Denied: {r}"))))
        }
        AuditOutcome::Partial => (99, "Partial", reason),
    }
}

/// Whether `s` looks like an e-mail address (OCSF `email_t`); others are kept in `unmapped`.
fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else { return false };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.contains(char::is_whitespace)
        && !domain.contains('@')
}

/// An OCSF `user` object for an actor.
fn user(a: &ActorContext, uid_override: Option<&str>) -> Value {
    let (type_id, type_name) = match a.actor_type.as_str() {
        "user" | "" => (1, "User"),
        "admin" => (2, "Admin"),
        "system" => (3, "System"),
        "service" => (99, "Service"),
        other => (99, other),
    };
    let uid = uid_override.or_else(|| non_empty(&a.actor_id));
    let name = a.username.as_deref().or(a.name.as_deref()).filter(|s| !s.is_empty());
    let groups: Vec<Value> = a
        .roles
        .iter()
        .map(|r| json!({"name": r, "type": "role"}))
        .chain(a.groups.iter().map(|g| json!({"name": g, "type": "group"})))
        .collect();
    object([
        ("uid", uid.map(Value::from)),
        // `user` needs a uid, a name or an account: an actor known by nothing else is "unknown".
        ("name", name.map(Value::from).or_else(|| uid.is_none().then(|| Value::from("unknown")))),
        ("full_name", a.name.as_deref().filter(|s| !s.is_empty()).map(Value::from)),
        ("email_addr", a.email.as_deref().filter(|e| is_email(e)).map(Value::from)),
        ("type_id", Some(Value::from(type_id))),
        ("type", Some(Value::from(type_name))),
        ("groups", (!groups.is_empty()).then_some(Value::Array(groups))),
        ("org", a.organization_id.as_deref().filter(|s| !s.is_empty()).map(|o| json!({"uid": o}))),
    ])
}

/// The OCSF `actor`: the actor's user and session; with no actor, the service that recorded the event.
fn actor(event: &AuditEvent) -> Value {
    match event.actor.as_deref() {
        Some(a) => object([
            ("user", Some(user(a, None))),
            ("session", a.session_id.as_deref().filter(|s| !s.is_empty()).map(|s| json!({"uid": s}))),
        ]),
        None => json!({"app_name": service_name(event)}),
    }
}

fn service_name(event: &AuditEvent) -> &str {
    non_empty(&event.service_name).unwrap_or("unknown")
}

/// The OCSF `service` object of the recording service.
fn service(event: &AuditEvent) -> Value {
    object([
        ("name", Some(Value::from(service_name(event)))),
        ("version", non_empty(&event.service_version).map(Value::from)),
    ])
}

/// `resources`: the event's resource (left out when neither its id nor its name is known).
fn resources(event: &AuditEvent) -> Option<Value> {
    let uid = non_empty(&event.resource_id);
    let name = event.resource_name.as_deref().filter(|s| !s.is_empty());
    if uid.is_none() && name.is_none() {
        return None;
    }
    let data = (!event.changes.is_empty()).then(|| json!({"changes": event.changes}));
    Some(json!([object([
        ("uid", uid.map(Value::from)),
        ("name", name.map(Value::from)),
        ("type", Some(Value::from(event.resource_type.as_str()))),
        ("data", data),
    ])]))
}

/// What has no OCSF attribute: the guide's own fields, the free-form metadata, the integrity-chain fields.
fn unmapped(event: &AuditEvent, extras: &Extras<'_>) -> Value {
    let email = event.actor.as_deref().and_then(|a| a.email.as_deref()).filter(|e| !e.is_empty() && !is_email(e));
    object([
        ("audit_type", Some(Value::from(event.audit_type.as_str()))),
        ("action", Some(Value::from(event.action.as_str()))),
        ("resource_type", Some(Value::from(event.resource_type.as_str()))),
        ("outcome", Some(Value::from(event.outcome.as_str()))),
        ("severity", Some(Value::from(event.severity.as_str()))),
        ("environment", non_empty(&event.environment).map(Value::from)),
        ("schema_version", Some(Value::from(event.schema_version.as_ref()))),
        ("span_id", event.span_id.as_deref().filter(|s| !s.is_empty()).map(Value::from)),
        ("actor_email", email.map(Value::from)),
        ("metadata", (!event.metadata.is_empty()).then(|| Value::Object(event.metadata.clone()))),
        ("integrity", extras.chain.map(|c| json!({"chain_id": c.chain_id, "seq": c.seq, "hash": c.hash}))),
    ])
}

/// The OCSF event for `event`.
pub(super) fn to_value(event: &AuditEvent, extras: &Extras<'_>) -> Value {
    let (class, activity_id, activity_name) = class_and_activity(event.action);
    let (severity_id, severity_name) = severity(event.severity);
    let (status_id, status_name, status_detail) = status(event);
    let trace_id = event.trace_id.as_deref().filter(|s| !s.is_empty());
    let metadata = object([
        ("version", Some(Value::from(AuditFormat::OCSF_VERSION))),
        (
            "product",
            Some(
                json!({"name": PRODUCT_NAME, "vendor_name": VENDOR_NAME, "version": env!("CARGO_PKG_VERSION"), "lang": "rust"}),
            ),
        ),
        ("uid", Some(Value::from(event.event_id.as_str()))),
        ("original_time", Some(Value::from(event.timestamp.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)))),
        ("log_name", Some(Value::from(LOG_NAME))),
        ("log_provider", Some(Value::from(service_name(event)))),
        ("event_code", Some(Value::from(event.audit_type.as_str()))),
        ("correlation_uid", trace_id.map(Value::from)),
        ("sequence", extras.chain.map(|c| Value::from(c.seq))),
        (
            "tenant_uid",
            event.actor.as_deref().and_then(|a| a.tenant_id.as_deref()).filter(|s| !s.is_empty()).map(Value::from),
        ),
        ("labels", non_empty(&event.environment).map(|e| json!([format!("environment:{e}")]))),
        // `trace` (API Activity) belongs to the trace profile.
        ("profiles", (trace_id.is_some() && class.uid == API_ACTIVITY.uid).then(|| json!(["trace"]))),
    ]);
    let ip = client_ip(event);
    let http_request = user_agent(event).map(|ua| json!({"user_agent": ua}));
    let common = [
        ("class_uid", Some(Value::from(class.uid))),
        ("class_name", Some(Value::from(class.name))),
        ("category_uid", Some(Value::from(class.category_uid))),
        ("category_name", Some(Value::from(class.category_name))),
        ("activity_id", Some(Value::from(activity_id))),
        ("activity_name", Some(Value::from(activity_name.as_str()))),
        ("type_uid", Some(Value::from(u64::from(class.uid) * 100 + u64::from(activity_id)))),
        (
            "type_name",
            Some(Value::from(format!(
                "{}: {}",
                class.name,
                if activity_id == 99 { "Other" } else { activity_name.as_str() }
            ))),
        ),
        ("time", Some(Value::from(event.timestamp.timestamp_millis()))),
        ("severity_id", Some(Value::from(severity_id))),
        ("severity", Some(Value::from(severity_name))),
        ("status_id", Some(Value::from(status_id))),
        ("status", Some(Value::from(status_name))),
        ("status_detail", status_detail.map(Value::from)),
        ("message", event.description.as_deref().filter(|s| !s.is_empty()).map(Value::from)),
        ("metadata", Some(metadata)),
    ];
    let mut out = object(common);
    let specific = if class.uid == AUTHENTICATION.uid {
        // The user who logs in or out is the event's resource (USER); their details come from the actor when it is
        // the same user.
        let subject = non_empty(&event.resource_id);
        let same = event.actor.as_deref().filter(|a| subject.is_none_or(|s| s == a.actor_id));
        let user_value = match (same, subject) {
            (Some(a), _) => user(a, None),
            (None, Some(s)) => json!({"uid": s, "type_id": 1, "type": "User"}),
            (None, None) => json!({"name": "unknown", "type_id": 0, "type": "Unknown"}),
        };
        object([
            ("user", Some(user_value)),
            ("actor", event.actor.as_ref().map(|_| actor(event))),
            ("service", Some(service(event))),
            ("dst_endpoint", Some(json!({"svc_name": service_name(event)}))),
            ("src_endpoint", ip.map(|ip| json!({"ip": ip}))),
            ("http_request", http_request),
            (
                "session",
                event
                    .actor
                    .as_deref()
                    .and_then(|a| a.session_id.as_deref())
                    .filter(|s| !s.is_empty())
                    .map(|s| json!({"uid": s})),
            ),
            ("unmapped", Some(unmapped(event, extras))),
        ])
    } else {
        let llm_provider =
            (event.audit_type == crate::AuditEventType::AiInteraction).then(|| meta_str(event, "provider")).flatten();
        let destination = meta_str(event, "destination");
        let dst = llm_provider.or(destination).map(|d| json!({"svc_name": d}));
        object([
            ("actor", Some(actor(event))),
            ("api", Some(json!({"operation": event.action.as_str(), "service": service(event)}))),
            ("resources", resources(event)),
            // The caller's address when known; otherwise the service that performed the operation and recorded it.
            ("src_endpoint", Some(ip.map_or_else(|| json!({"svc_name": service_name(event)}), |ip| json!({"ip": ip})))),
            ("dst_endpoint", dst),
            ("http_request", http_request),
            ("trace", trace_id.map(|t| json!({"uid": t}))),
            ("unmapped", Some(unmapped(event, extras))),
        ])
    };
    if let (Value::Object(out), Value::Object(specific)) = (&mut out, specific) {
        out.extend(specific);
    }
    out
}
