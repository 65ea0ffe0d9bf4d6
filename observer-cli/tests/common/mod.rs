//! Trails for the verifier tests, built with `observer::integrity` (what the producer does, event by event), and
//! running the `observer-trail` binary.
#![allow(dead_code)]

use observer::integrity::{
    append_integrity, event_hash, ChainStart, Checkpoint, Digest, Integrity, MerkleTree, NoteSigner,
};
use observer::ResourceType;
use std::path::Path;
use std::process::{Command, Output};

/// One chain's lines: events and checkpoints, in write order.
pub struct Trail {
    pub chain_id: String,
    pub lines: Vec<String>,
    pub event_ids: Vec<String>,
    pub hashes: Vec<Digest>,
}

/// `n` audit events of chain `chain_id` with a checkpoint after every `every` events and after the last.
pub fn trail(chain_id: &str, n: u64, every: u64, signer: &NoteSigner) -> Trail {
    let mut t = Trail { chain_id: chain_id.into(), lines: Vec::new(), event_ids: Vec::new(), hashes: Vec::new() };
    let mut prev = Digest::GENESIS;
    let mut tree = MerkleTree::new();
    for seq in 1..=n {
        let builder = observer::audit::log_read(ResourceType::Document, format!("doc-{seq}"))
            .description(format!("read number {seq} of patient record \u{e9}"))
            .metadata("n", seq)
            .metadata("ratio", 0.5 + seq as f64);
        let event = builder.peek().clone();
        let mut line = serde_json::to_vec(&event).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&line).unwrap();
        let mut integrity = Integrity {
            chain_id: chain_id.into(),
            seq,
            prev_hash: prev,
            hash: None,
            start: (seq == 1).then_some(ChainStart::New),
        };
        let hash = event_hash(&value, &integrity).unwrap();
        integrity.hash = Some(hash);
        append_integrity(&mut line, &integrity).unwrap();
        t.lines.push(String::from_utf8(line).unwrap());
        t.event_ids.push(event.event_id.clone());
        t.hashes.push(hash);
        tree.push(&hash);
        prev = hash;
        if seq % every == 0 || seq == n {
            let cp = Checkpoint::sign(chain_id, seq, tree.root(), "2026-11-29T16:00:00Z", signer).unwrap();
            t.lines.push(String::from_utf8(cp.to_json_line()).unwrap());
        }
    }
    t
}

/// Writes lines to a file (one per line).
pub fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).unwrap();
}

/// Runs `observer-trail` with `args`.
pub fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_observer-trail")).args(args).output().expect("run observer-trail")
}

/// stdout + stderr of a run.
pub fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The index of the line of the event `seq` (the first one).
pub fn seq_line(lines: &[String], seq: u64) -> usize {
    let needle = format!("\"seq\":{seq},");
    lines
        .iter()
        .position(|l| !l.contains("\"record_type\":\"checkpoint\"") && l.contains(&needle))
        .unwrap_or_else(|| panic!("no event seq {seq}"))
}

/// The index of the first checkpoint line of size `size`.
pub fn checkpoint_line(lines: &[String], size: u64) -> usize {
    let needle = format!("\"size\":{size},");
    lines
        .iter()
        .position(|l| l.contains("\"record_type\":\"checkpoint\"") && l.contains(&needle))
        .unwrap_or_else(|| panic!("no checkpoint of size {size}"))
}
