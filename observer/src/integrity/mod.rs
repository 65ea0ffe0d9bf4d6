//! Tamper-evident audit trails: the format core (see `docs/INTEGRITY.md` in the repository for the full format).
//!
//! - [`Integrity`] is the `integrity` object every audit event carries: chain id, gap-free `seq`, `prev_hash`,
//!   `hash`. [`event_hash`] is SHA-256 over the [canonical form](canonical_json) (RFC 8785 with exact integers) of
//!   the whole event with `integrity.hash` left out.
//! - [`MerkleTree`] / [`merkle_root`] / [`inclusion_proof`] / [`verify_inclusion`]: RFC 6962 trees over a chain's
//!   event hashes.
//! - [`NoteSigner`] / [`NoteVerifier`] / [`open_note`]: C2SP signed notes with Ed25519 keys, key strings as Go's
//!   `golang.org/x/mod/sumdb/note` writes them.
//! - [`Checkpoint`]: a signed checkpoint line in the audit stream; [`InclusionProof`]: one event against one.

mod canonical;
mod canonical_ser;
mod chain;
mod checkpoint;
mod merkle;
mod note;
mod producer;
mod proof;
mod state;
mod verify;

pub use canonical::{canonical_json, parse_strict, write_canonical};
pub use chain::{
    append_integrity, canonical_event, event_hash, read_integrity, validate_chain_id, verify_event, ChainStart, Digest,
    Integrity, INTEGRITY_FIELD,
};
pub use checkpoint::{
    checkpoint_body, checkpoint_origin, Checkpoint, VerifiedCheckpoint, CHECKPOINT_RECORD_TYPE, ORIGIN_PREFIX,
};
pub use merkle::{inclusion_proof, leaf_hash, merkle_root, node_hash, verify_inclusion, MerkleTree};
pub use note::{key_id, open_note, NoteError, NoteSigner, NoteVerifier, OpenedNote};
pub(crate) use producer::Chain;
pub use proof::{InclusionProof, INCLUSION_PROOF_TYPE};
pub use verify::{
    examine_line, ChainReport, Examined, Finding, FindingKind, SourceId, TrailReport, TrailVerifier, FALLBACK_PREFIX,
};

/// Why an event, a checkpoint or a proof did not verify, or could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IntegrityError {
    /// Not valid JSON (or an object with a duplicate key).
    #[error("invalid JSON: {0}")]
    Json(String),
    /// An event must be a JSON object.
    #[error("not a JSON object")]
    NotAnObject,
    /// The `integrity` object (or a member of it) is missing or malformed.
    #[error("missing or malformed {0}")]
    MissingIntegrity(String),
    /// The recomputed hash is not the recorded `integrity.hash`: the event was edited.
    #[error("hash mismatch: recorded {recorded}, computed {computed}")]
    HashMismatch {
        /// `integrity.hash` as recorded in the line.
        recorded: Digest,
        /// The hash of the line's canonical form.
        computed: Digest,
    },
    /// A hash is not 64 lowercase hex digits.
    #[error("bad hash: {0}")]
    BadHash(String),
    /// A chain id has characters outside `[A-Za-z0-9._-]` or is empty or longer than 128.
    #[error("bad chain id {0:?}: 1 to 128 characters of A-Z a-z 0-9 . _ -")]
    BadChainId(String),
    /// A key or signed note problem.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// A checkpoint record is malformed or does not match its signed text.
    #[error("bad checkpoint: {0}")]
    Checkpoint(String),
    /// An inclusion proof is malformed or does not verify.
    #[error("inclusion proof: {0}")]
    Proof(String),
}
