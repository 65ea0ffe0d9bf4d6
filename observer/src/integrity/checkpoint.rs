//! Signed checkpoints: a C2SP signed note over `origin\nsize\nbase64(root)\n` (plus a `timestamp` extension line),
//! carried as a JSON line of its own in the audit stream.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::note::{open_note, NoteSigner, NoteVerifier};
use super::{validate_chain_id, Digest, IntegrityError};

/// The value of `record_type` of a checkpoint line.
pub const CHECKPOINT_RECORD_TYPE: &str = "checkpoint";
/// The prefix of a checkpoint's origin line; the chain id follows.
pub const ORIGIN_PREFIX: &str = "observer-audit/";

/// The origin line of a chain's checkpoints: `observer-audit/<chain_id>`.
pub fn checkpoint_origin(chain_id: &str) -> String {
    format!("{ORIGIN_PREFIX}{chain_id}")
}

/// The signed text of a checkpoint: `observer-audit/<chain_id>\n<size>\n<base64(root)>\ntimestamp <timestamp>\n`.
pub fn checkpoint_body(chain_id: &str, size: u64, root: &Digest, timestamp: &str) -> String {
    format!("{}\n{size}\n{}\ntimestamp {timestamp}\n", checkpoint_origin(chain_id), B64.encode(root.0))
}

/// A checkpoint record: the JSON line `{"record_type":"checkpoint","chain_id":…,"size":…,"root":…,"timestamp":…,
/// "note":…}`. `size` events of the chain (`seq` 1 to `size`) are covered; `root` is the RFC 6962 root over their
/// hashes; `note` is the signed note whose text repeats chain id, size, root and timestamp.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// Always `"checkpoint"`.
    pub record_type: String,
    /// The chain.
    pub chain_id: String,
    /// The number of events covered (the `seq` of the last one).
    pub size: u64,
    /// The Merkle root (hex).
    pub root: Digest,
    /// When it was signed (RFC 3339, UTC).
    pub timestamp: String,
    /// The C2SP signed note.
    pub note: String,
}

/// What a checkpoint proves once its note verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCheckpoint {
    /// The chain.
    pub chain_id: String,
    /// Events covered.
    pub size: u64,
    /// Their Merkle root.
    pub root: Digest,
    /// The signed timestamp.
    pub timestamp: String,
    /// `name+hex(keyid)` of the known keys that signed it.
    pub signed_by: Vec<String>,
}

impl Checkpoint {
    /// Signs a checkpoint of `chain_id` covering `size` events with Merkle root `root`, at `timestamp` (RFC 3339;
    /// must not contain a newline).
    pub fn sign(
        chain_id: &str,
        size: u64,
        root: Digest,
        timestamp: &str,
        signer: &NoteSigner,
    ) -> Result<Checkpoint, IntegrityError> {
        validate_chain_id(chain_id)?;
        if timestamp.is_empty() || timestamp.chars().any(|c| c.is_control()) {
            return Err(IntegrityError::Checkpoint("the timestamp must be one non-empty line".into()));
        }
        let note = signer.sign(&checkpoint_body(chain_id, size, &root, timestamp))?;
        Ok(Checkpoint {
            record_type: CHECKPOINT_RECORD_TYPE.into(),
            chain_id: chain_id.into(),
            size,
            root,
            timestamp: timestamp.into(),
            note,
        })
    }

    /// An unsigned checkpoint (no signing key configured): `note` is the checkpoint text alone, without a blank line
    /// or signature lines. It lets a verifier check the Merkle root but proves nothing against someone who rewrites
    /// the trail (they can recompute it); verifiers report it as `unsigned_checkpoint`.
    pub fn unsigned(chain_id: &str, size: u64, root: Digest, timestamp: &str) -> Result<Checkpoint, IntegrityError> {
        validate_chain_id(chain_id)?;
        if timestamp.is_empty() || timestamp.chars().any(|c| c.is_control()) {
            return Err(IntegrityError::Checkpoint("the timestamp must be one non-empty line".into()));
        }
        Ok(Checkpoint {
            record_type: CHECKPOINT_RECORD_TYPE.into(),
            chain_id: chain_id.into(),
            size,
            root,
            timestamp: timestamp.into(),
            note: checkpoint_body(chain_id, size, &root, timestamp),
        })
    }

    /// `true` for an [unsigned](Checkpoint::unsigned) checkpoint whose text matches its fields.
    pub fn is_unsigned(&self) -> bool {
        self.note == checkpoint_body(&self.chain_id, self.size, &self.root, &self.timestamp)
    }

    /// The JSON line (without the newline).
    pub fn to_json_line(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a checkpoint always serialises")
    }

    /// Reads a checkpoint from a parsed JSON line.
    pub fn from_value(value: &serde_json::Value) -> Result<Checkpoint, IntegrityError> {
        let cp = Checkpoint::deserialize(value).map_err(|e| IntegrityError::Checkpoint(e.to_string()))?;
        if cp.record_type != CHECKPOINT_RECORD_TYPE {
            return Err(IntegrityError::Checkpoint(format!("record_type is {:?}", cp.record_type)));
        }
        validate_chain_id(&cp.chain_id)?;
        Ok(cp)
    }

    /// Verifies the note against `known` keys and that its signed text matches the record's fields.
    pub fn verify(&self, known: &[NoteVerifier]) -> Result<VerifiedCheckpoint, IntegrityError> {
        let opened = open_note(&self.note, known)?;
        let expected = checkpoint_body(&self.chain_id, self.size, &self.root, &self.timestamp);
        if opened.text != expected {
            return Err(IntegrityError::Checkpoint(
                "the signed text does not match the record's chain_id, size, root and timestamp".into(),
            ));
        }
        Ok(VerifiedCheckpoint {
            chain_id: self.chain_id.clone(),
            size: self.size,
            root: self.root,
            timestamp: self.timestamp.clone(),
            signed_by: opened.verified_by,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrity::NoteError;

    #[test]
    fn sign_serialise_parse_verify() {
        let signer = NoteSigner::generate("audit-key").unwrap();
        let root = Digest::sha256(b"root");
        let cp = Checkpoint::sign("chain-1", 42, root, "2026-11-29T16:00:00Z", &signer).unwrap();
        assert!(cp.note.starts_with(&format!(
            "observer-audit/chain-1\n42\n{}\ntimestamp 2026-11-29T16:00:00Z\n\n— audit-key ",
            B64.encode(root.0)
        )));
        let line = cp.to_json_line();
        assert!(line.starts_with(br#"{"record_type":"checkpoint","chain_id":"chain-1","size":42,"root":""#));
        let back = Checkpoint::from_value(&serde_json::from_slice(&line).unwrap()).unwrap();
        assert_eq!(back, cp);
        let v = back.verify(&[signer.verifier()]).unwrap();
        assert_eq!((v.size, v.root, v.signed_by), (42, root, vec![signer.verifier().label()]));

        // The JSON fields must match the signed text.
        let mut lie = cp.clone();
        lie.size = 43;
        assert!(matches!(lie.verify(&[signer.verifier()]), Err(IntegrityError::Checkpoint(_))));
        // Another key.
        let other = NoteSigner::generate("audit-key").unwrap();
        assert!(matches!(cp.verify(&[other.verifier()]), Err(IntegrityError::Note(NoteError::UnknownKey { .. }))));
        assert!(Checkpoint::sign("bad id", 1, root, "t", &signer).is_err());
        // Unsigned: recognised, and never verifies as signed.
        let unsigned = Checkpoint::unsigned("chain-1", 42, root, "2026-11-29T16:00:00Z").unwrap();
        assert!(unsigned.is_unsigned() && !cp.is_unsigned());
        assert!(matches!(unsigned.verify(&[signer.verifier()]), Err(IntegrityError::Note(NoteError::Malformed(_)))));
        assert!(Checkpoint::sign("c", 1, root, "t\n", &signer).is_err());
    }
}
