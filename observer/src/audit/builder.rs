//! The audit helpers (`log_create`, `log_login`, …), their builder and [`AuditLogger`].

use std::marker::PhantomData;
use std::sync::Arc;

use serde_json::Value;

use super::event::{AuditEvent, ChangeRecord};
use super::patient::PatientRef;
use super::vocabulary::{AuditAction, AuditEventType, AuditOutcome, AuditSeverity, PurposeOfUse, ResourceType};
use crate::actor::{current_actor, ActorContext};
use crate::error::AuditError;

/// Marker types that select the extra builder methods of each helper.
pub mod kind {
    /// Any audit event (`log_create`, `log_read`, …, `AuditLogger::log`).
    #[derive(Debug)]
    pub struct Generic;
    /// `log_login` / `log_logout`: `success`, `reason`, `ip_address`, `user_agent`.
    #[derive(Debug)]
    pub struct Auth;
    /// `log_llm_interaction`: tokens, cost, flow and summaries.
    #[derive(Debug)]
    pub struct LlmInteraction;
    /// `log_data_export`: format, record count, destination, reason.
    #[derive(Debug)]
    pub struct DataExport;
    /// `log_disclosure`: requires a recipient, a purpose of use and a patient.
    #[derive(Debug)]
    pub struct Disclosure;

    /// Implemented by the marker types; completes an event of that kind before it is recorded.
    pub trait Kind: sealed::Sealed {
        #[doc(hidden)]
        fn complete(_event: &mut crate::AuditEvent) {}

        /// The first field this kind requires that the event lacks.
        #[doc(hidden)]
        fn missing(_event: &crate::AuditEvent) -> Option<&'static str> {
            None
        }
    }

    mod sealed {
        pub trait Sealed {}
        impl Sealed for super::Generic {}
        impl Sealed for super::Auth {}
        impl Sealed for super::LlmInteraction {}
        impl Sealed for super::DataExport {}
        impl Sealed for super::Disclosure {}
    }

    impl Kind for Generic {}
    impl Kind for Auth {}
    impl Kind for DataExport {}
    impl Kind for Disclosure {
        /// A disclosure names its recipient, its purpose and the patient (the accounting is per patient).
        fn missing(event: &crate::AuditEvent) -> Option<&'static str> {
            if event.recipient.as_deref().is_none_or(|r| r.trim().is_empty()) {
                Some("recipient")
            } else if event.purpose_of_use.is_none() {
                Some("purpose_of_use")
            } else if event.patient_ref.is_none() {
                Some("patient_ref")
            } else {
                None
            }
        }
    }
    impl Kind for LlmInteraction {
        /// Completes `total_tokens` and, when no cost was given, `cost_usd` from the cost module; rounds
        /// `cost_usd` to 1e-10 USD ([`round_usd`](crate::cost::round_usd)).
        fn complete(event: &mut crate::AuditEvent) {
            use serde_json::Value;
            let m = &mut event.metadata;
            let tokens = |m: &serde_json::Map<String, Value>, k: &str| m.get(k).and_then(Value::as_u64).unwrap_or(0);
            let usage = crate::llm::TokenUsage {
                input_tokens: tokens(m, "input_tokens"),
                output_tokens: tokens(m, "output_tokens"),
                cached_tokens: tokens(m, "cached_tokens"),
                cache_creation_tokens: tokens(m, "cache_creation_tokens"),
                reasoning_tokens: tokens(m, "reasoning_tokens"),
                ..crate::llm::TokenUsage::default()
            };
            m.entry("input_tokens").or_insert(Value::from(usage.input_tokens));
            m.entry("output_tokens").or_insert(Value::from(usage.output_tokens));
            m.insert("total_tokens".into(), Value::from(usage.total_tokens()));
            match m.get("cost_usd").map(Value::as_f64) {
                Some(Some(given)) => {
                    m.insert("cost_usd".into(), Value::from(crate::cost::round_usd(given)));
                }
                Some(None) => {}
                None => {
                    let provider = m.get("provider").and_then(Value::as_str).unwrap_or_default().to_owned();
                    let cost = crate::cost::calculate_cost_usage(&provider, &event.resource_id, &usage);
                    event.metadata.insert("cost_usd".into(), Value::from(cost.total_cost));
                    if !cost.trusted {
                        event.metadata.insert("cost_trusted".into(), Value::Bool(false));
                    }
                }
            }
        }
    }
}

/// Builds one audit event; [`emit`](AuditBuilder::emit) records it and returns it.
///
/// Nothing is recorded until `emit` is called. The actor is taken from the current
/// [actor context](crate::actor) at `emit` unless set with [`actor`](AuditBuilder::actor).
#[must_use = "an audit event is recorded only by `.emit()`"]
#[derive(Debug)]
pub struct AuditBuilder<K = kind::Generic> {
    event: AuditEvent,
    /// The actor to use when neither `.actor()` nor the context gives one (login: the user logging in).
    fallback_actor: Option<ActorContext>,
    /// Why `.patient(..)` could not hash the identifier (no usable key): `emit` refuses the event.
    patient_error: Option<String>,
    _kind: PhantomData<K>,
}

impl<K> AuditBuilder<K> {
    fn new(audit_type: AuditEventType, action: AuditAction, resource_type: ResourceType, resource_id: String) -> Self {
        let mut event = AuditEvent::new(audit_type, action, resource_type, resource_id);
        event.severity = action.default_severity();
        Self { event, fallback_actor: None, patient_error: None, _kind: PhantomData }
    }

    /// A human-readable name of the resource.
    pub fn resource_name(mut self, name: impl Into<String>) -> Self {
        self.event.resource_name = Some(name.into());
        self
    }

    /// What happened (default: e.g. `"Created DOCUMENT doc-123"`).
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.event.description = Some(description.into());
        self
    }

    /// The actor, instead of the one from the current context.
    pub fn actor(mut self, actor: ActorContext) -> Self {
        self.event.actor = Some(Arc::new(actor));
        self
    }

    /// The severity (each helper sets the reference default).
    pub fn severity(mut self, severity: AuditSeverity) -> Self {
        self.event.severity = severity;
        self
    }

    /// The outcome (default `SUCCESS`).
    pub fn outcome(mut self, outcome: AuditOutcome) -> Self {
        self.event.outcome = outcome;
        self
    }

    /// Adds one metadata entry (any JSON value).
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.event.metadata.insert(key.into(), value.into());
        self
    }

    /// Adds every entry of a JSON object (other values are stored under the key `"value"`).
    pub fn metadata_map(mut self, map: impl Into<Value>) -> Self {
        match map.into() {
            Value::Object(m) => self.event.metadata.extend(m),
            Value::Null => {}
            other => {
                self.event.metadata.insert("value".into(), other);
            }
        }
        self
    }

    /// Field-level changes (for updates).
    pub fn changes(mut self, changes: impl IntoIterator<Item = ChangeRecord>) -> Self {
        self.event.changes.extend(changes);
        self
    }

    /// Who received the information (a person or an organisation): event field `recipient`.
    pub fn recipient(mut self, recipient: impl Into<String>) -> Self {
        self.event.recipient = Some(recipient.into());
        self
    }

    /// Why the information was used or disclosed: event field `purpose_of_use`.
    pub fn purpose_of_use(mut self, purpose: PurposeOfUse) -> Self {
        self.event.purpose_of_use = Some(purpose);
        self
    }

    /// Adds kinds of protected health information involved, e.g. `["diagnoses", "lab_results"]`: event field
    /// `data_categories` (empty ones are skipped).
    pub fn data_categories<S: Into<String>>(mut self, categories: impl IntoIterator<Item = S>) -> Self {
        self.event.data_categories.extend(categories.into_iter().map(Into::into).filter(|c| !c.trim().is_empty()));
        self
    }

    /// The patient the information is about, by identifier (e.g. a medical record number): recorded only as its
    /// keyed hash with the process-wide key ([`set_patient_key`](crate::audit::set_patient_key) or
    /// `OBSERVER_HMAC_KEY_FILE`), event field `patient_ref`. Without a usable key, `emit` refuses the event with
    /// [`AuditError::PatientKey`]: the identifier is never written in clear.
    pub fn patient(mut self, patient_id: impl AsRef<str>) -> Self {
        match super::patient::process_reference(patient_id.as_ref()) {
            Ok(r) => {
                self.event.patient_ref = Some(r.into());
                self.patient_error = None;
            }
            Err(reason) => {
                self.event.patient_ref = None;
                self.patient_error = Some(reason);
            }
        }
        self
    }

    /// The patient as a reference already hashed with a key of your own ([`PatientKey::reference`](
    /// crate::audit::PatientKey::reference)): event field `patient_ref`.
    pub fn patient_ref(mut self, patient: PatientRef) -> Self {
        self.event.patient_ref = Some(patient.into());
        self.patient_error = None;
        self
    }

    /// How many days the event must be kept: event field `retention_days`.
    pub fn retention_days(mut self, days: u32) -> Self {
        self.event.retention_days = Some(days);
        self
    }

    /// Adds compliance frameworks the event is kept for, e.g. `["HIPAA"]`: event field `compliance_frameworks`.
    pub fn compliance_frameworks<S: Into<String>>(mut self, frameworks: impl IntoIterator<Item = S>) -> Self {
        self.event
            .compliance_frameworks
            .extend(frameworks.into_iter().map(Into::into).filter(|f| !f.trim().is_empty()));
        self
    }

    /// Whether the event must be stored where it cannot be changed: event field `immutable`.
    pub fn immutable(mut self, immutable: bool) -> Self {
        self.event.immutable = Some(immutable);
        self
    }

    /// The event as it would be recorded now, without recording it.
    pub fn peek(&self) -> &AuditEvent {
        &self.event
    }

    /// Records the event and returns it, shared with the pipeline (the `Arc` avoids a deep copy on the
    /// caller's thread). Fills in the actor, the trace correlation and a default description, and hands it to
    /// the pipeline without blocking. Returns the event as recorded.
    ///
    /// # Errors
    /// [`AuditError::QueueFull`] (the queue is full; the event is inside the error, not recorded),
    /// [`AuditError::WriteFailed`] (before `init`, the synchronous write failed), [`AuditError::PatientKey`]
    /// (`.patient(..)` without a usable key) or [`AuditError::MissingField`] (a field the helper requires, e.g. the
    /// recipient of a disclosure).
    pub fn emit(mut self) -> Result<Arc<AuditEvent>, AuditError>
    where
        K: kind::Kind,
    {
        K::complete(&mut self.event);
        if let Some(reason) = self.patient_error.take() {
            return Err(AuditError::PatientKey { reason, event: Arc::new(self.finish()) });
        }
        if let Some(field) = K::missing(&self.event) {
            return Err(AuditError::MissingField { field, event: Arc::new(self.finish()) });
        }
        crate::init::submit(self.finish())
    }

    /// The event with the actor, the trace correlation and the default description filled in.
    fn finish(mut self) -> AuditEvent {
        if self.event.actor.is_none() {
            self.event.actor = current_actor().or_else(|| self.fallback_actor.take().map(Arc::new));
        }
        if self.event.trace_id.is_none() {
            if let Some((trace_id, span_id)) = crate::__private::current_trace_ids() {
                self.event.trace_id = Some(trace_id);
                self.event.span_id = Some(span_id);
            }
        }
        if self.event.description.is_none() {
            self.event.description = Some(default_description(&self.event));
        }
        self.event
    }
}

fn default_description(e: &AuditEvent) -> String {
    let failed = if e.outcome == AuditOutcome::Failure { " (failed)" } else { "" };
    if let (Some(recipient), AuditAction::Share, AuditEventType::DataExport) = (&e.recipient, e.action, e.audit_type) {
        let purpose = e.purpose_of_use.map(|p| format!(" for {}", p.as_str())).unwrap_or_default();
        let id = if e.resource_id.is_empty() { String::new() } else { format!(" {}", e.resource_id) };
        return format!("Disclosed {}{id} to {recipient}{purpose}{failed}", e.resource_type.as_str());
    }
    if e.audit_type == AuditEventType::AiInteraction {
        let provider = e.metadata.get("provider").and_then(Value::as_str).unwrap_or("unknown");
        return format!("LLM interaction with {provider}/{}{failed}", e.resource_id);
    }
    // Built by hand: this runs on every emit without a description, on the caller's thread.
    let (verb, kind) = (e.action.past_tense(), e.resource_type.as_str());
    let mut s = String::with_capacity(verb.len() + kind.len() + e.resource_id.len() + failed.len() + 2);
    s.push_str(verb);
    s.push(' ');
    s.push_str(kind);
    if !e.resource_id.is_empty() {
        s.push(' ');
        s.push_str(&e.resource_id);
    }
    s.push_str(failed);
    s
}

impl AuditAction {
    /// The past tense used in default descriptions ("Created", "Logged in", …).
    pub fn past_tense(self) -> &'static str {
        match self {
            Self::Create => "Created",
            Self::Read => "Read",
            Self::Update => "Updated",
            Self::Delete => "Deleted",
            Self::Execute => "Executed",
            Self::Share => "Shared",
            Self::Export => "Exported",
            Self::Import => "Imported",
            Self::Login => "Logged in",
            Self::Logout => "Logged out",
        }
    }

    /// The event type a plain action implies (used by `#[audit]`): read → DATA_ACCESS; create, update,
    /// delete, import → DATA_MODIFICATION; export → DATA_EXPORT; share → AUTHORIZATION; login, logout →
    /// AUTHENTICATION; execute → SYSTEM_EVENT.
    pub fn default_event_type(self) -> AuditEventType {
        match self {
            Self::Read => AuditEventType::DataAccess,
            Self::Create | Self::Update | Self::Delete | Self::Import => AuditEventType::DataModification,
            Self::Export => AuditEventType::DataExport,
            Self::Share => AuditEventType::Authorization,
            Self::Login | Self::Logout => AuditEventType::Authentication,
            Self::Execute => AuditEventType::SystemEvent,
        }
    }

    /// The reference severity for this action: MEDIUM for delete and export, INFO otherwise.
    pub fn default_severity(self) -> AuditSeverity {
        match self {
            Self::Delete | Self::Export => AuditSeverity::Medium,
            _ => AuditSeverity::Info,
        }
    }
}

impl AuditBuilder<kind::Auth> {
    /// Whether the login succeeded (default `true`). A failure sets outcome `FAILURE` and severity `MEDIUM`.
    pub fn success(mut self, success: bool) -> Self {
        if success {
            self.event.outcome = AuditOutcome::Success;
            self.event.severity = AuditSeverity::Info;
        } else {
            self.event.outcome = AuditOutcome::Failure;
            self.event.severity = AuditSeverity::Medium;
        }
        self
    }

    /// Why the login failed (metadata `reason`).
    pub fn reason(self, reason: impl Into<String>) -> Self {
        self.metadata("reason", reason.into())
    }

    /// The client's IP address (metadata `ip_address`).
    pub fn ip_address(self, ip: impl Into<String>) -> Self {
        self.metadata("ip_address", ip.into())
    }

    /// The client's user agent (metadata `user_agent`).
    pub fn user_agent(self, ua: impl Into<String>) -> Self {
        self.metadata("user_agent", ua.into())
    }
}

impl AuditBuilder<kind::LlmInteraction> {
    /// Input (prompt) tokens, cached ones included.
    pub fn input_tokens(self, n: u64) -> Self {
        self.metadata("input_tokens", n)
    }

    /// Output (completion) tokens.
    pub fn output_tokens(self, n: u64) -> Self {
        self.metadata("output_tokens", n)
    }

    /// Input tokens read from the provider's cache (used when the cost is computed here).
    pub fn cached_tokens(self, n: u64) -> Self {
        self.metadata("cached_tokens", n)
    }

    /// The cost in USD (metadata `cost_usd`, rounded to 1e-10 USD). When not given it is computed from the
    /// tokens (input, output, cached, `cache_creation_tokens` and `reasoning_tokens` metadata) with
    /// [`calculate_cost_usage`](crate::cost::calculate_cost_usage); a cost from absurd token counts adds
    /// `cost_trusted: false`.
    pub fn cost(self, usd: f64) -> Self {
        self.metadata("cost_usd", usd)
    }

    /// The flow the call belongs to (metadata `flow_id`).
    pub fn flow_id(self, id: impl Into<String>) -> Self {
        self.metadata("flow_id", id.into())
    }

    /// The session the call belongs to (metadata `session_id`).
    pub fn session_id(self, id: impl Into<String>) -> Self {
        self.metadata("session_id", id.into())
    }

    /// A summary of the prompt — never the prompt itself (metadata `prompt_summary`).
    pub fn prompt_summary(self, s: impl Into<String>) -> Self {
        self.metadata("prompt_summary", s.into())
    }

    /// A summary of the response (metadata `response_summary`).
    pub fn response_summary(self, s: impl Into<String>) -> Self {
        self.metadata("response_summary", s.into())
    }
}

impl AuditBuilder<kind::DataExport> {
    /// The export format, e.g. `"CSV"` (metadata `export_format`).
    pub fn export_format(self, format: impl Into<String>) -> Self {
        self.metadata("export_format", format.into())
    }

    /// How many records were exported (metadata `record_count`).
    pub fn record_count(self, n: u64) -> Self {
        self.metadata("record_count", n)
    }

    /// Where the data went (metadata `destination`).
    pub fn destination(self, d: impl Into<String>) -> Self {
        self.metadata("destination", d.into())
    }

    /// Why it was exported (metadata `reason`).
    pub fn reason(self, r: impl Into<String>) -> Self {
        self.metadata("reason", r.into())
    }
}

/// Records that a resource was created (DATA_MODIFICATION / CREATE / INFO).
pub fn log_create(resource_type: ResourceType, resource_id: impl Into<String>) -> AuditBuilder {
    AuditBuilder::new(AuditEventType::DataModification, AuditAction::Create, resource_type, resource_id.into())
}

/// Records that a resource was read (DATA_ACCESS / READ / INFO).
pub fn log_read(resource_type: ResourceType, resource_id: impl Into<String>) -> AuditBuilder {
    AuditBuilder::new(AuditEventType::DataAccess, AuditAction::Read, resource_type, resource_id.into())
}

/// Records that a resource was updated (DATA_MODIFICATION / UPDATE / INFO); add `.changes([...])`.
pub fn log_update(resource_type: ResourceType, resource_id: impl Into<String>) -> AuditBuilder {
    AuditBuilder::new(AuditEventType::DataModification, AuditAction::Update, resource_type, resource_id.into())
}

/// Records that a resource was deleted (DATA_MODIFICATION / DELETE / MEDIUM).
pub fn log_delete(resource_type: ResourceType, resource_id: impl Into<String>) -> AuditBuilder {
    AuditBuilder::new(AuditEventType::DataModification, AuditAction::Delete, resource_type, resource_id.into())
}

/// Records a login of `user_id` (AUTHENTICATION / LOGIN on USER; `.success(false)` → FAILURE / MEDIUM).
/// Without an actor in context, the user logging in is the actor.
pub fn log_login(user_id: impl Into<String>) -> AuditBuilder<kind::Auth> {
    let user_id = user_id.into();
    let mut b =
        AuditBuilder::new(AuditEventType::Authentication, AuditAction::Login, ResourceType::User, user_id.clone());
    b.fallback_actor = Some(ActorContext::new(user_id));
    b
}

/// Records a logout of `user_id` (AUTHENTICATION / LOGOUT on USER).
pub fn log_logout(user_id: impl Into<String>) -> AuditBuilder<kind::Auth> {
    let user_id = user_id.into();
    let mut b =
        AuditBuilder::new(AuditEventType::Authentication, AuditAction::Logout, ResourceType::User, user_id.clone());
    b.fallback_actor = Some(ActorContext::new(user_id));
    b
}

/// Records an LLM call (AI_INTERACTION / EXECUTE on LLM_MODEL `model`), with metadata `model`, `provider`,
/// `input_tokens`, `output_tokens`, `total_tokens`, `cost_usd` and whatever else is set.
///
/// The arguments are `(provider, model)`, the order of [`calculate_cost`](crate::calculate_cost) and of
/// `genai-prices`. When the pair cannot be priced but the swapped pair can, the cost module's warning says so.
pub fn log_llm_interaction(
    provider: impl Into<String>,
    model: impl Into<String>,
) -> AuditBuilder<kind::LlmInteraction> {
    let model = model.into();
    AuditBuilder::new(AuditEventType::AiInteraction, AuditAction::Execute, ResourceType::LlmModel, model.clone())
        .metadata("model", model)
        .metadata("provider", provider.into())
}

/// Records a data export (DATA_EXPORT / EXPORT / MEDIUM).
pub fn log_data_export(resource_type: ResourceType, resource_id: impl Into<String>) -> AuditBuilder<kind::DataExport> {
    AuditBuilder::new(AuditEventType::DataExport, AuditAction::Export, resource_type, resource_id.into())
}

/// Records a disclosure of protected health information (DATA_EXPORT / SHARE / MEDIUM) for the accounting of
/// disclosures (HIPAA 45 CFR 164.528): set `.recipient(..)`, `.purpose_of_use(..)` and `.patient(..)` (or
/// `.patient_ref(..)`), all three required (else `emit` returns [`AuditError::MissingField`]), and usually
/// `.data_categories([..])` (what was disclosed). One event per patient: the accounting is per patient. Default
/// description: `"Disclosed DOCUMENT doc-123 to Acme Insurance for PAYMENT"`.
pub fn log_disclosure(resource_type: ResourceType, resource_id: impl Into<String>) -> AuditBuilder<kind::Disclosure> {
    AuditBuilder::new(AuditEventType::DataExport, AuditAction::Share, resource_type, resource_id.into())
        .severity(AuditSeverity::Medium)
}

/// The audit logger: the guide's `get_audit_logger()`. All helpers go through the same process-wide pipeline.
#[derive(Debug)]
pub struct AuditLogger {
    _private: (),
}

static LOGGER: AuditLogger = AuditLogger { _private: () };

/// The process-wide [`AuditLogger`].
pub fn get_audit_logger() -> &'static AuditLogger {
    &LOGGER
}

impl AuditLogger {
    /// Any audit event: type, action, resource. Set `.severity()`, `.metadata()`, `.description()`, then `.emit()`.
    pub fn log(
        &self,
        event_type: AuditEventType,
        action: AuditAction,
        resource_type: ResourceType,
        resource_id: impl Into<String>,
    ) -> AuditBuilder {
        AuditBuilder::new(event_type, action, resource_type, resource_id.into())
    }

    /// Records a fully built event as it is (the actor is filled from the context if unset).
    pub fn log_event(&self, event: AuditEvent) -> Result<Arc<AuditEvent>, AuditError> {
        AuditBuilder::<kind::Generic> { event, fallback_actor: None, patient_error: None, _kind: PhantomData }.emit()
    }

    /// See [`log_create`].
    pub fn log_create(&self, resource_type: ResourceType, resource_id: impl Into<String>) -> AuditBuilder {
        log_create(resource_type, resource_id)
    }

    /// See [`log_read`].
    pub fn log_read(&self, resource_type: ResourceType, resource_id: impl Into<String>) -> AuditBuilder {
        log_read(resource_type, resource_id)
    }

    /// See [`log_update`].
    pub fn log_update(&self, resource_type: ResourceType, resource_id: impl Into<String>) -> AuditBuilder {
        log_update(resource_type, resource_id)
    }

    /// See [`log_delete`].
    pub fn log_delete(&self, resource_type: ResourceType, resource_id: impl Into<String>) -> AuditBuilder {
        log_delete(resource_type, resource_id)
    }
}
