//! The producer's side of the trail: the hash chain the dispatcher thread runs over the events of its pipeline, in
//! queue order, and the checkpoints it writes into the same stream.
//!
//! The dispatcher calls [`Chain::seal`] once per serialised event (after redaction and serialisation, before the
//! sinks and the other output formats): the event gets its `integrity` object (chain id, sequence number, previous
//! hash, own hash) appended to the very bytes every sink, the stderr fallback and the Kafka spool carry. It calls
//! [`Chain::checkpoint`] when one is [due](Chain::due) (every `checkpoint_every` events or `checkpoint_interval`),
//! on every flush and at shutdown, and [`Chain::close`] when the pipeline stops.

use std::path::Path;
use std::time::{Duration, Instant};

use super::canonical_ser;
use super::state::{Found, Head, StateDir, StateError};
use super::{ChainStart, Checkpoint, Digest, Integrity, MerkleTree, NoteSigner, INTEGRITY_FIELD};
use crate::audit::AuditEvent;
use crate::config::{FilePermissions, IntegrityConfig, ObserverConfig, SigningKeySource};
use crate::error::{ConfigurationError, ExporterError, ObserverError};

/// The chain of one pipeline. Lives on its dispatcher thread.
#[derive(Debug)]
pub(crate) struct Chain {
    chain_id: String,
    /// The last event's hash.
    prev: Digest,
    /// The Merkle tree over the chain's event hashes; its size is the last sequence number.
    tree: MerkleTree,
    /// Set until the first event this process writes to the chain.
    start: Option<ChainStart>,
    signer: Option<NoteSigner>,
    every: u64,
    interval: Duration,
    /// Events since the last checkpoint.
    unsigned: u64,
    /// When the last checkpoint was written (or the chain opened).
    last_checkpoint: Instant,
    state: Option<StateDir>,
    /// The canonical `integrity` object being written.
    scratch: Vec<u8>,
    /// The canonical writer's buffers, kept from one event to the next.
    objects: canonical_ser::Scratch,
}

impl Chain {
    /// Opens the chain `config.integrity` describes: reads the signing key, takes the state directory (continuing
    /// the chain left there by a clean shutdown) or starts a new chain. Says why whenever a new chain starts
    /// although a state directory is configured, and when checkpoints will be unsigned.
    ///
    /// # Errors
    /// [`ConfigurationError`] (field `integrity.signing_key`) when the key cannot be read or is not a key;
    /// [`ExporterError::ChainStateLocked`] when another process holds the state directory;
    /// [`ExporterError::Io`] when the state directory cannot be created or written.
    pub(crate) fn open(config: &ObserverConfig) -> Result<Self, ObserverError> {
        let integrity = &config.integrity;
        let signer = load_key(integrity)?;
        if signer.is_none() {
            crate::diag::report_loud(
                "integrity-unsigned",
                format_args!(
                    "audit trail integrity is on without a signing key: checkpoints are unsigned, so truncating the \
                     trail or rewriting it with new hashes cannot be proven (set integrity.signing_key or \
                     OBSERVER_INTEGRITY_KEY_FILE)"
                ),
            );
        }
        let (state, found) = match &integrity.state_dir {
            Some(dir) => {
                let (state, found) = open_state(dir, config.file_permissions)?;
                (Some(state), found)
            }
            None => (None, Found::None(String::new())),
        };
        let (head, start) = match found {
            Found::Clean(head) => (head, ChainStart::Resumed),
            Found::None(why) => {
                let head = Head {
                    chain_id: new_chain_id(&config.service_name),
                    last_hash: Digest::GENESIS,
                    tree: MerkleTree::new(),
                };
                if !why.is_empty() {
                    crate::diag::report_loud(
                        "integrity-new-chain",
                        format_args!("starting a new audit chain {}: {why}", head.chain_id),
                    );
                }
                (head, ChainStart::New)
            }
        };
        if let Some(state) = &state {
            // Taken over: until a clean shutdown says otherwise, a restart must not continue from this head.
            state.save(&head, false).map_err(state_error)?;
        }
        Ok(Self {
            chain_id: head.chain_id,
            prev: head.last_hash,
            tree: head.tree,
            start: Some(start),
            signer,
            every: integrity.checkpoint_every,
            interval: integrity.checkpoint_interval,
            unsigned: 0,
            last_checkpoint: Instant::now(),
            state,
            scratch: Vec::with_capacity(256),
            objects: canonical_ser::Scratch::default(),
        })
    }

    /// The chain's id.
    #[cfg(test)]
    pub(crate) fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// The chain id, sequence number and hash of the last event written (for the other output formats).
    pub(crate) fn last(&self) -> (&str, u64, Digest) {
        (&self.chain_id, self.tree.size(), self.prev)
    }

    /// Writes `event` as its JSON line (no newline) with its `integrity` object to the end of `buf`, and adds it to
    /// the chain. The line is in canonical form (members sorted, RFC 8785 numbers): what is hashed is the line
    /// without `integrity.hash`. On an error `buf` and the chain are left as they were.
    pub(crate) fn write(&mut self, event: &AuditEvent, buf: &mut Vec<u8>) -> Result<(), ExporterError> {
        let start = buf.len();
        let integrity = Integrity {
            chain_id: self.chain_id.clone(),
            seq: self.tree.size() + 1,
            prev_hash: self.prev,
            hash: None,
            start: self.start,
        };
        self.scratch.clear();
        integrity.canonical_without_hash(&mut self.scratch);
        let at = match canonical_ser::write_event(event, (INTEGRITY_FIELD, &self.scratch), buf, &mut self.objects) {
            Ok(at) => at,
            Err(e) => {
                buf.truncate(start);
                return Err(ExporterError::Io {
                    what: format!("chaining audit event {}", event.event_id),
                    source: std::io::Error::other(e),
                });
            }
        };
        let hash = Digest::sha256(&buf[start..]);
        // `"hash":"<hex>",` after `{"chain_id":"<id>",` (chain ids need no escaping): members stay in order.
        let pos = at + br#"{"chain_id":""#.len() + self.chain_id.len() + br#"","#.len();
        debug_assert_eq!(&buf[at..pos], format!(r#"{{"chain_id":"{}","#, self.chain_id).as_bytes());
        let mut member = [0u8; 74];
        member[..8].copy_from_slice(br#""hash":""#);
        member[8..72].copy_from_slice(hash.to_hex().as_bytes());
        member[72..].copy_from_slice(br#"","#);
        buf.splice(pos..pos, member);
        self.tree.push(&hash);
        self.prev = hash;
        self.start = None;
        self.unsigned += 1;
        Ok(())
    }

    /// Whether a checkpoint is due now: `checkpoint_every` events since the last one, or `checkpoint_interval`
    /// passed with events since the last one.
    pub(crate) fn due(&self) -> bool {
        self.unsigned >= self.every || (self.unsigned > 0 && self.last_checkpoint.elapsed() >= self.interval)
    }

    /// How long until a checkpoint falls due by time (`None`: no event waits for one).
    pub(crate) fn due_in(&self) -> Option<Duration> {
        (self.unsigned > 0).then(|| self.interval.saturating_sub(self.last_checkpoint.elapsed()))
    }

    /// A checkpoint over every event chained so far, its JSON line appended to `buf`; `None` when no event came
    /// since the last one (or, never for a valid chain id, signing failed: reported, and tried again later).
    pub(crate) fn checkpoint(&mut self, buf: &mut Vec<u8>) -> Option<Checkpoint> {
        if self.unsigned == 0 {
            return None;
        }
        let timestamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let root = self.tree.root();
        let size = self.tree.size();
        let checkpoint = match &self.signer {
            Some(signer) => Checkpoint::sign(&self.chain_id, size, root, &timestamp, signer),
            None => Checkpoint::unsigned(&self.chain_id, size, root, &timestamp),
        };
        self.last_checkpoint = Instant::now();
        match checkpoint {
            Ok(checkpoint) => {
                buf.extend_from_slice(&checkpoint.to_json_line());
                self.unsigned = 0;
                Some(checkpoint)
            }
            Err(e) => {
                crate::diag::report!(ERROR, "checkpoint-failed", "audit chain {}: no checkpoint: {e}", self.chain_id);
                None
            }
        }
    }

    /// At shutdown, after the last checkpoint: keeps the head in the state directory, marked clean, so that the
    /// next start continues the chain.
    pub(crate) fn close(&mut self) {
        let Some(state) = self.state.take() else { return };
        let head = Head { chain_id: self.chain_id.clone(), last_hash: self.prev, tree: self.tree.clone() };
        if let Err(e) = state.save(&head, true) {
            crate::diag::report_loud(
                "integrity-state",
                format_args!("{}; the next start begins a new audit chain", state_error(e)),
            );
        }
    }
}

fn open_state(dir: &Path, perms: FilePermissions) -> Result<(StateDir, Found), ExporterError> {
    StateDir::open(dir, perms).map_err(state_error)
}

fn state_error(e: StateError) -> ExporterError {
    match e {
        StateError::Locked { dir, owner } => ExporterError::ChainStateLocked { dir, owner },
        StateError::Io { what, source } => ExporterError::Io { what, source },
    }
}

/// A new chain id: the service name (its characters outside `[A-Za-z0-9._-]` replaced by `_`, at most 64) and a
/// UUIDv7, e.g. `billing.01936f7e-…`: unique per process instance, and the checkpoints' origin names the service.
fn new_chain_id(service: &str) -> String {
    let mut id: String = service
        .chars()
        .take(64)
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' })
        .collect();
    if !id.is_empty() {
        id.push('.');
    }
    id.push_str(&uuid::Uuid::now_v7().to_string());
    id
}

/// Reads the signing key `config` names; never puts the key into an error.
fn load_key(config: &IntegrityConfig) -> Result<Option<NoteSigner>, ConfigurationError> {
    let field = "integrity.signing_key";
    let text = match &config.signing_key {
        None => return Ok(None),
        Some(SigningKeySource::Value(secret)) => secret.expose().to_owned(),
        Some(SigningKeySource::File(path)) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigurationError::new(field, format!("cannot read the key file {}: {e}", path.display()))
            })?;
            warn_if_readable_by_others(path);
            text
        }
    };
    NoteSigner::from_private_key(text.trim()).map(Some).map_err(|e| {
        ConfigurationError::new(field, format!("not a signing key ({e}); generate one with `observer-trail keygen`"))
    })
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            crate::diag::report_loud(
                "integrity-key-permissions",
                format_args!(
                    "the audit signing key file {} is accessible to other users (mode {:o}); make it 0600",
                    path.display(),
                    meta.permissions().mode() & 0o777
                ),
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrity::{checkpoint_body, merkle_root, parse_strict, verify_event};
    use crate::{AuditAction, AuditEventType, ResourceType, Secret};

    fn config(dir: Option<&Path>, key: Option<&NoteSigner>) -> ObserverConfig {
        ObserverConfig {
            service_name: "unit test/svc".into(),
            integrity: IntegrityConfig {
                enabled: true,
                checkpoint_every: 3,
                signing_key: key.map(|k| SigningKeySource::Value(Secret::new(k.private_key_string()))),
                state_dir: dir.map(Path::to_owned),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn event(i: usize) -> AuditEvent {
        AuditEvent::new(AuditEventType::DataAccess, AuditAction::Read, ResourceType::Document, format!("d{i}"))
    }

    /// Seals `n` events, one line each; returns the lines.
    fn seal(chain: &mut Chain, n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| {
                let e = event(i);
                let mut buf = b"{}".to_vec();
                chain.write(&e, &mut buf).unwrap();
                assert!(buf.starts_with(b"{}"), "appended");
                buf.split_off(2)
            })
            .collect()
    }

    #[test]
    fn sealed_events_verify_link_and_a_signed_checkpoint_covers_them() {
        let key = NoteSigner::generate("unit-key").unwrap();
        let mut chain = Chain::open(&config(None, Some(&key))).unwrap();
        assert!(chain.chain_id().starts_with("unit_test_svc."), "{}", chain.chain_id());
        let lines = seal(&mut chain, 3);
        let mut prev = Digest::GENESIS;
        let mut hashes = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let (integrity, hash) = verify_event(&parse_strict(line).unwrap()).unwrap();
            assert_eq!(integrity.seq, i as u64 + 1);
            assert_eq!(integrity.prev_hash, prev);
            assert_eq!(integrity.start, (i == 0).then_some(ChainStart::New));
            assert_eq!(integrity.chain_id, chain.chain_id());
            prev = hash;
            hashes.push(hash);
        }
        assert!(chain.due(), "checkpoint_every = 3");
        let mut buf = Vec::new();
        let cp = chain.checkpoint(&mut buf).unwrap();
        assert_eq!(buf, cp.to_json_line());
        let verified = cp.verify(&[key.verifier()]).unwrap();
        assert_eq!((verified.size, verified.root), (3, merkle_root(&hashes)));
        assert!(!chain.due());
        assert!(chain.checkpoint(&mut buf).is_none(), "nothing new to cover");
        assert_eq!(chain.due_in(), None);
        seal(&mut chain, 1);
        assert!(chain.due_in().is_some_and(|d| d <= Duration::from_secs(30)));
    }

    #[test]
    fn without_a_key_checkpoints_are_unsigned_and_a_bad_key_is_a_configuration_error() {
        let mut chain = Chain::open(&config(None, None)).unwrap();
        seal(&mut chain, 2);
        let cp = chain.checkpoint(&mut Vec::new()).unwrap();
        assert_eq!(cp.note, checkpoint_body(&cp.chain_id, 2, &cp.root, &cp.timestamp), "the text, no signature");
        let mut bad = config(None, None);
        bad.integrity.signing_key = Some(SigningKeySource::Value(Secret::new("PRIVATE+KEY+nope+00+AAAA")));
        let err = Chain::open(&bad).unwrap_err().to_string();
        assert!(err.contains("integrity.signing_key") && !err.contains("AAAA"), "{err}");
        bad.integrity.signing_key = Some(SigningKeySource::File("/nonexistent/key".into()));
        let err = Chain::open(&bad).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/key"), "{err}");
    }

    #[test]
    fn a_clean_close_is_resumed_and_an_unclean_one_starts_a_new_chain() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = Chain::open(&config(Some(dir.path()), None)).unwrap();
        let lines = seal(&mut first, 4);
        let (_, last_hash) = verify_event(&parse_strict(&lines[3]).unwrap()).unwrap();
        let err = Chain::open(&config(Some(dir.path()), None)).unwrap_err();
        assert!(matches!(err, ObserverError::Exporter(ExporterError::ChainStateLocked { .. })), "{err}");
        first.checkpoint(&mut Vec::new()).unwrap();
        first.close();
        let id = first.chain_id().to_owned();
        drop(first);

        let mut second = Chain::open(&config(Some(dir.path()), None)).unwrap();
        assert_eq!(second.chain_id(), id);
        let (integrity, _) = verify_event(&parse_strict(&seal(&mut second, 1)[0]).unwrap()).unwrap();
        assert_eq!((integrity.seq, integrity.prev_hash, integrity.start), (5, last_hash, Some(ChainStart::Resumed)));
        drop(second); // no close: as after a crash

        let mut third = Chain::open(&config(Some(dir.path()), None)).unwrap();
        assert_ne!(third.chain_id(), id);
        let (integrity, _) = verify_event(&parse_strict(&seal(&mut third, 1)[0]).unwrap()).unwrap();
        assert_eq!((integrity.seq, integrity.prev_hash, integrity.start), (1, Digest::GENESIS, Some(ChainStart::New)));
    }
}
