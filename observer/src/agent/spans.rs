//! The OpenTelemetry side of an agent trace (with `enable_otel`): one `tracing` span per trace and one child per
//! component, with the GenAI semantic-convention attributes; exported by the OpenTelemetry layer (feature `otel`).

use serde_json::Value;

use super::events::TraceContext;
use super::kind::ComponentKind;
use super::pricing::{AgentTotals, Priced};
use crate::llm::semconv;
use crate::otel::{set_span_attribute, set_span_error};

/// The span of a trace (a root span, `invoke_agent <flow name>`): the flow is the agent (`gen_ai.agent.name` its
/// name, `gen_ai.agent.id` its flow id, `gen_ai.agent.description` when configured), the session its
/// conversation.
pub(super) fn trace_span(i: &TraceContext, description: Option<&str>) -> ::tracing::Span {
    let otel_name = format!("invoke_agent {}", i.flow_name);
    let span = ::tracing::info_span!(parent: None, "agent_trace", otel.name = %otel_name);
    let set = |k: &str, v: Value| set_span_attribute(&span, k, &v);
    set(semconv::GEN_AI_OPERATION_NAME, semconv::operation::INVOKE_AGENT.into());
    set(semconv::GEN_AI_AGENT_NAME, i.flow_name.clone().into());
    if !i.flow_id.is_empty() {
        set(semconv::GEN_AI_AGENT_ID, i.flow_id.clone().into());
    }
    if let Some(d) = description.filter(|d| !d.is_empty()) {
        set(semconv::GEN_AI_AGENT_DESCRIPTION, crate::outbound::text(d).into_owned().into());
    }
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

/// The span of a component, a child of its parent component's span or else of the trace's.
pub(super) fn component_span(
    trace_id: &str,
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
    let set = |k: &str, v: Value| set_span_attribute(&span, k, &v);
    set("component.id", id.into());
    set("component.type", kind.into());
    set("component.index", index.into());
    set("agent.trace_id", trace_id.into());
    match ComponentKind::from_wire(kind) {
        Some(ComponentKind::Llm) => set(semconv::GEN_AI_OPERATION_NAME, semconv::operation::CHAT.into()),
        Some(ComponentKind::Tool) => {
            set(semconv::GEN_AI_OPERATION_NAME, semconv::operation::EXECUTE_TOOL.into());
            set(semconv::GEN_AI_TOOL_NAME, name.into());
        }
        Some(ComponentKind::Agent) => {
            set(semconv::GEN_AI_OPERATION_NAME, semconv::operation::INVOKE_AGENT.into());
            set(semconv::GEN_AI_AGENT_NAME, name.into());
            set(semconv::GEN_AI_AGENT_ID, id.into());
        }
        _ => {}
    }
    if let Some(m) = model {
        set(semconv::GEN_AI_REQUEST_MODEL, m.into());
    }
    span
}

/// Records a component's (or, with kind `agent`, the trace's) inputs or outputs on its span as the conventions'
/// content attribute `key` (`gen_ai.input.messages` / `gen_ai.output.messages`), redacted; only LLM and agent
/// spans carry content (the caller checks the capture level).
pub(super) fn record_content(span: &::tracing::Span, kind: &str, key: &str, value: &Value) {
    let Some(kind) = ComponentKind::from_wire(kind) else { return };
    if !matches!(kind, ComponentKind::Llm | ComponentKind::Agent) {
        return;
    }
    let role = if key == semconv::GEN_AI_OUTPUT_MESSAGES { "assistant" } else { "user" };
    if let Some(messages) = crate::llm::messages::value_as_messages(value, role) {
        let messages = crate::outbound::value(messages);
        set_span_attribute(span, key, &crate::llm::messages::to_attribute(&messages).into());
    }
}

/// Records a finished component's model, usage, cost and error on its span.
pub(super) fn record_component_span(span: &::tracing::Span, kind: &str, priced: &Priced, error: Option<&str>) {
    let set = |k: &str, v: Value| set_span_attribute(span, k, &v);
    if kind == ComponentKind::Llm.as_str() || priced.model.is_some() {
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
        set_span_error(span, e);
    }
}

/// Records the trace's totals and error on its span.
pub(super) fn record_trace_span(span: &::tracing::Span, totals: &AgentTotals, error: Option<&str>) {
    let set = |k: &str, v: Value| set_span_attribute(span, k, &v);
    set(semconv::GEN_AI_USAGE_INPUT_TOKENS, totals.input_tokens.into());
    set(semconv::GEN_AI_USAGE_OUTPUT_TOKENS, totals.output_tokens.into());
    set(semconv::GEN_AI_COST, totals.total_cost.into());
    if totals.untrusted_costs > 0 {
        set(semconv::OBSERVER_COST_TRUSTED, false.into());
    }
    set("agent.total_spans", totals.spans.into());
    if let Some(e) = error {
        set_span_error(span, e);
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
