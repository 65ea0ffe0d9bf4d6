//! The audit vocabulary. JSON spelling is UPPER_SNAKE as in the guide; `FromStr` accepts that spelling
//! (case-insensitively, `-` or `_`) and the Rust variant name, and lists the valid values when it fails.

use serde::{Deserialize, Serialize};

/// Shared `Display`/`FromStr` for the vocabulary enums.
macro_rules! vocabulary_traits {
    ($ty:ident, $what:literal) => {
        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $ty {
            type Err = UnknownVariant;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let wanted = normalise(s);
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| normalise(v.as_str()) == wanted || normalise(&format!("{v:?}")) == wanted)
                    .ok_or_else(|| UnknownVariant {
                        kind: $what,
                        value: s.to_owned(),
                        expected: Self::ALL.iter().map(|v| v.as_str()).collect(),
                    })
            }
        }
    };
}

fn normalise(s: &str) -> String {
    s.chars().filter(|c| *c != '_' && *c != '-' && *c != ' ').map(|c| c.to_ascii_uppercase()).collect()
}

/// A string that is not a value of a vocabulary enum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{value}`; expected one of: {}", expected.join(", "))]
pub struct UnknownVariant {
    /// Which enum was being parsed (e.g. `resource type`).
    pub kind: &'static str,
    /// The rejected input.
    pub value: String,
    /// The valid spellings.
    pub expected: Vec<&'static str>,
}

observer_macros::__vocabulary! {
    /// The kind of resource an audit event is about. Generated from the same table that `#[audit]` checks
    /// resource names against, so the macro and the runtime always agree.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
    #[non_exhaustive]
    pub enum ResourceType;
}

observer_macros::__vocabulary! {
    /// What was done to the resource. Generated from the same table that `#[audit]` checks action names against.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
    #[non_exhaustive]
    pub enum AuditAction;
}

observer_macros::__vocabulary! {
    /// Why protected health information was disclosed (event field `purpose_of_use`; `purpose = ..` in
    /// `#[audit]`): the purposes a HIPAA accounting of disclosures (45 CFR 164.528) distinguishes. Generated from the
    /// same table that `#[audit]` checks purpose names against. [`hl7_code`](Self::hl7_code) gives the HL7 v3
    /// `PurposeOfUse` code where the general value set has one (for FHIR `AuditEvent.purposeOfEvent`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
    #[non_exhaustive]
    pub enum PurposeOfUse;
}

vocabulary_traits!(ResourceType, "resource type");
vocabulary_traits!(AuditAction, "audit action");
vocabulary_traits!(PurposeOfUse, "purpose of use");

impl PurposeOfUse {
    /// The code of the HL7 v3 `GeneralPurposeOfUse` value set (system
    /// `http://terminology.hl7.org/CodeSystem/v3-ActReason`) for this purpose, e.g. `TREAT`; `None` for the
    /// purposes that value set does not name (health oversight, judicial proceedings, law enforcement, required by
    /// law).
    pub const fn hl7_code(self) -> Option<&'static str> {
        match self {
            Self::Treatment => Some("TREAT"),
            Self::EmergencyTreatment => Some("ETREAT"),
            Self::Payment => Some("HPAYMT"),
            Self::HealthcareOperations => Some("HOPERAT"),
            Self::Coverage => Some("COVERAGE"),
            Self::PatientRequest => Some("PATRQT"),
            Self::PublicHealth => Some("PUBHLTH"),
            Self::Research => Some("HRESCH"),
            Self::Marketing => Some("HMARKT"),
            Self::HealthOversight | Self::JudicialProceeding | Self::LawEnforcement | Self::RequiredByLaw => None,
        }
    }
}

/// Declares a hand-written vocabulary enum with its wire spellings.
macro_rules! simple_vocabulary {
    ($(#[$m:meta])* $ty:ident, $what:literal { $( $(#[$vm:meta])* $variant:ident = $wire:literal, )* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[non_exhaustive]
        pub enum $ty { $( $(#[$vm])* #[serde(rename = $wire)] $variant, )* }

        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[ $(Self::$variant,)* ];

            /// The JSON spelling (UPPER_SNAKE).
            pub const fn as_str(self) -> &'static str {
                match self { $( Self::$variant => $wire, )* }
            }
        }

        vocabulary_traits!($ty, $what);
    };
}

simple_vocabulary! {
    /// The category of an audit event (JSON field `audit_type`).
    AuditEventType, "audit event type" {
        /// Reading data.
        DataAccess = "DATA_ACCESS",
        /// Creating, updating, deleting data.
        DataModification = "DATA_MODIFICATION",
        /// Login, logout.
        Authentication = "AUTHENTICATION",
        /// Permission changes.
        Authorization = "AUTHORIZATION",
        /// LLM calls.
        AiInteraction = "AI_INTERACTION",
        /// System operations.
        SystemEvent = "SYSTEM_EVENT",
        /// Security-related events.
        SecurityEvent = "SECURITY_EVENT",
        /// Compliance-related events.
        ComplianceEvent = "COMPLIANCE_EVENT",
        /// Data exports.
        DataExport = "DATA_EXPORT",
    }
}

simple_vocabulary! {
    /// How severe an audit event is.
    #[derive(Default)]
    AuditSeverity, "audit severity" {
        /// Routine (default).
        #[default]
        Info = "INFO",
        /// Low.
        Low = "LOW",
        /// Medium (deletes, exports, failed logins).
        Medium = "MEDIUM",
        /// High.
        High = "HIGH",
        /// Critical.
        Critical = "CRITICAL",
    }
}

simple_vocabulary! {
    /// Whether the audited action succeeded.
    #[derive(Default)]
    AuditOutcome, "audit outcome" {
        /// It succeeded (default).
        #[default]
        Success = "SUCCESS",
        /// It failed.
        Failure = "FAILURE",
        /// It partly succeeded.
        Partial = "PARTIAL",
        /// It was refused.
        Denied = "DENIED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display() {
        assert_eq!("DOCUMENT".parse::<ResourceType>(), Ok(ResourceType::Document));
        assert_eq!("llm_model".parse::<ResourceType>(), Ok(ResourceType::LlmModel));
        assert_eq!("LlmModel".parse::<ResourceType>(), Ok(ResourceType::LlmModel));
        assert_eq!("high".parse::<AuditSeverity>(), Ok(AuditSeverity::High));
        assert_eq!(AuditEventType::DataExport.to_string(), "DATA_EXPORT");
        let err = "DOCUMNT".parse::<ResourceType>().unwrap_err();
        assert!(err.to_string().contains("unknown resource type `DOCUMNT`"), "{err}");
        assert!(err.to_string().contains("DOCUMENT"), "{err}");
    }

    #[test]
    fn serde_spelling_matches_as_str() {
        for r in ResourceType::ALL {
            assert_eq!(serde_json::to_value(r).unwrap(), serde_json::json!(r.as_str()));
        }
        for a in AuditAction::ALL {
            assert_eq!(serde_json::to_value(a).unwrap(), serde_json::json!(a.as_str()));
        }
        assert_eq!(ResourceType::ALL.len(), 32);
        assert_eq!(AuditAction::ALL.len(), 10);
        for p in PurposeOfUse::ALL {
            assert_eq!(serde_json::to_value(p).unwrap(), serde_json::json!(p.as_str()));
        }
        assert_eq!("public_health".parse::<PurposeOfUse>(), Ok(PurposeOfUse::PublicHealth));
        assert_eq!(PurposeOfUse::Treatment.hl7_code(), Some("TREAT"));
        assert_eq!(PurposeOfUse::LawEnforcement.hl7_code(), None);
    }
}
