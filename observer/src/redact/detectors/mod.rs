//! The built-in detectors, one file per family: a pattern finds candidates, a validator (checksum, calendar,
//! numbering-plan or context rule) keeps the real ones. Patterns use ASCII word boundaries and `[0-9]` so that
//! the whole set runs on the regex crate's linear-time automata.

mod finance;
mod health;
mod network;
mod personal;
mod secrets;

use super::actions::Action;
use super::policy::{Kind, Label, Validator};

/// Where a candidate is: the haystack, the value's span (the `v` group, else the whole match) and the whole
/// match's span.
pub(crate) struct Ctx<'a> {
    pub hay: &'a str,
    pub start: usize,
    pub end: usize,
    pub whole: (usize, usize),
}

impl Ctx<'_> {
    /// The value's text.
    pub fn value(&self) -> &str {
        &self.hay[self.start..self.end]
    }

    /// The whole match's text.
    pub fn whole(&self) -> &str {
        &self.hay[self.whole.0..self.whole.1]
    }

    /// The byte before the whole match.
    pub fn before(&self) -> Option<u8> {
        self.whole.0.checked_sub(1).map(|i| self.hay.as_bytes()[i])
    }

    /// The bytes after the whole match (up to two).
    pub fn after(&self) -> (Option<u8>, Option<u8>) {
        let b = self.hay.as_bytes();
        (b.get(self.whole.1).copied(), b.get(self.whole.1 + 1).copied())
    }

    /// Whether the match is glued to a longer number (`-`, `/` or `.` then a digit on either side).
    pub fn in_longer_number(&self) -> bool {
        let b = self.hay.as_bytes();
        let before = self.whole.0 >= 2
            && matches!(b[self.whole.0 - 1], b'-' | b'/' | b'.')
            && b[self.whole.0 - 2].is_ascii_digit();
        let (a1, a2) = self.after();
        let after = matches!(a1, Some(b'-' | b'/' | b'.')) && a2.is_some_and(|c| c.is_ascii_digit());
        before || after
    }

    /// Whether the match is the tail of an identifier such as a model name (`gpt-4o-2024-08-06`): a letter or
    /// digit, then `-`, `_` or `.`, right before it.
    pub fn in_identifier(&self) -> bool {
        let b = self.hay.as_bytes();
        self.whole.0 >= 2
            && matches!(b[self.whole.0 - 1], b'-' | b'_' | b'.' | b'/')
            && b[self.whole.0 - 2].is_ascii_alphanumeric()
    }

    /// The span unchanged when `ok`.
    pub fn keep(&self, ok: bool) -> Option<(usize, usize)> {
        ok.then_some((self.start, self.end))
    }
}

/// How a candidate is checked.
#[derive(Clone)]
pub(crate) enum Check {
    /// Kept as it is.
    None,
    /// A built-in rule; it may narrow the span (e.g. a URL's trailing punctuation).
    Builtin(fn(&Ctx<'_>) -> Option<(usize, usize)>),
    /// A user validator (its error, or panic, fails the whole value closed).
    User(Validator),
}

/// One detector before compilation.
#[derive(Clone)]
pub(crate) struct Spec {
    pub kind: Kind,
    pub pattern: String,
    pub check: Check,
    /// Lower wins an overlap; then the longer span; then the earlier detector.
    pub priority: u8,
    /// Its own action (a custom detector's), else the kind's.
    pub action: Option<Action>,
    /// Its validator keeps only values holding an ASCII digit (the prefilter may then skip a value without one).
    pub needs_digit: bool,
}

/// Priorities: secrets, then URLs and e-mail (they contain other shapes), then labelled values, then the
/// structured identifiers, then names by title.
pub(crate) const SECRET: u8 = 0;
pub(crate) const CONTAINER: u8 = 1;
pub(crate) const LABELLED: u8 = 2;
pub(crate) const STRUCTURED: u8 = 3;
pub(crate) const WEAK: u8 = 4;

/// Rewrites a pattern for the linear-time engines: ASCII word boundaries, ASCII digits.
pub(crate) fn ascii(pattern: &str) -> String {
    pattern.replace(r"\b", r"(?-u:\b)").replace(r"\d", "[0-9]")
}

pub(crate) fn spec(kind: Kind, priority: u8, pattern: &str, check: fn(&Ctx<'_>) -> Option<(usize, usize)>) -> Spec {
    Spec { kind, pattern: ascii(pattern), check: Check::Builtin(check), priority, action: None, needs_digit: false }
}

/// A labelled-value pattern: any of `labels` (any case, inner spaces flexible), an optional `:`/`#`/`=`/`is`,
/// then the value pattern as group `v`.
pub(crate) fn labelled(labels: &[&str], extra: &[&str], value: &str) -> String {
    let mut alts: Vec<String> = labels
        .iter()
        .chain(extra)
        .map(|l| regex::escape(l.trim()).replace(' ', r"\s+"))
        .filter(|l| !l.is_empty())
        .collect();
    // Longest first, so that `member id` wins over `member`.
    alts.sort_by_key(|a| std::cmp::Reverse(a.len()));
    ascii(&format!(r"(?i:\b(?:{})\s*(?:no\.?|number|num|#)?\s*[:#=]*\s*(?:is\s+)?)(?P<v>{value})", alts.join("|")))
}

/// Every built-in detector, with the extra labels of the policy, except the disabled kinds.
pub(crate) fn builtin(labels: &[Label], disabled: &[Kind]) -> Vec<Spec> {
    let extra =
        |kind: Kind| -> Vec<&str> { labels.iter().filter(|l| l.kind == kind).map(|l| l.text.as_str()).collect() };
    let mut all = Vec::new();
    all.extend(secrets::specs());
    all.extend(network::specs());
    all.extend(personal::specs(&extra(Kind::Name), &extra(Kind::Phone), &extra(Kind::Ssn)));
    all.extend(health::specs(
        &extra(Kind::Mrn),
        &extra(Kind::HealthPlan),
        &extra(Kind::DeviceSerial),
        &extra(Kind::License),
    ));
    all.extend(finance::specs());
    // Labels of other kinds (e.g. a custom label for `Kind::Account`): the generic labelled form.
    for label in labels {
        if !matches!(
            label.kind,
            Kind::Name | Kind::Phone | Kind::Ssn | Kind::Mrn | Kind::HealthPlan | Kind::DeviceSerial | Kind::License
        ) {
            all.push(Spec {
                kind: label.kind.clone(),
                pattern: labelled(&[], &[label.text.as_str()], health::ID_VALUE),
                check: Check::Builtin(health::has_digit),
                priority: LABELLED,
                action: None,
                needs_digit: true,
            });
        }
    }
    all.retain(|s| !disabled.contains(&s.kind));
    all
}
