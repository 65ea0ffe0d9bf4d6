//! [`KafkaSink`]: the audit pipeline's sink to the audit topic.

use std::time::Duration;

use super::KafkaExporter;
use crate::error::ExporterError;
use crate::export::{Record, RecordKind, Sink};

/// The audit sink that exports every event to the audit topic through a shared [`KafkaExporter`].
#[derive(Debug, Clone)]
#[cfg_attr(docsrs, doc(cfg(feature = "kafka")))]
pub struct KafkaSink {
    exporter: KafkaExporter,
    shutdown_timeout: Duration,
}

impl KafkaSink {
    /// A sink over `exporter`; shutting the pipeline down waits up to `shutdown_timeout` for acknowledgements.
    pub fn new(exporter: KafkaExporter, shutdown_timeout: Duration) -> Self {
        Self { exporter, shutdown_timeout }
    }
}

impl Sink for KafkaSink {
    fn name(&self) -> String {
        format!(
            "kafka {} topic {}",
            self.exporter.inner.config.bootstrap_servers, self.exporter.inner.config.audit_topic
        )
    }

    fn format(&self) -> crate::AuditFormat {
        self.exporter.inner.config.audit_format
    }

    fn write(&self, record: Record<'_>) -> Result<(), ExporterError> {
        match record.kind {
            RecordKind::Event(event) => self.exporter.send_audit_record(event, self.format(), record.output).map(drop),
            // Only sinks of the guide's JSON get checkpoints.
            RecordKind::Checkpoint(checkpoint) => self.exporter.send_checkpoint_json(checkpoint, record.json).map(drop),
        }
    }

    fn shutdown(&self) -> Result<(), ExporterError> {
        self.exporter.shutdown(self.shutdown_timeout)
    }
}
