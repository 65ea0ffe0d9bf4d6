//! The Kafka producers of the tracers' event streams: the exporter of `observer::init` when it serves the same
//! cluster, otherwise one [`KafkaExporter`] per cluster, shared by every sink of the process and shut down when
//! the last one using it is dropped.

use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use super::KafkaExporter;
use crate::config::KafkaConfig;
use crate::error::ExporterError;

/// How long an exporter created for agent tracers (not the one of `observer::init`) gets to deliver when the
/// last tracer and factory using it are dropped; what is left goes to its spool.
const OWNED_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// The exporter of `observer::init`, or one created for tracers and shut down when its last user is dropped.
#[derive(Clone)]
pub(crate) enum SharedProducer {
    Global(KafkaExporter),
    Owned(Arc<OwnedExporter>),
}

pub(crate) struct OwnedExporter {
    key: String,
    exporter: KafkaExporter,
}

impl Drop for OwnedExporter {
    fn drop(&mut self) {
        if let Err(e) = self.exporter.shutdown(OWNED_SHUTDOWN_TIMEOUT) {
            crate::diag::report!(
                WARN,
                "agent-exporter-shutdown",
                "agent trace exporter shut down with undelivered events (kept in its spool): {e}"
            );
        }
    }
}

/// Exporters created for tracers, one per cluster, shared while any tracer or factory uses them.
static OWNED: Mutex<Vec<Weak<OwnedExporter>>> = Mutex::new(Vec::new());

/// Flushes every exporter created for tracers (the one of `observer::init` is flushed with the audit pipeline),
/// waiting at most `timeout` in all. [`observer::flush`](crate::flush) calls it.
pub(crate) fn flush_shared_producers(timeout: Duration) -> Result<(), ExporterError> {
    let deadline = std::time::Instant::now() + timeout;
    let owned: Vec<Arc<OwnedExporter>> =
        OWNED.lock().unwrap_or_else(PoisonError::into_inner).iter().filter_map(Weak::upgrade).collect();
    // Every one is flushed, also after a failure; the first failure is the answer.
    let mut first = Ok(());
    for o in &owned {
        let res = o.exporter.flush(deadline.saturating_duration_since(std::time::Instant::now()));
        first = first.and(res);
    }
    first
}

fn cluster_key(config: &KafkaConfig) -> String {
    format!(
        "{}|{}|{}|{}",
        config.bootstrap_servers,
        config.effective_security_protocol().as_str(),
        config.sasl_username.as_deref().unwrap_or(""),
        config.client_id
    )
}

impl SharedProducer {
    /// The producer for `config`'s cluster: the exporter of `observer::init` when it is connected to the same
    /// bootstrap servers, else the one exporter per cluster created for tracers (created now if there is none).
    ///
    /// # Errors
    /// The [`KafkaExporter::new`] errors (invalid config, spool directory in use).
    pub(crate) fn for_cluster(config: &KafkaConfig) -> Result<Self, ExporterError> {
        // The one place Kafka settings are checked (and SASL defaults applied), also when the exporter
        // of `observer::init` is reused.
        config.validate()?;
        if let Some(global) = crate::kafka_exporter() {
            if global.config().bootstrap_servers == config.bootstrap_servers {
                return Ok(Self::Global(global));
            }
        }
        let key = cluster_key(config);
        let mut owned = OWNED.lock().unwrap_or_else(PoisonError::into_inner);
        owned.retain(|w| w.strong_count() > 0);
        if let Some(existing) = owned.iter().filter_map(Weak::upgrade).find(|o| o.key == key) {
            return Ok(Self::Owned(existing));
        }
        let exporter = KafkaExporter::new(config.clone())?;
        let shared = Arc::new(OwnedExporter { key, exporter });
        owned.push(Arc::downgrade(&shared));
        Ok(Self::Owned(shared))
    }

    /// The exporter the messages go through.
    pub(crate) fn exporter(&self) -> &KafkaExporter {
        match self {
            Self::Global(e) => e,
            Self::Owned(o) => &o.exporter,
        }
    }
}
