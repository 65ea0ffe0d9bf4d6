//! OCSF rendering: API Activity (6003) for data operations, LLM calls and everything else, Authentication (3002)
//! for login and logout. Schema version [`AuditFormat::OCSF_VERSION`]; the table is in `docs/FORMATS.md`.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::{Map, Value};

use super::{client_ip, meta_str, non_empty, title, user_agent, ChainFields, Extras};
use crate::actor::ActorContext;
use crate::audit::event::AuditEvent;
use crate::audit::vocabulary::{AuditAction, AuditOutcome, AuditSeverity};
use crate::config::format::AuditFormat;

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
fn class_and_activity(action: AuditAction) -> (Class, u32, Cow<'static, str>) {
    match action {
        AuditAction::Login => (AUTHENTICATION, 1, Cow::Borrowed("Logon")),
        AuditAction::Logout => (AUTHENTICATION, 2, Cow::Borrowed("Logoff")),
        AuditAction::Create => (API_ACTIVITY, 1, Cow::Borrowed("Create")),
        AuditAction::Read => (API_ACTIVITY, 2, Cow::Borrowed("Read")),
        AuditAction::Update => (API_ACTIVITY, 3, Cow::Borrowed("Update")),
        AuditAction::Delete => (API_ACTIVITY, 4, Cow::Borrowed("Delete")),
        // Execute, Share, Export, Import (and any later action): "Other", named by the action.
        other => (API_ACTIVITY, 99, Cow::Owned(title(other.as_str()))),
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

/// Leaves out `None`s and empty lists.
macro_rules! ocsf_struct {
    ($(#[$m:meta])* struct $name:ident<'a> { $($field:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Serialize, Default)]
        struct $name<'a> {
            $(#[serde(skip_serializing_if = "Skip::skip")] $field: $ty,)*
            #[serde(skip)]
            _a: std::marker::PhantomData<&'a ()>,
        }
    };
}

/// Whether a field is left out of the JSON.
trait Skip {
    fn skip(&self) -> bool;
}
impl<T> Skip for Option<T> {
    fn skip(&self) -> bool {
        self.is_none()
    }
}
impl<T> Skip for Vec<T> {
    fn skip(&self) -> bool {
        self.is_empty()
    }
}
impl Skip for u32 {
    fn skip(&self) -> bool {
        false
    }
}
impl Skip for u64 {
    fn skip(&self) -> bool {
        false
    }
}
impl Skip for i64 {
    fn skip(&self) -> bool {
        false
    }
}
impl Skip for &str {
    fn skip(&self) -> bool {
        false
    }
}
impl Skip for String {
    fn skip(&self) -> bool {
        false
    }
}
impl Skip for Cow<'_, str> {
    fn skip(&self) -> bool {
        false
    }
}

ocsf_struct! {
    /// An OCSF event of class 6003 or 3002 (the attributes of the other class stay `None`).
    struct Event<'a> {
        class_uid: u32,
        class_name: &'a str,
        category_uid: u32,
        category_name: &'a str,
        activity_id: u32,
        activity_name: Cow<'a, str>,
        type_uid: u64,
        type_name: String,
        time: i64,
        severity_id: u32,
        severity: &'a str,
        status_id: u32,
        status: &'a str,
        status_detail: Option<String>,
        message: Option<&'a str>,
        metadata: Option<Metadata<'a>>,
        actor: Option<Actor<'a>>,
        user: Option<User<'a>>,
        api: Option<Api<'a>>,
        service: Option<Service<'a>>,
        resources: Vec<Resource<'a>>,
        src_endpoint: Option<Endpoint<'a>>,
        dst_endpoint: Option<Endpoint<'a>>,
        http_request: Option<HttpRequest>,
        session: Option<Uid<'a>>,
        trace: Option<Uid<'a>>,
        unmapped: Option<Unmapped<'a>>,
    }
}

ocsf_struct! {
    struct Metadata<'a> {
        version: &'a str,
        product: Option<Product<'a>>,
        uid: &'a str,
        original_time: String,
        log_name: &'a str,
        log_provider: &'a str,
        event_code: &'a str,
        correlation_uid: Option<&'a str>,
        sequence: Option<u64>,
        tenant_uid: Option<&'a str>,
        labels: Vec<String>,
        profiles: Vec<&'a str>,
    }
}

ocsf_struct! {
    struct Product<'a> { name: &'a str, vendor_name: &'a str, version: &'a str, lang: &'a str }
}

ocsf_struct! {
    struct Actor<'a> { user: Option<User<'a>>, session: Option<Uid<'a>>, app_name: Option<&'a str> }
}

ocsf_struct! {
    struct User<'a> {
        uid: Option<&'a str>,
        name: Option<&'a str>,
        full_name: Option<&'a str>,
        email_addr: Option<&'a str>,
        type_id: u32,
        r#type: Option<&'a str>,
        groups: Vec<Group<'a>>,
        org: Option<Uid<'a>>,
    }
}

ocsf_struct! {
    struct Group<'a> { name: &'a str, r#type: &'a str }
}

ocsf_struct! {
    struct Uid<'a> { uid: &'a str }
}

ocsf_struct! {
    struct Api<'a> { operation: &'a str, service: Option<Service<'a>> }
}

ocsf_struct! {
    struct Service<'a> { name: &'a str, version: Option<&'a str> }
}

ocsf_struct! {
    struct Resource<'a> {
        uid: Option<&'a str>,
        name: Option<&'a str>,
        r#type: &'a str,
        data: Option<Changes<'a>>,
    }
}

ocsf_struct! {
    struct Changes<'a> { changes: Option<&'a [crate::ChangeRecord]> }
}

ocsf_struct! {
    struct Endpoint<'a> { ip: Option<String>, svc_name: Option<Cow<'a, str>> }
}

ocsf_struct! {
    struct Integrity<'a> { chain_id: &'a str, seq: u64, hash: &'a str }
}

ocsf_struct! {
    struct Unmapped<'a> {
        audit_type: &'a str,
        action: &'a str,
        resource_type: &'a str,
        outcome: &'a str,
        severity: &'a str,
        environment: Option<&'a str>,
        schema_version: &'a str,
        span_id: Option<&'a str>,
        actor_email: Option<&'a str>,
        metadata: Option<&'a Map<String, Value>>,
        integrity: Option<Integrity<'a>>,
        disclosure: Option<Disclosure<'a>>,
    }
}

ocsf_struct! {
    /// The accounting-of-disclosures fields (`log_disclosure` and the disclosure setters), when set.
    struct Disclosure<'a> {
        recipient: Option<&'a str>,
        purpose_of_use: Option<&'a str>,
        purpose_of_use_code: Option<&'a str>,
        data_categories: Option<&'a [String]>,
        patient_ref: Option<&'a str>,
        retention_days: Option<u32>,
        compliance_frameworks: Option<&'a [String]>,
        immutable: Option<bool>,
    }
}

fn disclosure(event: &AuditEvent) -> Option<Disclosure<'_>> {
    let d = Disclosure {
        recipient: opt(&event.recipient),
        purpose_of_use: event.purpose_of_use.map(|p| p.as_str()),
        purpose_of_use_code: event.purpose_of_use.and_then(|p| p.hl7_code()),
        data_categories: (!event.data_categories.is_empty()).then_some(event.data_categories.as_slice()),
        patient_ref: opt(&event.patient_ref),
        retention_days: event.retention_days,
        compliance_frameworks: (!event.compliance_frameworks.is_empty())
            .then_some(event.compliance_frameworks.as_slice()),
        immutable: event.immutable,
        ..Default::default()
    };
    let any = d.recipient.is_some()
        || d.purpose_of_use.is_some()
        || d.data_categories.is_some()
        || d.patient_ref.is_some()
        || d.retention_days.is_some()
        || d.compliance_frameworks.is_some()
        || d.immutable.is_some();
    any.then_some(d)
}

#[derive(Serialize)]
struct HttpRequest {
    user_agent: String,
}

fn opt(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

/// An OCSF `user` object for an actor.
fn user(a: &ActorContext) -> User<'_> {
    let (type_id, type_name) = match a.actor_type.as_str() {
        "user" | "" => (1, "User"),
        "admin" => (2, "Admin"),
        "system" => (3, "System"),
        "service" => (99, "Service"),
        other => (99, other),
    };
    let uid = non_empty(&a.actor_id);
    let groups = a
        .roles
        .iter()
        .map(|r| Group { name: r, r#type: "role", ..Default::default() })
        .chain(a.groups.iter().map(|g| Group { name: g, r#type: "group", ..Default::default() }))
        .collect();
    User {
        uid,
        // `user` needs a uid, a name or an account: an actor known by nothing else is "unknown".
        name: opt(&a.username).or(opt(&a.name)).or(uid.is_none().then_some("unknown")),
        full_name: opt(&a.name),
        email_addr: opt(&a.email).filter(|e| is_email(e)),
        type_id,
        r#type: Some(type_name),
        groups,
        org: opt(&a.organization_id).map(|o| Uid { uid: o, ..Default::default() }),
        ..Default::default()
    }
}

/// The OCSF `actor`: the actor's user and session; with no actor, the service that recorded the event.
fn actor(event: &AuditEvent) -> Actor<'_> {
    match event.actor.as_deref() {
        Some(a) => Actor {
            user: Some(user(a)),
            session: opt(&a.session_id).map(|s| Uid { uid: s, ..Default::default() }),
            ..Default::default()
        },
        None => Actor { app_name: Some(service_name(event)), ..Default::default() },
    }
}

fn service_name(event: &AuditEvent) -> &str {
    non_empty(&event.service_name).unwrap_or("unknown")
}

/// The OCSF `service` object of the recording service.
fn service(event: &AuditEvent) -> Service<'_> {
    Service { name: service_name(event), version: non_empty(&event.service_version), ..Default::default() }
}

/// `resources`: the event's resource (left out when neither its id nor its name is known), and the patient of a
/// disclosure (`type` `PATIENT`, `uid` = its keyed hash).
fn resources(event: &AuditEvent) -> Vec<Resource<'_>> {
    let uid = non_empty(&event.resource_id);
    let name = opt(&event.resource_name);
    let data = (!event.changes.is_empty()).then(|| Changes { changes: Some(&event.changes), ..Default::default() });
    let mut out = Vec::with_capacity(2);
    if uid.is_some() || name.is_some() {
        out.push(Resource { uid, name, r#type: event.resource_type.as_str(), data, ..Default::default() });
    }
    // The patient a disclosure is about, by its keyed hash.
    if let Some(patient) = opt(&event.patient_ref) {
        out.push(Resource { uid: Some(patient), r#type: "PATIENT", ..Default::default() });
    }
    out
}

/// What has no OCSF attribute: the guide's own fields, the free-form metadata, the integrity-chain fields.
fn unmapped<'a>(event: &'a AuditEvent, chain: Option<ChainFields<'a>>) -> Unmapped<'a> {
    let email = event.actor.as_deref().and_then(|a| opt(&a.email)).filter(|e| !is_email(e));
    Unmapped {
        audit_type: event.audit_type.as_str(),
        action: event.action.as_str(),
        resource_type: event.resource_type.as_str(),
        outcome: event.outcome.as_str(),
        severity: event.severity.as_str(),
        environment: non_empty(&event.environment),
        schema_version: &event.schema_version,
        span_id: opt(&event.span_id),
        actor_email: email,
        metadata: (!event.metadata.is_empty()).then_some(&event.metadata),
        integrity: chain.map(|c| Integrity { chain_id: c.chain_id, seq: c.seq, hash: c.hash, ..Default::default() }),
        disclosure: disclosure(event),
        ..Default::default()
    }
}

/// Writes the OCSF event for `event` to `out`.
pub(super) fn write(event: &AuditEvent, extras: &Extras<'_>, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    let (class, activity_id, activity_name) = class_and_activity(event.action);
    let (severity_id, severity_name) = severity(event.severity);
    let (status_id, status_name, status_detail) = status(event);
    let trace_id = opt(&event.trace_id);
    let is_api = class.uid == API_ACTIVITY.uid;
    let metadata = Metadata {
        version: AuditFormat::OCSF_VERSION,
        product: Some(Product {
            name: PRODUCT_NAME,
            vendor_name: VENDOR_NAME,
            version: env!("CARGO_PKG_VERSION"),
            lang: "rust",
            ..Default::default()
        }),
        uid: &event.event_id,
        original_time: event.timestamp.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        log_name: LOG_NAME,
        log_provider: service_name(event),
        event_code: event.audit_type.as_str(),
        correlation_uid: trace_id,
        sequence: extras.chain.map(|c| c.seq),
        tenant_uid: event.actor.as_deref().and_then(|a| opt(&a.tenant_id)),
        labels: non_empty(&event.environment).map(|e| vec![format!("environment:{e}")]).unwrap_or_default(),
        // `trace` (API Activity) belongs to the trace profile.
        profiles: if trace_id.is_some() && is_api { vec!["trace"] } else { Vec::new() },
        ..Default::default()
    };
    let ip = client_ip(event);
    let http_request = user_agent(event).map(|ua| HttpRequest { user_agent: ua });
    let type_name = format!("{}: {}", class.name, if activity_id == 99 { "Other" } else { &activity_name });
    let mut e = Event {
        class_uid: class.uid,
        class_name: class.name,
        category_uid: class.category_uid,
        category_name: class.category_name,
        activity_id,
        activity_name,
        type_uid: u64::from(class.uid) * 100 + u64::from(activity_id),
        type_name,
        time: event.timestamp.timestamp_millis(),
        severity_id,
        severity: severity_name,
        status_id,
        status: status_name,
        status_detail,
        message: opt(&event.description),
        metadata: Some(metadata),
        http_request,
        unmapped: Some(unmapped(event, extras.chain)),
        ..Default::default()
    };
    if is_api {
        let llm_provider =
            (event.audit_type == crate::AuditEventType::AiInteraction).then(|| meta_str(event, "provider")).flatten();
        let destination = llm_provider.or_else(|| meta_str(event, "destination"));
        e.actor = Some(actor(event));
        e.api = Some(Api { operation: event.action.as_str(), service: Some(service(event)), ..Default::default() });
        e.resources = resources(event);
        // The caller's address when known; otherwise the service that performed the operation and recorded it.
        e.src_endpoint = Some(match ip {
            Some(ip) => Endpoint { ip: Some(ip), ..Default::default() },
            None => Endpoint { svc_name: Some(Cow::Borrowed(service_name(event))), ..Default::default() },
        });
        e.dst_endpoint = destination.map(|d| Endpoint { svc_name: Some(Cow::Owned(d)), ..Default::default() });
        e.trace = trace_id.map(|t| Uid { uid: t, ..Default::default() });
    } else {
        // The user who logs in or out is the event's resource (USER); their details come from the actor when it is
        // the same user.
        let subject = non_empty(&event.resource_id);
        let same = event.actor.as_deref().filter(|a| subject.is_none_or(|s| s == a.actor_id));
        e.user = Some(match (same, subject) {
            (Some(a), _) => user(a),
            (None, Some(s)) => User { uid: Some(s), type_id: 1, r#type: Some("User"), ..Default::default() },
            (None, None) => User { name: Some("unknown"), type_id: 0, r#type: Some("Unknown"), ..Default::default() },
        });
        e.actor = event.actor.as_ref().map(|_| actor(event));
        e.service = Some(service(event));
        e.dst_endpoint = Some(Endpoint { svc_name: Some(Cow::Borrowed(service_name(event))), ..Default::default() });
        e.src_endpoint = ip.map(|ip| Endpoint { ip: Some(ip), ..Default::default() });
        e.session =
            event.actor.as_deref().and_then(|a| opt(&a.session_id)).map(|s| Uid { uid: s, ..Default::default() });
    }
    serde_json::to_writer(out, &e)
}
