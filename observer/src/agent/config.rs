//! What a tracer is told: [`AgentTrace`], the identity of one flow run (the factory's `create_agent_tracer`
//! arguments), and [`AgentTracerConfig`], that identity plus the settings of a standalone tracer (the guide's
//! `AgentTracer(..)` arguments).

use std::fmt;

use uuid::Uuid;

use crate::config::KafkaConfig;
use crate::llm::usage::Extractors;

/// The default `project_name`.
pub const DEFAULT_PROJECT_NAME: &str = "GenesisStudio";

/// The default trace topic.
pub const DEFAULT_TRACE_TOPIC: &str = "genesis-traces-streaming";

/// The identity of one flow run: what [`TracerFactory::create_agent_tracer`](super::TracerFactory::create_agent_tracer)
/// takes (the guide's `create_agent_tracer(trace_id, flow_id, trace_name, user_id, session_id)`), and the `trace`
/// of an [`AgentTracerConfig`].
#[derive(Clone)]
pub struct AgentTrace {
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
}

impl Default for AgentTrace {
    fn default() -> Self {
        Self {
            trace_name: String::new(),
            trace_id: Uuid::new_v4(),
            flow_id: String::new(),
            user_id: None,
            session_id: None,
        }
    }
}

impl fmt::Debug for AgentTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // User and session ids are kept out like other PII.
        f.debug_struct("AgentTrace")
            .field("trace_name", &self.trace_name)
            .field("trace_id", &self.trace_id)
            .field("flow_id", &self.flow_id)
            .finish_non_exhaustive()
    }
}

/// Settings of a standalone [`AgentTracer`](super::AgentTracer): the guide's constructor arguments, as the
/// flow run's [`AgentTrace`] and how its events are sent. [`AgentTracer::new`](super::AgentTracer::new) also
/// takes an `AgentTrace` alone (all settings default).
///
/// `kafka` carries the guide's `kafka_bootstrap_servers`, `kafka_topic` (`trace_topic`), `kafka_username` and
/// `kafka_password` (`sasl_username`, `sasl_password`: alone they mean SASL_SSL with PLAIN, as in the reference).
/// When it is `None`, events go to the Kafka exporter of `observer::init` if Kafka is enabled there (its
/// `trace_topic`), else nowhere (the tracer still computes totals and OTEL spans); a sink set with
/// [`AgentTracer::sink`](super::AgentTracer::sink) replaces either.
#[derive(Clone)]
pub struct AgentTracerConfig {
    /// Which flow run this is.
    pub trace: AgentTrace,
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
    /// The [capture level](crate::CaptureLevel) of this trace's components (each may set its own with
    /// [`ComponentStart::capture`](super::ComponentStart::capture)) and of the inputs and outputs of
    /// [`end`](super::AgentTracer::end). `None`: `ObserverConfig::capture_level` when the tracer is created
    /// (`Metadata` before `init`: no `input_data` / `output_data`).
    pub capture: Option<crate::CaptureLevel>,
    /// What the flow (agent) does: `gen_ai.agent.description` on the trace's span. Default none.
    pub agent_description: Option<String>,
}

impl Default for AgentTracerConfig {
    fn default() -> Self {
        Self::from(AgentTrace::default())
    }
}

impl From<AgentTrace> for AgentTracerConfig {
    /// `trace` with the default settings.
    fn from(trace: AgentTrace) -> Self {
        Self {
            trace,
            project_name: DEFAULT_PROJECT_NAME.into(),
            environment: "production".into(),
            kafka: None,
            enable_otel: false,
            otel_service_name: None,
            extractors: Extractors::default(),
            capture: None,
            agent_description: None,
        }
    }
}

impl fmt::Debug for AgentTracerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `KafkaConfig`'s Debug hides the password; `AgentTrace`'s leaves out user and session ids.
        f.debug_struct("AgentTracerConfig")
            .field("trace", &self.trace)
            .field("project_name", &self.project_name)
            .field("kafka", &self.kafka)
            .field("enable_otel", &self.enable_otel)
            .field("capture", &self.capture)
            .finish_non_exhaustive()
    }
}

/// The flow name of a trace name: Langflow names traces `"<flow name> - <flow id>"`; the name
/// is what comes before the first `" - "` (trimmed, as the Python package does), and an empty name is `"unknown"`.
pub(super) fn clean_flow_name(trace_name: &str) -> String {
    let name = trace_name.split(" - ").next().unwrap_or("").trim();
    if trace_name.trim().is_empty() {
        return "unknown".into();
    }
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_name_drops_langflows_id_suffix() {
        assert_eq!(clean_flow_name("Customer Support - 1234-abcd"), "Customer Support");
        assert_eq!(clean_flow_name("  Plain name  "), "Plain name");
        assert_eq!(clean_flow_name("A - B - C"), "A");
        assert_eq!(clean_flow_name(""), "unknown");
        assert_eq!(clean_flow_name("   "), "unknown");
        // Only a suffix: the name before it is empty, and kept empty (as the Python package).
        assert_eq!(clean_flow_name(" - id"), "");
    }

    #[test]
    fn a_trace_alone_gets_the_default_settings() {
        let trace = AgentTrace { trace_name: "flow".into(), ..Default::default() };
        let id = trace.trace_id;
        let config = AgentTracerConfig::from(trace);
        assert_eq!(config.trace.trace_id, id);
        assert_eq!(config.project_name, DEFAULT_PROJECT_NAME);
        assert_eq!(config.environment, "production");
        assert!(config.kafka.is_none() && !config.enable_otel && config.otel_service_name.is_none());
        assert_ne!(AgentTrace::default().trace_id, AgentTrace::default().trace_id, "a new id each time");
    }

    #[test]
    fn debug_leaves_out_user_and_session() {
        let trace =
            AgentTrace { user_id: Some("patient-7".into()), session_id: Some("sess-9".into()), ..Default::default() };
        let shown = format!("{:?}", AgentTracerConfig::from(trace));
        assert!(!shown.contains("patient-7") && !shown.contains("sess-9"), "{shown}");
    }
}
