//! [`AgentTracer`]: the state of one trace (components, totals, warnings) and the calls that change it.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use serde_json::{Map, Value};

use super::config::{clean_flow_name, AgentTracerConfig};
use super::events::{into_map, trace_end_metadata, TraceContext, TraceEnd, TraceEvent, TraceEventType};
use super::kind::ComponentKind;
use super::pricing::{AgentTotals, Priced};
use super::sink::{default_sink, TraceSink};
use super::{shrink, spans};
use crate::error::ObserverError;
use crate::llm::semconv;
use crate::llm::usage::{Extractors, LlmInfo};
use crate::{outbound, CaptureLevel};

/// Out-of-order calls kept (and logged) per trace; further ones are only counted (`metadata.warnings_total`).
pub const MAX_WARNINGS: usize = 100;

/// Traces one flow run: Langflow / AI Studio flow tracing — one trace per flow run, one span per component —
/// streamed as events to Kafka (topic `genesis-traces-streaming`), with tokens and cost taken from the
/// components' outputs, and optionally as OpenTelemetry spans. Cheap to clone: clones share the trace.
///
/// [`new`](Self::new) takes an [`AgentTrace`](super::AgentTrace) (which flow run) or an
/// [`AgentTracerConfig`] (the run and its settings: Kafka, OpenTelemetry, project); a
/// [`TracerFactory`](super::TracerFactory) creates tracers that share one configuration.
///
/// ```
/// use observer::trace::{AgentTrace, AgentTracer, MemoryTraceSink};
/// use serde_json::json;
///
/// let events = MemoryTraceSink::new();
/// let tracer = AgentTracer::new(AgentTrace {
///     trace_name: "Customer Support Flow".into(),
///     flow_id: "flow-123".into(),
///     user_id: Some("user-456".into()),
///     ..Default::default()
/// })?
/// .sink(events.clone());
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
/// An event whose JSON would exceed [`MAX_EVENT_BYTES`](super::MAX_EVENT_BYTES) (900 KB, under Kafka's default 1 MB message limit) is still
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
    ctx: TraceContext,
    environment: String,
    enable_otel: bool,
    /// The trace's capture level (components may have their own).
    capture: CaptureLevel,
    description: Option<String>,
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
    /// Running LLM calls: when each started and the model it asked for.
    llm_calls: HashMap<String, (Instant, String)>,
    /// The JSON of the event being sent, reused from one event to the next (events are sent under the lock).
    payload: Vec<u8>,
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
    capture: CaptureLevel,
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
    capture: Option<CaptureLevel>,
}

impl ComponentStart<'_> {
    /// This component's [capture level](CaptureLevel) (default: the tracer's): `None` sends neither its events
    /// nor its span (its tokens and cost still count in the totals), `Metadata` leaves out `input_data` and
    /// `output_data`, `Request` sends `input_data`, `RequestResponse` both (redacted).
    pub fn capture(mut self, level: CaptureLevel) -> Self {
        self.capture = Some(level);
        self
    }

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
        let ComponentStart { tracer, id, name, kind, inputs, metadata, parent, capture } = self;
        tracer.start_component(id, name, kind, inputs, metadata, parent, capture);
    }
}

impl AgentTracer {
    /// A tracer for one flow run: an [`AgentTrace`](super::AgentTrace) alone (default settings) or an
    /// [`AgentTracerConfig`]. Nothing is sent until [`start_trace`](Self::start_trace).
    ///
    /// # Errors
    /// With `kafka` set: [`ConfigurationError`](crate::ConfigurationError) without the `kafka` feature, or the
    /// exporter's error (invalid Kafka config, spool directory in use).
    pub fn new(config: impl Into<AgentTracerConfig>) -> Result<Self, ObserverError> {
        let config = config.into();
        crate::cost::warm_up_in_background();
        let sink = default_sink(config.kafka.as_ref())?;
        if config.enable_otel {
            spans::ensure_otel(config.otel_service_name.as_deref());
        }
        Ok(Self::build(config, sink))
    }

    pub(crate) fn build(config: AgentTracerConfig, sink: Option<Arc<dyn TraceSink>>) -> Self {
        Self {
            inner: Arc::new(Inner {
                ctx: TraceContext {
                    trace_id: config.trace.trace_id.hyphenated().to_string(),
                    flow_name: clean_flow_name(&config.trace.trace_name),
                    flow_id: config.trace.flow_id,
                    user_id: config.trace.user_id,
                    session_id: config.trace.session_id,
                    project_name: config.project_name,
                },
                environment: config.environment,
                enable_otel: config.enable_otel,
                capture: config.capture.unwrap_or_else(crate::init::capture_level),
                description: config.agent_description,
                extractors: config.extractors,
                sink: Mutex::new(sink),
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// Sends the events to `sink` instead (e.g. a [`MemoryTraceSink`](super::MemoryTraceSink) in tests).
    pub fn sink(self, sink: impl TraceSink) -> Self {
        *self.inner.sink.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(sink));
        self
    }

    /// The trace id (a UUID string, the Kafka message key).
    pub fn trace_id(&self) -> &str {
        &self.inner.ctx.trace_id
    }

    /// The flow name sent as `flow_name`: the configured trace name without Langflow's `" - <id>"` suffix.
    pub fn trace_name(&self) -> &str {
        &self.inner.ctx.flow_name
    }

    /// The flow id.
    pub fn flow_id(&self) -> &str {
        &self.inner.ctx.flow_id
    }

    /// The project name sent with every event.
    pub fn project_name(&self) -> &str {
        &self.inner.ctx.project_name
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
        self.start_component(component_id.into(), name.into(), kind.into(), inputs.into(), Value::Null, None, None);
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
            capture: None,
        }
    }

    /// The trace's [capture level](CaptureLevel) (components may have their own).
    pub fn capture_level(&self) -> CaptureLevel {
        self.inner.capture
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
        let priced = Priced::new(info, model_hint.as_deref(), provider_hint.as_deref());
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
        let level = self.level_of(&state, component_id);
        if !level.records() {
            return;
        }
        let mut event = self.inner.ctx.event(TraceEventType::LlmCallStart);
        event.span_id = Some(component_id.to_owned());
        event.input_data = level.captures_request().then(|| outbound::value(inputs.into()));
        event.metadata.insert("model".into(), model.into());
        self.send(&mut state, &event);
        // The call starts once the SDK's own work is done.
        state.llm_calls.insert(component_id.to_owned(), (Instant::now(), model.to_owned()));
    }

    /// Sends `llm_call_end` with the tokens, model and cost found in `outputs` (see
    /// [`llm_call_start`](Self::llm_call_start)).
    pub fn llm_call_end(&self, component_id: &str, outputs: impl Into<Value>, error: Option<&str>) {
        let ended = Instant::now();
        let outputs = outputs.into();
        let info = self.inner.extractors.extract(&outputs);
        let priced = Priced::new(info, None, None);
        let mut state = self.lock();
        self.ensure_started(&mut state, "llm_call_end");
        let started = state.llm_calls.remove(component_id);
        let level = self.level_of(&state, component_id);
        if !level.records() {
            return;
        }
        record_llm_metrics(&priced, started.as_ref(), ended, error);
        let started = started.map(|(at, _)| at);
        let mut event = self.inner.ctx.event(TraceEventType::LlmCallEnd);
        event.span_id = Some(component_id.to_owned());
        event.duration_ms = started.map(|s| elapsed_ms(s, ended));
        event.error = error.map(|e| outbound::text(e).into_owned());
        priced.write(&mut event.metadata);
        event.output_data = level.captures_response().then(|| outbound::value(outputs));
        self.send(&mut state, &event);
    }

    /// Sends a `custom` event with `data` as its metadata (`name` under `metadata.name`).
    pub fn custom_event(&self, name: &str, data: Value) {
        let mut state = self.lock();
        self.ensure_started(&mut state, "custom_event");
        let mut event = self.inner.ctx.event(TraceEventType::Custom);
        event.metadata = match outbound::value(data) {
            Value::Object(map) => map,
            Value::Null => Map::new(),
            other => Map::from_iter([("data".to_owned(), other)]),
        };
        event.metadata.insert("name".into(), name.into());
        self.send(&mut state, &event);
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
    /// [`observer::flush`](crate::flush) already flushes the SDK's own Kafka producers, which carry the sinks
    /// built from a `KafkaConfig`; this flush is for a sink it cannot reach: a
    /// [`TraceSink`](crate::trace::TraceSink) of your own, or a topic sink over a `KafkaExporter` you created.
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

    // ---------------------------------------------------------------------------------------------------------

    /// The sink, if any: events are built only when there is one.
    fn current_sink(&self) -> Option<Arc<dyn TraceSink>> {
        self.inner.sink.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn send(&self, state: &mut State, event: &TraceEvent) {
        if let Some(sink) = self.current_sink() {
            Self::send_to(&*sink, state, event);
        }
    }

    /// Serialises `event` into the trace's reused buffer (shrunk if too large) and hands it to `sink`.
    fn send_to(sink: &dyn TraceSink, state: &mut State, event: &TraceEvent) {
        /// A buffer grown by a large event is not kept.
        const KEEP_BYTES: usize = 64 * 1024;
        if let Some(event) = shrink::encode_into(event, &mut state.payload) {
            sink.send(&event, &state.payload);
        }
        if state.payload.capacity() > KEEP_BYTES {
            state.payload = Vec::new();
        }
    }

    /// The capture level of component `id` (the tracer's when it is not running).
    fn level_of(&self, state: &State, id: &str) -> CaptureLevel {
        state.open.get(id).map_or(self.inner.capture, |c| c.capture)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn warn(&self, state: &mut State, message: String) {
        state.warnings_total += 1;
        if state.warnings.len() < MAX_WARNINGS {
            crate::diag::report!(WARN, "agent-misuse", "agent trace {}: {message}", self.inner.ctx.trace_id);
            state.warnings.push(message);
        } else if state.warnings_total == MAX_WARNINGS as u64 + 1 {
            crate::diag::report!(
                WARN,
                "agent-misuse",
                "agent trace {}: more than {MAX_WARNINGS} out-of-order calls in this trace; further ones are only \
                 counted",
                self.inner.ctx.trace_id
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
            state.trace_span = Some(spans::trace_span(&self.inner.ctx, self.inner.description.as_deref()));
        }
        let mut event = self.inner.ctx.event(TraceEventType::TraceStart);
        event.metadata.insert("environment".into(), self.inner.environment.clone().into());
        self.send(state, &event);
        // The trace's time starts once the SDK's own work is done.
        state.started = Some(Instant::now());
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start_component(
        &self,
        id: String,
        name: String,
        kind: String,
        inputs: Value,
        metadata: Value,
        parent: Option<String>,
        capture: Option<CaptureLevel>,
    ) {
        let capture = capture.unwrap_or(self.inner.capture);
        let metadata = into_map(metadata);
        let model_hint = string_at(&metadata, &["model", "model_name", "model_id"]);
        let provider_hint = string_at(&metadata, &["provider"]);
        let kind_given = !kind.trim().is_empty();
        let kind = if kind_given { kind } else { ComponentKind::infer(&name, model_hint.is_some()).into() };
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
        let span = (self.inner.enable_otel && capture.records()).then(|| {
            let parent_span = parent.as_ref().and_then(|p| state.open.get(p)).and_then(|c| c.span.clone());
            let parent_span = parent_span.or_else(|| state.trace_span.clone());
            spans::component_span(
                &self.inner.ctx.trace_id,
                &id,
                &name,
                &kind,
                index,
                parent_span.as_ref(),
                model_hint.as_deref(),
            )
        });
        if let Some(span) = &span {
            if capture.captures_request() {
                spans::record_content(span, &kind, semconv::GEN_AI_INPUT_MESSAGES, &inputs);
            }
        }

        // The event is built (and its data redacted) only when it is sent.
        if let Some(sink) = capture.records().then(|| self.current_sink()).flatten() {
            let mut event = self.inner.ctx.event(TraceEventType::SpanStart);
            event.span_id = Some(id.clone());
            event.parent_span_id = parent.clone();
            event.component_name = Some(name.clone());
            event.component_type = Some(kind.clone());
            event.component_index = Some(index);
            event.input_data = capture.captures_request().then(|| outbound::value(inputs));
            // The caller's metadata is redacted; the model and provider hints were read before.
            event.metadata = into_map(outbound::value(Value::Object(metadata)));
            Self::send_to(&*sink, &mut state, &event);
        }

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
                capture,
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
        let capture = component.as_ref().map_or(self.inner.capture, |c| c.capture);
        let error = error.map(|e| outbound::text(&e).into_owned());

        if !state.ended {
            state.totals.add(&priced, error.is_some());
        }

        let (kind, parent, index, started, span, component_name) = match component {
            Some(c) => {
                let kind = if c.kind_given || priced.model.is_none() { c.kind } else { ComponentKind::Llm.into() };
                (kind, c.parent, Some(c.index), Some(c.started), c.span, c.name)
            }
            None => {
                let kind = ComponentKind::infer(name, priced.model.is_some()).into();
                (kind, None, None, None, None, name.to_owned())
            }
        };
        if let Some(span) = span {
            if capture.captures_response() {
                spans::record_content(&span, &kind, semconv::GEN_AI_OUTPUT_MESSAGES, &outputs);
            }
            spans::record_component_span(&span, &kind, &priced, error.as_deref());
            drop(span); // ends the OTEL span now
        }
        // The event is built (and its data redacted) only when it is sent.
        let Some(sink) = capture.records().then(|| self.current_sink()).flatten() else { return };
        let status = if error.is_some() { "error" } else { "success" };
        let mut event = self.inner.ctx.event(TraceEventType::SpanEnd);
        event.span_id = Some(id.to_owned());
        event.parent_span_id = parent;
        event.component_index = index;
        event.duration_ms = started.map(|s| elapsed_ms(s, ended));
        let m = &mut event.metadata;
        m.insert("component_name".into(), component_name.clone().into());
        m.insert("status".into(), status.into());
        m.insert("component_type".into(), kind.clone().into());
        priced.write(m);
        event.component_name = Some(component_name);
        event.component_type = Some(kind);
        event.error = error;
        event.output_data = capture.captures_response().then(|| outbound::value(outputs));
        Self::send_to(&*sink, state, &event);
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
            let priced = Priced::new(LlmInfo::default(), None, None);
            self.finish_component(state, &id, &name, Some(c), Value::Null, priced, Some(message), ended);
        }
        state.ended = true;
        let totals = state.totals;
        let capture = self.inner.capture;
        let error = error.map(|e| outbound::text(&e).into_owned());
        let mut event = self.inner.ctx.event(TraceEventType::TraceEnd);
        event.duration_ms = state.started.map(|s| elapsed_ms(s, ended));
        event.error = error.clone();
        if let Some(span) = &state.trace_span {
            if capture.captures_request() {
                spans::record_content(span, "agent", semconv::GEN_AI_INPUT_MESSAGES, &inputs);
            }
            if capture.captures_response() {
                spans::record_content(span, "agent", semconv::GEN_AI_OUTPUT_MESSAGES, &outputs);
            }
        }
        event.input_data = capture.captures_request().then(|| outbound::value(inputs));
        event.output_data = capture.captures_response().then(|| outbound::value(outputs));
        event.metadata = trace_end_metadata(
            &self.inner.ctx,
            TraceEnd {
                tags: &state.tags,
                params: &state.params,
                metrics: &state.metrics,
                metadata,
                failed: error.is_some(),
                totals: &totals,
                warnings: &state.warnings,
                warnings_total: state.warnings_total,
            },
        );
        if let Some(span) = state.trace_span.take() {
            spans::record_trace_span(&span, &totals, error.as_deref());
        }
        self.send(state, &event);
    }
}

impl fmt::Debug for AgentTracer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sink = self.inner.sink.lock().unwrap_or_else(PoisonError::into_inner).as_ref().map(|s| s.describe());
        f.debug_struct("AgentTracer")
            .field("trace_id", &self.inner.ctx.trace_id)
            .field("trace_name", &self.inner.ctx.flow_name)
            .field("flow_id", &self.inner.ctx.flow_id)
            .field("project_name", &self.inner.ctx.project_name)
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
                ctx: std::mem::take(&mut self.ctx),
                environment: std::mem::take(&mut self.environment),
                enable_otel: self.enable_otel,
                capture: self.capture,
                description: self.description.take(),
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

fn string_at(m: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| m.get(*k).and_then(Value::as_str)).filter(|s| !s.is_empty()).map(str::to_owned)
}

/// Milliseconds from `start` to `end`, both taken around the user's work only (never around the SDK's own work,
/// such as pricing).
/// The GenAI client metrics of an `llm_call_end` (operation `chat`; `error.type` is `_OTHER` for the caller's
/// free-text error, as the conventions say for an error without a low-cardinality class).
fn record_llm_metrics(priced: &Priced, started: Option<&(Instant, String)>, ended: Instant, error: Option<&str>) {
    crate::otel::record_llm(&crate::otel::LlmMetrics {
        operation: crate::llm::semconv::operation::CHAT,
        provider: priced.provider.as_deref(),
        request_model: started.map(|(_, model)| model.as_str()).filter(|m| !m.is_empty()),
        response_model: priced.model.as_deref(),
        error_type: error.map(|_| "_OTHER"),
        tokens: priced.usage.map(|u| (u.input_tokens, u.output_tokens)),
        duration: started.map(|(at, _)| ended.saturating_duration_since(*at)),
        cost_usd: priced.cost,
        ..Default::default()
    });
}

fn elapsed_ms(start: Instant, end: Instant) -> f64 {
    end.saturating_duration_since(start).as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::config::AgentTrace;
    use crate::agent::sink::MemoryTraceSink;
    use serde_json::json;

    fn tracer() -> (AgentTracer, MemoryTraceSink) {
        let events = MemoryTraceSink::new();
        let config = AgentTracerConfig::from(AgentTrace { trace_name: "Flow - id-1".into(), ..Default::default() });
        (AgentTracer::build(config, None).sink(events.clone()), events)
    }

    fn types(events: &MemoryTraceSink) -> Vec<TraceEventType> {
        events.events().iter().map(|e| e.event_type).collect()
    }

    #[test]
    fn the_calls_in_order_send_one_event_each() {
        use TraceEventType::*;
        let (t, events) = tracer();
        assert!(events.events().is_empty(), "nothing is sent before start_trace");
        t.start_trace();
        t.add_trace("c1", "Classifier", "llm", json!({"q": 1}));
        t.end_trace("c1", "Classifier", json!({"model": "gpt-4o", "input_tokens": 10, "output_tokens": 5}), None);
        t.end(json!({}), json!({}), None, None);
        assert_eq!(types(&events), [TraceStart, SpanStart, SpanEnd, TraceEnd]);
        assert!(t.warnings().is_empty() && t.is_ended() && t.running_components().is_empty());
        let all = events.events();
        assert!(all.iter().all(|e| e.flow_name.as_deref() == Some("Flow") && e.trace_id == t.trace_id()));
        assert_eq!(all[1].component_index, Some(0));
        assert_eq!(all[2].metadata["status"], "success");
        assert!(all[2].duration_ms.is_some());
        assert_eq!(t.totals().spans, 1);
        assert_eq!((t.totals().input_tokens, t.totals().output_tokens), (10, 5));
    }

    #[test]
    fn a_component_before_start_trace_starts_the_trace_and_says_so() {
        let (t, events) = tracer();
        t.add_trace("c1", "Tool", "tool", json!({}));
        assert_eq!(types(&events), [TraceEventType::TraceStart, TraceEventType::SpanStart]);
        assert_eq!(t.warnings().len(), 1);
        assert!(t.warnings()[0].contains("before start_trace"), "{:?}", t.warnings());
    }

    #[test]
    fn repeated_and_unknown_calls_are_ignored_or_sent_without_duration() {
        let (t, events) = tracer();
        t.start_trace();
        t.start_trace(); // ignored
        t.add_trace("c1", "A", "tool", json!({}));
        t.add_trace("c1", "A", "tool", json!({})); // already running: ignored
        t.end_trace("c1", "A", json!({}), None);
        t.end_trace("c1", "A", json!({}), None); // twice: ignored
        t.end_trace("ghost", "Ghost", json!({"input_tokens": 3, "output_tokens": 1}), None); // unknown: sent
        let sent = events.events();
        assert_eq!(sent.iter().filter(|e| e.event_type == TraceEventType::TraceStart).count(), 1);
        assert_eq!(sent.iter().filter(|e| e.event_type == TraceEventType::SpanStart).count(), 1);
        let ends: Vec<_> = sent.iter().filter(|e| e.event_type == TraceEventType::SpanEnd).collect();
        assert_eq!(ends.len(), 2);
        assert_eq!((ends[1].span_id.as_deref(), ends[1].duration_ms), (Some("ghost"), None));
        assert_eq!(t.totals().input_tokens, 3, "an unknown component's tokens still count");
        assert_eq!(t.warnings().len(), 4, "{:?}", t.warnings());
    }

    #[test]
    fn end_ends_running_components_with_an_error_in_start_order() {
        let (t, events) = tracer();
        t.start_trace();
        t.add_trace("b", "Second", "tool", json!({}));
        t.add_trace("a", "Third", "tool", json!({}));
        t.end(json!({}), json!({}), None, None);
        let ends: Vec<_> = events.events().into_iter().filter(|e| e.event_type == TraceEventType::SpanEnd).collect();
        assert_eq!(ends.iter().map(|e| e.span_id.clone().unwrap()).collect::<Vec<_>>(), ["b", "a"]);
        assert!(ends.iter().all(|e| e.error.is_some() && e.metadata["status"] == "error"));
        assert_eq!(t.totals().failed_spans, 2);
        let end = events.events().pop().unwrap();
        assert_eq!(end.metadata["failed_spans"], 2);
        assert_eq!(end.metadata["status"], "success", "the trace itself did not fail");
    }

    #[test]
    fn calls_after_end_are_sent_but_do_not_change_the_totals() {
        let (t, events) = tracer();
        t.start_trace();
        t.end(json!({}), json!({}), None, None);
        t.end(json!({}), json!({}), None, None); // twice: ignored
        t.add_trace("late", "Late", "llm", json!({}));
        t.end_trace("late", "Late", json!({"input_tokens": 5, "output_tokens": 5}), None);
        assert_eq!(events.events().len(), 4, "trace_start, trace_end, then the late span_start and span_end");
        assert_eq!(t.totals(), AgentTotals::default());
        assert_eq!(t.warnings().len(), 2, "{:?}", t.warnings());
    }

    #[test]
    fn kinds_are_inferred_and_a_model_makes_an_llm() {
        let (t, events) = tracer();
        t.start_trace();
        t.add_trace("r", "Vector Retriever", "", json!({}));
        t.component("m", "Mystery").metadata(json!({"model": "gpt-4o"})).start();
        t.add_trace("x", "Thing", "", json!({}));
        t.add_trace("g", "Given", "tool", json!({}));
        t.end_trace("r", "Vector Retriever", json!({}), None);
        t.end_trace("m", "Mystery", json!({}), None);
        t.end_trace("x", "Thing", json!({"model": "gpt-4o"}), None); // a model in the outputs: llm
        t.end_trace("g", "Given", json!({"model": "gpt-4o"}), None); // a given kind stays
        let kind = |id: &str, ty| {
            events
                .events()
                .into_iter()
                .find(|e| e.event_type == ty && e.span_id.as_deref() == Some(id))
                .and_then(|e| e.component_type)
                .unwrap()
        };
        assert_eq!(kind("r", TraceEventType::SpanStart), "retrieval");
        assert_eq!(kind("m", TraceEventType::SpanStart), "llm");
        assert_eq!(kind("x", TraceEventType::SpanStart), "component");
        assert_eq!(kind("x", TraceEventType::SpanEnd), "llm");
        assert_eq!(kind("g", TraceEventType::SpanEnd), "tool");
    }

    #[test]
    fn parents_and_metadata_hints_are_carried() {
        let (t, events) = tracer();
        t.start_trace();
        t.add_trace("outer", "Agent", "agent", json!({}));
        t.component("inner", "LLM").parent("outer").metadata(json!({"model": "gpt-4o", "provider": "openai"})).start();
        t.end_trace("inner", "LLM", json!({"input_tokens": 100, "output_tokens": 10}), None);
        let end = events.events().pop().unwrap();
        assert_eq!(end.parent_span_id.as_deref(), Some("outer"));
        assert_eq!(
            (end.metadata["model"].clone(), end.metadata["provider"].clone()),
            (json!("gpt-4o"), json!("openai"))
        );
        assert!(end.metadata["cost"].as_f64().unwrap() > 0.0, "priced from the start's model hint");
    }

    #[test]
    fn warnings_beyond_the_limit_are_only_counted() {
        let (t, events) = tracer();
        t.start_trace();
        for _ in 0..MAX_WARNINGS + 5 {
            t.start_trace();
        }
        t.end(json!({}), json!({}), None, None);
        assert_eq!(t.warnings().len(), MAX_WARNINGS);
        let end = events.events().pop().unwrap();
        assert_eq!(end.metadata["warnings_total"], json!(MAX_WARNINGS + 5));
    }

    #[test]
    fn a_tracer_without_a_sink_still_keeps_totals() {
        let t = AgentTracer::build(AgentTracerConfig::default(), None);
        t.start_trace();
        t.add_trace("c", "C", "llm", json!({}));
        t.end_trace("c", "C", json!({"input_tokens": 1, "output_tokens": 2}), None);
        assert_eq!((t.totals().input_tokens, t.totals().output_tokens), (1, 2));
        assert!(format!("{t:?}").contains("sink: None"));
    }
}
