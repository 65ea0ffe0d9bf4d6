//! How the spool stores records on disk.
//!
//! A spool directory holds a lock file, `spool.lock`, and segment files named
//! `segment-{seq:020}.jsonl` (`seq` is a zero-padded decimal sequence number, so lexical order is replay
//! order). Sequence numbers only grow: a process continues after the highest one it finds on disk.
//!
//! Every segment holds one record per line (`\n`-terminated), as a JSON object, human-readable on purpose so
//! that operators can inspect what is pending:
//!
//! ```text
//! {"topic":"audit","key":"doc-1","headers":[["event-type","read"]],"payload":"{\"event_id\":\"…\"}"}
//! {"topic":"audit","key":null,"headers":[],"payload_b64":"/wD+"}
//! ```
//!
//! `payload` holds the payload as text when it is valid UTF-8; otherwise the object has `payload_b64` (standard
//! base64, with padding) instead. JSON escapes newlines inside strings, so one line is exactly one record and
//! a torn write is detectable: the last line lacks its `\n`, or does not parse.

use std::borrow::Cow;
use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::{failpoint, SpoolError, SpoolRecord};

pub(super) const SEGMENT_PREFIX: &str = "segment-";

const SEGMENT_SUFFIX: &str = ".jsonl";

/// Digits of the zero-padded sequence number (`u64::MAX` has 20).
const SEQ_DIGITS: usize = 20;

/// How one record is stored (serialisation side, borrowing).
#[derive(Serialize)]
struct LineOut<'a> {
    topic: &'a str,
    key: Option<&'a str>,
    headers: &'a [(String, String)],
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload_b64: Option<String>,
}

/// Appends `record` as one JSON line (with its `\n`) to `buf`.
pub(super) fn encode_line(record: &SpoolRecord, buf: &mut Vec<u8>) -> Result<(), SpoolError> {
    let (payload, payload_b64) = match std::str::from_utf8(&record.payload) {
        Ok(text) => (Some(text), None),
        Err(_) => (None, Some(base64::engine::general_purpose::STANDARD.encode(&record.payload))),
    };
    let line =
        LineOut { topic: &record.topic, key: record.key.as_deref(), headers: &record.headers, payload, payload_b64 };
    serde_json::to_writer(&mut *buf, &line).map_err(io::Error::from)?;
    buf.push(b'\n');
    Ok(())
}

/// How one record is stored (deserialisation side): strings are borrowed from the line unless they hold escapes.
#[derive(Deserialize)]
struct LineIn<'a> {
    #[serde(borrow)]
    topic: Text<'a>,
    #[serde(default, borrow)]
    key: Option<Text<'a>>,
    #[serde(default, borrow)]
    headers: Vec<(Text<'a>, Text<'a>)>,
    #[serde(default, borrow)]
    payload: Option<Text<'a>>,
    #[serde(default, borrow)]
    payload_b64: Option<Text<'a>>,
}

/// A JSON string, borrowed from the input when it holds no escape (serde's own `Cow<str>` always copies when
/// nested in an `Option` or a `Vec`).
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visitor<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(Visitor(std::marker::PhantomData))
    }
}

/// One record of a segment as [`SegmentReader::record`] decodes it: borrowed from the reader's current line
/// where possible.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct RecordRef<'a> {
    /// The Kafka topic.
    pub topic: Cow<'a, str>,
    /// The message key, if any.
    pub key: Option<Cow<'a, str>>,
    /// The message headers, in order.
    pub headers: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// The message payload.
    pub payload: Cow<'a, [u8]>,
}

impl RecordRef<'_> {
    /// An owned copy.
    pub(crate) fn to_record(&self) -> SpoolRecord {
        SpoolRecord {
            topic: self.topic.clone().into_owned(),
            key: self.key.clone().map(Cow::into_owned),
            headers: self.headers.iter().map(|(k, v)| (k.clone().into_owned(), v.clone().into_owned())).collect(),
            payload: self.payload.clone().into_owned(),
        }
    }
}

/// Decodes one line (without its `\n`).
fn decode_line(line: &[u8]) -> Result<RecordRef<'_>, String> {
    let line: LineIn<'_> = serde_json::from_slice(line).map_err(|e| e.to_string())?;
    let payload = match (line.payload, line.payload_b64) {
        (Some(text), None) => match text.0 {
            Cow::Borrowed(text) => Cow::Borrowed(text.as_bytes()),
            Cow::Owned(text) => Cow::Owned(text.into_bytes()),
        },
        (None, Some(b64)) => Cow::Owned(
            base64::engine::general_purpose::STANDARD.decode(&*b64.0).map_err(|e| format!("payload_b64: {e}"))?,
        ),
        (Some(_), Some(_)) => return Err("both `payload` and `payload_b64` are present".into()),
        (None, None) => return Err("neither `payload` nor `payload_b64` is present".into()),
    };
    Ok(RecordRef {
        topic: line.topic.0,
        key: line.key.map(|k| k.0),
        headers: line.headers.into_iter().map(|(k, v)| (k.0, v.0)).collect(),
        payload,
    })
}

/// Size of the read buffer of a [`SegmentReader`].
const READ_BUFFER_BYTES: usize = 256 * 1024;

/// Reads a segment one line at a time, so that only the current line (one record) is in memory whatever the
/// segment's size:
///
/// ```text
/// while reader.next_line()? {
///     match reader.record() {
///         Ok(record) => { /* use it; to use it again later, do not call next_line yet */ }
///         Err(error) => reader.skip(&error),   // counted in skipped()
///     }
/// }
/// ```
///
/// A line that cannot be decoded is reported and counted by [`skip`](SegmentReader::skip) — a torn last line (an
/// interrupted append) only if it holds something other than zero bytes and whitespace (a power loss). A last
/// line that lacks only its newline but decodes is a record (with a warning). Blank lines are ignored.
pub(crate) struct SegmentReader {
    path: PathBuf,
    file: BufReader<File>,
    /// The current line, without its `\n`.
    line: Vec<u8>,
    /// Its number (1-based).
    number: usize,
    /// Whether it ended with `\n` (only the last line of a segment may not).
    terminated: bool,
    /// Whether the warning about a complete last line without its newline was given.
    warned: Cell<bool>,
    skipped: usize,
}

impl SegmentReader {
    pub(super) fn open(path: &Path) -> io::Result<SegmentReader> {
        failpoint::check(path, failpoint::OPEN)?;
        let file = File::open(path)?;
        Ok(SegmentReader {
            path: path.to_owned(),
            file: BufReader::with_capacity(READ_BUFFER_BYTES, file),
            line: Vec::new(),
            number: 0,
            terminated: true,
            warned: Cell::new(false),
            skipped: 0,
        })
    }

    /// Moves to the next non-blank line: `false` at the end of the segment.
    pub(crate) fn next_line(&mut self) -> io::Result<bool> {
        loop {
            self.line.clear();
            if self.file.read_until(b'\n', &mut self.line)? == 0 {
                return Ok(false);
            }
            self.number += 1;
            self.terminated = self.line.last() == Some(&b'\n');
            if self.terminated {
                self.line.pop();
            }
            if !self.line.iter().all(u8::is_ascii_whitespace) {
                return Ok(true);
            }
        }
    }

    /// The current line, decoded (borrowing from it where it can). Call [`skip`](Self::skip) with the error if
    /// it cannot be decoded.
    pub(crate) fn record(&self) -> Result<RecordRef<'_>, String> {
        let record = decode_line(&self.line)?;
        if !self.terminated && !self.warned.replace(true) {
            crate::diag::report!(
                WARN,
                "spool-record",
                "audit spool: the last record of {} (line {}) lacks its newline but is complete; keeping it",
                self.path.display(),
                self.number
            );
        }
        Ok(record)
    }

    /// Reports the current line as undecodable (`error` from [`record`](Self::record)) and counts it.
    pub(crate) fn skip(&mut self, error: &str) {
        if self.terminated {
            self.skipped += 1;
            crate::diag::report!(
                WARN,
                "spool-record",
                "audit spool: skipping a corrupt record in {} (line {}): {error}",
                self.path.display(),
                self.number
            );
        } else {
            // Zeros (a power loss after the size was extended) hold nothing; anything else is kept by the
            // caller (it quarantines segments with skipped lines instead of deleting them).
            let content = self.line.iter().any(|&b| b != 0 && !b.is_ascii_whitespace());
            self.skipped += usize::from(content);
            crate::diag::report!(
                WARN,
                "spool-record",
                "audit spool: skipping a torn last record of {} bytes in {} (line {}, an interrupted append)",
                self.line.len(),
                self.path.display(),
                self.number
            );
        }
    }

    /// The lines skipped so far that held something (see [`skip`](Self::skip)).
    pub(crate) fn skipped(&self) -> usize {
        self.skipped
    }

    /// Bytes of the segment in memory: the read buffer and the current line.
    #[cfg(test)]
    pub(crate) fn buffered_bytes(&self) -> usize {
        self.file.capacity() + self.line.capacity()
    }
}

/// The size of a segment and its number of complete, non-blank lines, without holding it in memory.
pub(super) fn scan_segment(path: &Path) -> io::Result<(u64, u64)> {
    failpoint::check(path, failpoint::OPEN)?;
    let mut file = File::open(path)?;
    let mut chunk = vec![0u8; 64 * 1024];
    let (mut size, mut lines) = (0u64, 0u64);
    let mut line_has_content = false;
    loop {
        let n = match file.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        size += n as u64;
        let data = &chunk[..n];
        let mut from = 0;
        for end in memchr::memchr_iter(b'\n', data) {
            // A line almost always starts with `{`: the check stops at its first byte.
            line_has_content |= data[from..end].iter().any(|b| !b.is_ascii_whitespace());
            lines += u64::from(line_has_content);
            line_has_content = false;
            from = end + 1;
        }
        line_has_content |= data[from..].iter().any(|b| !b.is_ascii_whitespace());
    }
    Ok((size, lines))
}

pub(super) fn segment_name(seq: u64) -> String {
    format!("{SEGMENT_PREFIX}{seq:0SEQ_DIGITS$}{SEGMENT_SUFFIX}")
}

/// The sequence number of a file named `segment-{seq:020}.jsonl`.
pub(super) fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(SEGMENT_PREFIX)?.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != SEQ_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::export::kafka::spool::tests::{encoded_len, rec};
    use crate::export::kafka::spool::Spool;

    #[test]
    fn non_utf8_payload_round_trips_via_base64() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), u64::MAX).unwrap();
        let binary =
            SpoolRecord { topic: "t".into(), key: None, headers: vec![], payload: vec![0xff, 0x00, 0xfe, b'\n'] };
        let empty = SpoolRecord { topic: "t".into(), key: Some(String::new()), headers: vec![], payload: vec![] };
        spool.append(&[binary.clone(), empty.clone()]).unwrap();
        let segments = spool.seal_and_list().unwrap();
        let text = fs::read_to_string(segments[0].path()).unwrap();
        assert_eq!(text, "{\"topic\":\"t\",\"key\":null,\"headers\":[],\"payload_b64\":\"/wD+Cg==\"}\n{\"topic\":\"t\",\"key\":\"\",\"headers\":[],\"payload\":\"\"}\n");
        assert_eq!(spool.read(&segments[0]).unwrap(), (vec![binary, empty], 0));
    }

    /// Issue 15: a segment is read one line at a time: memory stays at the read buffer and one line, however
    /// large the segment (it used to be read and decoded whole).
    #[test]
    fn a_segment_is_read_one_record_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), u64::MAX).unwrap();
        let big = |i: usize| SpoolRecord {
            topic: "audit".into(),
            key: Some(format!("k{i}")),
            headers: vec![("event_id".into(), i.to_string())],
            payload: format!("{{\"n\":{i},\"text\":\"{}\"}}", "x\n".repeat(1000)).into_bytes(),
        };
        let all: Vec<SpoolRecord> = (0..2_000).map(big).collect();
        spool.append(&all).unwrap();
        let segment = spool.seal_and_list().unwrap().remove(0);
        let line = usize::try_from(encoded_len(&all[0])).unwrap();
        assert!(segment.size_bytes() > 10 * READ_BUFFER_BYTES as u64);

        let mut reader = spool.reader(&segment).unwrap();
        let mut n = 0;
        while reader.next_line().unwrap() {
            let record = reader.record().unwrap();
            // Strings without escapes are borrowed from the line.
            assert!(matches!(record.topic, Cow::Borrowed(_)) && matches!(record.headers[0].1, Cow::Borrowed(_)));
            assert_eq!(record.to_record(), all[n]);
            n += 1;
            assert!(reader.buffered_bytes() <= READ_BUFFER_BYTES + 2 * line, "{}", reader.buffered_bytes());
        }
        assert_eq!((n, reader.skipped()), (all.len(), 0));
    }

    #[test]
    fn scan_counts_complete_lines_with_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        fs::write(&path, "a\n\n  \n{x}\n\0\0").unwrap();
        assert_eq!(scan_segment(&path).unwrap(), (12, 2));
        // Lines across the read buffer's boundaries: blank, then with content only after the boundary.
        let blank = " ".repeat(READ_BUFFER_BYTES + 10);
        let text = format!("{blank}\n{blank}x\n{blank}");
        fs::write(&path, &text).unwrap();
        assert_eq!(scan_segment(&path).unwrap(), (text.len() as u64, 1));
    }

    #[test]
    fn torn_tail_is_skipped_and_corrupt_lines_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let all: Vec<SpoolRecord> = (0..3).map(|i| rec("audit", i)).collect();
        {
            let spool = Spool::open(dir.path(), u64::MAX).unwrap();
            spool.append(&all).unwrap();
        }
        // Rewrite the segment by hand: garbage lines in the middle, a blank line, and half a record at the end.
        let path = dir.path().join(segment_name(1));
        let text = fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let torn = &lines[0][..lines[0].len() / 2];
        let bad_b64 = r#"{"topic":"t","key":null,"headers":[],"payload_b64":"***"}"#;
        let both = r#"{"topic":"t","key":null,"headers":[],"payload":"a","payload_b64":"YQ=="}"#;
        let doctored =
            format!("{}\nnot json at all\n{}\n{bad_b64}\n\n{both}\n{}\n{torn}", lines[0], lines[1], lines[2]);
        fs::write(&path, &doctored).unwrap();

        let spool = Spool::open(dir.path(), u64::MAX).unwrap();
        assert_eq!(spool.bytes(), doctored.len() as u64);
        let segments = spool.seal_and_list().unwrap();
        assert_eq!(segments.len(), 1);
        let (records, skipped) = spool.read(&segments[0]).unwrap();
        assert_eq!(records, all);
        assert_eq!(skipped, 4, "three corrupt lines and the torn tail");

        // A last line that lacks only its newline is complete and kept.
        fs::write(&path, text.trim_end_matches('\n')).unwrap();
        assert_eq!(spool.read(&segments[0]).unwrap(), (all.clone(), 0));
        // Zero bytes at the end (power loss) are a torn tail too; pure garbage never panics.
        fs::write(&path, format!("{text}\0\0\0\0")).unwrap();
        assert_eq!(spool.read(&segments[0]).unwrap(), (all, 0));
        fs::write(&path, [0xffu8, b'{', b'\n', b'"', b'\n', 0x80]).unwrap();
        assert_eq!(spool.read(&segments[0]).unwrap(), (vec![], 3));
    }
}
