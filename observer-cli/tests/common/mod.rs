//! Trails for the verifier tests: written by the real pipeline (`pipeline_trail`), or built with
//! `observer::integrity` event by event (`trail`, for chain ids and shapes a test needs exactly); and running the
//! `observer-trail` binary.
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
    lines
        .iter()
        .position(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap_or_default();
            v.get("record_type").is_none() && v["integrity"]["seq"].as_u64() == Some(seq)
        })
        .unwrap_or_else(|| panic!("no event seq {seq}"))
}

/// The index of the first checkpoint line of size `size`.
pub fn checkpoint_line(lines: &[String], size: u64) -> usize {
    lines
        .iter()
        .position(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap_or_default();
            v["record_type"] == "checkpoint" && v["size"].as_u64() == Some(size)
        })
        .unwrap_or_else(|| panic!("no checkpoint of size {size}"))
}

/// `n` audit events written by the real pipeline (`observer::export::Pipeline`, file sink, chain on, a checkpoint after
/// every `every` events and at shutdown, signed by `signer`) into a file of its own in `dir`; the file's lines.
pub fn pipeline_trail(dir: &Path, n: u64, every: u64, signer: &NoteSigner) -> Trail {
    use observer::{AuditSink, IntegrityConfig, ObserverConfig, Secret, SigningKeySource};
    static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let k = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let file = dir.join(format!("producer-{k}.jsonl"));
    let pipeline = observer::export::Pipeline::new(ObserverConfig {
        service_name: "trail-test".into(),
        audit_sink: AuditSink::file(&file),
        integrity: IntegrityConfig {
            enabled: true,
            checkpoint_every: every,
            signing_key: Some(SigningKeySource::Value(Secret::new(signer.private_key_string()))),
            ..Default::default()
        },
        ..Default::default()
    })
    .expect("pipeline");
    observer::export::with_pipeline_sync(&pipeline, || {
        for seq in 1..=n {
            observer::audit::log_read(ResourceType::Document, format!("doc-{seq}"))
                .description(format!("read number {seq} of patient record \u{e9}"))
                .metadata("n", seq)
                .metadata("ratio", 0.5 + seq as f64)
                .emit()
                .expect("queued");
        }
    });
    pipeline.shutdown().expect("shutdown");
    let text = std::fs::read_to_string(&file).expect("audit file");
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut t = Trail { chain_id: String::new(), lines, event_ids: Vec::new(), hashes: Vec::new() };
    for line in &t.lines {
        let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        if v.get("record_type").is_some() {
            continue;
        }
        let integrity = observer::integrity::read_integrity(&v).expect("a chained event");
        t.chain_id = integrity.chain_id.clone();
        t.event_ids.push(v["event_id"].as_str().unwrap().to_owned());
        t.hashes.push(integrity.hash.unwrap());
    }
    assert_eq!(t.event_ids.len() as u64, n, "every event in the file");
    t
}
