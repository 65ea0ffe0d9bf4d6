//! The producer's fast path to the canonical form: a `serde` serializer that writes any `Serialize` value straight
//! as its canonical JSON ([`super::canonical`]: RFC 8785 with exact integers), without building a
//! `serde_json::Value` first. Its output is byte for byte `canonical_json(&serde_json::to_value(v)?)` (tested),
//! about four times faster, which is what keeps the chain's cost on the dispatcher thread small.
//!
//! [`write_event`] also puts one extra member (the event's `integrity` object) in its canonical place, so that the
//! written line is itself in canonical form.

use std::fmt::Display;

use serde::ser::{self, Impossible, Serialize};

use super::canonical::cmp_utf16;

/// Why a value has no canonical JSON form (a map key that is not a string or an integer, or a custom error).
#[derive(Debug)]
pub(crate) struct Error(String);

impl Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

/// Writes `value`'s canonical JSON to `out`, with the member `extra` (name, canonical bytes of its value) added to
/// the top-level object (replacing a member of that name). Returns the offset in `out` where `extra`'s value
/// starts. `value` must serialise as an object.
pub(crate) fn write_event<T: Serialize + ?Sized>(
    value: &T,
    extra: (&'static str, &[u8]),
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
) -> Result<usize, Error> {
    let mut at = None;
    value.serialize(Canon { out, scratch, extra: Some((extra.0, extra.1, &mut at)) })?;
    at.ok_or_else(|| Error("not a JSON object".into()))
}

/// Writes `value`'s canonical JSON to `out`.
#[cfg(test)]
pub(crate) fn write<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), Error> {
    value.serialize(Canon { out, scratch: &mut Scratch::default(), extra: None })
}

type Member = (std::borrow::Cow<'static, str>, usize, usize);

/// Buffers reused from one object to the next (and, kept by the caller, from one event to the next), so that
/// writing an event allocates (almost) nothing.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    values: Vec<Vec<u8>>,
    members: Vec<Vec<Member>>,
}

type Extra<'x> = Option<(&'static str, &'x [u8], &'x mut Option<usize>)>;

struct Canon<'a, 'x> {
    out: &'a mut Vec<u8>,
    scratch: &'a mut Scratch,
    /// Only for the top-level object.
    extra: Extra<'x>,
}

fn number(out: &mut Vec<u8>, v: impl itoa_like::Int) {
    v.write(out);
}

mod itoa_like {
    /// Integers written as their exact decimal digits.
    pub(super) trait Int: Copy + std::fmt::Display {
        fn write(self, out: &mut Vec<u8>) {
            use std::io::Write;
            let _ = write!(out, "{self}");
        }
    }
    impl Int for i64 {}
    impl Int for u64 {}
    impl Int for i128 {}
    impl Int for u128 {}
}

/// Which bytes RFC 8785 escapes (`"`, `\\`, below U+0020): a table, so that runs of other bytes are copied whole.
const ESCAPED: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = true;
        b += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// Appends `s` as a JSON string with RFC 8785's escaping: the same bytes as the format core's `write_string`
/// (tested), copying runs of unescaped bytes whole.
fn write_string(s: &str, out: &mut Vec<u8>) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    while let Some(i) = bytes[start..].iter().position(|b| ESCAPED[*b as usize]).map(|i| start + i) {
        out.extend_from_slice(&bytes[start..i]);
        let b = bytes[i];
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 0xf) as usize]);
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

fn float(out: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        let mut buffer = ryu_js::Buffer::new();
        out.extend_from_slice(buffer.format_finite(v).as_bytes());
    } else {
        // As serde_json: a non-finite number is `null`.
        out.extend_from_slice(b"null");
    }
}

impl<'a, 'x> ser::Serializer for Canon<'a, 'x> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Seq<'a>;
    type SerializeTuple = Seq<'a>;
    type SerializeTupleStruct = Seq<'a>;
    type SerializeTupleVariant = Variant<Seq<'a>>;
    type SerializeMap = Object<'a, 'x>;
    type SerializeStruct = Object<'a, 'x>;
    type SerializeStructVariant = Variant<Object<'a, 'x>>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.out.extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        number(self.out, v);
        Ok(())
    }
    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        number(self.out, v);
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.serialize_u64(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.serialize_u64(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.serialize_u64(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        number(self.out, v);
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        number(self.out, v);
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        float(self.out, f64::from(v));
        Ok(())
    }
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        float(self.out, v);
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        write_string(v.encode_utf8(&mut [0; 4]), self.out);
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        write_string(v, self.out);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        // As serde_json: an array of numbers.
        self.out.push(b'[');
        for (i, b) in v.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            number(self.out, u64::from(*b));
        }
        self.out.push(b']');
        Ok(())
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(self, _name: &'static str, _index: u32, variant: &'static str) -> Result<(), Error> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _name: &'static str, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.out.push(b'{');
        write_string(variant, self.out);
        self.out.push(b':');
        value.serialize(Canon { out: self.out, scratch: self.scratch, extra: None })?;
        self.out.push(b'}');
        Ok(())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Seq<'a>, Error> {
        self.out.push(b'[');
        Ok(Seq { out: self.out, scratch: self.scratch, first: true })
    }
    fn serialize_tuple(self, len: usize) -> Result<Seq<'a>, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<Seq<'a>, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Variant<Seq<'a>>, Error> {
        self.out.push(b'{');
        write_string(variant, self.out);
        self.out.push(b':');
        Ok(Variant(self.serialize_seq(Some(len))?))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Object<'a, 'x>, Error> {
        Ok(Object::new(self.out, self.scratch, self.extra))
    }
    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<Object<'a, 'x>, Error> {
        let _ = len;
        Ok(Object::new(self.out, self.scratch, self.extra))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Variant<Object<'a, 'x>>, Error> {
        self.out.push(b'{');
        write_string(variant, self.out);
        self.out.push(b':');
        let _ = len;
        Ok(Variant(Object::new(self.out, self.scratch, None)))
    }
}

struct Seq<'a> {
    out: &'a mut Vec<u8>,
    scratch: &'a mut Scratch,
    first: bool,
}

impl Seq<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        if !std::mem::replace(&mut self.first, false) {
            self.out.push(b',');
        }
        value.serialize(Canon { out: self.out, scratch: self.scratch, extra: None })
    }
}

impl ser::SerializeSeq for Seq<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.out.push(b']');
        Ok(())
    }
}

impl ser::SerializeTuple for Seq<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleStruct for Seq<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        ser::SerializeSeq::end(self)
    }
}

/// An enum variant's content, closed with the `}` of `{"variant": …}`.
struct Variant<S>(S);

impl ser::SerializeTupleVariant for Variant<Seq<'_>> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.0.element(value)
    }
    fn end(self) -> Result<(), Error> {
        let out = self.0.out;
        out.extend_from_slice(b"]}");
        Ok(())
    }
}

impl ser::SerializeStructVariant for Variant<Object<'_, '_>> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        ser::SerializeStruct::serialize_field(&mut self.0, key, value)
    }
    fn end(self) -> Result<(), Error> {
        let out = self.0.finish()?;
        out.push(b'}');
        Ok(())
    }
}

/// An object: its members' values are written to `values` as they come, then sorted by name and written out.
struct Object<'a, 'x> {
    out: &'a mut Vec<u8>,
    scratch: &'a mut Scratch,
    extra: Extra<'x>,
    /// Name and range of the value in `values`.
    members: Vec<Member>,
    values: Vec<u8>,
    /// The name given by `serialize_key`, waiting for its value.
    key: Option<String>,
}

impl<'a, 'x> Object<'a, 'x> {
    fn new(out: &'a mut Vec<u8>, scratch: &'a mut Scratch, extra: Extra<'x>) -> Self {
        let members = scratch.members.pop().unwrap_or_default();
        let values = scratch.values.pop().unwrap_or_default();
        Self { out, scratch, extra, members, values, key: None }
    }

    fn member<T: Serialize + ?Sized>(&mut self, key: std::borrow::Cow<'static, str>, value: &T) -> Result<(), Error> {
        let start = self.values.len();
        value.serialize(Canon { out: &mut self.values, scratch: &mut *self.scratch, extra: None })?;
        self.members.push((key, start, self.values.len()));
        Ok(())
    }

    /// Writes the members in canonical order (a later member of the same name replaces an earlier one, as
    /// `serde_json::Map` does); returns the output.
    fn finish(self) -> Result<&'a mut Vec<u8>, Error> {
        let Object { out, scratch, extra, mut members, mut values, .. } = self;
        let extra = extra.map(|(name, bytes, at)| {
            members.retain(|(k, ..)| k != name);
            members.push((name.into(), usize::MAX, 0));
            (bytes, at)
        });
        // Stable: of two members with the same name the later stays last; keep that one. Names all ASCII (struct
        // fields, most maps): UTF-16 order is byte order.
        if members.iter().all(|m| m.0.is_ascii()) {
            members.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        } else {
            members.sort_by(|a, b| cmp_utf16(&a.0, &b.0));
        }
        out.push(b'{');
        let mut first = true;
        let mut extra_at = None;
        for i in 0..members.len() {
            if members.get(i + 1).is_some_and(|next| next.0 == members[i].0) {
                continue;
            }
            let (key, start, end) = &members[i];
            if !std::mem::replace(&mut first, false) {
                out.push(b',');
            }
            write_string(key, out);
            out.push(b':');
            match (&extra, *start) {
                (Some((bytes, _)), usize::MAX) => {
                    extra_at = Some(out.len());
                    out.extend_from_slice(bytes);
                }
                _ => out.extend_from_slice(&values[*start..*end]),
            }
        }
        out.push(b'}');
        if let Some((_, at)) = extra {
            *at = extra_at;
        }
        members.clear();
        values.clear();
        scratch.members.push(members);
        scratch.values.push(values);
        Ok(out)
    }
}

impl ser::SerializeStruct for Object<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        self.member(key.into(), value)
    }
    fn end(self) -> Result<(), Error> {
        self.finish().map(drop)
    }
}

impl ser::SerializeMap for Object<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.key = Some(key.serialize(KeySerializer)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let key = self.key.take().ok_or_else(|| Error("a map value without a key".into()))?;
        self.member(key.into(), value)
    }
    fn end(self) -> Result<(), Error> {
        self.finish().map(drop)
    }
}

/// Map keys: strings, and integers as their decimal digits (as `serde_json` does).
struct KeySerializer;

fn key_error() -> Error {
    Error("a map key must be a string or an integer".into())
}

impl ser::Serializer for KeySerializer {
    type Ok = String;
    type Error = Error;
    type SerializeSeq = Impossible<String, Error>;
    type SerializeTuple = Impossible<String, Error>;
    type SerializeTupleStruct = Impossible<String, Error>;
    type SerializeTupleVariant = Impossible<String, Error>;
    type SerializeMap = Impossible<String, Error>;
    type SerializeStruct = Impossible<String, Error>;
    type SerializeStructVariant = Impossible<String, Error>;

    fn serialize_str(self, v: &str) -> Result<String, Error> {
        Ok(v.to_owned())
    }
    fn serialize_char(self, v: char) -> Result<String, Error> {
        Ok(v.to_string())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<String, Error> {
        Ok(variant.to_owned())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, value: &T) -> Result<String, Error> {
        value.serialize(self)
    }
    fn serialize_i8(self, v: i8) -> Result<String, Error> {
        Ok(v.to_string())
    }
    fn serialize_i16(self, v: i16) -> Result<String, Error> {
        Ok(v.to_string())
    }
    fn serialize_i32(self, v: i32) -> Result<String, Error> {
        Ok(v.to_string())
    }
    fn serialize_i64(self, v: i64) -> Result<String, Error> {
        Ok(v.to_string())
    }
    fn serialize_u8(self, v: u8) -> Result<String, Error> {
        Ok(v.to_string())
    }
    fn serialize_u16(self, v: u16) -> Result<String, Error> {
        Ok(v.to_string())
    }
    fn serialize_u32(self, v: u32) -> Result<String, Error> {
        Ok(v.to_string())
    }
    fn serialize_u64(self, v: u64) -> Result<String, Error> {
        Ok(v.to_string())
    }
    fn serialize_bool(self, _: bool) -> Result<String, Error> {
        Err(key_error())
    }
    fn serialize_f32(self, _: f32) -> Result<String, Error> {
        Err(key_error())
    }
    fn serialize_f64(self, _: f64) -> Result<String, Error> {
        Err(key_error())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<String, Error> {
        Err(key_error())
    }
    fn serialize_none(self) -> Result<String, Error> {
        Err(key_error())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<String, Error> {
        Err(key_error())
    }
    fn serialize_unit(self) -> Result<String, Error> {
        Err(key_error())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<String, Error> {
        Err(key_error())
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<String, Error> {
        Err(key_error())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(key_error())
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Error> {
        Err(key_error())
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeTupleStruct, Error> {
        Err(key_error())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(key_error())
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Err(key_error())
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, Error> {
        Err(key_error())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(key_error())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::integrity::{canonical_json, parse_strict};
    use crate::{ActorContext, AuditAction, AuditEvent, AuditEventType, ChangeRecord, ResourceType};

    fn tricky() -> Vec<serde_json::Value> {
        vec![
            json!(null),
            json!([1, -1, 0.5, 1e21, 1e-7, 5.0, -0.0, 1.0e300, 9007199254740993_u64, i64::MIN, u64::MAX, 123.456]),
            json!({"b": 1, "a": {"z": [], "y": {}}, "": "empty key", "\u{e000}": 1, "\u{1f600}": 2, "é": 3, "A": 4}),
            json!({"s": "quote \" backslash \\ control \u{1} \u{1f} tab \t nl \n cr \r bs \u{8} ff \u{c} del \u{7f} é 😀 \u{2028}"}),
            json!({"nested": [{"k": [1, {"b": true, "a": false}]}, null, "x"]}),
        ]
    }

    #[test]
    fn strings_are_escaped_as_the_format_core_escapes_them() {
        let all: String = (0u32..0x300).filter_map(char::from_u32).chain(['😀', '\u{2028}', '\u{fffd}']).collect();
        for s in [all.as_str(), "", "plain", "\"", "a\\b", "\u{0}x\u{1f}"] {
            let (mut ours, mut core) = (Vec::new(), Vec::new());
            write_string(s, &mut ours);
            crate::integrity::canonical::write_string(s, &mut core);
            assert_eq!(ours, core, "{s:?}");
        }
    }

    #[test]
    fn the_serializer_writes_exactly_the_canonical_form_of_the_value() {
        for v in tricky() {
            let mut out = Vec::new();
            write(&v, &mut out).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), String::from_utf8(canonical_json(&v)).unwrap(), "{v}");
        }
        let mut event =
            AuditEvent::new(AuditEventType::DataModification, AuditAction::Update, ResourceType::Document, "d");
        event.actor = Some(std::sync::Arc::new(ActorContext::new("u").email("e@x").roles(["b", "a"])));
        event.changes = vec![ChangeRecord::new("f", json!(1.5), json!({"😀": 1, "\u{e000}": [2]}))];
        for (i, v) in tricky().into_iter().enumerate() {
            event.metadata.insert(format!("k{i}"), v);
        }
        event.metadata.insert("cost".into(), json!(0.0));
        let mut out = Vec::new();
        write(&event, &mut out).unwrap();
        let expected = canonical_json(&serde_json::to_value(&event).unwrap());
        assert_eq!(String::from_utf8(out.clone()).unwrap(), String::from_utf8(expected).unwrap());
        assert_eq!(canonical_json(&parse_strict(&out).unwrap()), out, "the output parses back to itself");

        let mut with_extra = b"[".to_vec();
        let at = write_event(&event, ("integrity", br#"{"x":1}"#), &mut with_extra, &mut Scratch::default()).unwrap();
        assert_eq!(&with_extra[at..at + 7], br#"{"x":1}"#);
        let mut value = serde_json::to_value(&event).unwrap();
        value["integrity"] = json!({"x": 1});
        assert_eq!(with_extra[1..], canonical_json(&value)[..], "the extra member in its sorted place");
        let err = write_event(&json!([1]), ("integrity", b"{}"), &mut Vec::new(), &mut Scratch::default()).unwrap_err();
        assert!(err.to_string().contains("not a JSON object"), "{err}");
        let mut map = std::collections::BTreeMap::new();
        map.insert(vec![1u8], 1);
        assert!(write(&map, &mut Vec::new()).is_err(), "a key that is not a string");
    }
}
