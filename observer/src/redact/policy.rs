//! The vocabulary of a redaction policy: the [`Kind`] of identifier, the key rules (JSON field names whose
//! value is masked whatever it holds, and the allow-list that passes untouched), extra [`Label`]s and
//! user-defined [`CustomDetector`]s.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use super::actions::Action;
use crate::error::ConfigurationError;

/// The kind of identifier a detector or key rule found; its [`label`](Kind::label) is what a mask shows.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Kind {
    /// US Social Security number: `[SSN]`.
    Ssn,
    /// Telephone or fax number (NANP, E.164): `[PHONE]`.
    Phone,
    /// E-mail address: `[EMAIL]`.
    Email,
    /// A date with a day or month (a year alone is kept): `[DATE]`.
    Date,
    /// Street address, PO box: `[ADDRESS]`.
    Address,
    /// ZIP code (ZIP+4, or five digits after a state or a label): `[ZIP]`.
    Zip,
    /// Payment card number (Luhn, issuer prefix): `[CREDIT_CARD]`.
    CreditCard,
    /// International bank account number (mod 97): `[IBAN]`.
    Iban,
    /// Bank or other account number (by key rule): `[ACCOUNT]`.
    Account,
    /// IPv4 or IPv6 address: `[IP]`.
    Ip,
    /// Web address: `[URL]`.
    Url,
    /// National Provider Identifier (Luhn with the 80840 prefix): `[NPI]`.
    Npi,
    /// DEA registration number (check digit): `[DEA]`.
    Dea,
    /// Medicare Beneficiary Identifier: `[MBI]`.
    Mbi,
    /// Medical record number (by label, or by a user pattern): `[MRN]`.
    Mrn,
    /// Health-plan member, subscriber or policy number (by label): `[HEALTH_PLAN]`.
    HealthPlan,
    /// Device identifier or serial number (by label): `[DEVICE_SERIAL]`.
    DeviceSerial,
    /// Licence, certificate or passport number (by label or key rule): `[LICENSE]`.
    License,
    /// Provider API key (OpenAI, Anthropic, AWS, GitHub): `[API_KEY]`.
    ApiKey,
    /// JSON Web Token: `[JWT]`.
    Jwt,
    /// The token of an `Authorization: Bearer` header: `[BEARER_TOKEN]`.
    BearerToken,
    /// A password (in a URL's user info, after `password=`, or by key rule): `[PASSWORD]`.
    Password,
    /// Another secret (by key rule: `token`, `client_secret`, `cookie`, …): `[SECRET]`.
    Secret,
    /// A person's name (by label or title): `[NAME]`.
    Name,
    /// A field named by [`RedactionConfig::redact_keys`](crate::RedactionConfig::redact_keys): `[REDACTED]`.
    Field,
    /// A user-defined kind (a [`CustomDetector`]'s): `[NAME]` as given, upper case.
    Custom(Arc<str>),
}

impl Kind {
    /// Every built-in kind (not [`Kind::Custom`]).
    pub const BUILTIN: [Kind; 25] = [
        Kind::Ssn,
        Kind::Phone,
        Kind::Email,
        Kind::Date,
        Kind::Address,
        Kind::Zip,
        Kind::CreditCard,
        Kind::Iban,
        Kind::Account,
        Kind::Ip,
        Kind::Url,
        Kind::Npi,
        Kind::Dea,
        Kind::Mbi,
        Kind::Mrn,
        Kind::HealthPlan,
        Kind::DeviceSerial,
        Kind::License,
        Kind::ApiKey,
        Kind::Jwt,
        Kind::BearerToken,
        Kind::Password,
        Kind::Secret,
        Kind::Name,
        Kind::Field,
    ];

    /// A user-defined kind; its label is `name` in upper case with `_` for anything not alphanumeric.
    pub fn custom(name: &str) -> Self {
        let label: String =
            name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
        Self::Custom(label.into())
    }

    /// What a mask shows: `SSN`, `PHONE`, `CREDIT_CARD`, …
    pub fn label(&self) -> &str {
        match self {
            Self::Ssn => "SSN",
            Self::Phone => "PHONE",
            Self::Email => "EMAIL",
            Self::Date => "DATE",
            Self::Address => "ADDRESS",
            Self::Zip => "ZIP",
            Self::CreditCard => "CREDIT_CARD",
            Self::Iban => "IBAN",
            Self::Account => "ACCOUNT",
            Self::Ip => "IP",
            Self::Url => "URL",
            Self::Npi => "NPI",
            Self::Dea => "DEA",
            Self::Mbi => "MBI",
            Self::Mrn => "MRN",
            Self::HealthPlan => "HEALTH_PLAN",
            Self::DeviceSerial => "DEVICE_SERIAL",
            Self::License => "LICENSE",
            Self::ApiKey => "API_KEY",
            Self::Jwt => "JWT",
            Self::BearerToken => "BEARER_TOKEN",
            Self::Password => "PASSWORD",
            Self::Secret => "SECRET",
            Self::Name => "NAME",
            Self::Field => "REDACTED",
            Self::Custom(label) => label,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl FromStr for Kind {
    type Err = ConfigurationError;

    /// A built-in kind by its label, any case (`ssn`, `credit_card`, `CREDIT-CARD`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let want = s.trim().to_ascii_uppercase().replace('-', "_");
        Kind::BUILTIN.iter().find(|k| k.label() == want).cloned().ok_or_else(|| {
            let all: Vec<String> = Kind::BUILTIN.iter().map(|k| k.label().to_ascii_lowercase()).collect();
            ConfigurationError::new("redaction", format!("unknown kind `{s}`; expected one of {}", all.join(", ")))
        })
    }
}

/// An extra label whose value is an identifier of `kind`, e.g. `Label::new(Kind::Mrn, "Chart #")` masks the
/// `A-99812` of "Chart # A-99812". The label matches in any case, followed by optional `:`, `#`, `=` or
/// `no.`; the value is one token of letters, digits and dashes holding at least one digit (for
/// [`Kind::Name`]: up to three capitalised words).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// The kind of what follows the label.
    pub kind: Kind,
    /// The label's text.
    pub text: String,
}

impl Label {
    /// A label of `kind`.
    pub fn new(kind: Kind, text: impl Into<String>) -> Self {
        Self { kind, text: text.into() }
    }
}

/// The check of a user detector: `Ok(true)` keeps the match as a finding, `Ok(false)` drops it, `Err` fails
/// closed (the whole value becomes `[REDACTED:error]`).
pub type Validator = Arc<dyn Fn(&str) -> Result<bool, String> + Send + Sync>;

/// A user-defined detector: a regex (the `regex` crate's syntax: linear time, no look-around or
/// back-references), an optional validator closure, its kind and optionally its own action.
///
/// ```
/// use observer::redact::{CustomDetector, Kind};
///
/// // Employee ids like `EMP-004211`, only those whose number is even (an example rule).
/// let employee = CustomDetector::new(Kind::custom("employee_id"), r"\bEMP-(\d{6})\b")
///     .validator(|m| Ok(m.ends_with(['0', '2', '4', '6', '8'])));
/// // Hospital MRNs of the form `MR` + 8 digits, without a label.
/// let mrn = CustomDetector::new(Kind::Mrn, r"\bMR\d{8}\b");
/// # let _ = (employee, mrn);
/// ```
///
/// With a capture group, only the first group is masked (the rest of the match, such as a label, stays).
#[derive(Clone)]
pub struct CustomDetector {
    pub(crate) kind: Kind,
    pub(crate) pattern: String,
    pub(crate) validator: Option<Validator>,
    pub(crate) action: Option<Action>,
}

impl CustomDetector {
    /// A detector of `kind` for `pattern` (compiled when the policy is, so a bad pattern is a
    /// [`ConfigurationError`] then).
    pub fn new(kind: Kind, pattern: impl Into<String>) -> Self {
        Self { kind, pattern: pattern.into(), validator: None, action: None }
    }

    /// Keeps only matches for which `check` returns `Ok(true)` (it gets the masked text: the first capture
    /// group, or the whole match). An `Err`, or a panic, fails closed.
    pub fn validator(mut self, check: impl Fn(&str) -> Result<bool, String> + Send + Sync + 'static) -> Self {
        self.validator = Some(Arc::new(check));
        self
    }

    /// Its own action (otherwise the kind's, from the policy).
    pub fn action(mut self, action: Action) -> Self {
        self.action = Some(action);
        self
    }
}

impl fmt::Debug for CustomDetector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomDetector")
            .field("kind", &self.kind)
            .field("pattern", &self.pattern)
            .field("validator", &self.validator.as_ref().map(|_| "<closure>"))
            .field("action", &self.action)
            .finish()
    }
}

/// JSON field names whose value is masked whatever it holds (compared after lower-casing and dropping
/// everything but letters and digits: `patientName`, `patient_name` and `Patient-Name` are one key).
const KEY_RULES: &[(&str, Kind)] = &[
    ("ssn", Kind::Ssn),
    ("socialsecuritynumber", Kind::Ssn),
    ("socialsecurity", Kind::Ssn),
    ("dob", Kind::Date),
    ("dateofbirth", Kind::Date),
    ("birthdate", Kind::Date),
    ("birthday", Kind::Date),
    ("dateofdeath", Kind::Date),
    ("deathdate", Kind::Date),
    ("admissiondate", Kind::Date),
    ("admitdate", Kind::Date),
    ("dischargedate", Kind::Date),
    ("password", Kind::Password),
    ("passwd", Kind::Password),
    ("pwd", Kind::Password),
    ("passphrase", Kind::Password),
    ("secret", Kind::Secret),
    ("clientsecret", Kind::Secret),
    ("apikey", Kind::ApiKey),
    ("apisecret", Kind::Secret),
    ("secretkey", Kind::Secret),
    ("privatekey", Kind::Secret),
    ("accesstoken", Kind::Secret),
    ("refreshtoken", Kind::Secret),
    ("idtoken", Kind::Secret),
    ("authtoken", Kind::Secret),
    ("sessiontoken", Kind::Secret),
    ("token", Kind::Secret),
    ("authorization", Kind::Secret),
    ("cookie", Kind::Secret),
    ("setcookie", Kind::Secret),
    ("awssecretaccesskey", Kind::Secret),
    ("patientname", Kind::Name),
    ("firstname", Kind::Name),
    ("lastname", Kind::Name),
    ("middlename", Kind::Name),
    ("fullname", Kind::Name),
    ("givenname", Kind::Name),
    ("familyname", Kind::Name),
    ("surname", Kind::Name),
    ("maidenname", Kind::Name),
    ("mothersmaidenname", Kind::Name),
    ("email", Kind::Email),
    ("emailaddress", Kind::Email),
    ("phone", Kind::Phone),
    ("phonenumber", Kind::Phone),
    ("telephone", Kind::Phone),
    ("mobile", Kind::Phone),
    ("mobilephone", Kind::Phone),
    ("cellphone", Kind::Phone),
    ("fax", Kind::Phone),
    ("faxnumber", Kind::Phone),
    ("address", Kind::Address),
    ("streetaddress", Kind::Address),
    ("street", Kind::Address),
    ("homeaddress", Kind::Address),
    ("addressline1", Kind::Address),
    ("addressline2", Kind::Address),
    ("zip", Kind::Zip),
    ("zipcode", Kind::Zip),
    ("postalcode", Kind::Zip),
    ("mrn", Kind::Mrn),
    ("medicalrecordnumber", Kind::Mrn),
    ("chartnumber", Kind::Mrn),
    ("memberid", Kind::HealthPlan),
    ("subscriberid", Kind::HealthPlan),
    ("policynumber", Kind::HealthPlan),
    ("healthplanid", Kind::HealthPlan),
    ("insuranceid", Kind::HealthPlan),
    ("beneficiaryid", Kind::HealthPlan),
    ("mbi", Kind::Mbi),
    ("medicareid", Kind::Mbi),
    ("creditcard", Kind::CreditCard),
    ("cardnumber", Kind::CreditCard),
    ("ccnumber", Kind::CreditCard),
    ("cvv", Kind::CreditCard),
    ("cvc", Kind::CreditCard),
    ("iban", Kind::Iban),
    ("accountnumber", Kind::Account),
    ("bankaccount", Kind::Account),
    ("routingnumber", Kind::Account),
    ("ipaddress", Kind::Ip),
    ("clientip", Kind::Ip),
    ("remoteaddr", Kind::Ip),
    ("licensenumber", Kind::License),
    ("driverslicense", Kind::License),
    ("passportnumber", Kind::License),
    ("serialnumber", Kind::DeviceSerial),
    ("deviceserial", Kind::DeviceSerial),
];

/// A JSON key as the key rules compare it.
pub(crate) fn normalise_key(key: &str) -> String {
    key.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect()
}

/// The compiled key rules: which keys are masked (and as what), which pass untouched.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyRules {
    redact: HashMap<String, Kind>,
    allow: std::collections::HashSet<String>,
    /// A Bloom filter of the normalised keys of both (by length, first and last byte): a key not in it has no
    /// rule, without hashing it.
    bloom: [u64; 4],
}

/// The bit in [`KeyRules::bloom`] of a normalised key of `len` bytes, `first` and `last` (0 when empty).
fn bloom_bit(first: u8, last: u8, len: usize) -> usize {
    (usize::from(first) * 7 + usize::from(last) * 13 + len * 31) & 255
}

/// [`bloom_bit`] of a normalised key.
fn bloom_bit_of(norm: &[u8]) -> usize {
    bloom_bit(norm.first().copied().unwrap_or(0), norm.last().copied().unwrap_or(0), norm.len())
}

/// What a key rule says about a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyRule {
    /// Scan its value with the detectors.
    Scan,
    /// Leave it as it is.
    Allow,
    /// Mask the whole value as this kind.
    Redact(Kind),
}

impl KeyRules {
    pub(crate) fn new(extra: &[String], allow: &[String], disabled: &[Kind]) -> Self {
        let mut redact: HashMap<String, Kind> = KEY_RULES
            .iter()
            .filter(|(_, k)| !disabled.contains(k))
            .map(|(key, kind)| ((*key).to_owned(), kind.clone()))
            .collect();
        for key in extra {
            redact.entry(normalise_key(key)).or_insert(Kind::Field);
        }
        let allow: std::collections::HashSet<String> = allow.iter().map(|k| normalise_key(k)).collect();
        let mut bloom = [0u64; 4];
        for key in redact.keys().chain(&allow) {
            let bit = bloom_bit_of(key.as_bytes());
            bloom[bit / 64] |= 1 << (bit % 64);
        }
        Self { redact, allow, bloom }
    }

    pub(crate) fn rule(&self, key: &str) -> KeyRule {
        if self.redact.is_empty() && self.allow.is_empty() {
            return KeyRule::Scan;
        }
        // `normalise_key` without its allocation (this runs for every field of every event): first its length
        // and ends, for the Bloom filter; then, if it may have a rule, the key itself (ASCII, never longer
        // than the key: on the stack unless the key is long).
        let (mut len, mut first, mut last) = (0, 0, 0);
        for b in key.bytes().filter(u8::is_ascii_alphanumeric) {
            let b = b.to_ascii_lowercase();
            if len == 0 {
                first = b;
            }
            last = b;
            len += 1;
        }
        let bit = bloom_bit(first, last, len);
        if self.bloom[bit / 64] & (1 << (bit % 64)) == 0 {
            return KeyRule::Scan;
        }
        let mut buf = [0u8; 64];
        let long;
        let norm: &[u8] = if key.len() <= buf.len() {
            let mut n = 0;
            for b in key.bytes().filter(u8::is_ascii_alphanumeric) {
                buf[n] = b.to_ascii_lowercase();
                n += 1;
            }
            &buf[..n]
        } else {
            long = normalise_key(key);
            long.as_bytes()
        };
        // ASCII only, so always UTF-8.
        let norm = std::str::from_utf8(norm).unwrap_or_default();
        if !self.allow.is_empty() && self.allow.contains(norm) {
            KeyRule::Allow
        } else if let Some(kind) = self.redact.get(norm) {
            KeyRule::Redact(kind.clone())
        } else {
            KeyRule::Scan
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rule as it was computed before the normalisation moved to the stack: `normalise_key`, then look up.
    fn reference(rules: &KeyRules, key: &str) -> KeyRule {
        let norm = normalise_key(key);
        if rules.allow.contains(&norm) {
            KeyRule::Allow
        } else if let Some(kind) = rules.redact.get(&norm) {
            KeyRule::Redact(kind.clone())
        } else {
            KeyRule::Scan
        }
    }

    #[test]
    fn key_rules_normalise_every_key_as_before() {
        let rules = KeyRules::new(&["x".repeat(70), "Diagnosis-Text".into()], &["Contact_Info".into()], &[]);
        let keys = [
            "ssn".to_owned(),
            "SSN".into(),
            "Social-Security_Number".into(),
            "patientName".into(),
            "patient name".into(),
            "ÄpatientNäme".into(),
            "e-mail".into(),
            "DOB ".into(),
            "contact info".into(),
            "diagnosis text".into(),
            "model".into(),
            String::new(),
            "-".into(),
            "ß".into(),
            "x".repeat(64),
            "x".repeat(70),
            format!("{}!", "x".repeat(70)),
            "X-".repeat(35),
            format!("{}ssn", "_".repeat(61)),
            format!("{}ssn", "_".repeat(62)),
            format!("{}ssn", "é".repeat(40)),
        ];
        let mut seen = std::collections::HashSet::new();
        for key in &keys {
            let rule = rules.rule(key);
            assert_eq!(rule, reference(&rules, key), "{key:?}");
            seen.insert(format!("{rule:?}"));
        }
        assert!(seen.len() >= 5, "Scan, Allow, Field and built-in kinds are all covered: {seen:?}");
    }
}
