//! [`RedactionConfig`]: the one redaction policy of a pipeline (`ObserverConfig::redaction`), and its
//! environment variables.

use std::time::Duration;

use super::env::Env;
use super::Secret;
use crate::error::ConfigurationError;
use crate::redact::{Action, CustomDetector, Kind, Label};

/// What is masked before data leaves the process, and how (see [`observer::redact`](crate::redact)).
///
/// On by default: every built-in detector masks what it finds (`[SSN]`, `[EMAIL]`, …) in the free-text fields
/// of audit events (description, resource name, metadata, change values). Build it with struct update syntax:
///
/// ```
/// use observer::redact::{Action, CustomDetector, Kind, Label};
/// use observer::{RedactionConfig, Secret};
///
/// let policy = RedactionConfig {
///     // Equal SSNs give equal tags across events: `[SSN:hmac:…]`.
///     actions: vec![(Kind::Ssn, Action::Hash), (Kind::Ip, Action::Hash)],
///     hmac_key: Some(Secret::new("a key of at least 16 bytes from your secret store")),
///     // Hospital-specific labels and formats.
///     labels: vec![Label::new(Kind::Mrn, "Chart ID")],
///     detectors: vec![CustomDetector::new(Kind::Mrn, r"\bMR\d{8}\b")],
///     allow_keys: vec!["order_id".into()],
///     ..Default::default()
/// };
/// let redactor = observer::redact::Redactor::new(&policy).unwrap();
/// assert_eq!(redactor.redact_str("Chart ID: 88-1234, MR00012345"), "Chart ID: [MRN], [MRN]");
/// ```
#[derive(Debug, Clone)]
pub struct RedactionConfig {
    /// Whether anything is redacted. Default `true`. Env `OBSERVER_REDACTION` (`true`/`false`).
    pub enabled: bool,
    /// The action of every kind not in [`actions`](Self::actions). Default [`Action::Mask`].
    /// Env `OBSERVER_REDACTION_ACTION` (`mask`, `hash`, `drop`).
    pub default_action: Action,
    /// Per-kind actions (a later entry wins). Env `OBSERVER_REDACTION_ACTIONS`, e.g. `ssn=hash,ip=hash,url=drop`.
    pub actions: Vec<(Kind, Action)>,
    /// Built-in detectors and key rules switched off, e.g. `[Kind::Url, Kind::Ip]`. Env
    /// `OBSERVER_REDACTION_DISABLE`, e.g. `url,ip`.
    pub disabled: Vec<Kind>,
    /// The key of [`Action::Hash`] (HMAC-SHA256), at least 16 bytes; required when any action is `Hash`. Never
    /// shown by `Debug`. Env `OBSERVER_REDACTION_HMAC_KEY`.
    pub hmac_key: Option<Secret>,
    /// More JSON field names whose value is masked whatever it holds (`[REDACTED]`), besides the built-in ones
    /// (`ssn`, `dob`, `password`, `patient_name`, `email`, `phone`, `address`, `mrn`, `member_id`, `token`,
    /// …). Compared ignoring case and punctuation (`patientName` = `patient_name`). Env
    /// `OBSERVER_REDACTION_KEYS` (comma-separated).
    pub redact_keys: Vec<String>,
    /// JSON field names whose value passes untouched (compared as `redact_keys`). Default none. Env
    /// `OBSERVER_REDACTION_ALLOW_KEYS` (comma-separated).
    pub allow_keys: Vec<String>,
    /// Extra labels before identifiers (`Chart ID`, `Enrollee #`), besides the built-in ones (`MRN`,
    /// `Member ID`, `Serial number`, `Patient:`, …).
    pub labels: Vec<Label>,
    /// User-defined detectors (a regex and an optional validator).
    pub detectors: Vec<CustomDetector>,
    /// Longest string scanned; a longer one becomes `[REDACTED:oversize]`. Default 1 MiB. Env
    /// `OBSERVER_REDACTION_MAX_VALUE_BYTES`.
    pub max_value_bytes: usize,
    /// Longest time one value (a string, or a whole JSON value) may take; past it, what is left becomes
    /// `[REDACTED:timeout]`. Default 250 ms. Env `OBSERVER_REDACTION_TIME_BUDGET_MS`.
    pub time_budget: Duration,
}

impl Default for RedactionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            default_action: Action::Mask,
            actions: Vec::new(),
            disabled: Vec::new(),
            hmac_key: None,
            redact_keys: Vec::new(),
            allow_keys: Vec::new(),
            labels: Vec::new(),
            detectors: Vec::new(),
            max_value_bytes: 1 << 20,
            time_budget: Duration::from_millis(250),
        }
    }
}

fn list(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned).collect()
}

impl RedactionConfig {
    /// The defaults with the environment applied.
    ///
    /// # Errors
    /// As [`apply_env`](Self::apply_env).
    pub fn from_env() -> Result<Self, ConfigurationError> {
        Self::default().apply_env()
    }

    /// Applies the `OBSERVER_REDACTION*` variables (see each field) over the values set in code; the list
    /// variables (`_ACTIONS`, `_DISABLE`, `_KEYS`, `_ALLOW_KEYS`) add to the lists.
    ///
    /// # Errors
    /// [`ConfigurationError`] naming the variable whose value does not parse.
    pub fn apply_env(self) -> Result<Self, ConfigurationError> {
        self.apply_env_from(&super::env::process)
    }

    /// [`apply_env`](Self::apply_env) with a custom variable lookup.
    ///
    /// # Errors
    /// As [`apply_env`](Self::apply_env).
    pub fn apply_env_from(mut self, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigurationError> {
        let env = Env::new(lookup);
        if let Some(v) = env.bool("OBSERVER_REDACTION")? {
            self.enabled = v;
        }
        if let Some(a) = env.parse_with("OBSERVER_REDACTION_ACTION", |s| s.parse::<Action>().map_err(|e| e.message))? {
            self.default_action = a;
        }
        if let Some(pairs) = env.parse_with("OBSERVER_REDACTION_ACTIONS", |s| {
            list(s)
                .iter()
                .map(|pair| {
                    let (kind, action) = pair.split_once('=').ok_or_else(|| format!("`{pair}` is not kind=action"))?;
                    Ok((kind.parse::<Kind>().map_err(|e| e.message)?, action.parse::<Action>().map_err(|e| e.message)?))
                })
                .collect::<Result<Vec<_>, String>>()
        })? {
            self.actions.extend(pairs);
        }
        if let Some(kinds) = env.parse_with("OBSERVER_REDACTION_DISABLE", |s| {
            list(s).iter().map(|k| k.parse::<Kind>().map_err(|e| e.message)).collect::<Result<Vec<_>, String>>()
        })? {
            self.disabled.extend(kinds);
        }
        if let Some(key) = env.string("OBSERVER_REDACTION_HMAC_KEY") {
            self.hmac_key = Some(Secret::new(key));
        }
        if let Some(keys) = env.string("OBSERVER_REDACTION_KEYS") {
            self.redact_keys.extend(list(&keys));
        }
        if let Some(keys) = env.string("OBSERVER_REDACTION_ALLOW_KEYS") {
            self.allow_keys.extend(list(&keys));
        }
        if let Some(n) = env.parse("OBSERVER_REDACTION_MAX_VALUE_BYTES")? {
            self.max_value_bytes = n;
        }
        if let Some(d) = env.millis("OBSERVER_REDACTION_TIME_BUDGET_MS")? {
            self.time_budget = d;
        }
        Ok(self)
    }

    /// Checks the policy by compiling it; the error names the offending field (a bad custom pattern, a `Hash`
    /// action without a key, a zero budget).
    pub fn validate(&self) -> Result<(), ConfigurationError> {
        crate::redact::Redactor::new(self).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::super::env::tests::table;
    use super::*;

    #[test]
    fn env_sets_the_policy_and_names_bad_values() {
        let c = RedactionConfig::default()
            .apply_env_from(&table(&[
                ("OBSERVER_REDACTION_ACTIONS", "ssn=hash, credit-card=drop"),
                ("OBSERVER_REDACTION_DISABLE", "url,ip"),
                ("OBSERVER_REDACTION_HMAC_KEY", "0123456789abcdef0123"),
                ("OBSERVER_REDACTION_ALLOW_KEYS", "order_id"),
                ("OBSERVER_REDACTION_KEYS", "diagnosis_text"),
                ("OBSERVER_REDACTION_TIME_BUDGET_MS", "20"),
            ]))
            .unwrap();
        assert!(c.enabled);
        assert_eq!(c.actions, vec![(Kind::Ssn, Action::Hash), (Kind::CreditCard, Action::Drop)]);
        assert_eq!(c.disabled, vec![Kind::Url, Kind::Ip]);
        assert_eq!(c.allow_keys, vec!["order_id".to_owned()]);
        assert_eq!(c.redact_keys, vec!["diagnosis_text".to_owned()]);
        assert_eq!(c.time_budget, Duration::from_millis(20));
        assert!(!format!("{c:?}").contains("0123456789abcdef"), "the HMAC key is never in Debug");
        c.validate().unwrap();
        let off = RedactionConfig::default().apply_env_from(&table(&[("OBSERVER_REDACTION", "off")])).unwrap();
        assert!(!off.enabled);
        for (var, value) in [
            ("OBSERVER_REDACTION_ACTIONS", "ssn:hash"),
            ("OBSERVER_REDACTION_ACTIONS", "ssn=blur"),
            ("OBSERVER_REDACTION_DISABLE", "tattoo"),
            ("OBSERVER_REDACTION_ACTION", "shred"),
            ("OBSERVER_REDACTION", "maybe"),
        ] {
            let err = RedactionConfig::default().apply_env_from(&|k| (k == var).then(|| value.to_owned())).unwrap_err();
            assert_eq!(err.field, var, "{err}");
        }
        let no_key = RedactionConfig { default_action: Action::Hash, ..Default::default() }.validate().unwrap_err();
        assert_eq!(no_key.field, "redaction.hmac_key");
    }
}
