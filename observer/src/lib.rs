//! # observer
//!
//! Makes LLM and agent applications auditable and observable: compliance-grade audit events with the actor
//! who caused them, LLM token and cost accounting, Kafka export and OpenTelemetry tracing.
//!
//! ```
//! use observer::{audit, ActorContext, ObserverConfig, ResourceType};
//!
//! # fn main() -> Result<(), observer::ObserverError> {
//! # let dir = tempfile_dir();
//! let _guard = observer::init(ObserverConfig {
//!     service_name: "my-service".into(),
//!     audit_sink: observer::AuditSink::file(dir.join("audit.jsonl")),
//!     ..Default::default()
//! })?;
//!
//! observer::set_actor_context(Some(ActorContext::new("user-123").email("user@example.com")));
//! let event = audit::log_read(ResourceType::Document, "doc-123").emit()?;
//! assert_eq!(event.actor.as_ref().map(|a| a.actor_id.as_str()), Some("user-123"));
//!
//! let cost = observer::calculate_cost("openai", "gpt-4o", 1000, 500);
//! println!("{:.4} USD", cost.total_cost);
//! # Ok(())
//! # }
//! # fn tempfile_dir() -> std::path::PathBuf { let d = std::env::temp_dir().join(format!("observer-doc-{}", std::process::id())); std::fs::create_dir_all(&d).unwrap(); d }
//! ```
//!
//! See the README for how every section of the usage guide maps onto this crate.

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod actor;
mod agent;
pub mod audit;
mod clock;
mod config;
pub mod cost;
mod diag;
mod error;
pub mod export;
mod init;
pub mod integrity;
pub mod llm;
mod otel;
mod outbound;
pub mod redact;
mod scope;
#[cfg(unix)]
mod signals;
pub mod trace;
#[cfg(feature = "web")]
#[cfg_attr(docsrs, doc(cfg(feature = "web")))]
pub mod web;
mod workflow;

#[doc(hidden)]
pub mod __private;

pub use actor::context::{get_actor_context, register_actor_provider, set_actor_context, with_actor, ActorContext};
pub use actor::keycloak::{set_actor_from_keycloak_token, ClaimMappings, Verify};
pub use audit::builder::{get_audit_logger, AuditLogger};
pub use audit::event::{AuditEvent, ChangeRecord};
pub use audit::vocabulary::{AuditAction, AuditEventType, AuditOutcome, AuditSeverity, ResourceType};
pub use config::AuditFormat;
pub use config::{
    AuditSink, CaptureLevel, Compression, FilePermissions, FileSync, IntegrityConfig, KafkaConfig, ObserverConfig,
    PriceConfig, PriceDataSource, PriceOverride, RedactionConfig, SaslMechanism, Secret, SecurityProtocol,
    SigningKeySource,
};
pub use cost::price::{calculate_cost, calculate_cost_cached, calculate_cost_usage, get_price, CostResult, ModelPrice};
pub use error::{AuditError, ConfigurationError, ExporterError, ObserverError, TokenError};
#[cfg(feature = "kafka")]
#[cfg_attr(docsrs, doc(cfg(feature = "kafka")))]
pub use init::kafka_exporter;
pub use init::{configure, exit, flush, init, is_initialized, shutdown, stats, InitStatus, ObserverGuard};
#[doc(inline)]
pub use observer_macros::audit;
#[doc(inline)]
pub use observer_macros::{agent_component, step, workflow};
pub use scope::{InCurrentScope, ScopeExt};
#[cfg(unix)]
#[cfg_attr(docsrs, doc(cfg(unix)))]
pub use signals::{shutdown_on_signals, shutdown_signal, ShutdownSignal};
