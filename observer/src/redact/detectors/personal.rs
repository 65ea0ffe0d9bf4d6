//! Identifiers of a person: SSN, phone and fax, e-mail, dates, street addresses and ZIP codes, names by label
//! and title.

use super::{labelled, spec, Check, Ctx, Spec, CONTAINER, LABELLED, STRUCTURED, WEAK};
use crate::redact::policy::Kind;
use crate::redact::validators;

fn ssn(c: &Ctx<'_>) -> Option<(usize, usize)> {
    c.keep(!c.in_longer_number() && validators::ssn(c.value()))
}

fn nanp(c: &Ctx<'_>) -> Option<(usize, usize)> {
    let glued = c.before().is_some_and(|b| b.is_ascii_digit() || b == b'-' || b == b'+');
    c.keep(!glued && !c.in_longer_number() && validators::nanp(c.value()))
}

fn e164(c: &Ctx<'_>) -> Option<(usize, usize)> {
    c.keep(!c.before().is_some_and(|b| b.is_ascii_alphanumeric()) && validators::e164(c.value()))
}

fn email(c: &Ctx<'_>) -> Option<(usize, usize)> {
    let v = c.value();
    let (local, domain) = v.split_once('@')?;
    let ok = !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && domain.split('.').all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-'));
    c.keep(ok)
}

/// The numbers of a date's text, in order.
fn numbers(s: &str) -> Vec<u32> {
    s.split(|c: char| !c.is_ascii_digit()).filter(|p| !p.is_empty()).filter_map(|p| p.parse().ok()).collect()
}

fn date_mdy(c: &Ctx<'_>) -> Option<(usize, usize)> {
    let n = numbers(c.value());
    let ok = n.len() == 3
        && (validators::ymd(Some(n[2]), n[0], Some(n[1])) || validators::ymd(Some(n[2]), n[1], Some(n[0])));
    c.keep(ok && !c.in_longer_number() && !c.in_identifier())
}

fn date_ymd(c: &Ctx<'_>) -> Option<(usize, usize)> {
    let n = numbers(c.value());
    c.keep(n.len() >= 3 && validators::ymd(Some(n[0]), n[1], Some(n[2])) && !c.in_longer_number() && !c.in_identifier())
}

fn date_my(c: &Ctx<'_>) -> Option<(usize, usize)> {
    let n = numbers(c.value());
    c.keep(n.len() == 2 && n[1] >= 1900 && validators::ymd(Some(n[1]), n[0], None) && !c.in_longer_number())
}

/// Written dates: `March 3, 1985`, `3rd of March 1985`, `Mar. 3`, `March 1985`.
fn date_written(c: &Ctx<'_>) -> Option<(usize, usize)> {
    let v = c.value();
    let month = v
        .split(|ch: char| !ch.is_ascii_alphabetic())
        .filter(|w| w.len() >= 3 && !matches!(*w, "of" | "st" | "nd" | "rd" | "th"))
        .find_map(validators::month_name)?;
    let n = numbers(v);
    let (day, year) = match n.as_slice() {
        [a] if *a >= 1000 => (None, Some(*a)),
        [a] => (Some(*a), None),
        [a, b] if *a < 100 => (Some(*a), Some(*b)),
        _ => return None,
    };
    c.keep(validators::ymd(year, month, day))
}

fn address(c: &Ctx<'_>) -> Option<(usize, usize)> {
    // A trailing `, City, ST` must name a real state.
    let v = c.value();
    let state_ok = v
        .rsplit(',')
        .next()
        .and_then(|tail| tail.split_whitespace().next())
        .filter(|w| w.len() == 2 && w.bytes().all(|b| b.is_ascii_uppercase()))
        .is_none_or(validators::us_state);
    c.keep(state_ok)
}

fn zip_after_state(c: &Ctx<'_>) -> Option<(usize, usize)> {
    c.keep(validators::us_state(&c.whole()[..2]) && !c.in_longer_number())
}

fn zip4(c: &Ctx<'_>) -> Option<(usize, usize)> {
    c.keep(!c.in_longer_number())
}

fn plain(c: &Ctx<'_>) -> Option<(usize, usize)> {
    c.keep(true)
}

/// Words that follow a name label or title without being a name.
const NOT_NAMES: &[&str] = &[
    "Unknown",
    "None",
    "Anonymous",
    "Patient",
    "Stable",
    "Denies",
    "Reports",
    "States",
    "Male",
    "Female",
    "Adult",
    "Child",
    "Pending",
    "Not",
    "No",
    "The",
    "This",
    "That",
    "Is",
    "Was",
    "And",
    "See",
    "Same",
    "Self",
    "Office",
    "Note",
    "Notes",
    "Name",
    "Yes",
    "Other",
];

fn name(c: &Ctx<'_>) -> Option<(usize, usize)> {
    let v = c.value();
    let first = v.split_whitespace().next().unwrap_or("");
    c.keep(!NOT_NAMES.contains(&first) && first.len() >= 2)
}

const NAME_LABELS: &[&str] = &[
    "patient name",
    "patient",
    "pt",
    "name",
    "member name",
    "mother",
    "father",
    "spouse",
    "husband",
    "wife",
    "son",
    "daughter",
    "guardian",
    "emergency contact",
    "next of kin",
    "contact",
    "caregiver",
    "signed by",
    "seen by",
    "referred by",
    "attending",
    "attending physician",
    "referring physician",
    "physician",
    "provider",
    "nurse",
];

/// One to three capitalised words, an optional middle initial.
const NAME: &str = r"(?:[A-Z]'[A-Z][a-z]+|Ma?c[A-Z][a-z]+|[A-Z][a-z'-]+)(?:\s+[A-Z]\.)?(?:\s+(?:[A-Z]'[A-Z][a-z]+|Ma?c[A-Z][a-z]+|[A-Z][a-z'-]+)){0,2}";

const MONTH: &str = r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?|JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)\.?";

const STREET_SUFFIX: &str = r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Place|Pl|Way|Terrace|Ter|Circle|Cir|Parkway|Pkwy|Highway|Hwy|Square|Sq|Trail|Trl|Route|Rte)";

pub(super) fn specs(names: &[&str], phones: &[&str], ssns: &[&str]) -> Vec<Spec> {
    let name_labels = {
        let mut alts: Vec<String> = NAME_LABELS
            .iter()
            .chain(names)
            .map(|l| regex::escape(l.trim()).replace(' ', r"\s+"))
            .filter(|l| !l.is_empty())
            .collect();
        alts.sort_by_key(|a| std::cmp::Reverse(a.len()));
        alts.join("|")
    };
    let street = format!(
        r"\b\d{{1,6}}\s+(?:[NSEW]\.?\s+)?(?:(?:[A-Z][a-z]+|\d+(?:st|nd|rd|th))\.?\s+){{1,3}}{STREET_SUFFIX}\b\.?(?:,?\s+(?:Apt|Apartment|Suite|Ste|Unit|Fl|Floor|Rm|Room|#)\.?\s*#?[A-Za-z0-9-]+)?(?:,\s*[A-Z][a-z]+(?:\s+[A-Z][a-z]+){{0,2}},?\s+[A-Z]{{2}}(?:\s+\d{{5}}(?:-\d{{4}})?)?)?"
    );
    vec![
        spec(Kind::Email, CONTAINER, r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}\b", email),
        Spec {
            kind: Kind::Ssn,
            pattern: labelled(
                &["SSN", "SS#", "social security number", "social security no", "social security"],
                ssns,
                r"\d{9}|\d{3}[- ]\d{2}[- ]\d{4}",
            ),
            check: Check::Builtin(ssn),
            priority: LABELLED,
            action: None,
            needs_digit: false,
        },
        Spec {
            kind: Kind::Phone,
            pattern: labelled(
                &["phone", "tel", "telephone", "fax", "cell", "mobile", "pager", "call"],
                phones,
                r"\+?1?\d{10}",
            ),
            check: Check::Builtin(nanp),
            priority: LABELLED,
            action: None,
            needs_digit: false,
        },
        spec(Kind::Name, LABELLED, &format!(r"(?i:\b(?:{name_labels})\s*[:\-]\s*)(?P<v>{NAME})"), name),
        spec(Kind::Ssn, STRUCTURED, r"\b\d{3}-\d{2}-\d{4}\b|\b\d{3} \d{2} \d{4}\b", ssn),
        spec(
            Kind::Phone,
            STRUCTURED,
            r"(?:\+1[-.\s]?|\b1[-.\s])?(?:\(\d{3}\)\s?|\b\d{3}[-.\s])\d{3}[-.\s]\d{4}\b",
            nanp,
        ),
        spec(Kind::Phone, STRUCTURED, r"\+\d{1,3}(?:[\s.-]?\d{1,4}){2,6}\b", e164),
        spec(
            Kind::Date,
            STRUCTURED,
            r"\b\d{1,2}[/-]\d{1,2}[/-](?:\d{4}|\d{2})\b|\b\d{1,2}\.\d{1,2}\.\d{4}\b",
            date_mdy,
        ),
        spec(
            Kind::Date,
            STRUCTURED,
            r"\b\d{4}[-/.]\d{1,2}[-/.]\d{1,2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?\b",
            date_ymd,
        ),
        spec(Kind::Date, STRUCTURED, r"\b\d{1,2}/\d{4}\b", date_my),
        spec(
            Kind::Date,
            STRUCTURED,
            &format!(
                r"\b{MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?\b(?:,?\s+\d{{4}}\b)?|\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{MONTH},?\s+\d{{4}}\b|\b{MONTH},?\s+\d{{4}}\b"
            ),
            date_written,
        ),
        spec(Kind::Address, STRUCTURED, &street, address),
        spec(Kind::Address, STRUCTURED, r"(?i:\bP\.?\s?O\.?\s*Box)\s+\d+\b", plain),
        spec(Kind::Zip, STRUCTURED, r"\b[A-Z]{2}\s+(?P<v>\d{5}(?:-\d{4})?)\b", zip_after_state),
        spec(Kind::Zip, STRUCTURED, r"\b\d{5}-\d{4}\b", zip4),
        Spec {
            kind: Kind::Zip,
            pattern: labelled(&["zip", "zip code", "zipcode", "postal code"], &[], r"\d{5}(?:-\d{4})?"),
            check: Check::Builtin(plain),
            priority: LABELLED,
            action: None,
            needs_digit: false,
        },
        spec(Kind::Name, WEAK, &format!(r"\b(?:Dr|Mr|Mrs|Ms|Miss|Mx|Prof)\.?\s+(?P<v>{NAME})"), name),
    ]
}
