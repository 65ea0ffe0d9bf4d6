//! What happens to a finding: [`Action::Mask`] (`[SSN]`), [`Action::Hash`] (`[SSN:hmac:…]`, a keyed hash that
//! joins equal values across events without revealing them) or [`Action::Drop`] (removed).

use std::fmt::Write as _;
use std::str::FromStr;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::policy::Kind;
use crate::config::secret::Secret;
use crate::error::ConfigurationError;

/// What replaces a value a detector or key rule found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Action {
    /// Replaced by its kind in brackets: `[SSN]`, `[EMAIL]`. (Default.)
    #[default]
    Mask,
    /// Replaced by its kind and an HMAC-SHA256 of the value under
    /// [`RedactionConfig::hmac_key`](crate::RedactionConfig::hmac_key), the first 64 bits in hex:
    /// `[SSN:hmac:1a2b3c4d5e6f7a8b]`. Equal values (after normalising: digits only for numbers, lower case for
    /// e-mail) give equal tags, so events about the same patient join without showing the value; without the
    /// key nobody can test a guess. Needs the key (the config is refused without one).
    Hash,
    /// Removed: from text, the value is cut out; a JSON field named by a key rule is left out.
    Drop,
}

impl FromStr for Action {
    type Err = ConfigurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "mask" => Ok(Self::Mask),
            "hash" | "hmac" => Ok(Self::Hash),
            "drop" => Ok(Self::Drop),
            other => Err(ConfigurationError::new("redaction.action", format!("`{other}` is not mask, hash or drop"))),
        }
    }
}

/// The HMAC key, ready to clone per value.
#[derive(Clone)]
pub(crate) struct Hasher(Hmac<Sha256>);

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hasher([REDACTED])")
    }
}

impl Hasher {
    pub(crate) fn new(key: &Secret) -> Result<Self, ConfigurationError> {
        if key.expose().len() < 16 {
            return Err(ConfigurationError::new("redaction.hmac_key", "must be at least 16 bytes"));
        }
        Hmac::<Sha256>::new_from_slice(key.expose().as_bytes())
            .map(Self)
            .map_err(|_| ConfigurationError::new("redaction.hmac_key", "unusable as an HMAC key"))
    }

    /// The first 64 bits of HMAC-SHA256(key, `LABEL:normalised value`), in hex.
    fn tag(&self, kind: &Kind, value: &str) -> String {
        let mut mac = self.0.clone();
        mac.update(kind.label().as_bytes());
        mac.update(b":");
        mac.update(normalise(kind, value).as_bytes());
        let out = mac.finalize().into_bytes();
        let mut hex = String::with_capacity(16);
        for b in &out[..8] {
            let _ = write!(hex, "{b:02x}");
        }
        hex
    }
}

/// The form of a value that is hashed: the same identifier written differently gives the same tag.
fn normalise(kind: &Kind, value: &str) -> String {
    match kind {
        Kind::Ssn | Kind::Phone | Kind::CreditCard | Kind::Npi | Kind::Zip => {
            value.chars().filter(char::is_ascii_digit).collect()
        }
        Kind::Email | Kind::Url | Kind::Ip => value.trim().to_lowercase(),
        Kind::Iban | Kind::Mbi | Kind::Dea | Kind::Mrn | Kind::HealthPlan | Kind::DeviceSerial => {
            value.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase()).collect()
        }
        Kind::Name => value.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase(),
        _ => value.to_owned(),
    }
}

/// Appends what replaces `value` of `kind` under `action` to `out`.
pub(crate) fn render(out: &mut String, action: Action, kind: &Kind, value: &str, hasher: Option<&Hasher>) {
    match (action, hasher) {
        (Action::Drop, _) => {}
        (Action::Hash, Some(h)) => {
            out.push('[');
            out.push_str(kind.label());
            out.push_str(":hmac:");
            out.push_str(&h.tag(kind, value));
            out.push(']');
        }
        // Hash without a key cannot happen (the config is refused); mask rather than pass through.
        (Action::Mask | Action::Hash, _) => {
            out.push('[');
            out.push_str(kind.label());
            out.push(']');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_tags_join_equal_values_and_depend_on_the_key() {
        let h = Hasher::new(&Secret::new("0123456789abcdef-key")).unwrap();
        let other = Hasher::new(&Secret::new("another key, 16+ bytes")).unwrap();
        let (mut a, mut b, mut c, mut d) = (String::new(), String::new(), String::new(), String::new());
        render(&mut a, Action::Hash, &Kind::Ssn, "123-45-6789", Some(&h));
        render(&mut b, Action::Hash, &Kind::Ssn, "123 45 6789", Some(&h));
        render(&mut c, Action::Hash, &Kind::Ssn, "123-45-6780", Some(&h));
        render(&mut d, Action::Hash, &Kind::Ssn, "123-45-6789", Some(&other));
        assert!(a.starts_with("[SSN:hmac:") && a.len() == "[SSN:hmac:]".len() + 16, "{a}");
        assert_eq!(a, b, "the same SSN written differently joins");
        assert_ne!(a, c);
        assert_ne!(a, d, "the tag depends on the key");
        assert!(Hasher::new(&Secret::new("short")).is_err());
        assert_eq!(format!("{h:?}"), "Hasher([REDACTED])");
    }
}
