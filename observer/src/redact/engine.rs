//! The [`Redactor`]: a compiled policy. One pass of a `RegexSet` tells which detectors can match; only those
//! run, their candidates are validated, overlaps resolved, and the survivors replaced by their action's
//! output. Anything that goes wrong (a value over the size budget, past the time budget, a user validator
//! that errs or panics) replaces the whole value with a marker: it never passes through.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};
use serde_json::{Map, Value};

use super::actions::{render, Action, Hasher};
use super::detectors::{self, Check, Ctx, Spec, LABELLED};
use super::policy::{KeyRule, KeyRules, Kind};
use super::prefilter::Prefilter;
use crate::config::RedactionConfig;
use crate::error::ConfigurationError;

/// Deepest JSON nesting walked; deeper values become `[REDACTED:depth]`.
const MAX_DEPTH: usize = 64;

/// Why a value could not be scanned (it is then replaced by a marker, never passed through).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedactError {
    /// The value is longer than `max_value_bytes`. Marker `[REDACTED:oversize]`.
    #[error("value of {bytes} bytes is over the redaction limit of {limit} bytes")]
    Oversize {
        /// The value's length.
        bytes: usize,
        /// `RedactionConfig::max_value_bytes`.
        limit: usize,
    },
    /// Scanning took longer than `time_budget`. Marker `[REDACTED:timeout]`.
    #[error("redaction exceeded its time budget of {0:?}")]
    Timeout(Duration),
    /// A user validator returned an error or panicked. Marker `[REDACTED:error]`. The message is the
    /// validator's, never the value.
    #[error("detector {kind} failed: {message}")]
    Detector {
        /// The detector's kind.
        kind: Kind,
        /// What it said (or that it panicked).
        message: String,
    },
    /// JSON nested deeper than 64 levels. Marker `[REDACTED:depth]`.
    #[error("JSON nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

impl RedactError {
    /// The marker that replaces the value: `[REDACTED:oversize]`, `[REDACTED:timeout]`, `[REDACTED:error]` or
    /// `[REDACTED:depth]`.
    pub fn marker(&self) -> &'static str {
        match self {
            Self::Oversize { .. } => "[REDACTED:oversize]",
            Self::Timeout(_) => "[REDACTED:timeout]",
            Self::Detector { .. } => "[REDACTED:error]",
            Self::TooDeep => "[REDACTED:depth]",
        }
    }
}

/// One identifier found in a text: its kind and byte range.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Finding {
    /// What it is.
    pub kind: Kind,
    /// Its first byte.
    pub start: usize,
    /// One past its last byte.
    pub end: usize,
    /// The detector that found it (its action applies).
    detector: usize,
}

struct Detector {
    kind: Kind,
    regex: Regex,
    /// Whether the pattern has the value group `v`.
    grouped: bool,
    check: Check,
    priority: u8,
    action: Action,
}

struct Inner {
    enabled: bool,
    set: Option<RegexSet>,
    /// Which values no detector can match (they are not scanned).
    prefilter: Prefilter,
    detectors: Vec<Detector>,
    keys: KeyRules,
    actions: HashMap<Kind, Action>,
    default_action: Action,
    hasher: Option<Hasher>,
    max_value_bytes: usize,
    time_budget: Duration,
}

/// Work (in bytes scanned, each value counting [`VALUE_WORK`] more) between two readings of the clock while a
/// value is scanned: reading it costs more than scanning a short value, so it is read at the start of each value
/// handed to the redactor, before each user validator, and otherwise once per this much work. A value past its
/// budget is so found within the time it takes to scan this many bytes (tens of microseconds).
const CHECK_EVERY: usize = 8 << 10;
const VALUE_WORK: usize = 64;

/// The clock of the time budget: the last reading, and the work done since.
pub(crate) struct Clock {
    last: Cell<Instant>,
    work: Cell<usize>,
}

impl Default for Clock {
    /// A clock read now.
    fn default() -> Self {
        Self { last: Cell::new(Instant::now()), work: Cell::new(0) }
    }
}

impl Clock {
    /// The budget of a value starting now (the clock is read again unless nothing was scanned since).
    pub(crate) fn budget(&self, limit: Duration) -> Budget<'_> {
        if self.work.get() > 0 {
            self.read();
        }
        Budget { deadline: self.last.get() + limit, clock: self }
    }

    fn read(&self) -> Instant {
        let now = Instant::now();
        self.last.set(now);
        self.work.set(0);
        now
    }
}

/// The deadline of one value (a string, or a whole JSON document) and the clock it is checked against.
#[derive(Clone, Copy)]
pub(crate) struct Budget<'c> {
    deadline: Instant,
    clock: &'c Clock,
}

impl Budget<'_> {
    /// Whether the deadline has passed, with `bytes` more work done (the clock read once per [`CHECK_EVERY`]).
    fn spent(&self, bytes: usize) -> bool {
        let work = self.clock.work.get() + bytes + VALUE_WORK;
        if work >= CHECK_EVERY {
            return self.spent_now();
        }
        self.clock.work.set(work);
        self.clock.last.get() > self.deadline
    }

    /// Whether the deadline has passed (the clock read now).
    fn spent_now(&self) -> bool {
        self.clock.read() > self.deadline
    }
}

/// What the key rules and detectors do to one field's value.
#[derive(Debug, PartialEq)]
pub(crate) enum Outcome {
    /// Left as it is.
    Keep,
    /// Replaced by this.
    Replace(Value),
    /// Left out (a key rule with [`Action::Drop`]).
    Drop,
}

/// A compiled [`RedactionConfig`]: redacts strings and JSON values. Cheap to clone (shared); `Send + Sync`.
///
/// ```
/// use observer::redact::Redactor;
///
/// let r = Redactor::default();
/// assert_eq!(
///     r.redact_str("Patient: Jane Roe, SSN 123-45-6789, call (617) 555-0123 re: MRN: 00442211"),
///     "Patient: [NAME], SSN [SSN], call [PHONE] re: MRN: [MRN]"
/// );
/// let mut v = serde_json::json!({"dob": "1985-03-02", "note": "e-mail jane.roe@example.org", "year": 1985});
/// r.redact_value(&mut v);
/// assert_eq!(v, serde_json::json!({"dob": "[DATE]", "note": "e-mail [EMAIL]", "year": 1985}));
/// ```
#[derive(Clone)]
pub struct Redactor {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("enabled", &self.inner.enabled)
            .field("detectors", &self.inner.detectors.len())
            .field("hmac_key", &self.inner.hasher.as_ref().map(|_| "[REDACTED]"))
            .finish_non_exhaustive()
    }
}

impl Default for Redactor {
    /// The default policy ([`RedactionConfig::default`]); the environment is not read.
    fn default() -> Self {
        static DEFAULT: std::sync::LazyLock<Redactor> = std::sync::LazyLock::new(|| {
            // The built-in patterns are fixed (and tested); should they ever fail to compile, everything is
            // masked rather than passed through.
            Redactor::compile(&RedactionConfig::default()).unwrap_or_else(|_| Redactor::fail_all())
        });
        DEFAULT.clone()
    }
}

impl Redactor {
    /// Compiles `config`.
    ///
    /// # Errors
    /// [`ConfigurationError`] naming the field: `redaction.detectors[i]` (a pattern that does not compile),
    /// `redaction.hmac_key` (missing while an action is `Hash`, or shorter than 16 bytes),
    /// `redaction.max_value_bytes` / `redaction.time_budget` (zero).
    pub fn new(config: &RedactionConfig) -> Result<Self, ConfigurationError> {
        // The default policy is compiled once per process.
        let d = RedactionConfig::default();
        if config.enabled
            && config.default_action == d.default_action
            && config.actions.is_empty()
            && config.disabled.is_empty()
            && config.hmac_key.is_none()
            && config.redact_keys.is_empty()
            && config.allow_keys.is_empty()
            && config.labels.is_empty()
            && config.detectors.is_empty()
            && config.max_value_bytes == d.max_value_bytes
            && config.time_budget == d.time_budget
        {
            return Ok(Self::default());
        }
        Self::compile(config)
    }

    fn compile(config: &RedactionConfig) -> Result<Self, ConfigurationError> {
        if config.max_value_bytes == 0 {
            return Err(ConfigurationError::new("redaction.max_value_bytes", "must be greater than zero"));
        }
        if config.time_budget.is_zero() {
            return Err(ConfigurationError::new("redaction.time_budget", "must be greater than zero"));
        }
        let actions: HashMap<Kind, Action> = config.actions.iter().cloned().collect();
        let hashes = config.default_action == Action::Hash
            || actions.values().any(|a| *a == Action::Hash)
            || config.detectors.iter().any(|d| d.action == Some(Action::Hash));
        let hasher = match &config.hmac_key {
            Some(key) => Some(Hasher::new(key)?),
            None if hashes && config.enabled => {
                return Err(ConfigurationError::new(
                    "redaction.hmac_key",
                    "the `hash` action needs an HMAC key (at least 16 bytes)",
                ))
            }
            None => None,
        };
        let mut specs = if config.enabled { detectors::builtin(&config.labels, &config.disabled) } else { Vec::new() };
        let builtin_count = specs.len();
        if config.enabled {
            specs.extend(config.detectors.iter().map(|d| Spec {
                kind: d.kind.clone(),
                pattern: d.pattern.clone(),
                check: d.validator.clone().map_or(Check::None, Check::User),
                priority: LABELLED,
                action: d.action,
                needs_digit: false,
            }));
        }
        let action_of = |kind: &Kind| actions.get(kind).copied().unwrap_or(config.default_action);
        let mut compiled = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            let field = || {
                if i < builtin_count {
                    format!("redaction.labels ({} detector)", spec.kind)
                } else {
                    format!("redaction.detectors[{}]", i - builtin_count)
                }
            };
            let regex = RegexBuilder::new(&spec.pattern)
                .size_limit(32 << 20)
                .build()
                .map_err(|e| ConfigurationError::new(field(), format!("pattern does not compile: {e}")))?;
            let grouped = regex.capture_names().any(|n| n == Some("v"));
            compiled.push(Detector {
                kind: spec.kind.clone(),
                regex,
                grouped,
                check: spec.check.clone(),
                priority: spec.priority,
                action: spec.action.unwrap_or_else(|| action_of(&spec.kind)),
            });
        }
        let set = if compiled.is_empty() {
            None
        } else {
            Some(
                RegexSetBuilder::new(specs.iter().map(|s| s.pattern.as_str()))
                    .size_limit(256 << 20)
                    .dfa_size_limit(16 << 20)
                    .build()
                    .map_err(|e| {
                        ConfigurationError::new("redaction.detectors", format!("patterns do not compile: {e}"))
                    })?,
            )
        };
        let keys = if config.enabled {
            KeyRules::new(&config.redact_keys, &config.allow_keys, &config.disabled)
        } else {
            KeyRules::default()
        };
        Ok(Self {
            inner: Arc::new(Inner {
                enabled: config.enabled,
                prefilter: Prefilter::new(specs.iter().map(|s| (s.pattern.as_str(), s.needs_digit))),
                set,
                detectors: compiled,
                keys,
                actions,
                default_action: config.default_action,
                hasher,
                max_value_bytes: config.max_value_bytes,
                time_budget: config.time_budget,
            }),
        })
    }

    /// A redactor that changes nothing (`RedactionConfig { enabled: false, .. }`).
    pub fn disabled() -> Self {
        Self::new(&RedactionConfig { enabled: false, ..Default::default() }).unwrap_or_else(|_| Self::fail_all())
    }

    /// Masks every value (the fallback should the built-in patterns ever fail to compile).
    fn fail_all() -> Self {
        Self {
            inner: Arc::new(Inner {
                enabled: true,
                set: None,
                prefilter: Prefilter::default(),
                detectors: Vec::new(),
                keys: KeyRules::default(),
                actions: HashMap::new(),
                default_action: Action::Mask,
                hasher: None,
                max_value_bytes: 0,
                time_budget: Duration::from_secs(1),
            }),
        }
    }

    /// Whether it redacts anything.
    pub fn is_enabled(&self) -> bool {
        self.inner.enabled
    }

    /// The identifiers in `text`, in order, without overlaps.
    ///
    /// # Errors
    /// [`RedactError`] when the text is over the size budget, scanning is over the time budget, or a user
    /// validator fails.
    pub fn find(&self, text: &str) -> Result<Vec<Finding>, RedactError> {
        self.find_until(text, Clock::default().budget(self.inner.time_budget))
    }

    fn find_until(&self, text: &str, deadline: Budget<'_>) -> Result<Vec<Finding>, RedactError> {
        let inner = &*self.inner;
        if !inner.enabled {
            return Ok(Vec::new());
        }
        if text.len() > inner.max_value_bytes {
            return Err(RedactError::Oversize { bytes: text.len(), limit: inner.max_value_bytes });
        }
        let Some(set) = &inner.set else { return Ok(Vec::new()) };
        if !inner.prefilter.may_match(text) {
            return Ok(Vec::new());
        }
        let matched = set.matches(text);
        if !matched.matched_any() {
            return Ok(Vec::new());
        }
        // (priority, detector index, start, end)
        let mut candidates: Vec<(u8, usize, usize, usize)> = Vec::new();
        for idx in matched.iter() {
            self.candidates(idx, text, deadline, &mut candidates)?;
        }
        // Overlaps: the lower priority number wins, then the longer span, then the earlier detector.
        candidates
            .sort_by(|a, b| a.0.cmp(&b.0).then((b.3 - b.2).cmp(&(a.3 - a.2))).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        // Kept spans by start (they never overlap): a candidate overlaps one only if it overlaps the kept span
        // starting last before its end.
        let mut kept: std::collections::BTreeMap<usize, (usize, usize)> = std::collections::BTreeMap::new();
        for (_, idx, s, e) in candidates {
            let clash = kept.range(..e).next_back().is_some_and(|(_, &(ke, _))| ke > s);
            if !clash {
                kept.insert(s, (e, idx));
            }
        }
        Ok(kept
            .into_iter()
            .map(|(start, (end, idx))| Finding { kind: inner.detectors[idx].kind.clone(), start, end, detector: idx })
            .collect())
    }

    /// The detectors (kind and index) the prefilter rules out although they have a validated candidate in
    /// `text`, or fail on it (each detector run on its own, without the `RegexSet`); empty when the prefilter is
    /// sound for `text`. For the tests that check it.
    pub(crate) fn prefilter_misses(&self, text: &str) -> Vec<(Kind, usize)> {
        let inner = &*self.inner;
        let present = super::prefilter::presence(text);
        let skipped = !inner.prefilter.may_match(text);
        let clock = Clock::default();
        let deadline = clock.budget(Duration::from_secs(3600));
        (0..inner.detectors.len())
            .filter(|&i| skipped || !inner.prefilter.possible(i, present))
            .filter(|&i| {
                let mut found = Vec::new();
                let run = catch_unwind(AssertUnwindSafe(|| self.candidates(i, text, deadline, &mut found)));
                !matches!(run, Ok(Ok(()))) || !found.is_empty()
            })
            .map(|i| (inner.detectors[i].kind.clone(), i))
            .collect()
    }

    /// Whether the prefilter skips the scan of `text`.
    pub(crate) fn prefilter_skips(&self, text: &str) -> bool {
        self.inner.set.is_some() && !self.inner.prefilter.may_match(text)
    }

    /// Adds the validated candidates of detector `idx` in `text` to `candidates`.
    fn candidates(
        &self,
        idx: usize,
        text: &str,
        deadline: Budget<'_>,
        candidates: &mut Vec<(u8, usize, usize, usize)>,
    ) -> Result<(), RedactError> {
        let inner = &*self.inner;
        let det = &inner.detectors[idx];
        if deadline.spent(text.len()) {
            return Err(RedactError::Timeout(inner.time_budget));
        }
        let mut consider = |whole: (usize, usize), value: (usize, usize)| -> Result<(), RedactError> {
            // A user validator may take long: the clock is read before each; the built-in ones are linear in
            // the candidate.
            let spent = match det.check {
                Check::User(_) => deadline.spent_now(),
                _ => deadline.spent(value.1 - value.0),
            };
            if spent {
                return Err(RedactError::Timeout(inner.time_budget));
            }
            let ctx = Ctx { hay: text, start: value.0, end: value.1, whole };
            let span = match &det.check {
                Check::None => Some(value),
                Check::Builtin(f) => f(&ctx),
                Check::User(f) => match catch_unwind(AssertUnwindSafe(|| f(ctx.value()))) {
                    Ok(Ok(true)) => Some(value),
                    Ok(Ok(false)) => None,
                    Ok(Err(message)) => return Err(RedactError::Detector { kind: det.kind.clone(), message }),
                    Err(_) => {
                        return Err(RedactError::Detector {
                            kind: det.kind.clone(),
                            message: "the validator panicked".into(),
                        })
                    }
                },
            };
            if let Some((s, e)) = span {
                if e > s {
                    candidates.push((det.priority, idx, s, e));
                }
            }
            Ok(())
        };
        if det.grouped {
            for caps in det.regex.captures_iter(text) {
                let whole = caps.get(0).map_or((0, 0), |m| (m.start(), m.end()));
                let value = caps.name("v").map_or(whole, |m| (m.start(), m.end()));
                consider(whole, value)?;
            }
        } else {
            for m in det.regex.find_iter(text) {
                consider((m.start(), m.end()), (m.start(), m.end()))?;
            }
        }
        Ok(())
    }

    /// `text` with every identifier replaced by its action's output (`[SSN]`, `[SSN:hmac:…]`, nothing). Fails
    /// closed: when the text cannot be scanned, the whole of it becomes a marker such as `[REDACTED:oversize]`.
    pub fn redact_str<'a>(&self, text: &'a str) -> Cow<'a, str> {
        self.redact_str_until(text, Clock::default().budget(self.inner.time_budget))
    }

    fn redact_str_until<'a>(&self, text: &'a str, deadline: Budget<'_>) -> Cow<'a, str> {
        match self.changed(text, deadline) {
            None => Cow::Borrowed(text),
            Some(new) => Cow::Owned(new),
        }
    }

    /// The redacted form of `text`, or `None` when nothing in it is to be redacted.
    fn changed(&self, text: &str, deadline: Budget<'_>) -> Option<String> {
        if !self.inner.enabled {
            return None;
        }
        let found = catch_unwind(AssertUnwindSafe(|| self.find_until(text, deadline)))
            .unwrap_or_else(|_| Err(RedactError::Detector { kind: Kind::Field, message: "redaction panicked".into() }));
        match found {
            Ok(f) if f.is_empty() => None,
            Ok(f) => Some(self.apply(text, &f)),
            Err(e) => {
                crate::diag::report!(WARN, "redaction-failed-closed", "a value was replaced by {}: {e}", e.marker());
                Some(e.marker().to_owned())
            }
        }
    }

    fn apply(&self, text: &str, findings: &[Finding]) -> String {
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for f in findings {
            out.push_str(&text[at..f.start]);
            let action = self.inner.detectors[f.detector].action;
            render(&mut out, action, &f.kind, &text[f.start..f.end], self.inner.hasher.as_ref());
            at = f.end;
        }
        out.push_str(&text[at..]);
        out
    }

    fn action(&self, kind: &Kind) -> Action {
        self.inner.actions.get(kind).copied().unwrap_or(self.inner.default_action)
    }

    /// Redacts a JSON value in place: strings are scanned, object fields follow the key rules (a
    /// redacted key's whole value is masked or, with [`Action::Drop`], the field left out; an allowed key's
    /// value is kept as it is), object keys that hold identifiers are masked too, and large integers are
    /// scanned as text. Fails closed per value (see [`redact_str`](Self::redact_str)); a document still being
    /// walked when the time budget runs out has its remaining strings replaced by `[REDACTED:timeout]`.
    pub fn redact_value(&self, value: &mut Value) {
        if self.inner.enabled {
            self.walk(value, 0, Clock::default().budget(self.inner.time_budget));
        }
    }

    /// Redacts the fields of a JSON object in place (as [`redact_value`](Self::redact_value) does for an object).
    pub fn redact_map(&self, map: &mut Map<String, Value>) {
        if self.inner.enabled {
            self.walk_map(map, 0, Clock::default().budget(self.inner.time_budget));
        }
    }

    /// Redacts the value of the field `key` in place, with the key rules applied to `key`. Returns `false` when
    /// the field is to be left out ([`Action::Drop`] on a key rule).
    pub fn redact_field(&self, key: &str, value: &mut Value) -> bool {
        if !self.inner.enabled {
            return true;
        }
        self.field(key, value, 0, Clock::default().budget(self.inner.time_budget))
    }

    /// Applies the key rule of `key` to `value`; `false`: leave the field out.
    fn field(&self, key: &str, value: &mut Value, depth: usize, deadline: Budget<'_>) -> bool {
        match self.inner.keys.rule(key) {
            KeyRule::Allow => true,
            KeyRule::Scan => {
                self.walk(value, depth, deadline);
                true
            }
            KeyRule::Redact(kind) => {
                let action = self.action(&kind);
                if action == Action::Drop {
                    return false;
                }
                if value.is_null() {
                    return true;
                }
                let text = match &mut *value {
                    Value::String(s) => std::mem::take(s),
                    other => other.to_string(),
                };
                let mut out = String::new();
                render(&mut out, action, &kind, &text, self.inner.hasher.as_ref());
                *value = Value::String(out);
                true
            }
        }
    }

    /// The key rule of `key` applied to `value` without changing it (what [`field`](Self::field) would do).
    fn field_of(&self, key: &str, value: &Value, depth: usize, deadline: Budget<'_>) -> Outcome {
        match self.inner.keys.rule(key) {
            KeyRule::Allow => Outcome::Keep,
            KeyRule::Scan => self.redacted(value, depth, deadline).map_or(Outcome::Keep, Outcome::Replace),
            KeyRule::Redact(kind) => {
                let action = self.action(&kind);
                if action == Action::Drop {
                    return Outcome::Drop;
                }
                if value.is_null() {
                    return Outcome::Keep;
                }
                let text: Cow<'_, str> = match value {
                    Value::String(s) => Cow::Borrowed(s),
                    other => Cow::Owned(other.to_string()),
                };
                let mut out = String::new();
                render(&mut out, action, &kind, &text, self.inner.hasher.as_ref());
                Outcome::Replace(Value::String(out))
            }
        }
    }

    /// The redacted copy of `value`, or `None` when [`walk`](Self::walk) would leave it as it is (then nothing
    /// is copied). Same rules, same order, same result as `walk`.
    fn redacted(&self, value: &Value, depth: usize, deadline: Budget<'_>) -> Option<Value> {
        if depth > MAX_DEPTH {
            return Some(Value::String(RedactError::TooDeep.marker().into()));
        }
        match value {
            Value::String(s) => {
                if deadline.spent(s.len()) {
                    return Some(Value::String(RedactError::Timeout(self.inner.time_budget).marker().into()));
                }
                self.changed(s, deadline).map(Value::String)
            }
            Value::Number(n) => {
                if n.as_u64().is_some_and(|v| v >= 10_000_000) || n.as_i64().is_some_and(|v| v <= -10_000_000) {
                    self.changed(&n.to_string(), deadline).map(Value::String)
                } else {
                    None
                }
            }
            Value::Array(items) => {
                let mut out: Option<Vec<Value>> = None;
                for (i, item) in items.iter().enumerate() {
                    match (self.redacted(item, depth + 1, deadline), &mut out) {
                        (Some(new), Some(out)) => out.push(new),
                        (Some(new), None) => {
                            let mut v = Vec::with_capacity(items.len());
                            v.extend_from_slice(&items[..i]);
                            v.push(new);
                            out = Some(v);
                        }
                        (None, Some(out)) => out.push(item.clone()),
                        (None, None) => {}
                    }
                }
                out.map(Value::Array)
            }
            Value::Object(map) => self.redacted_map(map, depth + 1, deadline).map(Value::Object),
            Value::Null | Value::Bool(_) => None,
        }
    }

    /// The redacted copy of `map`, or `None` when [`walk_map`](Self::walk_map) would leave it as it is.
    pub(crate) fn redacted_map_of(&self, map: &Map<String, Value>, clock: &Clock) -> Option<Map<String, Value>> {
        if !self.inner.enabled || map.is_empty() {
            return None;
        }
        self.redacted_map(map, 0, clock.budget(self.inner.time_budget))
    }

    /// [`redact_str`](Self::redact_str)'s result when it changes `text`, timed by `clock`.
    pub(crate) fn changed_text(&self, text: &str, clock: &Clock) -> Option<String> {
        if !self.inner.enabled {
            return None;
        }
        self.changed(text, clock.budget(self.inner.time_budget))
    }

    /// What [`field`](Self::field) does to `value` under `key`, as [`Outcome`], without changing it.
    pub(crate) fn field_outcome(&self, key: &str, value: &Value, clock: &Clock) -> Outcome {
        if !self.inner.enabled {
            return Outcome::Keep;
        }
        self.field_of(key, value, 0, clock.budget(self.inner.time_budget))
    }

    fn redacted_map(&self, map: &Map<String, Value>, depth: usize, deadline: Budget<'_>) -> Option<Map<String, Value>> {
        // The outcome of each field, in order, once one differs (the common case, nothing, allocates nothing).
        let mut outcomes: Vec<Outcome> = Vec::new();
        let mut renamed: Vec<(usize, String)> = Vec::new();
        for (i, (key, value)) in map.iter().enumerate() {
            let outcome = self.field_of(key, value, depth, deadline);
            let dropped = matches!(outcome, Outcome::Drop);
            if !matches!(outcome, Outcome::Keep) || !outcomes.is_empty() {
                if outcomes.is_empty() {
                    outcomes.resize_with(i, || Outcome::Keep);
                }
                outcomes.push(outcome);
            }
            if dropped {
                continue;
            }
            // As in `walk_map`: a key of only lower-case letters and `_` cannot hold an identifier.
            if key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                continue;
            }
            if let Some(new) = self.changed(key, deadline) {
                renamed.push((i, new));
            }
        }
        if outcomes.is_empty() && renamed.is_empty() {
            return None;
        }
        outcomes.resize_with(map.len(), || Outcome::Keep);
        // Built as `walk_map` changes it in place: values replaced, dropped fields removed, then the renamed keys
        // moved, in order, each to a free name.
        let mut out = Map::new();
        for ((key, value), outcome) in map.iter().zip(outcomes) {
            match outcome {
                Outcome::Keep => {
                    out.insert(key.clone(), value.clone());
                }
                Outcome::Replace(new) => {
                    out.insert(key.clone(), new);
                }
                Outcome::Drop => {}
            }
        }
        let keys: Vec<&String> = map.keys().collect();
        for (i, mut new) in renamed {
            if let Some(v) = out.remove(keys[i].as_str()) {
                while out.contains_key(&new) {
                    new.push('\'');
                }
                out.insert(new, v);
            }
        }
        Some(out)
    }

    fn walk(&self, value: &mut Value, depth: usize, deadline: Budget<'_>) {
        if depth > MAX_DEPTH {
            *value = Value::String(RedactError::TooDeep.marker().into());
            return;
        }
        match value {
            Value::String(s) => {
                if deadline.spent(s.len()) {
                    *s = RedactError::Timeout(self.inner.time_budget).marker().into();
                    return;
                }
                if let Some(new) = self.changed(s, deadline) {
                    *s = new;
                }
            }
            Value::Number(n) => {
                // Identifiers sent as numbers (an SSN or phone as an integer).
                if n.as_u64().is_some_and(|v| v >= 10_000_000) || n.as_i64().is_some_and(|v| v <= -10_000_000) {
                    if let Some(new) = self.changed(&n.to_string(), deadline) {
                        *value = Value::String(new);
                    }
                }
            }
            Value::Array(items) => {
                for item in items {
                    self.walk(item, depth + 1, deadline);
                }
            }
            Value::Object(map) => self.walk_map(map, depth + 1, deadline),
            Value::Null | Value::Bool(_) => {}
        }
    }

    fn walk_map(&self, map: &mut Map<String, Value>, depth: usize, deadline: Budget<'_>) {
        let mut dropped = Vec::new();
        let mut renamed = Vec::new();
        for (key, value) in map.iter_mut() {
            if !self.field(key, value, depth, deadline) {
                dropped.push(key.clone());
                continue;
            }
            // A key may itself be an identifier (a map keyed by e-mail address). A key of only lower-case letters
            // and `_` cannot hold one (every detector needs a digit, a capital, `@`, `.`, `:` or a space).
            if key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                continue;
            }
            if let Some(new) = self.changed(key, deadline) {
                renamed.push((key.clone(), new));
            }
        }
        for key in dropped {
            map.remove(&key);
        }
        for (old, mut new) in renamed {
            if let Some(v) = map.remove(&old) {
                while map.contains_key(&new) {
                    new.push('\'');
                }
                map.insert(new, v);
            }
        }
    }
}
