//! The audit event in the formats of other systems: OCSF ([`ocsf`]) for SIEMs and FHIR R4 `AuditEvent`
//! ([`fhir`]) for clinical systems. The guide's JSON stays the evidence (the integrity chain is computed on it);
//! these are renderings of the same event, made on the dispatcher thread once per event for every sink that
//! asked for them ([`Sink::format`](crate::export::Sink::format)). The mapping tables are in `docs/FORMATS.md`.

mod fhir;
mod ocsf;

use serde_json::Value;

use super::event::AuditEvent;
use crate::config::format::AuditFormat;

/// The integrity-chain fields of one event (the `integrity` object of its guide JSON), carried into the other
/// formats so that a record there can be matched with the verifiable trail.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChainFields<'a> {
    pub chain_id: &'a str,
    pub seq: u64,
    /// The event's hash, lowercase hex.
    pub hash: &'a str,
}

/// What the dispatcher knows of an event besides the event itself.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Extras<'a> {
    pub chain: Option<ChainFields<'a>>,
}

/// Appends `event` in `format` (one JSON object, no newline) to `out`. [`AuditFormat::Json`] is the guide's JSON
/// without the integrity object (the dispatcher serialises that itself).
///
/// # Errors
/// Only what `serde_json` reports for a writer into memory (nothing in practice).
pub(crate) fn render(
    format: AuditFormat,
    event: &AuditEvent,
    extras: &Extras<'_>,
    out: &mut Vec<u8>,
) -> Result<(), serde_json::Error> {
    match format {
        AuditFormat::Json => serde_json::to_writer(out, event),
        AuditFormat::Ocsf => ocsf::write(event, extras, out),
        AuditFormat::Fhir => fhir::write(event, extras, out),
    }
}

/// `Some(s)` unless `s` is empty.
fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// A metadata value as a string: strings as they are, anything else as its JSON.
fn meta_str(event: &AuditEvent, key: &str) -> Option<String> {
    match event.metadata.get(key)? {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// The client's IP address: the actor's, else the event's `ip_address` metadata; only when it parses as one.
fn client_ip(event: &AuditEvent) -> Option<String> {
    let raw = event
        .actor
        .as_ref()
        .and_then(|a| a.ip_address.clone())
        .filter(|s| !s.is_empty())
        .or_else(|| meta_str(event, "ip_address"))?;
    raw.trim().parse::<std::net::IpAddr>().ok().map(|ip| ip.to_string())
}

/// The client's user agent: the actor's, else the event's `user_agent` metadata.
fn user_agent(event: &AuditEvent) -> Option<String> {
    event
        .actor
        .as_ref()
        .and_then(|a| a.user_agent.clone())
        .filter(|s| !s.is_empty())
        .or_else(|| meta_str(event, "user_agent"))
}

/// Title case of an UPPER_SNAKE word: `EXPORT` → `Export`.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, word) in s.split('_').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let mut chars = word.chars();
        if let Some(c) = chars.next() {
            out.push(c.to_ascii_uppercase());
            out.extend(chars.map(|c| c.to_ascii_lowercase()));
        }
    }
    out
}

#[cfg(test)]
mod tests;
