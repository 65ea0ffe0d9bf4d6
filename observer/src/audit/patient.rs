//! Patient references: a keyed hash (HMAC-SHA256) of a patient's identifier, so that the events about one patient
//! join across the trail without the identifier being readable in it.
//!
//! The key is secret: whoever holds it can test a guessed identifier against a reference, nobody else can. The
//! process-wide key ([`set_patient_key`], else [`PatientKey::from_env`]) is what
//! [`AuditBuilder::patient`](crate::audit::AuditBuilder::patient) and `#[audit(patient = ..)]` use; the accounting
//! ([`accounting`](crate::audit::accounting)) hashes the identifier it is asked about with the same key.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwapOption;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The environment variable naming a file that holds the patient key (its bytes; one trailing newline is ignored).
pub const PATIENT_KEY_FILE_ENV: &str = "OBSERVER_HMAC_KEY_FILE";

/// The redaction engine's HMAC key variable: used as the patient key (its bytes) when `OBSERVER_HMAC_KEY_FILE` is
/// unset, so that one key serves both.
const REDACTION_KEY_ENV: &str = "OBSERVER_REDACTION_HMAC_KEY";

/// The prefix of every patient reference.
pub const PATIENT_REF_PREFIX: &str = "hmac-sha256:";

/// The shortest key accepted, in bytes.
pub const PATIENT_KEY_MIN_LEN: usize = 16;

/// The secret key of [patient references](PatientRef). Its `Debug` never shows the key.
#[derive(Clone)]
pub struct PatientKey {
    key: Arc<[u8]>,
}

impl fmt::Debug for PatientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PatientKey(<redacted>)")
    }
}

/// A patient key could not be read or is unusable. Never contains key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PatientKeyError {
    /// The key is shorter than [`PATIENT_KEY_MIN_LEN`] bytes.
    #[error("patient key is {len} bytes; at least {PATIENT_KEY_MIN_LEN} are required")]
    TooShort {
        /// Its length in bytes.
        len: usize,
    },
    /// The key file could not be read.
    #[error("reading patient key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl PatientKey {
    /// A key from its bytes (at least [`PATIENT_KEY_MIN_LEN`]; 32 random bytes are a good key).
    ///
    /// # Errors
    /// [`PatientKeyError::TooShort`].
    pub fn new(bytes: impl AsRef<[u8]>) -> Result<Self, PatientKeyError> {
        let bytes = bytes.as_ref();
        if bytes.len() < PATIENT_KEY_MIN_LEN {
            return Err(PatientKeyError::TooShort { len: bytes.len() });
        }
        Ok(Self { key: Arc::from(bytes) })
    }

    /// The key held in a file: its bytes, without one trailing `\n` or `\r\n`.
    ///
    /// # Errors
    /// [`PatientKeyError::Io`] when the file cannot be read, [`PatientKeyError::TooShort`].
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, PatientKeyError> {
        let path = path.as_ref();
        let mut bytes =
            std::fs::read(path).map_err(|source| PatientKeyError::Io { path: path.display().to_string(), source })?;
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
            if bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
        }
        let key = Self::new(&bytes);
        bytes.fill(0);
        key
    }

    /// The key of the file named by `OBSERVER_HMAC_KEY_FILE`, else the redaction engine's HMAC key
    /// `OBSERVER_REDACTION_HMAC_KEY` (its bytes: one key for both); `Ok(None)` when neither is set (or both are
    /// empty).
    ///
    /// # Errors
    /// As [`from_file`](Self::from_file) and [`new`](Self::new).
    pub fn from_env() -> Result<Option<Self>, PatientKeyError> {
        Self::from_lookup(&crate::config::process_env)
    }

    fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Option<Self>, PatientKeyError> {
        if let Some(path) = lookup(PATIENT_KEY_FILE_ENV).filter(|p| !p.trim().is_empty()) {
            return Self::from_file(path.trim()).map(Some);
        }
        match lookup(REDACTION_KEY_ENV).filter(|k| !k.is_empty()) {
            Some(key) => Self::new(key).map(Some),
            None => Ok(None),
        }
    }

    /// The reference of the patient `patient_id` (surrounding whitespace ignored): `hmac-sha256:` followed by the
    /// 64 lower-case hex digits of HMAC-SHA256(key, id).
    pub fn reference(&self, patient_id: &str) -> PatientRef {
        PatientRef(keyed_hash(&self.key, patient_id.trim().as_bytes()))
    }
}

/// The one keyed-hash function of patient references: `hmac-sha256:` + hex(HMAC-SHA256(key, value)).
pub(crate) fn keyed_hash(key: &[u8], value: &[u8]) -> String {
    // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) else {
        unreachable!("HMAC accepts keys of any length")
    };
    mac.update(value);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(PATIENT_REF_PREFIX.len() + 64);
    out.push_str(PATIENT_REF_PREFIX);
    for b in digest {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 0xf)] as char);
    }
    out
}

/// A patient reference: the keyed hash of a patient's identifier (see [`PatientKey::reference`]). Made by a key,
/// or parsed from its written form (which has the shape of a hash), so a builder given a `PatientRef` can never
/// record an identifier in clear.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PatientRef(String);

impl PatientRef {
    /// A reference as written in events (`hmac-sha256:` + 64 lower-case hex digits), e.g. taken from a trail by
    /// someone who does not hold the key; `None` for anything else (an identifier in clear is refused).
    pub fn parse(written: &str) -> Option<Self> {
        is_reference(written.trim()).then(|| Self(written.trim().to_owned()))
    }

    /// The reference as written in events (`patient_ref`).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PatientRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<PatientRef> for String {
    fn from(r: PatientRef) -> Self {
        r.0
    }
}

/// The process-wide key set in code ([`set_patient_key`]).
static KEY: ArcSwapOption<PatientKey> = ArcSwapOption::const_empty();
/// The key of the last `init`'s config (`ObserverConfig::redaction.hmac_key`).
static CONFIG_KEY: ArcSwapOption<PatientKey> = ArcSwapOption::const_empty();
/// The result of the one read of `OBSERVER_HMAC_KEY_FILE`, when no key was set in code.
static ENV_KEY: OnceLock<Result<Option<PatientKey>, String>> = OnceLock::new();

/// Sets (or with `None` clears) the process-wide patient key used by
/// [`AuditBuilder::patient`](crate::audit::AuditBuilder::patient) and `#[audit(patient = ..)]`. Without one, the
/// redaction engine's key of the last `init` is used (`ObserverConfig::redaction.hmac_key`, so one key serves
/// both), else the key of the environment ([`PatientKey::from_env`], read once).
pub fn set_patient_key(key: Option<PatientKey>) {
    KEY.store(key.map(Arc::new));
}

/// The reference of `patient_id` with the process-wide key: `Err` says why there is no usable key.
pub(crate) fn process_reference(patient_id: &str) -> Result<PatientRef, String> {
    if let Some(key) = KEY.load().as_ref().or(CONFIG_KEY.load().as_ref()) {
        return Ok(key.reference(patient_id));
    }
    match ENV_KEY.get_or_init(|| PatientKey::from_env().map_err(|e| e.to_string())) {
        Ok(Some(key)) => Ok(key.reference(patient_id)),
        Ok(None) => Err(format!(
            "no patient key is configured (`set_patient_key`, {PATIENT_KEY_FILE_ENV} or {REDACTION_KEY_ENV})"
        )),
        Err(e) => Err(e.clone()),
    }
}

/// Called by `init`: the redaction engine's HMAC key (if any, and long enough) becomes the patient key when none is
/// set in code.
pub(crate) fn set_config_key(key: Option<&crate::config::Secret>) {
    CONFIG_KEY.store(key.and_then(|k| PatientKey::new(k.expose()).ok()).map(Arc::new));
}

/// Whether `value` has the shape of a patient reference (`hmac-sha256:` + 64 lower-case hex digits).
fn is_reference(value: &str) -> bool {
    value
        .strip_prefix(PATIENT_REF_PREFIX)
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_is_hmac_sha256_hex() {
        // RFC 4231 test case 2: key "Jefe" is too short for a patient key, so use test case 1's shape with a
        // 20-byte key of 0x0b and data "Hi There".
        let key = PatientKey::new([0x0b; 20]).unwrap();
        assert_eq!(
            key.reference("Hi There").as_str(),
            "hmac-sha256:b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(key.reference("  Hi There\n"), key.reference("Hi There"), "whitespace ignored");
        assert_ne!(key.reference("Hi There"), PatientKey::new([0x0c; 20]).unwrap().reference("Hi There"));
        let r = key.reference("x");
        assert_eq!(PatientRef::parse(&format!(" {r}\n")), Some(r.clone()));
        assert_eq!(PatientRef::parse("MRN-1"), None, "an identifier in clear is not a reference");
        assert_eq!(PatientRef::parse(&r.as_str().to_uppercase()), None);
        assert_eq!(PatientRef::parse(&r.as_str()[..70]), None);
    }

    #[test]
    fn process_key_precedence() {
        // The only test of this binary that touches the process-wide keys.
        let (code, config) = (PatientKey::new([1; 16]).unwrap(), crate::config::Secret::new("0123456789abcdef-config"));
        set_config_key(Some(&config));
        let from_config = PatientKey::new("0123456789abcdef-config").unwrap().reference("p");
        assert_eq!(process_reference("p"), Ok(from_config.clone()), "the redaction key of init");
        set_patient_key(Some(code.clone()));
        assert_eq!(process_reference("p"), Ok(code.reference("p")), "a key set in code wins");
        set_patient_key(None);
        assert_eq!(process_reference("p"), Ok(from_config));
        set_config_key(Some(&crate::config::Secret::new("short")));
        set_config_key(None);
    }

    #[test]
    fn short_keys_and_debug() {
        assert!(matches!(PatientKey::new(b"short"), Err(PatientKeyError::TooShort { len: 5 })));
        let key = PatientKey::new(b"0123456789abcdef-secret").unwrap();
        assert_eq!(format!("{key:?}"), "PatientKey(<redacted>)");
    }

    #[test]
    fn key_file_trims_one_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, b"0123456789abcdef\r\n").unwrap();
        let from_file = PatientKey::from_file(&path).unwrap();
        assert_eq!(from_file.reference("p"), PatientKey::new(b"0123456789abcdef").unwrap().reference("p"));
        let missing = PatientKey::from_file(dir.path().join("nope")).unwrap_err();
        assert!(matches!(missing, PatientKeyError::Io { .. }), "{missing}");

        // The environment: the file first, else the redaction key's bytes, else none.
        let file = path.display().to_string();
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())
        };
        let redaction = PatientKey::from_lookup(&env(&[(REDACTION_KEY_ENV, "0123456789abcdef")])).unwrap().unwrap();
        assert_eq!(redaction.reference("p"), from_file.reference("p"), "same bytes, same key");
        let both = move |k: &str| match k {
            PATIENT_KEY_FILE_ENV => Some(file.clone()),
            _ => Some("another key, not this one".to_owned()),
        };
        assert_eq!(PatientKey::from_lookup(&both).unwrap().unwrap().reference("p"), from_file.reference("p"));
        assert!(PatientKey::from_lookup(&env(&[])).unwrap().is_none());
        assert!(PatientKey::from_lookup(&env(&[(REDACTION_KEY_ENV, "short")])).is_err());
    }
}
