//! Inclusion proofs: one event against a signed checkpoint, checkable without the chain's other events.

use serde::{Deserialize, Serialize};

use super::checkpoint::{Checkpoint, VerifiedCheckpoint};
use super::merkle::{inclusion_proof, verify_inclusion};
use super::note::NoteVerifier;
use super::{verify_event, Digest, IntegrityError};

/// The value of `proof_type` of an inclusion proof.
pub const INCLUSION_PROOF_TYPE: &str = "observer-audit-inclusion-v1";

/// An inclusion proof (JSON): the event `seq` of chain `chain_id` with hash `event_hash` is leaf `seq - 1` of the
/// tree of `checkpoint.size` leaves whose root the checkpoint signs; `path` is the RFC 6962 audit path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionProof {
    /// Always [`INCLUSION_PROOF_TYPE`].
    pub proof_type: String,
    /// The event's chain.
    pub chain_id: String,
    /// The event's `seq` (leaf index + 1).
    pub seq: u64,
    /// The event's `event_id`.
    pub event_id: String,
    /// The event's hash (its `integrity.hash`).
    pub event_hash: Digest,
    /// The audit path, from the leaf's sibling up.
    pub path: Vec<Digest>,
    /// The checkpoint line the proof is against.
    pub checkpoint: Checkpoint,
}

impl InclusionProof {
    /// Builds the proof of the event `seq` from the hashes of the chain's events `1..=checkpoint.size` (in `seq`
    /// order). The checkpoint's root is not checked here.
    pub fn build(
        event_id: &str,
        seq: u64,
        event_hashes: &[Digest],
        checkpoint: Checkpoint,
    ) -> Result<InclusionProof, IntegrityError> {
        let size = usize::try_from(checkpoint.size).map_err(|_| IntegrityError::Proof("size too large".into()))?;
        if seq == 0 || seq > checkpoint.size || event_hashes.len() < size {
            return Err(IntegrityError::Proof(format!(
                "event seq {seq} is not covered by the checkpoint of size {}",
                checkpoint.size
            )));
        }
        let path = inclusion_proof(&event_hashes[..size], seq - 1).expect("index checked");
        Ok(InclusionProof {
            proof_type: INCLUSION_PROOF_TYPE.into(),
            chain_id: checkpoint.chain_id.clone(),
            seq,
            event_id: event_id.into(),
            event_hash: event_hashes[(seq - 1) as usize],
            path,
            checkpoint,
        })
    }

    /// Checks the proof with only the event's own line (`event`, parsed): the event's hash is recomputed and must be
    /// the proof's; chain and seq must match; the checkpoint must verify against `known`; the path must lead from
    /// the event's hash to the signed root.
    pub fn check(
        &self,
        event: &serde_json::Value,
        known: &[NoteVerifier],
    ) -> Result<VerifiedCheckpoint, IntegrityError> {
        if self.proof_type != INCLUSION_PROOF_TYPE {
            return Err(IntegrityError::Proof(format!("unknown proof_type {:?}", self.proof_type)));
        }
        let (integrity, hash) = verify_event(event)?;
        if integrity.chain_id != self.chain_id || integrity.seq != self.seq || hash != self.event_hash {
            return Err(IntegrityError::Proof(format!(
                "the event (chain {}, seq {}) is not the one the proof is for (chain {}, seq {})",
                integrity.chain_id, integrity.seq, self.chain_id, self.seq
            )));
        }
        let event_id = event.get("event_id").and_then(|v| v.as_str()).unwrap_or_default();
        if event_id != self.event_id {
            return Err(IntegrityError::Proof("the event's event_id is not the proof's".into()));
        }
        if self.checkpoint.chain_id != self.chain_id {
            return Err(IntegrityError::Proof("the checkpoint is of another chain".into()));
        }
        let verified = self.checkpoint.verify(known)?;
        if !verify_inclusion(&hash, self.seq - 1, verified.size, &self.path, &verified.root) {
            return Err(IntegrityError::Proof(format!(
                "the path does not lead from the event (seq {}) to the root of the checkpoint of size {}",
                self.seq, verified.size
            )));
        }
        Ok(verified)
    }
}
