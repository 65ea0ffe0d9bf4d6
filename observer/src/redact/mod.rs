//! Redaction: identifiers and secrets are masked before data leaves the process.
//!
//! A [`Redactor`] is a compiled [`RedactionConfig`](crate::RedactionConfig): built-in detectors with
//! validators (SSN area/group/serial rules, Luhn for cards and NPIs, mod 97 for IBANs, the DEA check digit,
//! calendar checks for dates, …), key rules for JSON field names, an allow-list, user-defined
//! [`CustomDetector`]s, and an [`Action`] per [`Kind`]: mask (`[SSN]`), keyed hash (`[SSN:hmac:…]`) or drop.
//! It fails closed: a value it cannot scan within its size and time budget, or whose user validator fails,
//! becomes a marker (`[REDACTED:oversize]`, `[REDACTED:timeout]`, `[REDACTED:error]`), never passes through.
//!
//! The pipeline applies the policy of `ObserverConfig::redaction` to every audit event on the dispatcher
//! thread, before it is serialised; the caller-side fallbacks apply the same one.

mod actions;
mod audit;
mod detectors;
mod engine;
mod policy;
mod prefilter;
mod validators;

pub use actions::Action;
pub(crate) use audit::redact_event;
pub use engine::{Finding, RedactError, Redactor};
pub use policy::{CustomDetector, Kind, Label, Validator};

/// The redactor that applies where this call runs: the current scope's [`Pipeline`](crate::export::Pipeline)'s,
/// else the process's (set by [`init`](crate::init) from its config), else the policy of the environment
/// (before `init`).
pub(crate) fn active() -> Redactor {
    if let Some(core) = crate::export::current_pipeline() {
        return core.redactor.clone();
    }
    if let Some(r) = crate::init::process_redactor() {
        return r;
    }
    static FROM_ENV: std::sync::LazyLock<Redactor> =
        std::sync::LazyLock::new(|| match crate::RedactionConfig::from_env().and_then(|c| Redactor::new(&c)) {
            Ok(r) => r,
            Err(e) => {
                crate::diag::report!(
                    ERROR,
                    "redaction-config",
                    "invalid redaction settings in the environment ({e}); the default policy applies"
                );
                Redactor::default()
            }
        });
    FROM_ENV.clone()
}

#[cfg(test)]
mod tests;
