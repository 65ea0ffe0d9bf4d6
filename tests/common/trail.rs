//! A small verifier of the integrity chain for the tests, built from the format core (`observer::integrity`):
//! per chain, every event's hash, the links, gaps, duplicates, and every checkpoint's root and signature.

use std::collections::BTreeMap;

use observer::integrity::{merkle_root, parse_strict, verify_event, ChainStart, Checkpoint, Digest, NoteVerifier};

/// What the lines say about one chain.
#[derive(Debug, Default)]
pub struct ChainReport {
    /// Distinct events (by sequence number).
    pub events: u64,
    /// Lines that repeat an event already seen (same sequence number, same hash).
    pub duplicates: u64,
    /// The highest sequence number seen.
    pub last_seq: u64,
    /// Missing sequence numbers, as inclusive ranges.
    pub gaps: Vec<(u64, u64)>,
    /// The `start` marker by sequence number.
    pub starts: BTreeMap<u64, ChainStart>,
    /// Sizes of the checkpoints seen (each one's root matched and, with keys given, its signature verified).
    pub checkpoints: Vec<u64>,
    /// Resource ids of the events, in sequence order.
    pub resource_ids: Vec<String>,
}

/// Verifies `lines` (JSON lines: events and checkpoints of any number of chains, in any order). Panics with the
/// chain, the sequence number and what is wrong on any integrity failure other than gaps (returned in the report,
/// as the tests decide whether a gap is expected). With `keys` empty, checkpoints must be unsigned.
pub fn verify<'a>(lines: impl IntoIterator<Item = &'a [u8]>, keys: &[NoteVerifier]) -> BTreeMap<String, ChainReport> {
    #[derive(Default)]
    struct Chain {
        events: BTreeMap<u64, (Digest, Digest, Option<ChainStart>, String)>,
        duplicates: u64,
        checkpoints: Vec<Checkpoint>,
    }
    let mut chains: BTreeMap<String, Chain> = BTreeMap::new();
    for line in lines {
        let value = parse_strict(line).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(line)));
        if value.get("record_type").and_then(|v| v.as_str()) == Some("checkpoint") {
            let cp = Checkpoint::from_value(&value).expect("a checkpoint record");
            chains.entry(cp.chain_id.clone()).or_default().checkpoints.push(cp);
            continue;
        }
        let (integrity, hash) = verify_event(&value).unwrap_or_else(|e| panic!("event does not verify: {e}: {value}"));
        let chain = chains.entry(integrity.chain_id.clone()).or_default();
        let rid = value["resource_id"].as_str().unwrap_or_default().to_owned();
        let entry = (hash, integrity.prev_hash, integrity.start, rid);
        match chain.events.get(&integrity.seq) {
            Some(seen) if seen.0 == hash => chain.duplicates += 1,
            Some(seen) => panic!(
                "chain {} seq {}: two different events (hashes {} and {hash})",
                integrity.chain_id, integrity.seq, seen.0
            ),
            None => {
                chain.events.insert(integrity.seq, entry);
            }
        }
    }
    chains
        .into_iter()
        .map(|(id, chain)| {
            let mut report = ChainReport { duplicates: chain.duplicates, ..Default::default() };
            let mut expected = 1;
            let mut prev: Option<(u64, Digest)> = None;
            for (&seq, (hash, prev_hash, start, rid)) in &chain.events {
                if seq > expected {
                    report.gaps.push((expected, seq - 1));
                }
                if seq == 1 {
                    assert_eq!(*prev_hash, Digest::GENESIS, "chain {id} seq 1: prev_hash is not the genesis value");
                }
                if let Some((p, h)) = prev.filter(|(p, _)| *p + 1 == seq) {
                    assert_eq!(*prev_hash, h, "chain {id} seq {seq}: prev_hash is not the hash of seq {p}");
                }
                if let Some(s) = start {
                    report.starts.insert(seq, *s);
                }
                report.resource_ids.push(rid.clone());
                prev = Some((seq, *hash));
                expected = seq + 1;
            }
            report.events = chain.events.len() as u64;
            report.last_seq = expected - 1;
            for cp in &chain.checkpoints {
                if keys.is_empty() {
                    assert!(!cp.note.contains("\n\n"), "chain {id}: checkpoint {} is signed", cp.size);
                } else {
                    cp.verify(keys).unwrap_or_else(|e| panic!("chain {id} checkpoint size {}: {e}", cp.size));
                }
                let hashes: Option<Vec<Digest>> = (1..=cp.size).map(|s| chain.events.get(&s).map(|e| e.0)).collect();
                if let Some(hashes) = hashes {
                    assert_eq!(
                        merkle_root(&hashes),
                        cp.root,
                        "chain {id}: checkpoint size {} has another root",
                        cp.size
                    );
                }
                report.checkpoints.push(cp.size);
            }
            report.checkpoints.sort_unstable();
            report.checkpoints.dedup();
            (id, report)
        })
        .collect()
}

/// The non-empty lines of `text`.
pub fn lines(text: &[u8]) -> Vec<&[u8]> {
    text.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect()
}

/// The format core's own verifier (`observer::integrity::TrailVerifier`, what `observer-trail verify` runs) over
/// `sources` (name, ordered, lines); without keys, signatures are skipped (roots are still checked).
pub fn trail_verifier(sources: &[(&str, bool, Vec<&[u8]>)], keys: &[NoteVerifier]) -> observer::integrity::TrailReport {
    let mut v = observer::integrity::TrailVerifier::new(keys.to_vec()).skip_signatures(keys.is_empty());
    for (name, ordered, lines) in sources {
        let s = v.add_source(name, *ordered);
        for line in lines {
            v.add_line(s, line);
        }
    }
    v.finish()
}

/// Panics with every finding unless the report is clean.
pub fn assert_clean(report: &observer::integrity::TrailReport) {
    let findings: Vec<String> = report
        .all_findings()
        .map(|f| format!("{} {:?} {:?}: {}", f.kind.as_str(), f.chain_id, f.seq, f.detail))
        .collect();
    assert!(report.ok && findings.is_empty(), "the trail verifier found:\n{}", findings.join("\n"));
}
