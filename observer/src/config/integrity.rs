//! [`IntegrityConfig`]: the tamper-evident chain of the audit trail (see `observer::integrity`).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::env::Env;
use super::Secret;
use crate::error::ConfigurationError;

/// The hash chain and the signed checkpoints of the audit trail (`observer::integrity`; the format is in
/// `docs/INTEGRITY.md`).
///
/// When `enabled`, the dispatcher gives every audit event an `integrity` object (chain id, gap-free sequence
/// number, previous hash, own hash) and writes a checkpoint record (the RFC 6962 Merkle root of the chain's event
/// hashes, in a C2SP signed note) every `checkpoint_every` events, every `checkpoint_interval`, on every
/// [`flush`](crate::flush) and at shutdown, into every sink. Off by default (see the README's "Tamper-evident
/// trail" section on why).
///
/// ```
/// use std::time::Duration;
/// use observer::{IntegrityConfig, ObserverConfig, SigningKeySource};
///
/// let config = ObserverConfig {
///     integrity: IntegrityConfig {
///         enabled: true,
///         signing_key: Some(SigningKeySource::File("/run/secrets/audit-signing-key".into())),
///         state_dir: Some("/var/lib/my-service/audit-chain".into()),
///         checkpoint_interval: Duration::from_secs(30),
///         ..Default::default()
///     },
///     ..Default::default()
/// };
/// assert!(config.integrity.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrityConfig {
    /// Whether events are chained and checkpoints written. Default `false`. Env `OBSERVER_INTEGRITY`
    /// (`true`/`false`).
    pub enabled: bool,
    /// A checkpoint after this many events since the previous one. Default 1,000 (at least 1).
    /// Env `OBSERVER_INTEGRITY_CHECKPOINT_EVERY`.
    pub checkpoint_every: u64,
    /// A checkpoint when this long has passed since the previous one and events came meanwhile. Default 30 s
    /// (at least 1 ms): the longest time the tail of the trail stays unsigned (truncation of an unsigned tail is
    /// not detectable). Env `OBSERVER_INTEGRITY_CHECKPOINT_INTERVAL_MS`.
    pub checkpoint_interval: Duration,
    /// The Ed25519 key that signs the checkpoints. `None` (default): checkpoints are written unsigned (their
    /// Merkle root still allows inclusion proofs and shows edits, but anyone who rewrites the trail can rewrite
    /// them too, and truncation is not provable); reported once at start. Env `OBSERVER_INTEGRITY_KEY_FILE` (a
    /// file holding the key string) or `OBSERVER_INTEGRITY_KEY` (the key string itself).
    pub signing_key: Option<SigningKeySource>,
    /// A directory where the chain's head is kept so that the chain continues across restarts (after a clean
    /// shutdown). `None` (default): every start begins a new chain, which says so in its first event.
    /// Created `0700` (files `0600`, see [`ObserverConfig::file_permissions`](super::ObserverConfig)); one
    /// process at a time (a lock file). Env `OBSERVER_INTEGRITY_STATE_DIR`.
    pub state_dir: Option<PathBuf>,
}

impl Default for IntegrityConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            checkpoint_every: 1000,
            checkpoint_interval: Duration::from_secs(30),
            signing_key: None,
            state_dir: None,
        }
    }
}

/// Where the checkpoint signing key comes from. The key is the string `observer-trail keygen` prints (a C2SP
/// signed-note private key, `PRIVATE+KEY+<name>+<key id>+<base64>`); its name is the signer name on every
/// checkpoint.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SigningKeySource {
    /// A file holding the key string (surrounding whitespace ignored). It should be readable by the service's user
    /// only.
    File(PathBuf),
    /// The key string itself (e.g. from a secret store). Never shown by `Debug`.
    Value(Secret),
}

impl fmt::Debug for SigningKeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Value(_) => f.write_str("Value([REDACTED])"),
        }
    }
}

impl IntegrityConfig {
    /// The defaults with every environment override applied.
    ///
    /// # Errors
    /// As [`apply_env`](Self::apply_env).
    pub fn from_env() -> Result<Self, ConfigurationError> {
        Self::default().apply_env()
    }

    /// Applies the environment overrides:
    ///
    /// | variable | field |
    /// |---|---|
    /// | `OBSERVER_INTEGRITY` | `enabled` (`true`/`false`) |
    /// | `OBSERVER_INTEGRITY_CHECKPOINT_EVERY` | `checkpoint_every` |
    /// | `OBSERVER_INTEGRITY_CHECKPOINT_INTERVAL_MS` | `checkpoint_interval` |
    /// | `OBSERVER_INTEGRITY_KEY_FILE` | `signing_key` = [`SigningKeySource::File`] |
    /// | `OBSERVER_INTEGRITY_KEY` | `signing_key` = [`SigningKeySource::Value`] (wins over `_KEY_FILE`) |
    /// | `OBSERVER_INTEGRITY_STATE_DIR` | `state_dir` |
    ///
    /// # Errors
    /// A [`ConfigurationError`] naming the variable whose value does not parse.
    pub fn apply_env(self) -> Result<Self, ConfigurationError> {
        self.apply_env_from(&super::env::process)
    }

    /// [`apply_env`](Self::apply_env) with a custom variable lookup.
    ///
    /// # Errors
    /// As [`apply_env`](Self::apply_env).
    pub fn apply_env_from(mut self, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigurationError> {
        let env = Env::new(lookup);
        if let Some(v) = env.bool("OBSERVER_INTEGRITY")? {
            self.enabled = v;
        }
        if let Some(n) = env.parse("OBSERVER_INTEGRITY_CHECKPOINT_EVERY")? {
            self.checkpoint_every = n;
        }
        if let Some(d) = env.millis("OBSERVER_INTEGRITY_CHECKPOINT_INTERVAL_MS")? {
            self.checkpoint_interval = d;
        }
        if let Some(path) = env.path("OBSERVER_INTEGRITY_KEY_FILE") {
            self.signing_key = Some(SigningKeySource::File(path));
        }
        if let Some(key) = env.string("OBSERVER_INTEGRITY_KEY") {
            self.signing_key = Some(SigningKeySource::Value(Secret::new(key)));
        }
        if let Some(dir) = env.path("OBSERVER_INTEGRITY_STATE_DIR") {
            self.state_dir = Some(dir);
        }
        Ok(self)
    }

    /// Checks the fields (not the key itself: it is read when the pipeline starts); errors name
    /// `integrity.<field>`.
    pub fn validate(&self) -> Result<(), ConfigurationError> {
        if self.checkpoint_every == 0 {
            return Err(ConfigurationError::new("integrity.checkpoint_every", "must be at least 1"));
        }
        if self.checkpoint_interval < Duration::from_millis(1) {
            return Err(ConfigurationError::new("integrity.checkpoint_interval", "must be at least 1 ms"));
        }
        if let Some(dir) = &self.state_dir {
            if dir.as_os_str().is_empty() || dir.is_file() {
                return Err(ConfigurationError::new(
                    "integrity.state_dir",
                    format!("`{}` is not a directory path", dir.display()),
                ));
            }
        }
        match &self.signing_key {
            Some(SigningKeySource::File(path)) if path.as_os_str().is_empty() => {
                Err(ConfigurationError::new("integrity.signing_key", "the key file path is empty"))
            }
            Some(SigningKeySource::Value(v)) if v.expose().trim().is_empty() => {
                Err(ConfigurationError::new("integrity.signing_key", "the key string is empty"))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::env::tests::table;
    use super::*;

    #[test]
    fn env_overrides_and_errors_name_the_variable() {
        let c = IntegrityConfig::default()
            .apply_env_from(&table(&[
                ("OBSERVER_INTEGRITY", "on"),
                ("OBSERVER_INTEGRITY_CHECKPOINT_EVERY", "50"),
                ("OBSERVER_INTEGRITY_CHECKPOINT_INTERVAL_MS", "250"),
                ("OBSERVER_INTEGRITY_KEY_FILE", "/k"),
                ("OBSERVER_INTEGRITY_STATE_DIR", "/s"),
            ]))
            .unwrap();
        assert!(c.enabled);
        assert_eq!(c.checkpoint_every, 50);
        assert_eq!(c.checkpoint_interval, Duration::from_millis(250));
        assert_eq!(c.signing_key, Some(SigningKeySource::File("/k".into())));
        assert_eq!(c.state_dir, Some(PathBuf::from("/s")));
        c.validate().unwrap();
        let c = IntegrityConfig::default()
            .apply_env_from(&table(&[
                ("OBSERVER_INTEGRITY_KEY_FILE", "/k"),
                ("OBSERVER_INTEGRITY_KEY", "PRIVATE+KEY+x"),
            ]))
            .unwrap();
        assert_eq!(c.signing_key, Some(SigningKeySource::Value(Secret::new("PRIVATE+KEY+x"))), "the value wins");
        assert!(!format!("{c:?}").contains("PRIVATE"), "the key never shows in Debug: {c:?}");
        let err = IntegrityConfig::default().apply_env_from(&table(&[("OBSERVER_INTEGRITY", "maybe")])).unwrap_err();
        assert_eq!(err.field, "OBSERVER_INTEGRITY");
        let err = IntegrityConfig::default()
            .apply_env_from(&table(&[("OBSERVER_INTEGRITY_CHECKPOINT_EVERY", "-1")]))
            .unwrap_err();
        assert_eq!(err.field, "OBSERVER_INTEGRITY_CHECKPOINT_EVERY");
        let err = IntegrityConfig { checkpoint_every: 0, ..Default::default() }.validate().unwrap_err();
        assert_eq!(err.field, "integrity.checkpoint_every");
        let err = IntegrityConfig { checkpoint_interval: Duration::ZERO, ..Default::default() }.validate().unwrap_err();
        assert_eq!(err.field, "integrity.checkpoint_interval");
        let err =
            IntegrityConfig { signing_key: Some(SigningKeySource::Value(Secret::new(" "))), ..Default::default() }
                .validate()
                .unwrap_err();
        assert_eq!(err.field, "integrity.signing_key");
    }
}
