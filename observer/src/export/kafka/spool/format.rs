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

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

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

/// How one record is stored (deserialisation side).
#[derive(Deserialize)]
struct LineIn {
    topic: String,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    headers: Vec<(String, String)>,
    #[serde(default)]
    payload: Option<String>,
    #[serde(default)]
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

/// Decodes one line (without its `\n`).
fn decode_line(line: &[u8]) -> Result<SpoolRecord, String> {
    let line: LineIn = serde_json::from_slice(line).map_err(|e| e.to_string())?;
    let payload = match (line.payload, line.payload_b64) {
        (Some(text), None) => text.into_bytes(),
        (None, Some(b64)) => {
            base64::engine::general_purpose::STANDARD.decode(b64).map_err(|e| format!("payload_b64: {e}"))?
        }
        (Some(_), Some(_)) => return Err("both `payload` and `payload_b64` are present".into()),
        (None, None) => return Err("neither `payload` nor `payload_b64` is present".into()),
    };
    Ok(SpoolRecord { topic: line.topic, key: line.key, headers: line.headers, payload })
}

/// Decodes a whole segment: `(records, corrupt complete lines)`.
pub(super) fn parse_segment(path: &Path, data: &[u8]) -> (Vec<SpoolRecord>, usize) {
    let mut records = Vec::new();
    let mut skipped = 0;
    let mut lines = data.split_inclusive(|&b| b == b'\n').enumerate().peekable();
    while let Some((index, line)) = lines.next() {
        let (line, terminated) = match line.strip_suffix(b"\n") {
            Some(line) => (line, true),
            None => (line, false),
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match decode_line(line) {
            Ok(record) => {
                if !terminated {
                    crate::diag::report!(
                        WARN,
                        "spool-record",
                        "audit spool: the last record of {} (line {}) lacks its newline but is complete; keeping it",
                        path.display(),
                        index + 1
                    );
                }
                records.push(record);
            }
            Err(error) if terminated => {
                skipped += 1;
                crate::diag::report!(
                    WARN,
                    "spool-record",
                    "audit spool: skipping a corrupt record in {} (line {}): {error}",
                    path.display(),
                    index + 1
                );
            }
            Err(_) => {
                debug_assert!(lines.peek().is_none());
                // Zeros (a power loss after the size was extended) hold nothing; anything else is kept by the
                // caller (it quarantines segments with skipped lines instead of deleting them).
                let content = line.iter().any(|&b| b != 0 && !b.is_ascii_whitespace());
                skipped += usize::from(content);
                crate::diag::report!(
                    WARN,
                    "spool-record",
                    "audit spool: skipping a torn last record of {} bytes in {} (line {}, an interrupted append)",
                    line.len(),
                    path.display(),
                    index + 1
                );
            }
        }
    }
    (records, skipped)
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
        for &b in &chunk[..n] {
            if b == b'\n' {
                lines += u64::from(line_has_content);
                line_has_content = false;
            } else if !b.is_ascii_whitespace() {
                line_has_content = true;
            }
        }
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
    use crate::export::kafka::spool::tests::rec;
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
