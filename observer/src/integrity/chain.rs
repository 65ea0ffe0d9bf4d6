//! The hash chain: the `integrity` object every audit event carries and the hash that covers the whole event.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use std::fmt;

use super::canonical::{cmp_utf16, write_members, write_string, Member};
use super::IntegrityError;

/// The name of the member of an audit event's JSON object that carries its [`Integrity`].
pub const INTEGRITY_FIELD: &str = "integrity";

/// A SHA-256 value. Written in JSON as 64 lowercase hexadecimal digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The `prev_hash` of the first event of a chain (`seq` 1): 32 zero bytes.
    pub const GENESIS: Digest = Digest([0; 32]);

    /// SHA-256 of `data`.
    pub fn sha256(data: &[u8]) -> Digest {
        Digest(Sha256::digest(data).into())
    }

    /// 64 lowercase hexadecimal digits.
    pub fn to_hex(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(HEX[(b >> 4) as usize] as char);
            s.push(HEX[(b & 0xf) as usize] as char);
        }
        s
    }

    /// Parses 64 hexadecimal digits (lowercase; uppercase is rejected so that a value has one spelling).
    pub fn from_hex(s: &str) -> Result<Digest, IntegrityError> {
        let bytes = s.as_bytes();
        if bytes.len() != 64 {
            return Err(IntegrityError::BadHash(format!("expected 64 hex digits, got {} characters", bytes.len())));
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks(2).enumerate() {
            let hi = hex_val(pair[0]);
            let lo = hex_val(pair[1]);
            match (hi, lo) {
                (Some(h), Some(l)) => out[i] = (h << 4) | l,
                _ => return Err(IntegrityError::BadHash("not lowercase hexadecimal".into())),
            }
        }
        Ok(Digest(out))
    }
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.to_hex())
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Digest::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

/// How the first event a process instance writes to its chain says where the chain comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChainStart {
    /// A new chain: `seq` 1, `prev_hash` [`Digest::GENESIS`].
    New,
    /// The chain continues after a restart (its head was kept in a state directory): `seq` is the persisted head's
    /// plus one and `prev_hash` the persisted head's hash.
    Resumed,
}

/// The `integrity` object of an audit event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Integrity {
    /// The chain (one per producer process instance, or one continued across restarts through a state directory).
    pub chain_id: String,
    /// Position in the chain, gap-free, the first event is 1.
    pub seq: u64,
    /// The `hash` of the chain's event `seq - 1`; [`Digest::GENESIS`] for `seq` 1.
    pub prev_hash: Digest,
    /// SHA-256 of the canonical form of the event with this member removed. `None` only while it is computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<Digest>,
    /// Set on the first event a process instance writes to the chain, absent on the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<ChainStart>,
}

impl Integrity {
    /// The canonical form of this object without its `hash` member (members in canonical order).
    pub(crate) fn canonical_without_hash(&self, out: &mut Vec<u8>) {
        // Member names sort as: chain_id < prev_hash < seq < start ("hash" is left out).
        let seq = self.seq.to_string();
        let prev = format!("\"{}\"", self.prev_hash.to_hex());
        let mut chain_id = Vec::with_capacity(self.chain_id.len() + 2);
        write_string(&self.chain_id, &mut chain_id);
        let start = match self.start {
            Some(ChainStart::New) => Some(&b"\"new\""[..]),
            Some(ChainStart::Resumed) => Some(&b"\"resumed\""[..]),
            None => None,
        };
        let members = [
            Some(("chain_id", Member::Raw(&chain_id))),
            Some(("prev_hash", Member::Raw(prev.as_bytes()))),
            Some(("seq", Member::Raw(seq.as_bytes()))),
            start.map(|s| ("start", Member::Raw(s))),
        ];
        write_members(members.into_iter().flatten(), out);
    }
}

/// Checks a chain id: 1 to 128 characters, each an ASCII letter, digit, `.`, `_` or `-`.
pub fn validate_chain_id(chain_id: &str) -> Result<(), IntegrityError> {
    let ok = !chain_id.is_empty()
        && chain_id.len() <= 128
        && chain_id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(IntegrityError::BadChainId(chain_id.chars().take(140).collect()))
    }
}

/// The hash of an audit event: SHA-256 over the canonical form of `event` (a JSON object) whose `integrity` member
/// is `integrity` without its `hash`. An `integrity` member already in `event` is ignored.
pub fn event_hash(event: &Value, integrity: &Integrity) -> Result<Digest, IntegrityError> {
    let mut buf = Vec::with_capacity(1024);
    canonical_event(event, integrity, &mut buf)?;
    Ok(Digest::sha256(&buf))
}

/// The bytes [`event_hash`] hashes.
pub fn canonical_event(event: &Value, integrity: &Integrity, out: &mut Vec<u8>) -> Result<(), IntegrityError> {
    let Value::Object(map) = event else {
        return Err(IntegrityError::NotAnObject);
    };
    let mut integ = Vec::with_capacity(160);
    integrity.canonical_without_hash(&mut integ);
    let mut members: Vec<(&str, Member<'_>)> =
        map.iter().filter(|(k, _)| k.as_str() != INTEGRITY_FIELD).map(|(k, v)| (k.as_str(), Member::Json(v))).collect();
    members.push((INTEGRITY_FIELD, Member::Raw(&integ)));
    members.sort_by(|a, b| cmp_utf16(a.0, b.0));
    write_members(members.into_iter(), out);
    Ok(())
}

/// Reads an event line's `integrity` member and checks its `hash`: returns the integrity object and the hash
/// recomputed from the event (compare it with `integrity.hash`; [`IntegrityError::HashMismatch`] if they differ).
pub fn verify_event(event: &Value) -> Result<(Integrity, Digest), IntegrityError> {
    let integrity = read_integrity(event)?;
    let computed = event_hash(event, &integrity)?;
    match integrity.hash {
        None => Err(IntegrityError::MissingIntegrity("integrity.hash".into())),
        Some(h) if h != computed => Err(IntegrityError::HashMismatch { recorded: h, computed }),
        Some(_) => Ok((integrity, computed)),
    }
}

/// The `integrity` member of an event object, parsed (the hash is not checked).
pub fn read_integrity(event: &Value) -> Result<Integrity, IntegrityError> {
    let Value::Object(map) = event else {
        return Err(IntegrityError::NotAnObject);
    };
    let raw = map.get(INTEGRITY_FIELD).ok_or_else(|| IntegrityError::MissingIntegrity(INTEGRITY_FIELD.into()))?;
    let integrity: Integrity =
        Integrity::deserialize(raw).map_err(|e| IntegrityError::MissingIntegrity(format!("integrity: {e}")))?;
    validate_chain_id(&integrity.chain_id)?;
    if integrity.seq == 0 {
        return Err(IntegrityError::MissingIntegrity("integrity.seq must be at least 1".into()));
    }
    Ok(integrity)
}

/// Adds `,"integrity":{…}` before the final `}` of a serialised JSON object (trailing whitespace allowed). The
/// object must not already have an `integrity` member.
pub fn append_integrity(json_object: &mut Vec<u8>, integrity: &Integrity) -> Result<(), IntegrityError> {
    while json_object.last().is_some_and(|b| b.is_ascii_whitespace()) {
        json_object.pop();
    }
    if json_object.last() != Some(&b'}') || json_object.first() != Some(&b'{') {
        return Err(IntegrityError::NotAnObject);
    }
    json_object.pop();
    let empty = json_object[1..].iter().all(u8::is_ascii_whitespace);
    if !empty {
        json_object.push(b',');
    }
    json_object.extend_from_slice(b"\"integrity\":");
    serde_json::to_writer(&mut *json_object, integrity).map_err(|e| IntegrityError::Json(e.to_string()))?;
    json_object.push(b'}');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrity::canonical::parse_strict;

    fn integrity(seq: u64) -> Integrity {
        Integrity { chain_id: "c1".into(), seq, prev_hash: Digest::GENESIS, hash: None, start: Some(ChainStart::New) }
    }

    #[test]
    fn hash_covers_canonical_form_with_integrity_without_hash() {
        let event = serde_json::json!({"b": 1, "a": "x"});
        let integ = integrity(1);
        let mut buf = Vec::new();
        canonical_event(&event, &integ, &mut buf).unwrap();
        let zeros = "0".repeat(64);
        let expected =
            format!(r#"{{"a":"x","b":1,"integrity":{{"chain_id":"c1","prev_hash":"{zeros}","seq":1,"start":"new"}}}}"#);
        assert_eq!(String::from_utf8(buf).unwrap(), expected);
        assert_eq!(event_hash(&event, &integ).unwrap(), Digest::sha256(expected.as_bytes()));
    }

    #[test]
    fn append_then_verify_round_trip_and_edit_detected() {
        let mut line = br#"{"event_id":"e1","n":5}"#.to_vec();
        let mut integ = integrity(1);
        let value = parse_strict(&line).unwrap();
        integ.hash = Some(event_hash(&value, &integ).unwrap());
        append_integrity(&mut line, &integ).unwrap();
        let parsed = parse_strict(&line).unwrap();
        let (read, h) = verify_event(&parsed).unwrap();
        assert_eq!(read, integ);
        assert_eq!(Some(h), integ.hash);
        let edited = String::from_utf8(line.clone()).unwrap().replace("\"n\":5", "\"n\":6");
        let err = verify_event(&parse_strict(edited.as_bytes()).unwrap()).unwrap_err();
        assert!(matches!(err, IntegrityError::HashMismatch { .. }), "{err}");
        // prev_hash is covered too.
        let edited = String::from_utf8(line).unwrap().replace(&"0".repeat(64), &"1".repeat(64));
        assert!(matches!(
            verify_event(&parse_strict(edited.as_bytes()).unwrap()),
            Err(IntegrityError::HashMismatch { .. })
        ));
    }

    #[test]
    fn append_to_empty_object_and_rejects_non_objects() {
        let mut line = b"{ }\n".to_vec();
        append_integrity(&mut line, &integrity(1)).unwrap();
        assert!(line.starts_with(b"{ \"integrity\":{"), "{}", String::from_utf8_lossy(&line));
        assert!(append_integrity(&mut b"[1]".to_vec(), &integrity(1)).is_err());
        assert!(event_hash(&serde_json::json!([1]), &integrity(1)).is_err());
    }

    #[test]
    fn digest_hex_round_trip_and_errors() {
        let d = Digest::sha256(b"abc");
        assert_eq!(d.to_hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(Digest::from_hex(&d.to_hex()).unwrap(), d);
        assert!(Digest::from_hex(&d.to_hex().to_uppercase()).is_err());
        assert!(Digest::from_hex("00").is_err());
    }

    #[test]
    fn chain_ids() {
        assert!(validate_chain_id("0192f5e6-7b1c-7d2e-9f00-aa55aa55aa55").is_ok());
        assert!(validate_chain_id("").is_err());
        assert!(validate_chain_id("a b").is_err());
        assert!(validate_chain_id("a+b").is_err());
        assert!(validate_chain_id(&"a".repeat(129)).is_err());
    }

    #[test]
    fn integrity_object_rejects_unknown_members_and_seq_zero() {
        let e = serde_json::json!({"integrity": {"chain_id": "c", "seq": 1, "prev_hash": "0".repeat(64), "x": 1}});
        assert!(read_integrity(&e).is_err());
        let e = serde_json::json!({"integrity": {"chain_id": "c", "seq": 0, "prev_hash": "0".repeat(64)}});
        assert!(read_integrity(&e).is_err());
    }
}
