//! [`ComponentKind`]: the component types of the agent trace stream, generated from the same table that
//! `#[agent_component(kind = "..")]` checks, and inferred from a component's name when none is given.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::audit::UnknownVariant;

observer_macros::__vocabulary! {
    /// The type of an agent component (`component_type` in the trace stream): the reference Python SDK's values.
    /// Generated from the same table that `#[agent_component(kind = "..")]` checks, so the macro and the runtime
    /// always agree. [`AgentTracer::add_trace`](super::AgentTracer::add_trace) also takes other strings as is.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
    #[non_exhaustive]
    pub enum ComponentKind;
}

impl ComponentKind {
    /// The kind of a component given none, as the reference Python SDK infers it: [`Llm`](Self::Llm) if a model was
    /// found, else by keywords in the name (case-insensitive; the first rule that matches wins), else
    /// [`Component`](Self::Component).
    pub fn infer(name: &str, has_model: bool) -> Self {
        if has_model {
            return Self::Llm;
        }
        let n = name.to_ascii_lowercase();
        const RULES: &[(&[&str], ComponentKind)] = &[
            (&["agent", "executor", "workflow", "orchestrator"], ComponentKind::Agent),
            (&["input", "prompt", "question", "query"], ComponentKind::Input),
            (&["output", "response", "result", "answer"], ComponentKind::Output),
            (&["retrieval", "vector", "search", "rag", "knowledge"], ComponentKind::Retrieval),
            (&["memory", "history", "context", "conversation"], ComponentKind::Memory),
            (&["tool", "function", "api", "external", "utility"], ComponentKind::Tool),
            (&["process", "transform", "parse", "format"], ComponentKind::Processing),
            (&["llm", "model", "chat", "completion"], ComponentKind::Llm),
        ];
        RULES.iter().find(|(words, _)| words.iter().any(|w| n.contains(w))).map_or(Self::Component, |(_, kind)| *kind)
    }

    /// The kind spelled exactly `wire` (`"llm"`, `"tool"`, …), if any.
    pub(crate) fn from_wire(wire: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.as_str() == wire)
    }
}

impl fmt::Display for ComponentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ComponentKind {
    type Err = UnknownVariant;

    /// The JSON spelling or the variant name, case-insensitively (`"llm"`, `"LLM"`, `"Llm"`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.iter().copied().find(|k| k.as_str().eq_ignore_ascii_case(s.trim())).ok_or_else(|| UnknownVariant {
            kind: "component kind",
            value: s.to_owned(),
            expected: Self::ALL.iter().map(|k| k.as_str()).collect(),
        })
    }
}

impl From<ComponentKind> for String {
    fn from(kind: ComponentKind) -> Self {
        kind.as_str().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_json_and_from_str() {
        for kind in ComponentKind::ALL {
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json, serde_json::Value::String(kind.as_str().to_owned()));
            assert_eq!(serde_json::from_value::<ComponentKind>(json).unwrap(), *kind);
            assert_eq!(kind.as_str().to_uppercase().parse::<ComponentKind>().unwrap(), *kind);
            assert_eq!(ComponentKind::from_wire(kind.as_str()), Some(*kind));
        }
        let err = "llama".parse::<ComponentKind>().unwrap_err();
        assert!(err.to_string().contains("llm, tool, agent"), "{err}");
        assert_eq!(ComponentKind::from_wire("LLM"), None, "the wire spelling is exact");
    }

    #[test]
    fn a_model_makes_an_llm_whatever_the_name() {
        assert_eq!(ComponentKind::infer("Vector Store", true), ComponentKind::Llm);
    }

    #[test]
    fn names_are_matched_by_keyword_in_rule_order() {
        let cases = [
            ("AgentExecutor", ComponentKind::Agent),
            ("Chat Input", ComponentKind::Input),
            ("Chat Output", ComponentKind::Output),
            ("Vector Store Retriever", ComponentKind::Retrieval),
            ("Conversation Memory", ComponentKind::Memory),
            ("Weather API", ComponentKind::Tool),
            ("Text Parser", ComponentKind::Processing),
            ("OpenAIModel", ComponentKind::Llm),
            ("Mystery Box", ComponentKind::Component),
            // Earlier rules win: "agent" before "input", "query" (input) before "search" (retrieval).
            ("Input Agent", ComponentKind::Agent),
            ("Search Query", ComponentKind::Input),
        ];
        for (name, kind) in cases {
            assert_eq!(ComponentKind::infer(name, false), kind, "{name}");
        }
    }
}
