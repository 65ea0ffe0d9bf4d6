//! [`AgentTracer`]: the state of one trace (components, totals, warnings) and the calls that change it.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::sink::{TraceEvent, TraceEventType, TraceSink};
use crate::config::KafkaConfig;
use crate::error::ObserverError;
use crate::llm::semconv;
use crate::llm::usage::{Extractors, LlmInfo, TokenUsage};

/// Out-of-order calls kept (and logged) per trace; further ones are only counted (`metadata.warnings_total`).
pub const MAX_WARNINGS: usize = 100;

/// The default `project_name`.
pub const DEFAULT_PROJECT_NAME: &str = "GenesisStudio";

/// The default trace topic.
pub const DEFAULT_TRACE_TOPIC: &str = "genesis-traces-streaming";

/// Settings of one [`AgentTracer`]: the guide's constructor arguments.
///
/// `kafka` carries the guide's `kafka_bootstrap_servers`, `kafka_topic` (`trace_topic`), `kafka_username` and
/// `kafka_password` (`sasl_username`, `sasl_password`: alone they mean SASL_SSL with PLAIN, as in the reference).
/// When it is `None`, events go to the Kafka exporter of `observer::init` if Kafka is enabled there (its `trace_topic`), else nowhere (the tracer still computes totals and OTEL spans); a sink set with
/// [`AgentTracer::with_sink`] replaces either.
#[derive(Clone)]
pub struct AgentTracerConfig {
    /// The trace (flow run) name. Sent as `flow_name` without Langflow's `" - <flow id>"` suffix (what comes
    /// before the first `" - "`, as the Python package does, so dashboards group runs by flow); empty is `"unknown"`.
    pub trace_name: String,
    /// The trace id; also the Kafka message key. Default: a new random UUID.
    pub trace_id: Uuid,
    /// The flow id.
    pub flow_id: String,
    /// The user who runs the flow.
    pub user_id: Option<String>,
    /// The session.
    pub session_id: Option<String>,
    /// Sent with every event. Default `"GenesisStudio"`.
    pub project_name: String,
    /// `metadata.environment` of `trace_start`. Default `"production"`.
    pub environment: String,
    /// Stream to this Kafka cluster and `trace_topic` (see the type docs). Needs the `kafka` feature.
    pub kafka: Option<KafkaConfig>,
    /// Also create `tracing` spans (exported by the OpenTelemetry layer, feature `otel`): one per trace, one child
    /// per component.
    pub enable_otel: bool,
    /// With `enable_otel`: if OpenTelemetry tracing is not configured yet (feature `otel`), configure it with
    /// this `service.name` (the standard `OTEL_*` variables apply). `None`: use whatever is configured.
    pub otel_service_name: Option<String>,
    /// How tokens, model and provider are found in outputs. Default: the built-in shapes.
    pub extractors: Extractors,
}

impl Default for AgentTracerConfig {
    fn default() -> Self {
        Self {
            trace_name: String::new(),
            trace_id: Uuid::new_v4(),
            flow_id: String::new(),
            user_id: None,
            session_id: None,
            project_name: DEFAULT_PROJECT_NAME.into(),
            environment: "production".into(),
            kafka: None,
            enable_otel: false,
            otel_service_name: None,
            extractors: Extractors::default(),
        }
    }
}

impl fmt::Debug for AgentTracerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `KafkaConfig`'s Debug hides the password; user and session ids are kept out like other PII.
        f.debug_struct("AgentTracerConfig")
            .field("trace_name", &self.trace_name)
            .field("trace_id", &self.trace_id)
            .field("flow_id", &self.flow_id)
            .field("project_name", &self.project_name)
            .field("kafka", &self.kafka)
            .field("enable_otel", &self.enable_otel)
            .finish_non_exhaustive()
    }
}

/// Token and cost totals of a trace (components ended so far).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct AgentTotals {
    /// Components ended (`span_end` events).
    pub spans: u64,
    /// Components that ended with an error.
    pub failed_spans: u64,
    /// Input tokens, cached ones included.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Cached input tokens.
    pub cached_tokens: u64,
    /// Reasoning output tokens.
    pub reasoning_tokens: u64,
    /// USD, of the components whose model has a price (rounded to 1e-10 USD, see
    /// [`round_usd`](crate::cost::round_usd)).
    pub total_cost: f64,
    /// Components whose cost is not trustworthy (a token count above
    /// [`MAX_TOKEN_COUNT`](crate::cost::MAX_TOKEN_COUNT), priced at that ceiling); `trace_end` then says
    /// `cost_trusted: false`.
    pub untrusted_costs: u64,
}

/// Traces one flow run (cheap to clone: clones share the trace): Langflow / AI Studio flow tracing — one trace per flow run, one span per component —
/// streamed as events to Kafka (topic `genesis-traces-streaming`), with tokens and cost taken from the
/// components' outputs, and optionally as OpenTelemetry spans.
///
/// ```
/// use observer::trace::{AgentTracer, AgentTracerConfig, MemoryTraceSink};
/// use serde_json::json;
///
/// let events = MemoryTraceSink::new();
/// let tracer = AgentTracer::new(AgentTracerConfig {
///     trace_name: "Customer Support Flow".into(),
///     flow_id: "flow-123".into(),
///     user_id: Some("user-456".into()),
///     ..Default::default()
/// })?
/// .with_sink(events.clone());
///
/// tracer.start_trace();
/// tracer.add_trace("comp-1", "QueryClassifier", "llm", json!({"query": "How do I reset my password?"}));
/// tracer.end_trace("comp-1", "QueryClassifier",
///     json!({"classification": "account", "model": "gpt-4o", "input_tokens": 100, "output_tokens": 50}), None);
/// tracer.end(json!({}), json!({}), None, None);
///
/// let totals = tracer.totals();
/// assert_eq!((totals.input_tokens, totals.output_tokens), (100, 50));
/// assert!(totals.total_cost > 0.0);
/// assert_eq!(events.events().len(), 4); // trace_start, span_start, span_end, trace_end
/// # Ok::<(), observer::ObserverError>(())
/// ```
///
/// ## Ordering, concurrency and delivery
/// The tracer is `Send + Sync` and cheap to clone; components may start and end concurrently on any threads.
/// Every call takes one short lock, so the events of a trace reach the sink in the order of the calls, and the
/// totals stay exact. Sending never blocks: the Kafka sink hands the message to the shared producer (keyed by the
/// trace id, so a trace stays in one partition), whose spool keeps what the broker has not acknowledged;
/// `observer::init`'s guard (or the last tracer of a standalone exporter) drains it at exit.
///
/// ## Large data
/// An event whose JSON would exceed [`MAX_EVENT_BYTES`] (900 KB, under Kafka's default 1 MB message limit) is still
/// sent, with its `input_data`, then `output_data`, then user metadata replaced by
/// `{"_truncated": true, "original_bytes": N, "preview": "<first 2,000 characters>"}` and `metadata.data_truncated`
/// set; tokens, cost and totals are taken before and are exact.
///
/// ## Durations
/// `duration_ms` measures only the caller's work: a component's runs from when [`add_trace`](AgentTracer::add_trace)
/// returns (its event sent) to when [`end_trace`](AgentTracer::end_trace) is called (extraction and pricing come
/// after); the trace's from when `trace_start` was sent to when [`end`](AgentTracer::end) is called.
/// [`AgentTracer::new`] decodes the price table on a background thread (once per process) so that the first
/// `end_trace` does not wait for it.
///
/// ## Out-of-order calls
/// Never panic. Each is reported once as a `tracing` warning and listed under `metadata.warnings` of `trace_end`
/// (the first [`MAX_WARNINGS`]; `metadata.warnings_total` counts all when there were more):
/// a component call before [`start_trace`](AgentTracer::start_trace) starts the trace first; ending an unknown
/// component sends a `span_end` without duration (its tokens still count); ending a component twice or
/// starting an id that is already running is ignored; components still running at [`end`](AgentTracer::end)
/// are ended with an error; a tracer dropped without `end` ends the trace with an error. Calls after `end` are
/// still sent (they belong to the trace) but no longer change the totals sent with `trace_end`.
#[derive(Clone)]
pub struct AgentTracer {
    inner: Arc<Inner>,
}

struct Inner {
    trace_id: String,
    trace_name: String,
    flow_id: String,
    user_id: Option<String>,
    session_id: Option<String>,
    project_name: String,
    environment: String,
    enable_otel: bool,
    extractors: Extractors,
    sink: Mutex<Option<Arc<dyn TraceSink>>>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    started: Option<Instant>,
    ended: bool,
    trace_span: Option<::tracing::Span>,
    open: HashMap<String, Component>,
    finished: HashSet<String>,
    next_index: u32,
    totals: AgentTotals,
    tags: Map<String, Value>,
    params: Map<String, Value>,
    metrics: Map<String, Value>,
    warnings: Vec<String>,
    warnings_total: u64,
    llm_calls: HashMap<String, Instant>,
}

struct Component {
    name: String,
    kind: String,
    kind_given: bool,
    index: u32,
    parent: Option<String>,
    started: Instant,
    model_hint: Option<String>,
    provider_hint: Option<String>,
    span: Option<::tracing::Span>,
}

/// Options of a component start; see [`AgentTracer::component`].
#[must_use = "call `.start()` to start the component"]
pub struct ComponentStart<'a> {
    tracer: &'a AgentTracer,
    id: String,
    name: String,
    kind: String,
    inputs: Value,
    metadata: Value,
    parent: Option<String>,
}

impl ComponentStart<'_> {
    /// The component type (`llm`, `tool`, `retrieval`, ...); inferred from the name and model when not given.
    pub fn kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = kind.into();
        self
    }

    /// The inputs, sent as `input_data`.
    pub fn inputs(mut self, inputs: impl Into<Value>) -> Self {
        self.inputs = inputs.into();
        self
    }

    /// Extra `metadata` of `span_start`; `model` / `provider` in it are used for pricing when the outputs do not
    /// name them.
    pub fn metadata(mut self, metadata: impl Into<Value>) -> Self {
        self.metadata = metadata.into();
        self
    }

    /// The id of the component this one runs inside (`parent_span_id`; its OTEL span becomes the parent).
    pub fn parent(mut self, parent_id: impl Into<String>) -> Self {
        self.parent = Some(parent_id.into());
        self
    }

    /// Starts the component: sends `span_start`.
    pub fn start(self) {
        let ComponentStart { tracer, id, name, kind, inputs, metadata, parent } = self;
        tracer.start_component(id, name, kind, inputs, metadata, parent);
    }
}

impl AgentTracer {
    /// A tracer for one flow run. Nothing is sent until [`start_trace`](Self::start_trace).
    ///
    /// # Errors
    /// With `kafka` set: [`ConfigurationError`](crate::ConfigurationError) without the `kafka` feature, or the
    /// exporter's error (invalid Kafka config, spool directory in use).
    pub fn new(config: AgentTracerConfig) -> Result<Self, ObserverError> {
        crate::cost::warm_up_in_background();
        let sink = default_sink(config.kafka.as_ref())?;
        if config.enable_otel {
            ensure_otel(config.otel_service_name.as_deref());
        }
        Ok(Self::build(config, sink))
    }

    pub(crate) fn build(config: AgentTracerConfig, sink: Option<Arc<dyn TraceSink>>) -> Self {
        Self {
            inner: Arc::new(Inner {
                trace_id: config.trace_id.hyphenated().to_string(),
                trace_name: clean_flow_name(&config.trace_name),
                flow_id: config.flow_id,
                user_id: config.user_id,
                session_id: config.session_id,
                project_name: config.project_name,
                environment: config.environment,
                enable_otel: config.enable_otel,
                extractors: config.extractors,
                sink: Mutex::new(sink),
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// Sends the events to `sink` instead (e.g. a [`MemoryTraceSink`](super::MemoryTraceSink) in tests).
    pub fn with_sink(self, sink: impl TraceSink) -> Self {
        *self.inner.sink.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(sink));
        self
    }

    /// The trace id (a UUID string, the Kafka message key).
    pub fn trace_id(&self) -> &str {
        &self.inner.trace_id
    }

    /// The flow name sent as `flow_name`: the configured trace name without Langflow's `" - <id>"` suffix.
    pub fn trace_name(&self) -> &str {
        &self.inner.trace_name
    }

    /// The flow id.
    pub fn flow_id(&self) -> &str {
        &self.inner.flow_id
    }

    /// The project name sent with every event.
    pub fn project_name(&self) -> &str {
        &self.inner.project_name
    }

    /// Starts the trace: sends `trace_start`. A second call is ignored (and reported).
    pub fn start_trace(&self) {
        let mut state = self.lock();
        if state.started.is_some() {
            self.warn(&mut state, "start_trace called twice; the second call is ignored".into());
            return;
        }
        self.begin(&mut state);
    }

    /// The guide's `add_trace(trace_id, trace_name, trace_type, inputs)`: starts component `component_id`.
    /// `kind` may be empty (then it is inferred). For metadata or a parent use [`component`](Self::component).
    pub fn add_trace(&self, component_id: &str, name: &str, kind: &str, inputs: impl Into<Value>) {
        self.start_component(component_id.into(), name.into(), kind.into(), inputs.into(), Value::Null, None);
    }

    /// Starts a component with options: `tracer.component("comp-2", "Retriever").kind("retrieval")
    /// .inputs(json!({..})).parent("comp-1").start()`.
    pub fn component(&self, component_id: impl Into<String>, name: impl Into<String>) -> ComponentStart<'_> {
        ComponentStart {
            tracer: self,
            id: component_id.into(),
            name: name.into(),
            kind: String::new(),
            inputs: Value::Null,
            metadata: Value::Null,
            parent: None,
        }
    }

    /// The guide's `end_trace(trace_id, trace_name, outputs, error)`: ends component `component_id`, sends
    /// `span_end` with the tokens, model and cost found in `outputs`, and adds them to the totals.
    pub fn end_trace(&self, component_id: &str, name: &str, outputs: impl Into<Value>, error: Option<&str>) {
        // The component's work ended when this was called: extraction and pricing below are not part of it.
        let ended = Instant::now();
        let outputs = outputs.into();
        // Extraction and pricing happen outside the lock: other components go on meanwhile.
        let info = self.inner.extractors.extract(&outputs);
        let hints = self.lock().open.get(component_id).map(|c| (c.model_hint.clone(), c.provider_hint.clone()));
        let (model_hint, provider_hint) = hints.unwrap_or_default();
        let priced = Priced::new(&info, model_hint.as_deref(), provider_hint.as_deref());
        let mut state = self.lock();
        self.ensure_started(&mut state, "end_trace");
        let component = state.open.remove(component_id);
        if component.is_none() {
            let why = if state.finished.contains(component_id) {
                format!("end_trace for component {component_id:?} ({name}) called twice; the second call is ignored")
            } else {
                format!("end_trace for unknown component {component_id:?} ({name}); sent without duration")
            };
            let twice = state.finished.contains(component_id);
            self.warn(&mut state, why);
            if twice {
                return;
            }
        }
        state.finished.insert(component_id.to_owned());
        let error = error.map(str::to_owned);
        self.finish_component(&mut state, component_id, name, component, outputs, priced, error, ended);
    }

    /// The guide's `end(inputs, outputs, error, metadata)`: ends the trace and sends `trace_end` with the totals,
    /// tags, params and metrics. Returns at once (delivery is the exporter's job). Components still running are
    /// ended with an error first. A second call is ignored (and reported).
    ///
    /// `trace_end`'s `metadata` is, as the Python package writes it: the tags, params and metrics as top-level keys
    /// (a later kind wins on a clash), then the keys of `metadata`, then the trace's own keys (`flow_id`,
    /// `flow_name`, `total_spans`, `failed_spans`, `status`, `project_name`, `total_*_tokens`, `total_cost`,
    /// `cost_trusted: false` when a component's cost is not trustworthy, `warnings`), which win over all others.
    pub fn end(
        &self,
        inputs: impl Into<Value>,
        outputs: impl Into<Value>,
        error: Option<&str>,
        metadata: Option<Value>,
    ) {
        let mut state = self.lock();
        self.ensure_started(&mut state, "end");
        if state.ended {
            self.warn(&mut state, "end called twice; the second call is ignored".into());
            return;
        }
        self.end_locked(&mut state, inputs.into(), outputs.into(), error.map(str::to_owned), metadata);
    }

    /// Adds tags (key → value, like the Python package's `add_tags(dict)`), sent as top-level keys of `trace_end`'s
    /// `metadata` (see [`end`](Self::end)).
    pub fn add_tags<I, K, V>(&self, tags: I)
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut state = self.lock();
        for (key, value) in tags {
            state.tags.insert(key.into(), Value::String(value.into()));
        }
    }

    /// Sets a parameter, sent as a top-level key of `trace_end`'s `metadata` (see [`end`](Self::end)).
    pub fn set_param(&self, key: impl Into<String>, value: impl Into<Value>) {
        self.lock().params.insert(key.into(), value.into());
    }

    /// Sets a metric, sent as a top-level key of `trace_end`'s `metadata` (see [`end`](Self::end)).
    pub fn set_metric(&self, key: impl Into<String>, value: impl Into<Value>) {
        self.lock().metrics.insert(key.into(), value.into());
    }

    /// Sends `llm_call_start` for an LLM call made inside component `component_id` (informational: the call's
    /// tokens count toward the totals through the component's `span_end`, not through these events).
    pub fn llm_call_start(&self, component_id: &str, model: &str, inputs: impl Into<Value>) {
        let mut state = self.lock();
        self.ensure_started(&mut state, "llm_call_start");
        let mut event = self.event(TraceEventType::LlmCallStart);
        event.span_id = Some(component_id.to_owned());
        event.input_data = Some(inputs.into());
        event.metadata.insert("model".into(), model.into());
        self.send(&event);
        // The call starts once the SDK's own work is done.
        state.llm_calls.insert(component_id.to_owned(), Instant::now());
    }

    /// Sends `llm_call_end` with the tokens, model and cost found in `outputs` (see
    /// [`llm_call_start`](Self::llm_call_start)).
    pub fn llm_call_end(&self, component_id: &str, outputs: impl Into<Value>, error: Option<&str>) {
        let ended = Instant::now();
        let outputs = outputs.into();
        let info = self.inner.extractors.extract(&outputs);
        let priced = Priced::new(&info, None, None);
        let mut state = self.lock();
        self.ensure_started(&mut state, "llm_call_end");
        let started = state.llm_calls.remove(component_id);
        let mut event = self.event(TraceEventType::LlmCallEnd);
        event.span_id = Some(component_id.to_owned());
        event.duration_ms = started.map(|s| elapsed_ms(s, ended));
        event.error = error.map(str::to_owned);
        priced.write(&mut event.metadata);
        event.output_data = Some(outputs);
        self.send(&event);
    }

    /// Sends a `custom` event with `data` as its metadata (`name` under `metadata.name`).
    pub fn custom_event(&self, name: &str, data: Value) {
        let mut state = self.lock();
        self.ensure_started(&mut state, "custom_event");
        let mut event = self.event(TraceEventType::Custom);
        event.metadata = match data {
            Value::Object(map) => map,
            Value::Null => Map::new(),
            other => Map::from_iter([("data".to_owned(), other)]),
        };
        event.metadata.insert("name".into(), name.into());
        self.send(&event);
    }

    /// The totals of the components ended so far.
    pub fn totals(&self) -> AgentTotals {
        self.lock().totals
    }

    /// The out-of-order calls reported so far (see "Out-of-order calls" in the [type docs](Self)).
    pub fn warnings(&self) -> Vec<String> {
        self.lock().warnings.clone()
    }

    /// Whether [`end`](Self::end) was called.
    pub fn is_ended(&self) -> bool {
        self.lock().ended
    }

    /// Ids of the components started and not yet ended.
    pub fn running_components(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.lock().open.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Waits (at most `timeout`) until the events sent so far are delivered by the sink. Not needed for
    /// delivery (the exporter's spool and `observer::init`'s guard see to that); useful before reading the topic.
    ///
    /// # Errors
    /// The sink's flush error, e.g. [`ExporterError::FlushTimeout`](crate::ExporterError::FlushTimeout).
    pub fn flush(&self, timeout: std::time::Duration) -> Result<(), crate::ExporterError> {
        let sink = self.inner.sink.lock().unwrap_or_else(PoisonError::into_inner).clone();
        match sink {
            Some(s) => s.flush(timeout),
            None => Ok(()),
        }
    }

    /// Runs `fut` with this tracer as the current agent trace of the task: `#[agent_component]` fns called in it
    /// become components of this trace.
    pub fn scope<F: std::future::Future>(&self, fut: F) -> super::scope::AgentScope<F> {
        super::scope::AgentScope::new(self.clone(), None, fut)
    }

    /// Runs `f` with this tracer as the current agent trace of the thread (see [`scope`](Self::scope)).
    pub fn scope_sync<R>(&self, f: impl FnOnce() -> R) -> R {
        super::scope::scope_sync(self.clone(), None, f)
    }

    // ---------------------------------------------------------------------------------------------------------

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn warn(&self, state: &mut State, message: String) {
        state.warnings_total += 1;
        if state.warnings.len() < MAX_WARNINGS {
            crate::diag::report!(WARN, "agent-misuse", "agent trace {}: {message}", self.inner.trace_id);
            state.warnings.push(message);
        } else if state.warnings_total == MAX_WARNINGS as u64 + 1 {
            crate::diag::report!(
                WARN,
                "agent-misuse",
                "agent trace {}: more than {MAX_WARNINGS} out-of-order calls in this trace; further ones are only \
                 counted",
                self.inner.trace_id
            );
        }
    }

    fn ensure_started(&self, state: &mut State, call: &str) {
        if state.started.is_none() {
            self.warn(state, format!("{call} called before start_trace; the trace was started first"));
            self.begin(state);
        }
    }

    fn begin(&self, state: &mut State) {
        if self.inner.enable_otel {
            state.trace_span = Some(self.trace_span());
        }
        let mut event = self.event(TraceEventType::TraceStart);
        event.metadata.insert("environment".into(), self.inner.environment.clone().into());
        self.send(&event);
        // The trace's time starts once the SDK's own work is done.
        state.started = Some(Instant::now());
    }

    pub(crate) fn start_component(
        &self,
        id: String,
        name: String,
        kind: String,
        inputs: Value,
        metadata: Value,
        parent: Option<String>,
    ) {
        let metadata = into_map(metadata);
        let model_hint = string_at(&metadata, &["model", "model_name", "model_id"]);
        let provider_hint = string_at(&metadata, &["provider"]);
        let kind_given = !kind.trim().is_empty();
        let kind = if kind_given { kind } else { infer_component_type(&name, model_hint.is_some()).to_owned() };
        let mut state = self.lock();
        self.ensure_started(&mut state, "add_trace");
        if state.open.contains_key(&id) {
            self.warn(&mut state, format!("add_trace for component {id:?} ({name}) that is already running; ignored"));
            return;
        }
        if state.ended {
            self.warn(&mut state, format!("add_trace for component {id:?} ({name}) after end"));
        }
        let index = state.next_index;
        state.next_index = state.next_index.saturating_add(1);
        let span = self.inner.enable_otel.then(|| {
            let parent_span = parent.as_ref().and_then(|p| state.open.get(p)).and_then(|c| c.span.clone());
            let parent_span = parent_span.or_else(|| state.trace_span.clone());
            self.component_span(&id, &name, &kind, index, parent_span.as_ref(), model_hint.as_deref())
        });

        let mut event = self.event(TraceEventType::SpanStart);
        event.span_id = Some(id.clone());
        event.parent_span_id = parent.clone();
        event.component_name = Some(name.clone());
        event.component_type = Some(kind.clone());
        event.component_index = Some(index);
        event.input_data = Some(inputs);
        event.metadata = metadata;
        self.send(&event);

        state.open.insert(
            id,
            Component {
                name,
                kind,
                kind_given,
                index,
                parent,
                started: Instant::now(),
                model_hint,
                provider_hint,
                span,
            },
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn finish_component(
        &self,
        state: &mut State,
        id: &str,
        name: &str,
        component: Option<Component>,
        outputs: Value,
        priced: Priced,
        error: Option<String>,
        ended: Instant,
    ) {
        let kind = match &component {
            Some(c) if c.kind_given || priced.model.is_none() => c.kind.clone(),
            Some(_) => "llm".to_owned(),
            None => infer_component_type(name, priced.model.is_some()).to_owned(),
        };
        let component_name = component.as_ref().map_or_else(|| name.to_owned(), |c| c.name.clone());
        let status = if error.is_some() { "error" } else { "success" };

        if !state.ended {
            let t = &mut state.totals;
            t.spans += 1;
            t.failed_spans += u64::from(error.is_some());
            if let Some(u) = &priced.usage {
                t.input_tokens = t.input_tokens.saturating_add(u.input_tokens);
                t.output_tokens = t.output_tokens.saturating_add(u.output_tokens);
                t.cached_tokens = t.cached_tokens.saturating_add(u.cached_tokens);
                t.reasoning_tokens = t.reasoning_tokens.saturating_add(u.reasoning_tokens);
            }
            t.total_cost = crate::cost::round_usd(t.total_cost + priced.cost.unwrap_or(0.0));
            t.untrusted_costs += u64::from(!priced.trusted);
        }

        let mut event = self.event(TraceEventType::SpanEnd);
        event.span_id = Some(id.to_owned());
        event.parent_span_id = component.as_ref().and_then(|c| c.parent.clone());
        event.component_name = Some(component_name.clone());
        event.component_type = Some(kind.clone());
        event.component_index = component.as_ref().map(|c| c.index);
        event.duration_ms = component.as_ref().map(|c| elapsed_ms(c.started, ended));
        event.error = error.clone();
        let m = &mut event.metadata;
        m.insert("component_name".into(), component_name.into());
        m.insert("status".into(), status.into());
        m.insert("component_type".into(), kind.clone().into());
        priced.write(m);

        if let Some(span) = component.and_then(|c| c.span) {
            record_component_span(&span, &kind, &priced, error.as_deref());
            drop(span); // ends the OTEL span now
        }
        event.output_data = Some(outputs);
        self.send(&event);
    }

    fn end_locked(
        &self,
        state: &mut State,
        inputs: Value,
        outputs: Value,
        error: Option<String>,
        metadata: Option<Value>,
    ) {
        let ended = Instant::now();
        // Components still running: ended with an error, in start order.
        let mut unfinished: Vec<(String, Component)> = state.open.drain().collect();
        unfinished.sort_by_key(|(_, c)| c.index);
        for (id, c) in unfinished {
            let name = c.name.clone();
            self.warn(state, format!("component {id:?} ({name}) was still running at end; ended with an error"));
            state.finished.insert(id.clone());
            let message = "the trace ended before the component finished".to_owned();
            let priced = Priced::new(&LlmInfo::default(), None, None);
            self.finish_component(state, &id, &name, Some(c), Value::Null, priced, Some(message), ended);
        }
        state.ended = true;
        let totals = state.totals;
        let mut event = self.event(TraceEventType::TraceEnd);
        event.duration_ms = state.started.map(|s| elapsed_ms(s, ended));
        event.error = error.clone();
        event.input_data = Some(inputs);
        event.output_data = Some(outputs);
        // As the Python package: tags, params and metrics flattened into `metadata` (later ones win on a clash), then
        // the caller's metadata; the trace's own keys below win over all of them.
        let mut m = state.tags.clone();
        m.extend(state.params.clone());
        m.extend(state.metrics.clone());
        if let Some(v) = metadata {
            m.extend(into_map(v));
        }
        let status = if error.is_some() { "error" } else { "success" };
        m.insert("flow_id".into(), self.inner.flow_id.clone().into());
        m.insert("flow_name".into(), self.inner.trace_name.clone().into());
        m.insert("total_spans".into(), totals.spans.into());
        m.insert("failed_spans".into(), totals.failed_spans.into());
        m.insert("status".into(), status.into());
        m.insert("project_name".into(), self.inner.project_name.clone().into());
        m.insert("total_input_tokens".into(), totals.input_tokens.into());
        m.insert("total_output_tokens".into(), totals.output_tokens.into());
        m.insert("total_cached_tokens".into(), totals.cached_tokens.into());
        m.insert("total_reasoning_tokens".into(), totals.reasoning_tokens.into());
        m.insert("total_cost".into(), totals.total_cost.into());
        if totals.untrusted_costs > 0 {
            m.insert("cost_trusted".into(), Value::Bool(false));
        }
        if !state.warnings.is_empty() {
            m.insert("warnings".into(), state.warnings.clone().into());
        }
        if state.warnings_total > state.warnings.len() as u64 {
            m.insert("warnings_total".into(), state.warnings_total.into());
        }
        event.metadata = m;
        if let Some(span) = state.trace_span.take() {
            record_trace_span(&span, &totals, error.as_deref());
        }
        self.send(&event);
    }

    fn event(&self, event_type: TraceEventType) -> TraceEvent {
        let i = &self.inner;
        TraceEvent {
            event_id: Uuid::now_v7().hyphenated().to_string(),
            event_type,
            timestamp: now_rfc3339(),
            trace_id: i.trace_id.clone(),
            span_id: None,
            parent_span_id: None,
            flow_id: Some(i.flow_id.clone()),
            flow_name: Some(i.trace_name.clone()),
            component_name: None,
            component_type: None,
            component_index: None,
            duration_ms: None,
            input_data: None,
            output_data: None,
            error: None,
            user_id: i.user_id.clone(),
            session_id: i.session_id.clone(),
            project_name: i.project_name.clone(),
            metadata: Map::new(),
        }
    }

    fn send(&self, event: &TraceEvent) {
        let sink = self.inner.sink.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let Some(sink) = sink else { return };
        match serde_json::to_vec(event) {
            Ok(payload) if payload.len() <= MAX_EVENT_BYTES => sink.send(event, &payload),
            Ok(payload) => {
                // Larger than a Kafka message may be: the data fields give way, the event itself is kept.
                let mut small = event.clone();
                let replaced = shrink(&mut small, payload.len());
                crate::diag::report!(
                    WARN,
                    "agent-event-too-large",
                    "agent trace event `{}` of {} bytes is larger than {MAX_EVENT_BYTES} bytes; data fields \
                     {replaced:?} replaced by a preview",
                    event.event_type,
                    payload.len()
                );
                if let Ok(payload) = serde_json::to_vec(&small) {
                    sink.send(&small, &payload);
                }
            }
            Err(e) => {
                // Only a non-string map key inside user data can do this; send the event without that data.
                crate::diag::report!(
                    ERROR,
                    "agent-event-unserialisable",
                    "agent trace event not serialisable ({e}); sent without its input/output data"
                );
                let mut plain = event.clone();
                plain.input_data = None;
                plain.output_data = None;
                plain.metadata.insert("serialization_error".into(), e.to_string().into());
                if let Ok(payload) = serde_json::to_vec(&plain) {
                    sink.send(&plain, &payload);
                }
            }
        }
    }

    fn trace_span(&self) -> ::tracing::Span {
        let i = &self.inner;
        let otel_name = format!("invoke_agent {}", i.trace_name);
        let span = ::tracing::info_span!(parent: None, "agent_trace", otel.name = %otel_name);
        let set = |k: &str, v: Value| crate::otel::set_span_attribute(&span, k, &v);
        set(semconv::GEN_AI_OPERATION_NAME, semconv::operation::INVOKE_AGENT.into());
        set(semconv::GEN_AI_AGENT_NAME, i.trace_name.clone().into());
        set("agent.trace_id", i.trace_id.clone().into());
        set("agent.flow_id", i.flow_id.clone().into());
        set("agent.project_name", i.project_name.clone().into());
        if let Some(s) = &i.session_id {
            set(semconv::GEN_AI_CONVERSATION_ID, s.clone().into());
        }
        if let Some(u) = &i.user_id {
            set("user.id", u.clone().into());
        }
        span
    }

    fn component_span(
        &self,
        id: &str,
        name: &str,
        kind: &str,
        index: u32,
        parent: Option<&::tracing::Span>,
        model: Option<&str>,
    ) -> ::tracing::Span {
        let span = match parent {
            Some(p) => ::tracing::info_span!(parent: p, "agent_component", otel.name = %name),
            None => ::tracing::info_span!(parent: None, "agent_component", otel.name = %name),
        };
        let set = |k: &str, v: Value| crate::otel::set_span_attribute(&span, k, &v);
        set("component.id", id.into());
        set("component.type", kind.into());
        set("component.index", index.into());
        set("agent.trace_id", self.inner.trace_id.clone().into());
        match kind {
            "llm" => set(semconv::GEN_AI_OPERATION_NAME, semconv::operation::CHAT.into()),
            "tool" => {
                set(semconv::GEN_AI_OPERATION_NAME, semconv::operation::EXECUTE_TOOL.into());
                set(semconv::GEN_AI_TOOL_NAME, name.into());
            }
            "agent" => set(semconv::GEN_AI_OPERATION_NAME, semconv::operation::INVOKE_AGENT.into()),
            _ => {}
        }
        if let Some(m) = model {
            set(semconv::GEN_AI_REQUEST_MODEL, m.into());
        }
        span
    }
}

impl fmt::Debug for AgentTracer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sink = self.inner.sink.lock().unwrap_or_else(PoisonError::into_inner).as_ref().map(|s| s.describe());
        f.debug_struct("AgentTracer")
            .field("trace_id", &self.inner.trace_id)
            .field("trace_name", &self.inner.trace_name)
            .field("flow_id", &self.inner.flow_id)
            .field("project_name", &self.inner.project_name)
            .field("sink", &sink)
            .finish_non_exhaustive()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        if state.started.is_none() || state.ended {
            return;
        }
        // The last clone is gone without `end()`: end the trace so that the stream is complete.
        let tracer = AgentTracer {
            inner: Arc::new(Inner {
                trace_id: std::mem::take(&mut self.trace_id),
                trace_name: std::mem::take(&mut self.trace_name),
                flow_id: std::mem::take(&mut self.flow_id),
                user_id: self.user_id.take(),
                session_id: self.session_id.take(),
                project_name: std::mem::take(&mut self.project_name),
                environment: std::mem::take(&mut self.environment),
                enable_otel: self.enable_otel,
                extractors: self.extractors.clone(),
                sink: Mutex::new(self.sink.get_mut().unwrap_or_else(PoisonError::into_inner).take()),
                state: Mutex::new(std::mem::take(state)),
            }),
        };
        let mut st = tracer.lock();
        tracer.warn(&mut st, "the tracer was dropped without end(); the trace was ended".into());
        let error = Some("the trace was not ended (tracer dropped without end())".to_owned());
        tracer.end_locked(&mut st, Value::Null, Value::Null, error, None);
    }
}

/// The largest event sent as is: below librdkafka's default `message.max.bytes` (1,000,000) with room for the key
/// and headers. Larger events have their data fields replaced by a preview (see [`AgentTracer`], "Large data").
pub const MAX_EVENT_BYTES: usize = 900_000;

/// Characters of a replaced data field kept as its preview.
const PREVIEW_CHARS: usize = 2_000;

/// Replaces `input_data`, then `output_data`, then user metadata of an event that serialised to `bytes` bytes by
/// `{"_truncated": true, "original_bytes": N, "preview": "<first characters of its JSON>"}` until it fits in
/// [`MAX_EVENT_BYTES`]; returns the names of the replaced fields. Totals, tokens and cost are computed before
/// and are never affected.
fn shrink(event: &mut TraceEvent, bytes: usize) -> Vec<&'static str> {
    fn preview(v: &Value) -> Value {
        let json = serde_json::to_string(v).unwrap_or_default();
        let cut: String = json.chars().take(PREVIEW_CHARS).collect();
        serde_json::json!({"_truncated": true, "original_bytes": json.len(), "preview": cut})
    }
    let size = |e: &TraceEvent| serde_json::to_vec(e).map_or(usize::MAX, |v| v.len());
    let mut replaced = Vec::new();
    let mut current = bytes;
    for field in ["input_data", "output_data"] {
        if current <= MAX_EVENT_BYTES {
            break;
        }
        let slot = if field == "input_data" { &mut event.input_data } else { &mut event.output_data };
        if let Some(v) = slot.as_mut() {
            *v = preview(v);
            replaced.push(field);
            current = size(event);
        }
    }
    if current > MAX_EVENT_BYTES {
        // User metadata (ours is small: status, model, tokens, totals): keep our keys, preview the rest.
        const OURS: &[&str] = &[
            "component_name",
            "status",
            "component_type",
            "model",
            "provider",
            "input_tokens",
            "output_tokens",
            "cached_tokens",
            "reasoning_tokens",
            "cost",
            "flow_id",
            "flow_name",
            "total_spans",
            "failed_spans",
            "project_name",
            "total_input_tokens",
            "total_output_tokens",
            "total_cached_tokens",
            "total_reasoning_tokens",
            "total_cost",
            "cost_trusted",
            "environment",
            "name",
        ];
        let (ours, theirs): (Map<String, Value>, Map<String, Value>) =
            std::mem::take(&mut event.metadata).into_iter().partition(|(k, _)| OURS.contains(&k.as_str()));
        event.metadata = ours;
        event.metadata.insert("user_metadata".into(), preview(&Value::Object(theirs)));
        replaced.push("metadata");
    }
    event.metadata.insert("data_truncated".into(), Value::Bool(true));
    replaced
}

/// Tokens, model, provider and cost of one output.
struct Priced {
    usage: Option<TokenUsage>,
    model: Option<String>,
    provider: Option<String>,
    cost: Option<f64>,
    /// False when the cost comes from a count above the ceiling (see `CostResult::trusted`).
    trusted: bool,
}

impl Priced {
    fn new(info: &LlmInfo, model_hint: Option<&str>, provider_hint: Option<&str>) -> Self {
        let model = info.model.clone().or_else(|| model_hint.map(str::to_owned));
        let provider = info
            .provider
            .clone()
            .or_else(|| provider_hint.map(str::to_owned))
            .or_else(|| model.as_deref().and_then(crate::llm::usage::detect_provider));
        let (cost, trusted) = match (&info.usage, &model) {
            (Some(u), Some(m)) => {
                let c = crate::cost::calculate_cost_usage(provider.as_deref().unwrap_or(""), m, u);
                (c.price_found.then_some(c.total_cost), c.trusted)
            }
            (Some(u), None) => (None, !u.capped),
            _ => (None, true),
        };
        Self { usage: info.usage, model, provider, cost, trusted }
    }

    fn write(&self, m: &mut Map<String, Value>) {
        if let Some(model) = &self.model {
            m.insert("model".into(), model.clone().into());
        }
        if let Some(p) = &self.provider {
            m.insert("provider".into(), p.clone().into());
        }
        if let Some(u) = &self.usage {
            m.insert("input_tokens".into(), u.input_tokens.into());
            m.insert("output_tokens".into(), u.output_tokens.into());
            if u.cached_tokens > 0 {
                m.insert("cached_tokens".into(), u.cached_tokens.into());
            }
            if u.reasoning_tokens > 0 {
                m.insert("reasoning_tokens".into(), u.reasoning_tokens.into());
            }
        }
        if let Some(c) = self.cost {
            m.insert("cost".into(), c.into());
        }
        if !self.trusted {
            m.insert("cost_trusted".into(), Value::Bool(false));
        }
    }
}

fn record_component_span(span: &::tracing::Span, kind: &str, priced: &Priced, error: Option<&str>) {
    let set = |k: &str, v: Value| crate::otel::set_span_attribute(span, k, &v);
    if kind == "llm" || priced.model.is_some() {
        set(semconv::GEN_AI_OPERATION_NAME, semconv::operation::CHAT.into());
    }
    if let Some(m) = &priced.model {
        set(semconv::GEN_AI_REQUEST_MODEL, m.clone().into());
        set(semconv::GEN_AI_RESPONSE_MODEL, m.clone().into());
    }
    if let Some(p) = &priced.provider {
        set(semconv::GEN_AI_PROVIDER_NAME, p.clone().into());
        set(semconv::GEN_AI_SYSTEM, p.clone().into());
    }
    if let Some(u) = &priced.usage {
        set(semconv::GEN_AI_USAGE_INPUT_TOKENS, u.input_tokens.into());
        set(semconv::GEN_AI_USAGE_OUTPUT_TOKENS, u.output_tokens.into());
        if u.cached_tokens > 0 {
            set(semconv::GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, u.cached_tokens.into());
        }
        if u.cache_creation_tokens > 0 {
            set(semconv::GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, u.cache_creation_tokens.into());
        }
        if u.reasoning_tokens > 0 {
            set(semconv::GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, u.reasoning_tokens.into());
        }
    }
    if let Some(c) = priced.cost {
        set(semconv::GEN_AI_COST, c.into());
    }
    if !priced.trusted {
        set(semconv::OBSERVER_COST_TRUSTED, false.into());
    }
    if let Some(e) = error {
        crate::otel::set_span_error(span, e);
    }
}

fn record_trace_span(span: &::tracing::Span, totals: &AgentTotals, error: Option<&str>) {
    let set = |k: &str, v: Value| crate::otel::set_span_attribute(span, k, &v);
    set(semconv::GEN_AI_USAGE_INPUT_TOKENS, totals.input_tokens.into());
    set(semconv::GEN_AI_USAGE_OUTPUT_TOKENS, totals.output_tokens.into());
    set(semconv::GEN_AI_COST, totals.total_cost.into());
    if totals.untrusted_costs > 0 {
        set(semconv::OBSERVER_COST_TRUSTED, false.into());
    }
    set("agent.total_spans", totals.spans.into());
    if let Some(e) = error {
        crate::otel::set_span_error(span, e);
    }
}

/// The default `sink` of a tracer: Kafka (own config, or `observer::init`'s exporter), else none.
pub(crate) fn default_sink(kafka: Option<&KafkaConfig>) -> Result<Option<Arc<dyn TraceSink>>, ObserverError> {
    #[cfg(feature = "kafka")]
    {
        if let Some(k) = kafka {
            let sink = crate::export::KafkaTopicSink::new(k, &k.trace_topic)?;
            return Ok(Some(Arc::new(sink)));
        }
        Ok(crate::kafka_exporter().map(|e| {
            let topic = e.config().trace_topic.clone();
            Arc::new(crate::export::KafkaTopicSink::from_exporter(e, topic)) as Arc<dyn TraceSink>
        }))
    }
    #[cfg(not(feature = "kafka"))]
    {
        if kafka.is_some() {
            return Err(crate::ConfigurationError::new(
                "kafka",
                "AgentTracer streaming to Kafka needs the `kafka` feature of observer",
            )
            .into());
        }
        Ok(None)
    }
}

/// With `enable_otel` and a service name: configures OpenTelemetry tracing once, if nothing is configured yet.
pub(crate) fn ensure_otel(service_name: Option<&str>) {
    #[cfg(feature = "otel")]
    if let Some(name) = service_name {
        if !crate::otel::is_configured() {
            let config = crate::trace::TracingConfig { service_name: name.to_owned(), ..Default::default() };
            if let Err(e) = crate::trace::configure_tracing(config) {
                crate::diag::report!(
                    WARN,
                    "agent-otel",
                    "AgentTracer could not configure OpenTelemetry ({e}); spans go to the current subscriber only"
                );
            }
        }
    }
    #[cfg(not(feature = "otel"))]
    let _ = service_name;
}

/// The component type when none was given, inferred as the reference Python SDK does: `llm` if a model was found,
/// else by keywords in the name.
pub fn infer_component_type(name: &str, has_model: bool) -> &'static str {
    if has_model {
        return "llm";
    }
    let n = name.to_ascii_lowercase();
    const RULES: &[(&[&str], &str)] = &[
        (&["agent", "executor", "workflow", "orchestrator"], "agent"),
        (&["input", "prompt", "question", "query"], "input"),
        (&["output", "response", "result", "answer"], "output"),
        (&["retrieval", "vector", "search", "rag", "knowledge"], "retrieval"),
        (&["memory", "history", "context", "conversation"], "memory"),
        (&["tool", "function", "api", "external", "utility"], "tool"),
        (&["process", "transform", "parse", "format"], "processing"),
        (&["llm", "model", "chat", "completion"], "llm"),
    ];
    RULES.iter().find(|(words, _)| words.iter().any(|w| n.contains(w))).map_or("component", |(_, kind)| kind)
}

/// The flow name of a trace name: Langflow names traces `"<flow name> - <flow id>"`; the name
/// is what comes before the first `" - "` (trimmed, as the Python package does), and an empty name is `"unknown"`.
fn clean_flow_name(trace_name: &str) -> String {
    let name = trace_name.split(" - ").next().unwrap_or("").trim();
    if trace_name.trim().is_empty() {
        return "unknown".into();
    }
    name.to_owned()
}

fn into_map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        Value::Null => Map::new(),
        other => Map::from_iter([("value".to_owned(), other)]),
    }
}

fn string_at(m: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| m.get(*k).and_then(Value::as_str)).filter(|s| !s.is_empty()).map(str::to_owned)
}

/// Milliseconds from `start` to `end`, both taken around the user's work only (never around the SDK's own work,
/// such as pricing).
fn elapsed_ms(start: Instant, end: Instant) -> f64 {
    end.saturating_duration_since(start).as_secs_f64() * 1000.0
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
