//! Verification speed of audit trails (`observer::integrity::TrailVerifier`, what `observer-trail verify` runs),
//! against a baseline measured in the same run: parsing the same lines with `serde_json` and nothing else.
//!
//! Target (issue "tamper-evident audit trail"): 1,000,000 events verified in under 10 s on the 2-core development
//! machine. Each iteration verifies a generated trail of `EVENTS` events (checkpoint every 1,000); throughput is
//! reported per event, so the projected time for 1M events is 1,000,000 / (events/s).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use observer::integrity::{
    append_integrity, event_hash, examine_line, ChainStart, Checkpoint, Digest, Integrity, MerkleTree, NoteSigner,
    TrailVerifier,
};
use observer::ResourceType;
use std::hint::black_box;

const EVENTS: u64 = 20_000;

fn trail(signer: &NoteSigner) -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    let mut prev = Digest::GENESIS;
    let mut tree = MerkleTree::new();
    for seq in 1..=EVENTS {
        let event = observer::audit::log_read(ResourceType::Document, format!("doc-{seq}"))
            .description("read of a patient record by the triage agent")
            .metadata("tokens", seq * 7)
            .metadata("cost_usd", 0.0012 * seq as f64)
            .peek()
            .clone();
        let mut line = serde_json::to_vec(&event).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&line).unwrap();
        let mut integrity = Integrity {
            chain_id: "bench-chain".into(),
            seq,
            prev_hash: prev,
            hash: None,
            start: (seq == 1).then_some(ChainStart::New),
        };
        let hash = event_hash(&value, &integrity).unwrap();
        integrity.hash = Some(hash);
        append_integrity(&mut line, &integrity).unwrap();
        lines.push(line);
        tree.push(&hash);
        prev = hash;
        if seq % 1000 == 0 {
            let cp = Checkpoint::sign("bench-chain", seq, tree.root(), "2026-11-29T16:00:00Z", signer).unwrap();
            lines.push(cp.to_json_line());
        }
    }
    lines
}

fn bench(c: &mut Criterion) {
    let signer = NoteSigner::generate("bench").unwrap();
    let lines = trail(&signer);
    let keys = vec![signer.verifier()];
    let mut group = c.benchmark_group("verify");
    group.sample_size(10);
    group.throughput(Throughput::Elements(EVENTS));
    group.bench_function("baseline: serde_json::from_slice only", |b| {
        b.iter(|| {
            for l in &lines {
                black_box(serde_json::from_slice::<serde_json::Value>(l).unwrap());
            }
        })
    });
    group.bench_function("examine_line (parse + canonical form + SHA-256), one thread", |b| {
        b.iter(|| {
            for l in &lines {
                black_box(examine_line(l));
            }
        })
    });
    group.bench_function("TrailVerifier, one thread (lines, chain, checkpoints, report)", |b| {
        b.iter_batched(
            || TrailVerifier::new(keys.clone()),
            |mut v| {
                let s = v.add_source("bench", true);
                for l in &lines {
                    v.add_line(s, l);
                }
                let report = v.finish();
                assert!(report.ok);
                report
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("TrailVerifier, lines examined on every core", |b| {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        b.iter_batched(
            || TrailVerifier::new(keys.clone()),
            |mut v| {
                let s = v.add_source("bench", true);
                let chunk = lines.len().div_ceil(threads);
                let examined: Vec<_> = std::thread::scope(|scope| {
                    let hs: Vec<_> = lines
                        .chunks(chunk)
                        .map(|part| scope.spawn(move || part.iter().map(|l| examine_line(l)).collect::<Vec<_>>()))
                        .collect();
                    hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
                });
                for e in examined {
                    v.add_examined(s, e);
                }
                let report = v.finish();
                assert!(report.ok);
                report
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
