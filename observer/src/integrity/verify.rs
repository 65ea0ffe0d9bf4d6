//! The trail verifier: reads JSON lines (audit events with their `integrity` object, checkpoint lines, anything else)
//! from one or more sources, reassembles every chain by `seq` and reports what does not hold.

use serde::Serialize;
use std::collections::HashMap;
use std::fmt;

use super::checkpoint::{Checkpoint, CHECKPOINT_RECORD_TYPE};
use super::merkle::MerkleTree;
use super::note::{NoteError, NoteVerifier};
use super::{parse_strict, read_integrity, ChainStart, Digest, IntegrityError, INTEGRITY_FIELD};

/// The prefix of the lines the SDK writes to stderr when no sink could take an event; stripped before parsing.
pub const FALLBACK_PREFIX: &str = "observer-audit-fallback: ";

/// What a finding says went wrong. Every finding is an integrity failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FindingKind {
    /// Sequence numbers missing from the chain (deleted lines, a truncated tail the checkpoints cover, events that
    /// went elsewhere, e.g. to the stderr fallback, and were not given to the verifier).
    Gap,
    /// An event's recomputed hash is not its recorded `integrity.hash`: the line was edited.
    Edit,
    /// In an ordered source (a file), an event comes after an event of the same chain with a higher `seq`.
    Reorder,
    /// In an ordered source, a copy of an earlier line of the chain appears again after later events.
    Replay,
    /// An event with a valid hash of its own that is not the chain's: another event holds its `seq` and links
    /// into the chain, or a checkpoint disagrees.
    Insertion,
    /// An event's `prev_hash` is not the hash of the chain's previous event (or not the genesis value for `seq` 1):
    /// an event before it was replaced.
    BrokenLink,
    /// A checkpoint's Merkle root is not the root of the chain's event hashes `1..=size`.
    RootMismatch,
    /// A checkpoint's signature by a known key does not verify (the checkpoint was altered or forged).
    BadSignature,
    /// A checkpoint is signed only by keys that were not given to the verifier.
    UnknownKey,
    /// A checkpoint without a signature (the producer had no signing key): its root is checked only when
    /// signatures are skipped, and it proves nothing against someone who rewrites the trail.
    UnsignedCheckpoint,
    /// Two validly signed checkpoints of the same size with different roots.
    CheckpointConflict,
    /// Events after the last valid checkpoint (or a chain with no checkpoint): not covered by a signature, so a
    /// truncation of them could not be detected.
    UnsignedTail,
    /// A line that should be an event or checkpoint but cannot be read (bad JSON, a duplicate key, a malformed
    /// `integrity` object or checkpoint record).
    Malformed,
    /// An audit event (it has an `event_id`) without an `integrity` object.
    Unchained,
}

impl FindingKind {
    /// The snake_case name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gap => "gap",
            Self::Edit => "edit",
            Self::Reorder => "reorder",
            Self::Replay => "replay",
            Self::Insertion => "insertion",
            Self::BrokenLink => "broken_link",
            Self::RootMismatch => "root_mismatch",
            Self::BadSignature => "bad_signature",
            Self::UnknownKey => "unknown_key",
            Self::UnsignedCheckpoint => "unsigned_checkpoint",
            Self::CheckpointConflict => "checkpoint_conflict",
            Self::UnsignedTail => "unsigned_tail",
            Self::Malformed => "malformed",
            Self::Unchained => "unchained",
        }
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One integrity failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What went wrong.
    pub kind: FindingKind,
    /// The chain, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain_id: Option<String>,
    /// The sequence number (for a gap: its first missing `seq`; for a checkpoint: its size), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// The last sequence number of a range (gaps, unsigned tails).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq_end: Option<u64>,
    /// Where: `source:line`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// A sentence for people.
    pub detail: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(chain) = &self.chain_id {
            write!(f, "chain {chain} ")?;
        }
        match (self.seq, self.seq_end) {
            (Some(a), Some(b)) if a != b => write!(f, "seq {a}..{b}: ")?,
            (Some(a), _) => write!(f, "seq {a}: ")?,
            _ => {}
        }
        write!(f, "{}: {}", self.kind, self.detail)?;
        if let Some(at) = &self.at {
            write!(f, " (at {at})")?;
        }
        Ok(())
    }
}

/// The verdict on one chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    /// The chain id.
    pub chain_id: String,
    /// Distinct events (sequence numbers) read.
    pub events: u64,
    /// Lowest sequence number read.
    pub first_seq: u64,
    /// Highest sequence number read.
    pub last_seq: u64,
    /// Extra copies of events already read (at-least-once delivery), accepted.
    pub duplicates: u64,
    /// Times a process instance resumed the chain after a restart (`"start":"resumed"`).
    pub resumed: u64,
    /// Checkpoint lines whose signature verified (copies counted once).
    pub checkpoints: u64,
    /// The size of the largest checkpoint whose signature verified and whose root matched (0: none).
    pub signed_size: u64,
    /// `name+keyid` of the keys that signed the chain's valid checkpoints.
    pub signed_by: Vec<String>,
    /// Everything that does not hold.
    pub findings: Vec<Finding>,
}

impl ChainReport {
    /// `true` when nothing is wrong with the chain.
    pub fn ok(&self) -> bool {
        self.findings.is_empty()
    }
}

/// The verdict on everything read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrailReport {
    /// `true` when there is no finding at all.
    pub ok: bool,
    /// Lines read (all sources).
    pub lines: u64,
    /// Lines that are neither events nor checkpoints (blank lines, other output), ignored.
    pub other_lines: u64,
    /// Where the first ignored lines are (`source:line`, at most 20).
    pub other_line_examples: Vec<String>,
    /// Whether checkpoint signatures were checked (false when the verifier was told to skip them).
    pub signatures_checked: bool,
    /// One report per chain, by chain id.
    pub chains: Vec<ChainReport>,
    /// Findings not tied to a chain (malformed or unchained lines).
    pub findings: Vec<Finding>,
}

impl TrailReport {
    /// Every finding, the chains' and the others.
    pub fn all_findings(&self) -> impl Iterator<Item = &Finding> {
        self.chains.iter().flat_map(|c| c.findings.iter()).chain(self.findings.iter())
    }
}

/// Identifies a source added with [`TrailVerifier::add_source`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourceId(usize);

struct Source {
    name: String,
    ordered: bool,
    line: u64,
}

#[derive(Clone)]
struct Entry {
    seq: u64,
    recorded: Digest,
    prev: Digest,
    hash_ok: bool,
    start: Option<ChainStart>,
    /// In an ordered source, a higher `seq` of the chain came earlier.
    late: bool,
    source: u32,
    line: u64,
}

struct CheckpointEntry {
    checkpoint: Checkpoint,
    source: u32,
    line: u64,
}

#[derive(Default)]
struct ChainData {
    entries: Vec<Entry>,
    checkpoints: Vec<CheckpointEntry>,
    malformed: Vec<Finding>,
}

/// What one line is, after parsing and hashing (no state needed: this part can run on any thread).
#[derive(Debug)]
pub enum Examined {
    /// Blank or not JSON-looking: ignored.
    Other,
    /// An event of a chain.
    Event {
        /// The chain.
        chain_id: String,
        /// Its `seq`.
        seq: u64,
        /// Its recorded `integrity.hash`.
        recorded: Digest,
        /// Its `prev_hash`.
        prev: Digest,
        /// Whether the recomputed hash equals the recorded one.
        hash_ok: bool,
        /// Its `start` marker.
        start: Option<ChainStart>,
    },
    /// A checkpoint line.
    Checkpoint(Box<Checkpoint>),
    /// A line that cannot be read; the chain when it could be told.
    Malformed {
        /// The chain, if the line named one.
        chain_id: Option<String>,
        /// Why.
        detail: String,
        /// An event without integrity (rather than unreadable).
        unchained: bool,
    },
}

/// Parses and hashes one line (the stderr fallback prefix is stripped).
pub fn examine_line(line: &[u8]) -> Examined {
    let mut line = line;
    while let Some((last, rest)) = line.split_last() {
        if last.is_ascii_whitespace() {
            line = rest;
        } else {
            break;
        }
    }
    if let Some(rest) = line.strip_prefix(FALLBACK_PREFIX.as_bytes()) {
        line = rest;
    }
    let start = line.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(line.len());
    line = &line[start..];
    if line.first() != Some(&b'{') {
        return Examined::Other;
    }
    let value = match parse_strict(line) {
        Ok(v) => v,
        Err(e) => return Examined::Malformed { chain_id: None, detail: e.to_string(), unchained: false },
    };
    let chain_hint = || {
        value
            .get(INTEGRITY_FIELD)
            .or(Some(&value))
            .and_then(|v| v.get("chain_id"))
            .and_then(|c| c.as_str())
            .map(str::to_owned)
    };
    if value.get("record_type").and_then(|v| v.as_str()) == Some(CHECKPOINT_RECORD_TYPE) {
        return match Checkpoint::from_value(&value) {
            Ok(cp) => Examined::Checkpoint(Box::new(cp)),
            Err(e) => Examined::Malformed { chain_id: chain_hint(), detail: e.to_string(), unchained: false },
        };
    }
    if value.get(INTEGRITY_FIELD).is_none() {
        if value.get("event_id").is_some() {
            return Examined::Malformed {
                chain_id: None,
                detail: "an audit event without an integrity object".into(),
                unchained: true,
            };
        }
        return Examined::Other;
    }
    let integrity = match read_integrity(&value) {
        Ok(i) => i,
        Err(e) => return Examined::Malformed { chain_id: chain_hint(), detail: e.to_string(), unchained: false },
    };
    let Some(recorded) = integrity.hash else {
        return Examined::Malformed {
            chain_id: Some(integrity.chain_id),
            detail: "integrity.hash is missing".into(),
            unchained: false,
        };
    };
    let hash_ok = match super::event_hash(&value, &integrity) {
        Ok(computed) => computed == recorded,
        Err(e) => {
            return Examined::Malformed { chain_id: Some(integrity.chain_id), detail: e.to_string(), unchained: false }
        }
    };
    Examined::Event {
        chain_id: integrity.chain_id,
        seq: integrity.seq,
        recorded,
        prev: integrity.prev_hash,
        hash_ok,
        start: integrity.start,
    }
}

/// Reads lines from sources, then [`finish`](TrailVerifier::finish)es into a [`TrailReport`].
pub struct TrailVerifier {
    keys: Vec<NoteVerifier>,
    check_signatures: bool,
    sources: Vec<Source>,
    chains: HashMap<String, ChainData>,
    /// Highest seq per (source, chain) so far, for ordered sources.
    max_seq: HashMap<(u32, String), u64>,
    lines: u64,
    other_lines: u64,
    other_examples: Vec<String>,
    findings: Vec<Finding>,
}

impl TrailVerifier {
    /// A verifier that accepts checkpoints signed by any of `keys`. With no keys, every checkpoint is reported as
    /// [`FindingKind::UnknownKey`] unless [`skip_signatures`](Self::skip_signatures) is set.
    pub fn new(keys: Vec<NoteVerifier>) -> Self {
        Self {
            keys,
            check_signatures: true,
            sources: Vec::new(),
            chains: HashMap::new(),
            max_seq: HashMap::new(),
            lines: 0,
            other_lines: 0,
            other_examples: Vec::new(),
            findings: Vec::new(),
        }
    }

    /// Do not check checkpoint signatures (roots are still checked); the report says so.
    pub fn skip_signatures(mut self, skip: bool) -> Self {
        self.check_signatures = !skip;
        self
    }

    /// Adds a source named `name` (a file name, `topic/partition`). In an `ordered` source (a file written by one
    /// sink) the events of a chain must appear in increasing `seq` order: a lower `seq` after a higher one is a
    /// [`FindingKind::Reorder`] or, for a copy, a [`FindingKind::Replay`]. In an unordered source (a Kafka topic, a
    /// dump of one) copies are at-least-once duplicates, and order is not checked.
    pub fn add_source(&mut self, name: &str, ordered: bool) -> SourceId {
        self.sources.push(Source { name: name.to_owned(), ordered, line: 0 });
        SourceId(self.sources.len() - 1)
    }

    /// Reads the next line of `source`.
    pub fn add_line(&mut self, source: SourceId, line: &[u8]) {
        let examined = examine_line(line);
        self.add_examined(source, examined);
    }

    /// Records the next line of `source`, already [`examine_line`]d (lets a caller examine lines on many threads and
    /// add them in order).
    pub fn add_examined(&mut self, source: SourceId, examined: Examined) {
        let src = source.0 as u32;
        let s = &mut self.sources[source.0];
        s.line += 1;
        self.lines += 1;
        let line = s.line;
        let ordered = s.ordered;
        match examined {
            Examined::Other => {
                self.other_lines += 1;
                if self.other_examples.len() < 20 {
                    let at = format!("{}:{line}", s.name);
                    self.other_examples.push(at);
                }
            }
            Examined::Malformed { chain_id, detail, unchained } => {
                let finding = Finding {
                    kind: if unchained { FindingKind::Unchained } else { FindingKind::Malformed },
                    chain_id: chain_id.clone(),
                    seq: None,
                    seq_end: None,
                    at: Some(format!("{}:{line}", s.name)),
                    detail,
                };
                match chain_id {
                    Some(id) => self.chains.entry(id).or_default().malformed.push(finding),
                    None => self.findings.push(finding),
                }
            }
            Examined::Checkpoint(checkpoint) => {
                let data = self.chains.entry(checkpoint.chain_id.clone()).or_default();
                data.checkpoints.push(CheckpointEntry { checkpoint: *checkpoint, source: src, line });
            }
            Examined::Event { chain_id, seq, recorded, prev, hash_ok, start } => {
                let mut late = false;
                if ordered {
                    let max = self.max_seq.entry((src, chain_id.clone())).or_insert(0);
                    late = seq < *max;
                    *max = (*max).max(seq);
                }
                let data = self.chains.entry(chain_id).or_default();
                data.entries.push(Entry { seq, recorded, prev, hash_ok, start, late, source: src, line });
            }
        }
    }

    fn at(&self, source: u32, line: u64) -> String {
        format!("{}:{line}", self.sources[source as usize].name)
    }

    /// Reassembles every chain and reports.
    pub fn finish(mut self) -> TrailReport {
        let mut chains: Vec<(String, ChainData)> = std::mem::take(&mut self.chains).into_iter().collect();
        chains.sort_by(|a, b| a.0.cmp(&b.0));
        let reports: Vec<ChainReport> = chains.into_iter().map(|(id, data)| self.chain_report(id, data)).collect();
        let ok = self.findings.is_empty() && reports.iter().all(ChainReport::ok);
        TrailReport {
            ok,
            lines: self.lines,
            other_lines: self.other_lines,
            other_line_examples: self.other_examples,
            signatures_checked: self.check_signatures,
            chains: reports,
            findings: self.findings,
        }
    }

    fn chain_report(&self, chain_id: String, data: ChainData) -> ChainReport {
        let ChainData { mut entries, checkpoints, malformed } = data;
        let mut findings = malformed;
        let finding = |kind, seq: Option<u64>, seq_end: Option<u64>, at: Option<String>, detail: String| Finding {
            kind,
            chain_id: Some(chain_id.clone()),
            seq,
            seq_end,
            at,
            detail,
        };
        // Stable: entries of one seq keep their reading order.
        entries.sort_by_key(|e| e.seq);
        let mut report = ChainReport {
            chain_id: chain_id.clone(),
            events: 0,
            first_seq: entries.first().map_or(0, |e| e.seq),
            last_seq: entries.last().map_or(0, |e| e.seq),
            duplicates: 0,
            resumed: 0,
            checkpoints: 0,
            signed_size: 0,
            signed_by: Vec::new(),
            findings: Vec::new(),
        };

        // Group by seq; pick the chain's event for each seq.
        let mut groups: Vec<&[Entry]> = Vec::new();
        let mut i = 0;
        while i < entries.len() {
            let j = entries[i..].iter().position(|e| e.seq != entries[i].seq).map_or(entries.len(), |n| i + n);
            groups.push(&entries[i..j]);
            i = j;
        }
        // accepted[k] = (seq, hash, prev) of the chain's event, or None when it cannot be told.
        let mut accepted: Vec<(u64, Option<(Digest, Digest)>)> = Vec::with_capacity(groups.len());
        for (gi, group) in groups.iter().enumerate() {
            let seq = group[0].seq;
            for e in group.iter().filter(|e| !e.hash_ok) {
                findings.push(finding(
                    FindingKind::Edit,
                    Some(seq),
                    None,
                    Some(self.at(e.source, e.line)),
                    "the event's hash does not match its content (the line was edited)".into(),
                ));
            }
            // Distinct hashes among the lines of this seq.
            let mut distinct: Vec<&Entry> = Vec::new();
            for e in group.iter() {
                if !distinct.iter().any(|d| d.recorded == e.recorded && d.prev == e.prev) {
                    distinct.push(e);
                }
            }
            let chosen = if distinct.len() == 1 {
                Some(distinct[0])
            } else {
                // A fork: keep the candidate with a valid hash that links to the previous event and that the next
                // event links to.
                let prev_hash = accepted
                    .last()
                    .and_then(|(s, a)| (s.checked_add(1) == Some(seq)).then_some(*a))
                    .flatten()
                    .map(|a| a.0);
                let next_prevs: Vec<Digest> = groups
                    .get(gi + 1)
                    .filter(|g| g[0].seq == seq.saturating_add(1))
                    .map(|g| g.iter().map(|e| e.prev).collect())
                    .unwrap_or_default();
                let fits = |d: &&Entry| {
                    d.hash_ok
                        && prev_hash.is_none_or(|p| p == d.prev)
                        && (next_prevs.is_empty() || next_prevs.contains(&d.recorded))
                };
                let fitting: Vec<&Entry> = distinct.iter().copied().filter(fits).collect();
                let chosen = (fitting.len() == 1).then(|| fitting[0]);
                for d in &distinct {
                    if chosen.is_some_and(|c| std::ptr::eq(c, *d)) {
                        continue;
                    }
                    let detail = if chosen.is_some() {
                        "an event that is not the chain's: another event holds this seq and links into the chain"
                    } else {
                        "several different events claim this seq and none can be told to be the chain's"
                    };
                    if d.hash_ok {
                        findings.push(finding(
                            FindingKind::Insertion,
                            Some(seq),
                            None,
                            Some(self.at(d.source, d.line)),
                            detail.into(),
                        ));
                    }
                }
                chosen
            };
            // Copies of the chosen event: duplicates, or replays / reorders in ordered sources.
            if let Some(c) = chosen {
                let copies: Vec<&Entry> =
                    group.iter().filter(|e| e.recorded == c.recorded && e.prev == c.prev).collect();
                let mut first_in_time = true;
                for e in &copies {
                    if e.late {
                        let kind = if copies.iter().any(|o| !o.late && o.source == e.source) {
                            FindingKind::Replay
                        } else {
                            FindingKind::Reorder
                        };
                        let detail = if kind == FindingKind::Replay {
                            "a copy of an earlier line appears again after later events of the chain"
                        } else {
                            "the event comes after an event of the chain with a higher seq"
                        };
                        findings.push(finding(kind, Some(seq), None, Some(self.at(e.source, e.line)), detail.into()));
                    }
                    if first_in_time {
                        first_in_time = false;
                    } else {
                        report.duplicates += 1;
                    }
                }
                if c.start == Some(ChainStart::Resumed) {
                    report.resumed += 1;
                }
                if c.start == Some(ChainStart::New) && seq != 1 {
                    findings.push(finding(
                        FindingKind::Malformed,
                        Some(seq),
                        None,
                        Some(self.at(c.source, c.line)),
                        "\"start\":\"new\" on an event that is not seq 1".into(),
                    ));
                }
            }
            accepted.push((seq, chosen.map(|c| (c.recorded, c.prev))));
        }
        report.events = accepted.len() as u64;

        // Links and gaps.
        let mut expected_next = 1u64;
        let mut prev: Option<Digest> = Some(Digest::GENESIS);
        for (seq, chosen) in &accepted {
            if *seq > expected_next {
                findings.push(finding(
                    FindingKind::Gap,
                    Some(expected_next),
                    Some(seq - 1),
                    None,
                    format!("{} event(s) missing", seq - expected_next),
                ));
                prev = None;
            }
            if let (Some(p), Some((_, own_prev))) = (prev, chosen) {
                if p != *own_prev {
                    let entry = entries.iter().find(|e| e.seq == *seq && e.prev == *own_prev);
                    findings.push(finding(
                        FindingKind::BrokenLink,
                        Some(*seq),
                        None,
                        entry.map(|e| self.at(e.source, e.line)),
                        if *seq == 1 {
                            "prev_hash of seq 1 is not the genesis value".into()
                        } else {
                            format!("prev_hash is not the hash of seq {} (that event was replaced)", seq - 1)
                        },
                    ));
                }
            }
            prev = chosen.map(|c| c.0);
            expected_next = seq.saturating_add(1);
        }

        // Checkpoints: signatures, then roots in size order.
        let mut valid: Vec<(u64, Digest, String)> = Vec::new(); // (size, root, at)
        let mut seen_notes: Vec<&str> = Vec::new();
        for cp in &checkpoints {
            let at = self.at(cp.source, cp.line);
            let c = &cp.checkpoint;
            if seen_notes.contains(&c.note.as_str()) {
                continue;
            }
            seen_notes.push(&c.note);
            if self.check_signatures && c.is_unsigned() {
                findings.push(finding(
                    FindingKind::UnsignedCheckpoint,
                    Some(c.size),
                    None,
                    Some(at),
                    format!("checkpoint of size {} has no signature (the producer had no signing key)", c.size),
                ));
                continue;
            }
            if self.check_signatures {
                match c.verify(&self.keys) {
                    Ok(v) => {
                        for k in v.signed_by {
                            if !report.signed_by.contains(&k) {
                                report.signed_by.push(k);
                            }
                        }
                    }
                    Err(err) => {
                        let (kind, detail) = match err {
                            IntegrityError::Note(NoteError::InvalidSignature { .. }) => {
                                (FindingKind::BadSignature, format!("checkpoint of size {}: {err}", c.size))
                            }
                            IntegrityError::Note(NoteError::UnknownKey { .. }) => {
                                (FindingKind::UnknownKey, format!("checkpoint of size {}: {err}", c.size))
                            }
                            _ => (FindingKind::Malformed, format!("checkpoint of size {}: {err}", c.size)),
                        };
                        findings.push(finding(kind, Some(c.size), None, Some(at), detail));
                        continue;
                    }
                }
            }
            report.checkpoints += 1;
            if let Some((_, root, other)) = valid.iter().find(|(s, r, _)| *s == c.size && *r != c.root) {
                let _ = root;
                findings.push(finding(
                    FindingKind::CheckpointConflict,
                    Some(c.size),
                    None,
                    Some(at.clone()),
                    format!("another signed checkpoint of size {} (at {other}) has a different root", c.size),
                ));
                continue;
            }
            valid.push((c.size, c.root, at));
        }
        valid.sort_by_key(|v| v.0);
        valid.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
        let mut tree = MerkleTree::new();
        let mut acc = accepted.iter().peekable();
        let mut broken_at: Option<u64> = None;
        for (size, root, at) in &valid {
            while broken_at.is_none() && tree.size() < *size {
                let want = tree.size() + 1;
                match acc.next() {
                    Some((seq, Some((hash, _)))) if *seq == want => tree.push(hash),
                    _ => broken_at = Some(want),
                }
            }
            if broken_at.is_some() {
                if *size > report.last_seq {
                    findings.push(finding(
                        FindingKind::Gap,
                        Some(report.last_seq + 1),
                        Some(*size),
                        Some(at.clone()),
                        format!(
                            "a signed checkpoint covers {size} events but the chain ends at seq {} (truncated)",
                            report.last_seq
                        ),
                    ));
                }
                // Signed, but its root cannot be recomputed (missing or undecidable events, reported above).
                report.signed_size = report.signed_size.max(*size);
                continue;
            }
            if tree.root() == *root {
                report.signed_size = report.signed_size.max(*size);
            } else {
                findings.push(finding(
                    FindingKind::RootMismatch,
                    Some(*size),
                    None,
                    Some(at.clone()),
                    format!("the checkpoint's root is not the root of the chain's events 1..={size}"),
                ));
            }
        }
        if report.last_seq > report.signed_size && report.events > 0 {
            let from = report.signed_size.saturating_add(1);
            findings.push(finding(
                FindingKind::UnsignedTail,
                Some(from.max(report.first_seq)),
                Some(report.last_seq),
                None,
                if report.signed_size == 0 {
                    "no valid checkpoint covers the chain's events".into()
                } else {
                    format!(
                        "events after the last valid checkpoint (size {}) are not covered by a signature",
                        report.signed_size
                    )
                },
            ));
        }
        findings.sort_by_key(|f| (f.seq.unwrap_or(0), f.kind));
        report.findings = findings;
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrity::{append_integrity, event_hash, Integrity, NoteSigner};

    struct Trail {
        lines: Vec<String>,
        hashes: Vec<Digest>,
    }

    fn trail(chain: &str, n: u64, checkpoint_every: u64, signer: &NoteSigner) -> Trail {
        let mut lines = Vec::new();
        let mut hashes = Vec::new();
        let mut prev = Digest::GENESIS;
        let mut tree = MerkleTree::new();
        for seq in 1..=n {
            let mut line = format!(r#"{{"event_id":"e{seq}","n":{seq},"x":1.5}}"#).into_bytes();
            let v = parse_strict(&line).unwrap();
            let mut integ = Integrity {
                chain_id: chain.into(),
                seq,
                prev_hash: prev,
                hash: None,
                start: (seq == 1).then_some(ChainStart::New),
            };
            let h = event_hash(&v, &integ).unwrap();
            integ.hash = Some(h);
            append_integrity(&mut line, &integ).unwrap();
            lines.push(String::from_utf8(line).unwrap());
            hashes.push(h);
            tree.push(&h);
            prev = h;
            if seq % checkpoint_every == 0 || seq == n {
                let cp = Checkpoint::sign(chain, seq, tree.root(), "2026-11-29T16:00:00Z", signer).unwrap();
                lines.push(String::from_utf8(cp.to_json_line()).unwrap());
            }
        }
        Trail { lines, hashes }
    }

    fn verify(lines: &[String], keys: &[NoteVerifier]) -> TrailReport {
        let mut v = TrailVerifier::new(keys.to_vec());
        let s = v.add_source("f", true);
        for l in lines {
            v.add_line(s, l.as_bytes());
        }
        v.finish()
    }

    fn kinds(r: &TrailReport) -> Vec<(FindingKind, Option<u64>)> {
        r.all_findings().map(|f| (f.kind, f.seq)).collect()
    }

    #[test]
    fn clean_trail_verifies() {
        let k = NoteSigner::generate("k").unwrap();
        let t = trail("c1", 10, 4, &k);
        let r = verify(&t.lines, &[k.verifier()]);
        assert!(r.ok, "{:?}", kinds(&r));
        let c = &r.chains[0];
        assert_eq!((c.events, c.first_seq, c.last_seq, c.signed_size, c.checkpoints), (10, 1, 10, 10, 3));
        assert_eq!(t.hashes.len(), 10);
    }

    #[test]
    fn tamperings_are_named() {
        let k = NoteSigner::generate("k").unwrap();
        let t = trail("c1", 10, 5, &k); // lines: e1..e5, cp5, e6..e10, cp10
        let keys = [k.verifier()];
        // Edit.
        let mut l = t.lines.clone();
        l[2] = l[2].replace("\"n\":3", "\"n\":4");
        // (The recorded hash is intact, so the links and the roots still hold: only the edit is reported.)
        assert_eq!(kinds(&verify(&l, &keys)), vec![(FindingKind::Edit, Some(3))]);
        // Delete a line.
        let mut l = t.lines.clone();
        l.remove(3);
        assert_eq!(kinds(&verify(&l, &keys)), vec![(FindingKind::Gap, Some(4))]);
        // Swap two lines.
        let mut l = t.lines.clone();
        l.swap(6, 7);
        assert_eq!(kinds(&verify(&l, &keys)), vec![(FindingKind::Reorder, Some(6))]);
        // Truncate the tail.
        let l = t.lines[..9].to_vec();
        assert_eq!(kinds(&verify(&l, &keys)), vec![(FindingKind::UnsignedTail, Some(6))]);
        // Replay an old line.
        let mut l = t.lines.clone();
        l.insert(8, t.lines[1].clone());
        assert_eq!(kinds(&verify(&l, &keys)), vec![(FindingKind::Replay, Some(2))]);
        // Alter a checkpoint signature.
        let mut l = t.lines.clone();
        let cp: serde_json::Value = serde_json::from_str(&l[5]).unwrap();
        let note = cp["note"].as_str().unwrap();
        let (body, sig) = note.rsplit_once(' ').unwrap();
        let mut sig = sig.to_owned();
        // Change the character at 8 (inside the signature bytes) to a different one: checking another position
        // left it unchanged whenever it already was the replacement (1 run in 64 with a random key).
        let c = if &sig[8..9] == "A" { "B" } else { "A" };
        sig.replace_range(8..9, c);
        let mut cp2 = cp.clone();
        cp2["note"] = format!("{body} {sig}").into();
        l[5] = cp2.to_string();
        assert_eq!(kinds(&verify(&l, &keys)), vec![(FindingKind::BadSignature, Some(5))]);
        // Sign with another key.
        let other = NoteSigner::generate("k").unwrap();
        let t2 = trail("c1", 10, 5, &other);
        assert_eq!(
            kinds(&verify(&t2.lines, &keys)),
            vec![
                (FindingKind::UnsignedTail, Some(1)),
                (FindingKind::UnknownKey, Some(5)),
                (FindingKind::UnknownKey, Some(10))
            ]
        );
    }

    #[test]
    fn extreme_sequence_numbers_do_not_panic() {
        let line = |seq: u64| {
            let mut line = br#"{"event_id":"x"}"#.to_vec();
            let v = parse_strict(&line).unwrap();
            let mut integ =
                Integrity { chain_id: "c".into(), seq, prev_hash: Digest::GENESIS, hash: None, start: None };
            integ.hash = Some(event_hash(&v, &integ).unwrap());
            append_integrity(&mut line, &integ).unwrap();
            String::from_utf8(line).unwrap()
        };
        let r = verify(&[line(u64::MAX), line(u64::MAX - 1), line(1)], &[]);
        let k = kinds(&r);
        assert!(
            k.contains(&(FindingKind::Gap, Some(2))) && k.contains(&(FindingKind::Reorder, Some(u64::MAX - 1))),
            "{k:?}"
        );
    }

    #[test]
    fn unsigned_checkpoints() {
        let k = NoteSigner::generate("k").unwrap();
        let t = trail("c1", 4, 4, &k);
        let mut lines = t.lines.clone();
        let root = crate::integrity::merkle_root(&t.hashes);
        lines[4] =
            String::from_utf8(Checkpoint::unsigned("c1", 4, root, "2026-11-29T16:00:00Z").unwrap().to_json_line())
                .unwrap();
        assert_eq!(
            kinds(&verify(&lines, &[k.verifier()])),
            vec![(FindingKind::UnsignedTail, Some(1)), (FindingKind::UnsignedCheckpoint, Some(4))]
        );
        // With signatures skipped, its root is checked.
        let run = |lines: &[String]| {
            let mut v = TrailVerifier::new(vec![]).skip_signatures(true);
            let s = v.add_source("f", true);
            for l in lines {
                v.add_line(s, l.as_bytes());
            }
            v.finish()
        };
        assert!(run(&lines).ok);
        let wrong = Checkpoint::unsigned("c1", 4, Digest::GENESIS, "2026-11-29T16:00:00Z").unwrap();
        lines[4] = String::from_utf8(wrong.to_json_line()).unwrap();
        assert_eq!(
            kinds(&run(&lines)),
            vec![(FindingKind::UnsignedTail, Some(1)), (FindingKind::RootMismatch, Some(4))]
        );
    }

    #[test]
    fn forged_event_is_an_insertion() {
        let k = NoteSigner::generate("k").unwrap();
        let t = trail("c1", 6, 6, &k);
        // A forged seq 3 with a correct own hash and the right prev_hash.
        let real: serde_json::Value = serde_json::from_str(&t.lines[2]).unwrap();
        let mut forged = real.clone();
        forged["n"] = 99.into();
        let mut integ = read_integrity(&forged).unwrap();
        integ.hash = None;
        let h = event_hash(&forged, &integ).unwrap();
        forged["integrity"]["hash"] = h.to_hex().into();
        let mut l = t.lines.clone();
        l.insert(3, forged.to_string());
        let r = verify(&l, &[k.verifier()]);
        assert_eq!(kinds(&r), vec![(FindingKind::Insertion, Some(3))], "{r:#?}");
        assert!(r.all_findings().next().unwrap().to_string().starts_with("chain c1 seq 3: insertion:"));
    }

    #[test]
    fn duplicates_in_unordered_sources_and_other_lines() {
        let k = NoteSigner::generate("k").unwrap();
        let t = trail("c1", 5, 5, &k);
        let mut v = TrailVerifier::new(vec![k.verifier()]);
        let s = v.add_source("topic/0", false);
        for l in t.lines.iter().rev().chain(t.lines.iter()) {
            v.add_line(s, l.as_bytes());
        }
        v.add_line(s, b"some other output");
        v.add_line(s, b"{\"hello\":1}");
        v.add_line(s, format!("{FALLBACK_PREFIX}{}", t.lines[0]).as_bytes());
        let r = v.finish();
        assert!(r.ok, "{:?}", kinds(&r));
        assert_eq!((r.chains[0].duplicates, r.other_lines), (6, 2));
        // Unchained and malformed lines are failures.
        let r = verify(&["{\"event_id\":\"x\"}".into(), "{\"a\":1,\"a\":2}".into()], &[]);
        assert_eq!(kinds(&r), vec![(FindingKind::Unchained, None), (FindingKind::Malformed, None)]);
    }

    #[test]
    fn several_chains_interleaved_and_truncated_events_under_a_checkpoint() {
        let k = NoteSigner::generate("k").unwrap();
        let a = trail("a", 7, 3, &k);
        let b = trail("b", 4, 2, &k);
        let mut l = Vec::new();
        for i in 0..a.lines.len().max(b.lines.len()) {
            l.extend(a.lines.get(i).cloned());
            l.extend(b.lines.get(i).cloned());
        }
        let r = verify(&l, &[k.verifier()]);
        assert!(r.ok, "{:?}", kinds(&r));
        assert_eq!(r.chains.len(), 2);
        // Events deleted but the checkpoint after them kept: a gap up to the checkpoint's size.
        let mut l = a.lines.clone();
        l.remove(8); // e7 (lines: e1 e2 e3 cp3 e4 e5 e6 cp6 e7 cp7)
        let r = verify(&l, &[k.verifier()]);
        assert_eq!(kinds(&r), vec![(FindingKind::Gap, Some(7))]);
    }
}
