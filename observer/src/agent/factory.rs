//! [`TracerFactory`]: one configuration (Kafka, OpenTelemetry, project) for every agent and workflow tracer of an
//! application.

use std::fmt;
use std::sync::Arc;

use super::config::{AgentTrace, AgentTracerConfig, DEFAULT_PROJECT_NAME};
use super::sink::{default_sink, TraceSink};
use super::spans::ensure_otel;
use super::tracer::AgentTracer;
use crate::config::ObserverConfig;
use crate::error::ObserverError;
use crate::llm::usage::Extractors;
use crate::workflow::{default_workflow_sink, WorkflowSink, WorkflowTracer};

/// Creates agent and workflow tracers that share one configuration, one Kafka producer and one OpenTelemetry
/// pipeline. Create it once (it is cheap to clone) and a tracer per flow run (cheap: no connection, no thread).
///
/// ```
/// use observer::trace::{AgentTrace, TracerFactory};
/// use observer::ObserverConfig;
///
/// let factory = TracerFactory::new(ObserverConfig { service_name: "ai-studio".into(), ..Default::default() })?;
/// let tracer = factory.create_agent_tracer(AgentTrace {
///     flow_id: "flow-123".into(),
///     trace_name: "Customer Support Flow".into(),
///     user_id: Some("user-456".into()),
///     ..Default::default()
/// });
/// tracer.start_trace();
/// tracer.add_trace("comp-1", "QueryClassifier", "llm", serde_json::json!({"query": "..."}));
/// tracer.end_trace("comp-1", "QueryClassifier", serde_json::json!({"classification": "account"}), None);
/// tracer.end(serde_json::json!({}), serde_json::json!({}), None, None);
/// # Ok::<(), observer::ObserverError>(())
/// ```
#[derive(Clone)]
pub struct TracerFactory {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    service_name: String,
    environment: String,
    project_name: String,
    enable_otel: bool,
    capture: crate::CaptureLevel,
    extractors: Extractors,
    sink: Option<Arc<dyn TraceSink>>,
    workflow_sink: Option<Arc<dyn WorkflowSink>>,
}

impl TracerFactory {
    /// A factory for `config`: with a `kafka` config, agent tracers stream to `kafka.trace_topic`
    /// through one producer — the one `observer::init` started when it is connected to the same cluster, else one
    /// created now and shared by every tracer of this factory (and of other factories for the same cluster).
    /// Without Kafka, tracers still compute totals and spans; [`sink`](Self::sink) sends events
    /// elsewhere.
    ///
    /// Workflow tracers ([`create_workflow_tracer`](Self::create_workflow_tracer)) stream their events the same
    /// way, to `kafka.workflow_topic` through the same producer; [`workflow_sink`](Self::workflow_sink)
    /// sends them elsewhere, [`without_workflow_stream`](Self::without_workflow_stream) turns them off. Without a
    /// `kafka` config, both streams go to the topics of `observer::init`'s Kafka exporter when there is one.
    ///
    /// Delivery at exit: `observer::init`'s guard drains its exporter. A producer created here is drained when the
    /// last factory and tracer using it are dropped (what the broker has not acknowledged within 10 s stays in
    /// its spool for the next start); if they live in a `static`, call [`flush`](Self::flush) before exiting.
    ///
    /// The [environment overrides](ObserverConfig::apply_env) of `init` apply to `config` first.
    ///
    /// # Errors
    /// An invalid environment variable, a Kafka config without the `kafka` feature, or the exporter's error
    /// (invalid config, spool in use).
    pub fn new(config: ObserverConfig) -> Result<Self, ObserverError> {
        // The same environment overrides as `init` (e.g. `KAFKA_*` over the `kafka` config).
        let mut config = config.apply_env()?;
        if let Some(k) = config.kafka.as_mut() {
            k.spool_permissions.get_or_insert(config.file_permissions);
        }
        let kafka = config.kafka.as_ref();
        let sink = default_sink(kafka)?;
        let workflow_sink = default_workflow_sink(kafka)?;
        Ok(Self {
            inner: Arc::new(Inner {
                service_name: config.service_name,
                environment: config.environment,
                project_name: DEFAULT_PROJECT_NAME.into(),
                enable_otel: config.send_to_logfire,
                capture: config.capture_level,
                extractors: Extractors::default(),
                sink,
                workflow_sink,
            }),
        })
    }

    fn update(self, f: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = Arc::unwrap_or_clone(self.inner);
        f(&mut inner);
        Self { inner: Arc::new(inner) }
    }

    /// The `project_name` of every event (default `"GenesisStudio"`).
    pub fn project_name(self, project_name: impl Into<String>) -> Self {
        let project_name = project_name.into();
        self.update(|i| i.project_name = project_name)
    }

    /// Whether agent tracers also create OpenTelemetry spans (default: `ObserverConfig::send_to_logfire`). When
    /// on and OpenTelemetry tracing is not configured yet (feature `otel`), it is configured with the config's
    /// `service_name` when the first tracer is created.
    pub fn otel(self, enable: bool) -> Self {
        self.update(|i| i.enable_otel = enable)
    }

    /// The [capture level](crate::CaptureLevel) of every agent tracer of this factory (default: the config's
    /// `capture_level`, itself `Metadata` unless set).
    pub fn capture(self, level: crate::CaptureLevel) -> Self {
        self.update(|i| i.capture = level)
    }

    /// Adds extractors for your own output shapes (see [`Extractors`]).
    pub fn extractors(self, extractors: Extractors) -> Self {
        self.update(|i| i.extractors = extractors)
    }

    /// Sends every agent tracer's events to `sink` instead of Kafka (workflow events: see
    /// [`workflow_sink`](Self::workflow_sink)).
    pub fn sink(self, sink: impl TraceSink) -> Self {
        let sink: Arc<dyn TraceSink> = Arc::new(sink);
        self.update(|i| i.sink = Some(sink))
    }

    /// Streams the events of every workflow tracer of this factory to `sink` (e.g. a
    /// [`MemoryWorkflowSink`](crate::trace::MemoryWorkflowSink) in tests) instead of Kafka's `workflow_topic`. Independent
    /// of [`sink`](Self::sink), which only redirects agent tracers.
    pub fn workflow_sink(self, sink: impl WorkflowSink) -> Self {
        let sink: Arc<dyn WorkflowSink> = Arc::new(sink);
        self.update(|i| i.workflow_sink = Some(sink))
    }

    /// Workflow tracers of this factory do not stream (agent tracers are not affected).
    pub fn without_workflow_stream(self) -> Self {
        self.update(|i| i.workflow_sink = None)
    }

    /// The guide's `create_agent_tracer(trace_id, flow_id, trace_name, user_id, session_id)`.
    pub fn create_agent_tracer(&self, trace: AgentTrace) -> AgentTracer {
        let i = &self.inner;
        if i.enable_otel {
            ensure_otel(Some(&i.service_name));
        }
        let config = AgentTracerConfig {
            trace,
            project_name: i.project_name.clone(),
            environment: i.environment.clone(),
            kafka: None,
            enable_otel: i.enable_otel,
            otel_service_name: None,
            extractors: i.extractors.clone(),
            capture: Some(i.capture),
            agent_description: None,
        };
        AgentTracer::build(config, i.sink.clone())
    }

    /// A [`WorkflowTracer`] named `name` (its spans go to the same OpenTelemetry pipeline).
    ///
    /// When the factory has a workflow sink (Kafka's `workflow_topic`, or
    /// [`workflow_sink`](Self::workflow_sink)), the workflow [streams](WorkflowTracer::stream) to
    /// it with the config's `service_name`: `workflow_start` is sent now (use
    /// [`create_workflow_tracer_with_attributes`](Self::create_workflow_tracer_with_attributes) for attributes
    /// on it), then the step events and `workflow_end`. Otherwise it is exactly [`WorkflowTracer::new`].
    ///
    /// ```
    /// use observer::trace::{MemoryWorkflowSink, TracerFactory};
    /// use observer::ObserverConfig;
    ///
    /// let events = MemoryWorkflowSink::new();
    /// let factory = TracerFactory::new(ObserverConfig { service_name: "shop".into(), ..Default::default() })?
    ///     .workflow_sink(events.clone());
    /// let wf = factory.create_workflow_tracer("process-order");
    /// wf.run_step_sync("validate", |_step| Ok::<_, String>(())).unwrap();
    /// wf.finish();
    /// assert_eq!(events.events().len(), 4);
    /// assert_eq!(events.json()[0]["service_name"], "shop");
    /// # Ok::<(), observer::ObserverError>(())
    /// ```
    pub fn create_workflow_tracer(&self, name: impl Into<String>) -> WorkflowTracer {
        self.create_workflow_tracer_with_attributes(name, std::iter::empty::<(String, serde_json::Value)>())
    }

    /// [`create_workflow_tracer`](Self::create_workflow_tracer) with workflow attributes set before streaming
    /// starts, so that they are on `workflow_start` too.
    pub fn create_workflow_tracer_with_attributes<K, V>(
        &self,
        name: impl Into<String>,
        attributes: impl IntoIterator<Item = (K, V)>,
    ) -> WorkflowTracer
    where
        K: Into<String>,
        V: Into<serde_json::Value>,
    {
        let i = &self.inner;
        if i.enable_otel {
            ensure_otel(Some(&i.service_name));
        }
        let wf = WorkflowTracer::new(name);
        for (k, v) in attributes {
            wf.set(k, v);
        }
        match &i.workflow_sink {
            Some(sink) => wf.stream_to(Arc::clone(sink), i.service_name.clone()),
            None => wf,
        }
    }

    /// Waits (at most `timeout`) until the events of every agent and workflow tracer of this factory are
    /// delivered by the factory's sinks.
    ///
    /// [`observer::flush`](crate::flush) already flushes the SDK's own Kafka producers, which carry the sinks a
    /// factory builds from a `KafkaConfig`; this flush is for sinks it cannot reach: a
    /// [`TraceSink`](crate::trace::TraceSink) or `WorkflowSink` of your own, or a topic sink over a `KafkaExporter`
    /// you created.
    ///
    /// # Errors
    /// The sink's flush error, e.g. [`ExporterError::FlushTimeout`](crate::ExporterError::FlushTimeout).
    pub fn flush(&self, timeout: std::time::Duration) -> Result<(), crate::ExporterError> {
        let deadline = std::time::Instant::now() + timeout;
        if let Some(s) = &self.inner.sink {
            s.flush(timeout)?;
        }
        match &self.inner.workflow_sink {
            Some(s) => s.flush(deadline.saturating_duration_since(std::time::Instant::now())),
            None => Ok(()),
        }
    }
}

impl fmt::Debug for TracerFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TracerFactory")
            .field("service_name", &self.inner.service_name)
            .field("project_name", &self.inner.project_name)
            .field("enable_otel", &self.inner.enable_otel)
            .field("sink", &self.inner.sink.as_ref().map(|s| s.describe()))
            .field("workflow_sink", &self.inner.workflow_sink.as_ref().map(|s| s.describe()))
            .finish_non_exhaustive()
    }
}
