//! [`AuditFormat`]: the output format of an audit sink.

use std::fmt;
use std::str::FromStr;

use crate::error::ConfigurationError;

/// The format an audit sink receives events in. Chosen per sink: [`ObserverConfig::audit_format`](crate::ObserverConfig::audit_format)
/// for the embedded sink (file, stdout, memory), [`KafkaConfig::audit_format`](crate::KafkaConfig::audit_format) for
/// Kafka, [`Sink::format`](crate::export::Sink::format) for your own sinks.
///
/// The guide's JSON is the evidence: the integrity chain is computed and verified on it, and an event a sink did
/// not deliver goes to the stderr fallback as its guide JSON line, whatever the sink's format. The other formats
/// are renderings of the same (redacted) event, serialised once per event for all the sinks that use them, for
/// the systems that read them; the mapping tables are in `docs/FORMATS.md`.
///
/// ```
/// use observer::AuditFormat;
/// assert_eq!("ocsf".parse::<AuditFormat>().unwrap(), AuditFormat::Ocsf);
/// assert_eq!(AuditFormat::Fhir.to_string(), "fhir");
/// assert!("cef".parse::<AuditFormat>().is_err());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuditFormat {
    /// The guide's audit event JSON, one object per line (default).
    #[default]
    Json,
    /// OCSF [`OCSF_VERSION`](Self::OCSF_VERSION) events: API Activity (6003) or Authentication (3002), one object
    /// per line, for SIEMs (Splunk, Amazon Security Lake, …).
    Ocsf,
    /// FHIR R4 ([`FHIR_VERSION`](Self::FHIR_VERSION)) `AuditEvent` resources, one per line, for clinical systems.
    Fhir,
}

impl AuditFormat {
    /// Every format, in declaration order.
    pub const ALL: &'static [Self] = &[Self::Json, Self::Ocsf, Self::Fhir];

    /// The OCSF schema version the OCSF format follows (`metadata.version` of every event).
    pub const OCSF_VERSION: &'static str = "1.5.0";

    /// The FHIR version of the `AuditEvent` resources (R4).
    pub const FHIR_VERSION: &'static str = "4.0.1";

    /// The spelling in configuration and the environment: `json`, `ocsf`, `fhir`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Ocsf => "ocsf",
            Self::Fhir => "fhir",
        }
    }

    /// The media type of one record: `application/json`, or `application/fhir+json` for FHIR.
    pub const fn content_type(self) -> &'static str {
        match self {
            Self::Json | Self::Ocsf => "application/json",
            Self::Fhir => "application/fhir+json",
        }
    }
}

impl fmt::Display for AuditFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AuditFormat {
    type Err = ConfigurationError;

    /// `json`, `ocsf` or `fhir` (any case; `fhir-r4` and `guide` are accepted too).
    fn from_str(s: &str) -> Result<Self, ConfigurationError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "json" | "guide" => Ok(Self::Json),
            "ocsf" => Ok(Self::Ocsf),
            "fhir" | "fhir-r4" => Ok(Self::Fhir),
            other => Err(ConfigurationError::new(
                "audit_format",
                format!("unknown audit format `{other}`; expected one of: json, ocsf, fhir"),
            )),
        }
    }
}
