//! The tamper-evident trail on Kafka (test broker): three producers in one topic, and a broker outage whose spool
//! replay delivers duplicates, verify clean (events of a chain spread over partitions are put back in order by
//! sequence number).

mod common;

use std::time::{Duration, Instant};

use common::kafka::{bootstrap, broker_script, consume_until, Consumed, Resume};
use common::trail;
use observer::export::{self, MemorySink, Pipeline};
use observer::integrity::NoteSigner;
use observer::{
    audit, AuditSink, IntegrityConfig, KafkaConfig, ObserverConfig, ResourceType, Secret, SigningKeySource,
};

fn pipeline(topic: &str, key: &NoteSigner, spool: &std::path::Path, kafka: KafkaConfig) -> Pipeline {
    Pipeline::new(ObserverConfig {
        service_name: "chain-kafka".into(),
        audit_sink: AuditSink::Memory(MemorySink::new()),
        kafka: Some(KafkaConfig {
            bootstrap_servers: bootstrap(),
            audit_topic: topic.into(),
            spool_dir: Some(spool.to_owned()),
            ..kafka
        }),
        integrity: IntegrityConfig {
            enabled: true,
            checkpoint_every: 500,
            signing_key: Some(SigningKeySource::Value(Secret::new(key.private_key_string()))),
            ..Default::default()
        },
        ..Default::default()
    })
    .expect("pipeline")
}

fn emit(p: &Pipeline, prefix: &str, range: std::ops::Range<usize>) {
    export::with_pipeline_sync(p, || {
        for i in range {
            audit::log_create(ResourceType::Document, format!("{prefix}-{i}")).emit().expect("queued");
        }
    });
}

/// Consumes `topic` until `chains` chains each have `n` distinct events and a checkpoint of size `n`.
fn consume_chains(topic: &str, chains: usize, n: u64) -> Vec<Consumed> {
    consume_until(&bootstrap(), topic, Duration::from_secs(180), |msgs| {
        let mut per_chain: std::collections::HashMap<&str, (std::collections::HashSet<u64>, bool)> = Default::default();
        for m in msgs {
            if m.payload["record_type"] == "checkpoint" {
                let id = m.payload["chain_id"].as_str().unwrap_or_default();
                per_chain.entry(id).or_default().1 |= m.payload["size"].as_u64() == Some(n);
            } else if let (Some(id), Some(seq)) =
                (m.payload["integrity"]["chain_id"].as_str(), m.payload["integrity"]["seq"].as_u64())
            {
                per_chain.entry(id).or_default().0.insert(seq);
            }
        }
        per_chain.len() == chains && per_chain.values().all(|(seqs, last)| seqs.len() as u64 == n && *last)
    })
}

/// A topic of its own for this run (the test broker keeps topics while it runs).
fn fresh_topic(name: &str) -> String {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    let topic = format!("{name}-{since}");
    assert!(broker_script().args(["create-topic", &topic]).status().unwrap().success(), "creating {topic}");
    topic
}

fn payloads(msgs: &[Consumed]) -> Vec<Vec<u8>> {
    msgs.iter().map(|m| serde_json::to_vec(&m.payload).expect("json")).collect()
}

#[test]
fn three_producers_in_one_topic_verify_clean() {
    let topic = fresh_topic("observer-test-chain-three");
    let topic = topic.as_str();
    let key = NoteSigner::generate("kafka-chain-key").unwrap();
    const N: usize = 700;
    let spools: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let pipelines: Vec<Pipeline> =
        spools.iter().map(|s| pipeline(topic, &key, s.path(), KafkaConfig::default())).collect();
    std::thread::scope(|s| {
        for (k, p) in pipelines.iter().enumerate() {
            s.spawn(move || emit(p, &format!("p{k}"), 0..N));
        }
    });
    for p in pipelines {
        p.shutdown().unwrap();
    }
    let msgs = consume_chains(topic, 3, N as u64);
    let partitions: std::collections::HashSet<i32> = msgs.iter().map(|m| m.partition).collect();
    assert!(partitions.len() > 1, "the events are spread over partitions: {partitions:?}");
    let lines = payloads(&msgs);
    let chains = trail::verify(lines.iter().map(Vec::as_slice), &[key.verifier()]);
    let report = trail::trail_verifier(&[(topic, false, lines.iter().map(Vec::as_slice).collect())], &[key.verifier()]);
    trail::assert_clean(&report);
    assert_eq!(chains.len(), 3, "{chains:#?}");
    for (id, chain) in &chains {
        assert_eq!((chain.events, chain.last_seq), (N as u64, N as u64), "{id}");
        assert!(chain.gaps.is_empty(), "{id}: {:?}", chain.gaps);
        assert_eq!(chain.checkpoints, [500, N as u64], "{id}");
    }
    let checkpoint = msgs.iter().find(|m| m.payload["record_type"] == "checkpoint").unwrap();
    assert_eq!(checkpoint.headers.get("record_type").map(String::as_str), Some("checkpoint"));
    assert_eq!(
        checkpoint.key.as_deref(),
        Some(format!("checkpoint:{}", checkpoint.payload["chain_id"].as_str().unwrap()).as_str())
    );
}

/// The broker is paused mid-stream (longer than the message timeout): the undelivered events go through the spool
/// and are replayed, some twice (at-least-once). Duplicates are the same bytes, so the chain verifies clean.
#[test]
fn duplicates_after_a_broker_outage_verify_clean() {
    const N: usize = 6000;
    let topic = fresh_topic("observer-test-chain-outage");
    let topic = topic.as_str();
    let key = NoteSigner::generate("outage-key").unwrap();
    let spool = tempfile::tempdir().unwrap();
    // The process's pipeline (its shared exporter's spool is observable through `observer::kafka_exporter`).
    let guard = observer::init(ObserverConfig {
        service_name: "chain-outage".into(),
        audit_sink: AuditSink::Memory(MemorySink::new()),
        kafka: Some(KafkaConfig {
            bootstrap_servers: bootstrap(),
            audit_topic: topic.into(),
            spool_dir: Some(spool.path().to_owned()),
            // Short, so that the outage outlasts librdkafka's retries and the spool does the work.
            message_timeout: Duration::from_secs(3),
            ..Default::default()
        }),
        integrity: IntegrityConfig {
            enabled: true,
            checkpoint_every: 500,
            signing_key: Some(SigningKeySource::Value(Secret::new(key.private_key_string()))),
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap();
    let emit = |prefix: &str, range: std::ops::Range<usize>| {
        for i in range {
            audit::log_create(ResourceType::Document, format!("{prefix}-{i}")).emit().expect("queued");
        }
    };
    emit("before", 0..N / 3);
    observer::flush(Duration::from_secs(30)).unwrap();
    assert!(broker_script().arg("pause").status().unwrap().success(), "pausing the broker");
    let resume = Resume;
    emit("during", N / 3..2 * N / 3);
    // Longer than message_timeout: the messages fail and are spooled.
    std::thread::sleep(Duration::from_secs(5));
    drop(resume);
    emit("after", 2 * N / 3..N);

    let exporter = observer::kafka_exporter().unwrap();
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let _ = observer::flush(Duration::from_secs(10));
        let s = exporter.stats();
        if (s.spool_records == 0 && s.in_flight == 0) || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let kafka = exporter.stats();
    assert!(kafka.spooled > 0, "the outage sent events through the spool: {kafka:?}");
    assert_eq!(kafka.spool_records, 0, "{kafka:?}");
    let stats = observer::stats().unwrap();
    assert_eq!((stats.accepted, stats.written, stats.failed), (N as u64, N as u64, 0), "{stats:?}");
    drop(guard);

    let msgs = consume_chains(topic, 1, N as u64);
    let lines = payloads(&msgs);
    let chains = trail::verify(lines.iter().map(Vec::as_slice), &[key.verifier()]);
    let chain = chains.values().next().unwrap();
    let report = trail::trail_verifier(&[(topic, false, lines.iter().map(Vec::as_slice).collect())], &[key.verifier()]);
    trail::assert_clean(&report);
    assert_eq!(report.chains[0].duplicates, chain.duplicates, "both verifiers count the same duplicates");
    eprintln!("{} messages, {} events, {} duplicates", msgs.len(), chain.events, chain.duplicates);
    assert_eq!((chain.events, chain.last_seq), (N as u64, N as u64));
    assert!(chain.gaps.is_empty(), "{:?}", chain.gaps);
    assert_eq!(chain.checkpoints.last(), Some(&(N as u64)));
}
