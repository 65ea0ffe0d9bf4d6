//! Audit logging: the vocabulary, [`AuditEvent`], and the guide's helpers.
//!
//! ```
//! use observer::{audit, ChangeRecord, ResourceType};
//!
//! # fn main() -> Result<(), observer::AuditError> {
//! # let sink = observer::MemorySink::new();
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

mod builder;
pub(crate) mod event;
mod vocabulary;

pub use builder::{
    get_audit_logger, kind, log_create, log_data_export, log_delete, log_llm_interaction, log_login, log_logout,
    log_read, log_update, AuditBuilder, AuditLogger,
};
pub use event::{new_event_id, AuditEvent, ChangeRecord, SCHEMA_VERSION};
pub use vocabulary::{AuditAction, AuditEventType, AuditOutcome, AuditSeverity, ResourceType, UnknownVariant};
