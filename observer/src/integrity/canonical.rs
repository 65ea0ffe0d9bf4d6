//! The canonical form of a JSON value (RFC 8785, JSON Canonicalization Scheme, with exact integers) and a strict
//! parser that rejects duplicate object keys.
//!
//! Canonical form, as in RFC 8785: no whitespace; object members sorted by their names compared as arrays of UTF-16
//! code units; strings with the minimal escaping of RFC 8785 section 3.2.2.2 (`\"`, `\\`, `\b`, `\f`, `\n`, `\r`,
//! `\t`, other code points below U+0020 as `\u00xx` in lowercase hex, everything else as UTF-8); `true`, `false`,
//! `null`; numbers: a number held as an integer (it fits `i64` or `u64`) is written as its exact decimal digits, any
//! other number is an IEEE 754 double written the way ECMAScript's `Number.prototype.toString` writes it. For every
//! integer of magnitude at most 2^53 this is exactly RFC 8785. Beyond 2^53 RFC 8785 would round the integer to the
//! nearest double, so that two different integers had the same hash (an edit nobody could detect); we keep the digits.

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::fmt;

use super::IntegrityError;

/// The canonical form of `value` (see the module documentation).
pub fn canonical_json(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_canonical(value, &mut out);
    out
}

/// Appends the canonical form of `value` to `out`.
pub fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(n, out),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            sort_members(&mut members);
            write_members(members.into_iter().map(|(k, v)| (k.as_str(), Member::Json(v))), out);
        }
    }
}

/// A member value of an object being written: a JSON value, or pre-rendered canonical bytes.
pub(crate) enum Member<'a> {
    Json(&'a Value),
    Raw(&'a [u8]),
}

/// Writes an object whose members are already in canonical order.
pub(crate) fn write_members<'a>(members: impl Iterator<Item = (&'a str, Member<'a>)>, out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, (key, value)) in members.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(key, out);
        out.push(b':');
        match value {
            Member::Json(v) => write_canonical(v, out),
            Member::Raw(bytes) => out.extend_from_slice(bytes),
        }
    }
    out.push(b'}');
}

/// Sorts object members by name as UTF-16 code units (RFC 8785 section 3.2.3).
pub(crate) fn sort_members<T>(members: &mut [(&String, T)]) {
    members.sort_by(|a, b| cmp_utf16(a.0, b.0));
}

/// Compares two strings as sequences of UTF-16 code units. Differs from byte order only when one side has a code
/// point above U+FFFF where the other has one in U+E000..=U+FFFF.
pub(crate) fn cmp_utf16(a: &str, b: &str) -> std::cmp::Ordering {
    if a.is_ascii() && b.is_ascii() {
        return a.as_bytes().cmp(b.as_bytes());
    }
    a.encode_utf16().cmp(b.encode_utf16())
}

fn write_number(n: &Number, out: &mut Vec<u8>) {
    if let Some(u) = n.as_u64() {
        out.extend_from_slice(u.to_string().as_bytes());
    } else if let Some(i) = n.as_i64() {
        out.extend_from_slice(i.to_string().as_bytes());
    } else {
        // serde_json never holds a non-finite number; `0.0` stands in defensively.
        let f = n.as_f64().filter(|f| f.is_finite()).unwrap_or(0.0);
        let mut buffer = ryu_js::Buffer::new();
        out.extend_from_slice(buffer.format_finite(f).as_bytes());
    }
}

/// Appends `s` as a JSON string with RFC 8785's escaping.
pub(crate) fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x0c => b"\\f",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 0xf) as usize]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Parses one JSON text, rejecting an object with two members of the same name (which `serde_json` would silently
/// resolve to the last one: a verifier must not accept a line that different readers read differently).
pub fn parse_strict(bytes: &[u8]) -> Result<Value, IntegrityError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue.deserialize(&mut de).map_err(|e| IntegrityError::Json(e.to_string()))?;
    de.end().map_err(|e| IntegrityError::Json(e.to_string()))?;
    Ok(value)
}

struct StrictValue;

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v).map(Value::Number).ok_or_else(|| E::custom("non-finite number"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(StrictValue)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(de::Error::custom(format_args!("duplicate object key {key:?}")));
            }
            let value = access.next_value_seed(StrictValue)?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(text: &str) -> String {
        String::from_utf8(canonical_json(&parse_strict(text.as_bytes()).unwrap())).unwrap()
    }

    /// RFC 8785 section 3.2.2 / appendix: the sample of section 3.2.2.
    #[test]
    fn rfc8785_sample_object() {
        let input = r#"{
          "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
          "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
          "literals": [null, true, false]
        }"#;
        let expected = r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#;
        assert_eq!(canon(input), expected);
    }

    /// RFC 8785 section 3.2.3: sorting by UTF-16 code units (the "\u20ac" / "\ud83d\ude00" / "\ufb33" case).
    #[test]
    fn rfc8785_sorting_by_utf16() {
        let input = r#"{"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh",
            "1": "One", "\ud83d\ude00": "Emoji: Grinning Face", "\u0080": "Control", "\u00f6": "Latin Small Letter O With Diaeresis"}"#;
        let got = canon(input);
        let order: Vec<&str> = ["\\r", "1", "\u{80}", "ö", "€", "😀", "\u{fb33}"].to_vec();
        let mut last = 0;
        for key in order {
            let pos = got.find(&format!("\"{key}\":")).unwrap_or_else(|| panic!("{key} missing in {got}"));
            assert!(pos >= last, "{key} out of order in {got}");
            last = pos;
        }
    }

    /// RFC 8785 appendix B: IEEE 754 doubles and their ECMAScript string forms.
    #[test]
    fn rfc8785_number_vectors() {
        let cases = [
            (0x0000000000000000u64, "0"),
            (0x8000000000000000, "0"),
            (0x0000000000000001, "5e-324"),
            (0x8000000000000001, "-5e-324"),
            (0x7fefffffffffffff, "1.7976931348623157e+308"),
            (0xffefffffffffffff, "-1.7976931348623157e+308"),
            (0x4340000000000000, "9007199254740992"),
            (0xc340000000000000, "-9007199254740992"),
            (0x4430000000000000, "295147905179352830000"),
            (0x44b52d02c7e14af5, "9.999999999999997e+22"),
            (0x44b52d02c7e14af6, "1e+23"),
            (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
            (0x444b1ae4d6e2ef4e, "999999999999999700000"),
            (0x444b1ae4d6e2ef4f, "999999999999999900000"),
            (0x444b1ae4d6e2ef50, "1e+21"),
            (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
            (0x3eb0c6f7a0b5ed8d, "0.000001"),
            (0x41b3de4355555553, "333333333.3333332"),
            (0x41b3de4355555554, "333333333.33333325"),
            (0x41b3de4355555555, "333333333.3333333"),
            (0x41b3de4355555556, "333333333.3333334"),
            (0x41b3de4355555557, "333333333.33333343"),
            (0xbecbf647612f3696, "-0.0000033333333333333333"),
            (0x43143ff3c1cb0959, "1424953923781206.2"),
        ];
        for (bits, expected) in cases {
            let f = f64::from_bits(bits);
            let value = Value::Number(Number::from_f64(f).unwrap());
            assert_eq!(String::from_utf8(canonical_json(&value)).unwrap(), expected, "bits {bits:#x}");
        }
    }

    #[test]
    fn integers_keep_every_digit() {
        assert_eq!(
            canon("[9007199254740993, -9223372036854775808, 18446744073709551615, 1.0, -0.0]"),
            "[9007199254740993,-9223372036854775808,18446744073709551615,1,0]"
        );
    }

    #[test]
    fn control_characters_and_unicode() {
        assert_eq!(canon(r#""\u0000\u001f\u007f\u00e9\b\t""#), "\"\\u0000\\u001f\u{7f}é\\b\\t\"");
    }

    #[test]
    fn duplicate_keys_are_rejected() {
        let err = parse_strict(br#"{"a":1,"b":{"c":1,"c":2}}"#).unwrap_err();
        assert!(err.to_string().contains("duplicate object key \"c\""), "{err}");
        assert!(parse_strict(br#"{"a":1} x"#).is_err());
        assert!(parse_strict(br#"{"a":1,"b":[{"c":1},{"c":2}]}"#).is_ok());
    }
}
