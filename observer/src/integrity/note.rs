//! C2SP signed notes (the format of Go's `golang.org/x/mod/sumdb/note`) with Ed25519 keys: signer and verifier key
//! strings, signing, and opening a note against known keys.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};
use std::fmt;

/// The algorithm byte of an Ed25519 key in a key string and in the key id.
const ALG_ED25519: u8 = 0x01;
/// Each signature line starts with an em dash and a space.
const SIG_PREFIX: &str = "\u{2014} ";
/// At most this many signature lines (as in the Go implementation).
const MAX_SIGNATURES: usize = 100;

/// Why a key string or a signed note was rejected, or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoteError {
    /// A key string is malformed (the message says which part; never the key material).
    #[error("malformed key: {0}")]
    BadKey(String),
    /// The note is not a well-formed signed note (the message says why).
    #[error("malformed signed note: {0}")]
    Malformed(String),
    /// A signature line names a known key (name and key id) but its signature does not verify: the note was
    /// altered or the signature forged.
    #[error("invalid signature by {name}+{key_id:08x}")]
    InvalidSignature {
        /// The key name.
        name: String,
        /// The key id.
        key_id: u32,
    },
    /// No signature line is by a known key. `signers` lists the `name+keyid` of the lines present.
    #[error("no signature by a known key (signed by: {})", if .signers.is_empty() { "nobody".to_owned() } else { .signers.join(", ") })]
    UnknownKey {
        /// `name+hex(keyid)` of each signature line.
        signers: Vec<String>,
    },
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('+') && !name.chars().any(char::is_whitespace)
}

/// The key id of a key: the first 4 bytes (big-endian) of SHA-256(name || 0x0A || 0x01 || public key).
pub fn key_id(name: &str, public_key: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ALG_ED25519]);
    h.update(public_key);
    let sum = h.finalize();
    u32::from_be_bytes([sum[0], sum[1], sum[2], sum[3]])
}

/// An Ed25519 note signing key with its name. `Debug` never shows the key.
#[derive(Clone)]
pub struct NoteSigner {
    name: String,
    key: SigningKey,
    key_id: u32,
}

impl fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .field("key_id", &format_args!("{:08x}", self.key_id))
            .finish_non_exhaustive()
    }
}

impl NoteSigner {
    /// A new random key named `name` (no spaces, no `+`), from the operating system's random source.
    pub fn generate(name: &str) -> Result<Self, NoteError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| NoteError::BadKey(format!("no random source: {e}")))?;
        Self::from_seed(name, seed)
    }

    /// The key named `name` with the 32-byte Ed25519 seed `seed`.
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Self, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::BadKey("the name must be non-empty, without spaces or '+'".into()));
        }
        let key = SigningKey::from_bytes(&seed);
        let key_id = key_id(name, key.verifying_key().as_bytes());
        Ok(Self { name: name.to_owned(), key, key_id })
    }

    /// Parses a private key string `PRIVATE+KEY+<name>+<hex keyid>+<base64(0x01 || seed)>` (Go's note format).
    pub fn from_private_key(s: &str) -> Result<Self, NoteError> {
        let s = s.trim();
        let rest = s
            .strip_prefix("PRIVATE+KEY+")
            .ok_or_else(|| NoteError::BadKey("a private key string starts with PRIVATE+KEY+".into()))?;
        let (name, rest) = rest.split_once('+').ok_or_else(|| NoteError::BadKey("missing key id".into()))?;
        let (hash, data) = rest.split_once('+').ok_or_else(|| NoteError::BadKey("missing key data".into()))?;
        let id = parse_key_id(hash)?;
        let bytes = B64.decode(data).map_err(|_| NoteError::BadKey("key data is not base64".into()))?;
        if bytes.len() != 33 || bytes[0] != ALG_ED25519 {
            return Err(NoteError::BadKey("key data is not 0x01 followed by a 32-byte Ed25519 seed".into()));
        }
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&bytes[1..]);
        let signer = Self::from_seed(name, seed)?;
        if signer.key_id != id {
            return Err(NoteError::BadKey("the key id does not match the name and key".into()));
        }
        Ok(signer)
    }

    /// The private key string (keep it secret): `PRIVATE+KEY+<name>+<hex keyid>+<base64(0x01 || seed)>`.
    pub fn private_key_string(&self) -> String {
        let mut data = vec![ALG_ED25519];
        data.extend_from_slice(self.key.as_bytes());
        format!("PRIVATE+KEY+{}+{:08x}+{}", self.name, self.key_id, B64.encode(data))
    }

    /// The matching public key.
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier { name: self.name.clone(), key: self.key.verifying_key(), key_id: self.key_id }
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// Signs `text` (must end with a newline, must not contain a blank line) and returns the signed note:
    /// `text`, a blank line, `— <name> <base64(keyid || signature)>` and a newline.
    pub fn sign(&self, text: &str) -> Result<String, NoteError> {
        check_text(text)?;
        let sig: Signature = self.key.sign(text.as_bytes());
        let mut blob = self.key_id.to_be_bytes().to_vec();
        blob.extend_from_slice(&sig.to_bytes());
        Ok(format!("{text}\n{SIG_PREFIX}{} {}\n", self.name, B64.encode(blob)))
    }
}

fn check_text(text: &str) -> Result<(), NoteError> {
    if !text.ends_with('\n') {
        return Err(NoteError::Malformed("the text must end with a newline".into()));
    }
    if text.contains("\n\n") {
        return Err(NoteError::Malformed("the text must not contain a blank line".into()));
    }
    if text.chars().any(|c| c < ' ' && c != '\n') {
        return Err(NoteError::Malformed("control character in the text".into()));
    }
    Ok(())
}

fn parse_key_id(hash: &str) -> Result<u32, NoteError> {
    if hash.len() != 8 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(NoteError::BadKey("the key id must be 8 hexadecimal digits".into()));
    }
    u32::from_str_radix(hash, 16).map_err(|_| NoteError::BadKey("bad key id".into()))
}

/// An Ed25519 note verifier key: `<name>+<hex keyid>+<base64(0x01 || public key)>`.
#[derive(Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    key: VerifyingKey,
    key_id: u32,
}

impl fmt::Debug for NoteVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NoteVerifier({self})")
    }
}

impl fmt::Display for NoteVerifier {
    /// The verifier key string.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut data = vec![ALG_ED25519];
        data.extend_from_slice(self.key.as_bytes());
        write!(f, "{}+{:08x}+{}", self.name, self.key_id, B64.encode(data))
    }
}

impl std::str::FromStr for NoteVerifier {
    type Err = NoteError;
    fn from_str(s: &str) -> Result<Self, NoteError> {
        Self::parse(s)
    }
}

impl NoteVerifier {
    /// Parses a verifier key string `<name>+<hex keyid>+<base64(0x01 || public key)>`; the key id must match.
    pub fn parse(s: &str) -> Result<Self, NoteError> {
        let s = s.trim();
        let (name, rest) = s.split_once('+').ok_or_else(|| NoteError::BadKey("expected name+keyid+key".into()))?;
        let (hash, data) = rest.split_once('+').ok_or_else(|| NoteError::BadKey("expected name+keyid+key".into()))?;
        if !valid_name(name) {
            return Err(NoteError::BadKey("the name must be non-empty, without spaces or '+'".into()));
        }
        let id = parse_key_id(hash)?;
        let bytes = B64.decode(data).map_err(|_| NoteError::BadKey("key data is not base64".into()))?;
        if bytes.len() != 33 || bytes[0] != ALG_ED25519 {
            return Err(NoteError::BadKey("key data is not 0x01 followed by a 32-byte Ed25519 public key".into()));
        }
        let mut public = [0u8; 32];
        public.copy_from_slice(&bytes[1..]);
        let key =
            VerifyingKey::from_bytes(&public).map_err(|_| NoteError::BadKey("not an Ed25519 public key".into()))?;
        if key_id(name, &public) != id {
            return Err(NoteError::BadKey("the key id does not match the name and key".into()));
        }
        Ok(Self { name: name.to_owned(), key, key_id: id })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// `name+hex(keyid)`, how reports name a key.
    pub fn label(&self) -> String {
        format!("{}+{:08x}", self.name, self.key_id)
    }

    /// Verifies an Ed25519 signature over `text` (strict verification: no malleable signatures).
    pub fn verify(&self, text: &[u8], signature: &[u8]) -> bool {
        let Ok(sig) = Signature::from_slice(signature) else {
            return false;
        };
        self.key.verify_strict(text, &sig).is_ok()
    }
}

/// A signed note whose signatures were checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedNote {
    /// The signed text (ends with a newline).
    pub text: String,
    /// `name+hex(keyid)` of the known keys whose signatures verified.
    pub verified_by: Vec<String>,
    /// `name+hex(keyid)` of signature lines by keys not among the known ones (not checked).
    pub unverified: Vec<String>,
}

/// Opens a signed note: checks its form and every signature by a known key. Succeeds when at least one known key
/// signed it and no signature by a known key is invalid.
pub fn open_note(note: &str, known: &[NoteVerifier]) -> Result<OpenedNote, NoteError> {
    if note.chars().any(|c| c < ' ' && c != '\n') {
        return Err(NoteError::Malformed("control character in the note".into()));
    }
    let split = note.rfind("\n\n").ok_or_else(|| NoteError::Malformed("no blank line before the signatures".into()))?;
    let (text, sigs) = (&note[..=split], &note[split + 2..]);
    if sigs.is_empty() || !sigs.ends_with('\n') {
        return Err(NoteError::Malformed("the signature block must end with a newline".into()));
    }
    let mut opened = OpenedNote { text: text.to_owned(), verified_by: Vec::new(), unverified: Vec::new() };
    let mut seen: Vec<(String, u32)> = Vec::new();
    for (count, line) in sigs[..sigs.len() - 1].split('\n').enumerate() {
        if count >= MAX_SIGNATURES {
            return Err(NoteError::Malformed(format!("more than {MAX_SIGNATURES} signatures")));
        }
        let line = line
            .strip_prefix(SIG_PREFIX)
            .ok_or_else(|| NoteError::Malformed("a signature line must start with an em dash and a space".into()))?;
        let (name, b64) = line.split_once(' ').unwrap_or((line, ""));
        let blob = B64.decode(b64).map_err(|_| NoteError::Malformed("signature is not base64".into()))?;
        if !valid_name(name) || blob.len() < 5 {
            return Err(NoteError::Malformed("bad signature line".into()));
        }
        let id = u32::from_be_bytes([blob[0], blob[1], blob[2], blob[3]]);
        let label = format!("{name}+{id:08x}");
        let Some(verifier) = known.iter().find(|k| k.name == name && k.key_id == id) else {
            if !opened.unverified.contains(&label) {
                opened.unverified.push(label);
            }
            continue;
        };
        if seen.iter().any(|(n, i)| n == name && *i == id) {
            return Err(NoteError::Malformed(format!("two signatures by {label}")));
        }
        seen.push((name.to_owned(), id));
        if !verifier.verify(text.as_bytes(), &blob[4..]) {
            return Err(NoteError::InvalidSignature { name: name.to_owned(), key_id: id });
        }
        opened.verified_by.push(label);
    }
    if opened.verified_by.is_empty() {
        return Err(NoteError::UnknownKey { signers: opened.unverified });
    }
    Ok(opened)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The reference vector of Go's golang.org/x/mod/sumdb/note tests.
    const VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const SKEY: &str = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const TEXT: &str =
        "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    const SIG: &str =
        "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    #[test]
    fn go_reference_vector() {
        let signer = NoteSigner::from_private_key(SKEY).unwrap();
        assert_eq!(signer.private_key_string(), SKEY);
        assert_eq!(signer.verifier().to_string(), VKEY);
        assert_eq!(signer.key_id(), 0xc74f20a3);
        let note = signer.sign(TEXT).unwrap();
        assert_eq!(note, format!("{TEXT}\n{SIG}"));
        let verifier = NoteVerifier::parse(VKEY).unwrap();
        let opened = open_note(&note, std::slice::from_ref(&verifier)).unwrap();
        assert_eq!(opened.text, TEXT);
        assert_eq!(opened.verified_by, vec!["PeterNeumann+c74f20a3".to_owned()]);
        // Altered text: invalid signature.
        let altered = note.replace("cryptography", "cryptographY");
        assert_eq!(
            open_note(&altered, &[verifier]).unwrap_err(),
            NoteError::InvalidSignature { name: "PeterNeumann".into(), key_id: 0xc74f20a3 }
        );
    }

    #[test]
    fn unknown_key_and_other_key() {
        let note = NoteSigner::from_private_key(SKEY).unwrap().sign(TEXT).unwrap();
        let other = NoteSigner::generate("other").unwrap();
        let err = open_note(&note, &[other.verifier()]).unwrap_err();
        assert_eq!(err, NoteError::UnknownKey { signers: vec!["PeterNeumann+c74f20a3".into()] });
        // A key with the same name but another key: different key id, so unknown, not invalid.
        let same_name = NoteSigner::generate("PeterNeumann").unwrap();
        assert!(matches!(open_note(&note, &[same_name.verifier()]), Err(NoteError::UnknownKey { .. })));
        // Two signatures: one known suffices; unverified listed.
        let both = format!("{note}{}", other.sign(TEXT).unwrap().split_once("\n\n").unwrap().1);
        let opened = open_note(&both, &[other.verifier()]).unwrap();
        assert_eq!(opened.verified_by, vec![other.verifier().label()]);
        assert_eq!(opened.unverified, vec!["PeterNeumann+c74f20a3".to_owned()]);
    }

    #[test]
    fn malformed_notes_and_keys() {
        let v = NoteVerifier::parse(VKEY).unwrap();
        for bad in ["", TEXT, "text\n\nno dash\n", "text\n\n— PeterNeumann\n", "text\n\n— PeterNeumann !!!\n"] {
            assert!(matches!(open_note(bad, std::slice::from_ref(&v)), Err(NoteError::Malformed(_))), "{bad:?}");
        }
        let dup = format!("{TEXT}\n{SIG}{SIG}");
        assert!(matches!(open_note(&dup, &[v]), Err(NoteError::Malformed(_))));
        for bad in [
            "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",
            "PeterNeumann+c74f20a3",
            "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "PeterNeumann+c74f20a3+AhpcQcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWA",
        ] {
            assert!(NoteVerifier::parse(bad).is_err(), "{bad}");
        }
        assert!(NoteSigner::from_private_key(VKEY).is_err());
        assert!(NoteSigner::from_private_key(&SKEY.replace("c74f20a3", "c74f20a4")).is_err());
        assert!(NoteSigner::generate("a+b").is_err());
        let signer = NoteSigner::generate("k").unwrap();
        assert!(signer.sign("no newline").is_err());
        assert!(signer.sign("a\n\nb\n").is_err());
        let debug = format!("{signer:?}");
        assert!(!debug.contains(&signer.private_key_string()[20..]), "{debug}");
    }
}
