//! Where audit events go: the [`Sink`] trait, the built-in sinks, and the background dispatcher.
//!
//! Callers only build an event and hand it to a bounded queue; one background thread serialises each event
//! once and gives the JSON to every sink, batch by batch. After every batch each sink is
//! [flushed](Sink::flush) (handed to the OS, for the file sink), so a crash of the process loses nothing
//! the dispatcher already took.
//!
//! [`observer::init`](crate::init) runs one such pipeline for the process. A [`Pipeline`] is one of your own,
//! made current for a scope with [`with_pipeline`] (a future) or [`with_pipeline_sync`] (a closure): audit
//! events emitted inside go to it, not to the process's, so that tests need no global state.

mod dispatcher;
mod fallback;
pub(crate) mod files;
#[cfg(feature = "kafka")]
pub(crate) mod kafka;
mod pipeline;
mod sinks;

pub use dispatcher::DispatchStats;
pub(crate) use dispatcher::Worker;
pub(crate) use fallback::{emit_or_fallback, fallback_to_stderr};
#[cfg(feature = "kafka")]
#[cfg_attr(docsrs, doc(cfg(feature = "kafka")))]
pub use kafka::{Accepted, KafkaExporter, KafkaSink, KafkaStats, KafkaTopicSink};
pub(crate) use pipeline::{current_pipeline, embedded_sink, Core, ServiceFields, CURRENT as CURRENT_PIPELINE};
pub use pipeline::{with_pipeline, with_pipeline_sync, Pipeline, WithPipeline};
pub use sinks::{FileSink, MemorySink, StdoutSink};

use crate::audit::AuditEvent;
use crate::config::format::AuditFormat;
use crate::error::ExporterError;

/// One serialised record as a sink receives it: an audit event, or a checkpoint of the audit trail's integrity
/// chain (when [`IntegrityConfig`](crate::IntegrityConfig) is on).
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// What it is: an event, or a checkpoint of the integrity chain.
    pub kind: RecordKind<'a>,
    /// Its guide JSON (one line, no trailing newline), serialised once for all sinks: the evidence, and what the
    /// stderr fallback carries when a sink does not deliver the record. With integrity on, the canonical line with
    /// its `integrity` object; for a checkpoint, the checkpoint line.
    pub json: &'a [u8],
    /// The event in the receiving sink's [`Sink::format`] (one line, no trailing newline), serialised once per
    /// event for all the sinks of that format; the same bytes as `json` for [`AuditFormat::Json`].
    pub output: &'a [u8],
}

impl<'a> Record<'a> {
    /// An event record in the guide's JSON (`output` is `json`).
    pub fn new(event: &'a AuditEvent, json: &'a [u8]) -> Self {
        Self { kind: RecordKind::Event(event), json, output: json }
    }

    /// The audit event, `None` for a checkpoint.
    pub fn as_event(&self) -> Option<&'a AuditEvent> {
        match self.kind {
            RecordKind::Event(e) => Some(e),
            RecordKind::Checkpoint(_) => None,
        }
    }
}

/// What a [`Record`] is.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum RecordKind<'a> {
    /// An audit event (with integrity on, its JSON carries the `integrity` object the event itself does not).
    Event(&'a AuditEvent),
    /// A checkpoint of the integrity chain: a line of its own in the same stream, not an audit event (not counted
    /// in [`DispatchStats::accepted`]; see [`DispatchStats::checkpoints`]). Only sinks of the guide's JSON format
    /// ([`AuditFormat::Json`]) receive checkpoints (`output` is `json`): the chain covers that JSON, not the OCSF or
    /// FHIR renderings.
    Checkpoint(&'a crate::integrity::Checkpoint),
}

/// A destination for audit events (and the integrity chain's checkpoints, see [`RecordKind`]). Called only from the
/// dispatcher thread, one batch at a time: `write` for every record of the batch, then `flush`.
///
/// An error from `write` is counted in [`DispatchStats::sink_errors`] and reported; the dispatcher then
/// writes that record's JSON line to standard error (prefixed `observer-audit-fallback: `), so that an
/// event is never silently lost. An error from `flush` means none of the records accepted since the previous
/// flush was delivered (the dispatcher puts them on the fallback), unless it is
/// [`ExporterError::PartialFlush`]. A sink that panics is taken out of the pipeline (reported, counted in
/// [`DispatchStats::sink_panics`]); what it accepted since its last flush goes to the fallback.
pub trait Sink: Send + Sync + std::fmt::Debug {
    /// A short name for reports, e.g. `file observer-audit.jsonl`.
    fn name(&self) -> String;

    /// The format this sink receives in [`Record::output`]: the guide's JSON (default), OCSF or FHIR R4
    /// `AuditEvent`. Asked once, when the pipeline starts.
    fn format(&self) -> AuditFormat {
        AuditFormat::Json
    }

    /// Writes one record, an event or a checkpoint (it may be buffered until [`flush`](Sink::flush)).
    fn write(&self, record: Record<'_>) -> Result<(), ExporterError>;

    /// Hands everything buffered to its destination. Called after every batch.
    ///
    /// An error means none of the records accepted since the previous flush reached the destination (the
    /// dispatcher writes them to the stderr fallback and counts them as failed); a sink that delivered part of them,
    /// and put the rest on the fallback itself, returns [`ExporterError::PartialFlush`] instead.
    fn flush(&self) -> Result<(), ExporterError> {
        Ok(())
    }

    /// Makes what was flushed durable (e.g. `fsync`). Called on explicit flushes, when the dispatcher goes
    /// idle, and at shutdown.
    fn sync(&self) -> Result<(), ExporterError> {
        Ok(())
    }

    /// Flushes, syncs and releases resources. Called once, when the pipeline shuts down.
    fn shutdown(&self) -> Result<(), ExporterError> {
        self.flush()?;
        self.sync()
    }
}
