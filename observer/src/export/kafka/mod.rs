//! Kafka, in one place (feature `kafka`): the [`KafkaExporter`] with its durable disk spool, the audit sink
//! [`KafkaSink`], the per-cluster producers shared by the tracers' event streams, the one topic sink of those
//! streams ([`KafkaTopicSink`]) and (feature `otel-kafka`) OpenTelemetry spans as OTLP-JSON.

mod client;
mod delivery;
mod exporter;
#[cfg(feature = "otel-kafka")]
pub(crate) mod otlp;
mod producer;
mod replay;
mod sink;
mod spool;
mod topic;

pub use exporter::{Accepted, KafkaExporter, KafkaStats};
pub(crate) use producer::flush_shared_producers;
pub use sink::KafkaSink;
pub use topic::KafkaTopicSink;
