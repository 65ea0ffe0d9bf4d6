//! [`CaptureLevel`]: how much of an LLM call's or an agent component's content leaves the process, on the model
//! of Kubernetes audit levels.

use std::fmt;
use std::str::FromStr;

use crate::error::ConfigurationError;

/// How much of an LLM call or an agent component is recorded, on the model of Kubernetes audit levels. Set for
/// the process with [`ObserverConfig::capture_level`](crate::ObserverConfig::capture_level) (env
/// `OBSERVER_CAPTURE_LEVEL`), per LLM middleware or layer (`.capture(..)`), per manual call
/// ([`LlmCall::capture`](crate::llm::LlmCall)), per agent tracer (`AgentTracerConfig::capture`) and per component
/// (`tracer.component(..).capture(..)`).
///
/// | level | LLM calls (span, audit event) | agent components (stream events, spans) |
/// |---|---|---|
/// | `None` | not recorded: no span, no audit event | not recorded: no `span_start`/`span_end`, no span (its tokens and cost still count in the trace's totals) |
/// | `Metadata` (default) | counts, models, ids, timings, finish reasons, cost; no message text | the same; no `input_data`/`output_data` |
/// | `Request` | also the request's messages (`gen_ai.input.messages`, `gen_ai.system_instructions`) | also `input_data` |
/// | `RequestResponse` | also the response's messages (`gen_ai.output.messages`) | also `output_data` |
///
/// Captured content is redacted before it leaves the process. Levels are ordered: `None < Metadata < Request <
/// RequestResponse`.
///
/// ```
/// use observer::CaptureLevel;
///
/// assert_eq!(CaptureLevel::default(), CaptureLevel::Metadata);
/// assert_eq!("request_response".parse::<CaptureLevel>().unwrap(), CaptureLevel::RequestResponse);
/// assert!(CaptureLevel::Request.captures_request() && !CaptureLevel::Request.captures_response());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CaptureLevel {
    /// Nothing is recorded for the call or component.
    None,
    /// Counts, models, ids, timings; no message or component content at all (the default).
    #[default]
    Metadata,
    /// Metadata and the request's content (prompt messages, component inputs).
    Request,
    /// Metadata, the request's and the response's content.
    RequestResponse,
}

impl CaptureLevel {
    /// Every level, lowest first.
    pub const ALL: [CaptureLevel; 4] = [Self::None, Self::Metadata, Self::Request, Self::RequestResponse];

    /// The spelling used by `FromStr` and the environment: `none`, `metadata`, `request`, `request_response`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Metadata => "metadata",
            Self::Request => "request",
            Self::RequestResponse => "request_response",
        }
    }

    /// Whether anything is recorded (every level but `None`).
    pub fn records(self) -> bool {
        self != Self::None
    }

    /// Whether the request's content (prompt messages, component inputs) is recorded.
    pub fn captures_request(self) -> bool {
        self >= Self::Request
    }

    /// Whether the response's content (output messages, component outputs) is recorded.
    pub fn captures_response(self) -> bool {
        self == Self::RequestResponse
    }
}

impl fmt::Display for CaptureLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CaptureLevel {
    type Err = ConfigurationError;

    /// `none`, `metadata`, `request`, `request_response` (any case; `-` for `_`, and `RequestResponse` are
    /// accepted too).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm: String = s.trim().chars().filter(|c| !matches!(c, '_' | '-')).collect::<String>().to_lowercase();
        match norm.as_str() {
            "none" => Ok(Self::None),
            "metadata" => Ok(Self::Metadata),
            "request" => Ok(Self::Request),
            "requestresponse" => Ok(Self::RequestResponse),
            _ => Err(ConfigurationError::new(
                "capture_level",
                format!("unknown capture level `{s}`; expected none, metadata, request or request_response"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip_and_bad_ones_are_refused() {
        for level in CaptureLevel::ALL {
            assert_eq!(level.as_str().parse::<CaptureLevel>().unwrap(), level);
            assert_eq!(level.to_string().to_uppercase().parse::<CaptureLevel>().unwrap(), level);
        }
        assert_eq!("RequestResponse".parse::<CaptureLevel>().unwrap(), CaptureLevel::RequestResponse);
        assert_eq!("request-response".parse::<CaptureLevel>().unwrap(), CaptureLevel::RequestResponse);
        let err = "everything".parse::<CaptureLevel>().unwrap_err();
        assert!(err.message.contains("request_response"), "{err}");
    }

    #[test]
    fn levels_are_ordered_and_gate_content() {
        use CaptureLevel::*;
        assert!(None < Metadata && Metadata < Request && Request < RequestResponse);
        let gates: Vec<_> =
            CaptureLevel::ALL.iter().map(|l| (l.records(), l.captures_request(), l.captures_response())).collect();
        assert_eq!(gates, [(false, false, false), (true, false, false), (true, true, false), (true, true, true)]);
    }
}
