//! The accounting of disclosures (HIPAA 45 CFR 164.528): for one patient reference and a date range, every
//! disclosure recorded in a JSON-lines trail, with its date, recipient, description, purpose and data categories.
//!
//! A trail is any mix of the file sink's lines and of stderr captured from the process (lines prefixed
//! `observer-audit-fallback: `); other stderr output is skipped. What counts as a disclosure: an audit event whose
//! `patient_ref` is the patient's and which names a `recipient` (what [`log_disclosure`](super::log_disclosure)
//! records); the patient's other events are counted as `uses`, not listed.

use std::collections::HashSet;
use std::io::BufRead;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};
use serde_json::Value;

use super::patient::PatientRef;

/// The prefix of the stderr fallback's lines.
const FALLBACK_PREFIX: &[u8] = b"observer-audit-fallback: ";
/// The longest line read; a longer one is reported as malformed and skipped.
const MAX_LINE: usize = 8 << 20;

/// The accounting of disclosures about one patient over `[from, to)`.
///
/// Entries are in date order (then event id), each event once even when the trail holds it twice (a batch
/// rewritten after a rotation, a file and its captured stderr); lines that look like events but cannot be read are
/// listed in `malformed` and do not stop the accounting.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Accounting {
    /// The patient reference looked for (the keyed hash, never the identifier).
    pub patient_ref: String,
    /// Start of the range, inclusive.
    #[serde(serialize_with = "rfc3339")]
    pub from: DateTime<Utc>,
    /// End of the range, exclusive.
    #[serde(serialize_with = "rfc3339")]
    pub to: DateTime<Utc>,
    /// The disclosures, in date order.
    pub entries: Vec<AccountingEntry>,
    /// Events about the patient in the range that name no recipient (uses, not disclosures): counted, not listed.
    pub uses: u64,
    /// Lines that look like events (JSON objects, or fallback lines) but could not be read.
    pub malformed: Vec<MalformedLine>,
    /// Lines read.
    pub lines: u64,
    /// Audit events read (every patient, every date).
    pub events: u64,
    /// Lines that are not audit events (other stderr output, JSON without an `event_id`).
    pub skipped: u64,
    /// Events seen a second time (same `event_id`), listed once.
    pub duplicates: u64,
    #[serde(skip)]
    seen: HashSet<String>,
}

/// One disclosure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountingEntry {
    /// When it happened (the event's `timestamp`).
    #[serde(serialize_with = "rfc3339")]
    pub date: DateTime<Utc>,
    /// Who received the information.
    pub recipient: String,
    /// The event's description.
    pub description: Option<String>,
    /// The purpose of use, as written in the event (e.g. `PAYMENT`).
    pub purpose_of_use: Option<String>,
    /// The kinds of information disclosed.
    pub data_categories: Vec<String>,
    /// The resource type disclosed (e.g. `DOCUMENT`).
    pub resource_type: Option<String>,
    /// The resource id disclosed.
    pub resource_id: Option<String>,
    /// Who disclosed it (the actor's id).
    pub actor_id: Option<String>,
    /// The event's outcome (e.g. `SUCCESS`).
    pub outcome: Option<String>,
    /// The event's id.
    pub event_id: String,
    /// Where it was read: the source name given to [`Accounting::read`] and the line number (from 1).
    pub source: String,
    /// The line number in `source`, from 1.
    pub line: u64,
}

/// A line that looks like an audit event but cannot be read. The reason never quotes the line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MalformedLine {
    /// The source name given to [`Accounting::read`].
    pub source: String,
    /// The line number, from 1.
    pub line: u64,
    /// What is wrong with it.
    pub reason: String,
}

/// The accounting could not be produced.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccountingError {
    /// `from` is not before `to`.
    #[error("empty date range: from {from} is not before to {to}")]
    EmptyRange {
        /// The start given.
        from: DateTime<Utc>,
        /// The end given.
        to: DateTime<Utc>,
    },
    /// A source could not be read.
    #[error("reading {source_name}: {source}")]
    Io {
        /// The source name.
        source_name: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// The accounting of disclosures about `patient` from `from` (inclusive) to `to` (exclusive), read from one
/// JSON-lines trail. For several files, use [`Accounting::new`] and [`Accounting::read`] once per file.
///
/// ```
/// use observer::audit::{self, PatientKey};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let key = PatientKey::new(b"a key of at least sixteen bytes")?;
/// let patient = key.reference("MRN-0042");
/// let trail = format!(
///     r#"{{"event_id":"evt_1","timestamp":"2026-03-02T10:00:00Z","patient_ref":"{patient}","recipient":"Acme Insurance","purpose_of_use":"PAYMENT","data_categories":["diagnoses"],"description":"Claim"}}"#
/// );
/// let from = "2026-03-01T00:00:00Z".parse()?;
/// let to = "2026-04-01T00:00:00Z".parse()?;
/// let report = audit::accounting(trail.as_bytes(), &patient, from, to)?;
/// assert_eq!(report.entries[0].recipient, "Acme Insurance");
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// [`AccountingError::EmptyRange`], [`AccountingError::Io`]. Malformed lines are not errors: see
/// the field [`malformed`](Accounting#structfield.malformed).
pub fn accounting(
    reader: impl BufRead,
    patient: &PatientRef,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Accounting, AccountingError> {
    let mut a = Accounting::new(patient, from, to)?;
    a.read("trail", reader)?;
    Ok(a)
}

impl Accounting {
    /// An empty accounting for `patient` over `[from, to)`.
    ///
    /// # Errors
    /// [`AccountingError::EmptyRange`] when `from >= to`.
    pub fn new(patient: &PatientRef, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Self, AccountingError> {
        if from >= to {
            return Err(AccountingError::EmptyRange { from, to });
        }
        Ok(Self {
            patient_ref: patient.as_str().to_owned(),
            from,
            to,
            entries: Vec::new(),
            uses: 0,
            malformed: Vec::new(),
            lines: 0,
            events: 0,
            skipped: 0,
            duplicates: 0,
            seen: HashSet::new(),
        })
    }

    /// Reads one JSON-lines source (`name` is how entries and malformed lines refer to it) and adds what it
    /// holds. Entries stay in date order.
    ///
    /// # Errors
    /// [`AccountingError::Io`] when reading fails (what was read before stays in the accounting).
    pub fn read(&mut self, name: &str, mut reader: impl BufRead) -> Result<(), AccountingError> {
        let io = |source| AccountingError::Io { source_name: name.to_owned(), source };
        let mut buf = Vec::new();
        let mut number = 0u64;
        loop {
            buf.clear();
            let (read, too_long) = read_line(&mut reader, &mut buf).map_err(io)?;
            if read == 0 {
                break;
            }
            number += 1;
            self.lines += 1;
            if too_long {
                self.push_malformed(name, number, format!("longer than {MAX_LINE} bytes"));
                continue;
            }
            self.line(name, number, &buf);
        }
        self.entries.sort_by(|a, b| (a.date, &a.event_id).cmp(&(b.date, &b.event_id)));
        Ok(())
    }

    fn push_malformed(&mut self, source: &str, line: u64, reason: String) {
        self.malformed.push(MalformedLine { source: source.to_owned(), line, reason });
    }

    fn line(&mut self, source: &str, number: u64, raw: &[u8]) {
        let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let (fallback, json) = match raw.strip_prefix(FALLBACK_PREFIX) {
            Some(rest) => (true, rest),
            None => (false, raw),
        };
        let json = json.trim_ascii();
        if json.is_empty() {
            if fallback {
                self.push_malformed(source, number, "empty fallback line".into());
            }
            return;
        }
        if !fallback && json[0] != b'{' {
            self.skipped += 1;
            return;
        }
        let value: Value = match serde_json::from_slice(json) {
            Ok(v) => v,
            Err(e) => {
                let what = if e.is_eof() { "cut off" } else { "not valid JSON" };
                return self.push_malformed(source, number, format!("{what} (column {})", e.column()));
            }
        };
        let Value::Object(event) = value else {
            return self.push_malformed(source, number, "not a JSON object".into());
        };
        let Some(event_id) = event.get("event_id").and_then(Value::as_str).filter(|s| !s.is_empty()) else {
            if fallback {
                return self.push_malformed(source, number, "no `event_id`".into());
            }
            self.skipped += 1;
            return;
        };
        let Some(date) = event.get("timestamp").and_then(Value::as_str).and_then(parse_time) else {
            return self.push_malformed(source, number, "no valid RFC 3339 `timestamp`".into());
        };
        self.events += 1;
        if event.get("patient_ref").and_then(Value::as_str) != Some(self.patient_ref.as_str())
            || date < self.from
            || date >= self.to
        {
            return;
        }
        if !self.seen.insert(event_id.to_owned()) {
            self.duplicates += 1;
            return;
        }
        let text = |key: &str| event.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
        let list = |key: &str| -> Vec<String> {
            event
                .get(key)
                .and_then(Value::as_array)
                .map_or_else(Vec::new, |a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        };
        let Some(recipient) = text("recipient").filter(|r| !r.trim().is_empty()) else {
            self.uses += 1;
            return;
        };
        let actor_id = event
            .get("actor")
            .and_then(|a| a.get("actor_id"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        self.entries.push(AccountingEntry {
            date,
            recipient,
            description: text("description"),
            purpose_of_use: text("purpose_of_use"),
            data_categories: list("data_categories"),
            resource_type: text("resource_type"),
            resource_id: text("resource_id"),
            actor_id,
            outcome: text("outcome"),
            event_id: event_id.to_owned(),
            source: source.to_owned(),
            line: number,
        });
    }
}

/// Reads one line (with its `\n`) into `buf`, keeping at most [`MAX_LINE`] bytes of it: `(bytes read, too long)`.
fn read_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<(usize, bool)> {
    let (mut read, mut too_long) = (0, false);
    loop {
        let chunk = match reader.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok((read, too_long));
        }
        let (take, done) = match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        if buf.len() + take > MAX_LINE {
            too_long = true;
        }
        if !too_long {
            buf.extend_from_slice(&chunk[..take]);
        }
        reader.consume(take);
        read += take;
        if done {
            return Ok((read, too_long));
        }
    }
}

/// An RFC 3339 timestamp (any offset) in UTC.
fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

fn rfc3339<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::PatientKey;

    fn key() -> PatientKey {
        PatientKey::new(b"unit-test patient key 0123456789").unwrap()
    }

    fn line(id: &str, ts: &str, patient: &PatientRef, recipient: Option<&str>) -> String {
        let mut v = serde_json::json!({
            "event_id": id, "timestamp": ts, "patient_ref": patient.as_str(),
            "purpose_of_use": "PAYMENT", "data_categories": ["diagnoses"], "description": "d",
            "actor": {"actor_id": "clerk-1"}
        });
        if let Some(r) = recipient {
            v["recipient"] = r.into();
        }
        v.to_string()
    }

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn range_is_half_open_and_sorted() {
        let p = key().reference("MRN-1");
        let trail = [
            line("evt_c", "2026-03-31T23:59:59.999999Z", &p, Some("C")),
            line("evt_b", "2026-04-01T00:00:00Z", &p, Some("excluded: the end")),
            line("evt_a", "2026-03-01T00:00:00Z", &p, Some("A: the start is included")),
            line("evt_0", "2026-02-28T23:59:59Z", &p, Some("before")),
            line("evt_u", "2026-03-05T00:00:00Z", &p, None),
        ]
        .join("\n");
        let a = accounting(trail.as_bytes(), &p, t("2026-03-01T00:00:00Z"), t("2026-04-01T00:00:00Z")).unwrap();
        let ids: Vec<&str> = a.entries.iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!(ids, ["evt_a", "evt_c"]);
        assert_eq!((a.uses, a.events, a.lines), (1, 5, 5));
        assert_eq!(a.entries[1].actor_id.as_deref(), Some("clerk-1"));
        assert_eq!(a.entries[0].line, 3);
    }

    #[test]
    fn empty_range_is_an_error() {
        let p = key().reference("x");
        let e = accounting(&b""[..], &p, t("2026-03-01T00:00:00Z"), t("2026-03-01T00:00:00Z")).unwrap_err();
        assert!(matches!(e, AccountingError::EmptyRange { .. }), "{e}");
    }

    #[test]
    fn overlong_line_is_malformed_and_reading_goes_on() {
        let p = key().reference("x");
        let mut trail = vec![b'{'; MAX_LINE + 10];
        trail.push(b'\n');
        trail.extend_from_slice(line("evt_1", "2026-03-02T00:00:00Z", &p, Some("R")).as_bytes());
        let a = accounting(&trail[..], &p, t("2026-03-01T00:00:00Z"), t("2026-04-01T00:00:00Z")).unwrap();
        assert_eq!(a.malformed.len(), 1);
        assert_eq!(a.malformed[0].line, 1);
        assert_eq!(a.entries.len(), 1);
    }
}
