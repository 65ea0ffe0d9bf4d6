//! Audit logging: the guide's `log_*` helpers.
//!
//! The audit nouns ([`AuditEvent`], [`ChangeRecord`](crate::ChangeRecord), the vocabulary
//! enums, [`get_audit_logger`], [`AuditLogger`](crate::AuditLogger)) are at the crate
//! root; this module holds the guide's `log_*` helpers and their [`AuditBuilder`], and the accounting of
//! disclosures: [`log_disclosure`], [`PurposeOfUse`], patient references ([`PatientKey`], [`PatientRef`]) and
//! [`accounting`], which lists the disclosures about one patient over a date range from a JSON-lines trail.
//!
//! ```
//! use observer::{audit, ChangeRecord, ResourceType};
//!
//! # fn main() -> Result<(), observer::AuditError> {
//! # let sink = observer::export::MemorySink::new();
//! # let _g = observer::init(observer::ObserverConfig { audit_sink: observer::AuditSink::Memory(sink), ..Default::default() }).unwrap();
//! let event = audit::log_create(ResourceType::Document, "doc-123")
//!     .resource_name("Project Proposal")
//!     .description("Created new project proposal document")
//!     .emit()?;
//! assert_eq!(event.to_json()["audit_type"], "DATA_MODIFICATION");
//!
//! audit::log_update(ResourceType::Document, "doc-123")
//!     .changes([ChangeRecord::new("title", "Draft", "Final")])
//!     .emit()?;
//! # Ok(())
//! # }
//! ```

mod accounting;
pub(crate) mod builder;
pub(crate) mod event;
pub(crate) mod format;
mod patient;
pub(crate) mod vocabulary;

pub use accounting::{accounting, Accounting, AccountingEntry, AccountingError, MalformedLine};
pub use builder::{
    kind, log_create, log_data_export, log_delete, log_disclosure, log_llm_interaction, log_login, log_logout,
    log_read, log_update, AuditBuilder,
};
pub use event::{new_event_id, SCHEMA_VERSION};
pub use patient::{
    set_patient_key, PatientKey, PatientKeyError, PatientRef, PATIENT_KEY_FILE_ENV, PATIENT_KEY_MIN_LEN,
    PATIENT_REF_PREFIX,
};
pub use vocabulary::PurposeOfUse;
pub use vocabulary::UnknownVariant;

// The crate's own short paths to the nouns published at the root.
pub(crate) use builder::get_audit_logger;
pub(crate) use event::AuditEvent;
pub(crate) use patient::set_config_key as set_config_patient_key;
pub(crate) use vocabulary::{AuditAction, ResourceType};
