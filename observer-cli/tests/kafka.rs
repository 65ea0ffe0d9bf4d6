//! `observer-trail verify --kafka-bootstrap … --topic …` (feature `kafka`; needs the test broker of
//! scripts/kafka-broker.sh): three chains spread over three partitions, with at-least-once duplicates, are
//! reassembled by seq and verify; an edited message fails naming chain, seq and kind.

mod common;

use common::{run, text, trail};
use observer::integrity::NoteSigner;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use std::process::Command;
use std::time::Duration;

fn bootstrap() -> String {
    std::env::var("KAFKA_BOOTSTRAP_SERVERS").expect(
        "KAFKA_BOOTSTRAP_SERVERS is not set: run through scripts/test.sh, or `eval \"$(bash scripts/kafka-broker.sh start)\"`",
    )
}

fn create_topic(name: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/kafka-broker.sh");
    let status = Command::new("bash").args([script, "create-topic", name, "3"]).status().expect("broker script");
    assert!(status.success(), "create-topic {name}");
}

fn produce(topic: &str, messages: &[(i32, String)]) {
    let producer: BaseProducer = ClientConfig::new().set("bootstrap.servers", bootstrap()).create().unwrap();
    for (partition, payload) in messages {
        let mut record: BaseRecord<'_, (), str> = BaseRecord::to(topic).partition(*partition).payload(payload.as_str());
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(50));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
}

fn topic_name(what: &str) -> String {
    format!("observer-trail-{what}-{}", std::process::id())
}

#[test]
fn chains_spread_over_partitions_with_duplicates_verify() {
    let signer = NoteSigner::generate("audit-kafka").unwrap();
    let key = signer.verifier().to_string();
    let topic = topic_name("clean");
    create_topic(&topic);
    let mut messages = Vec::new();
    for (c, id) in ["pod-a", "pod-b", "pod-c"].iter().enumerate() {
        let t = trail(id, 20, 6, &signer);
        for (i, line) in t.lines.iter().enumerate() {
            messages.push((((i + c) % 3) as i32, line.clone()));
        }
        // A spool replay after an outage: seq 3..=7 again, on another partition.
        for line in &t.lines[2..8] {
            messages.push(((c as i32 + 1) % 3, line.clone()));
        }
    }
    produce(&topic, &messages);
    let out =
        run(&["verify", "--key", &key, "--kafka-bootstrap", &bootstrap(), "--topic", &topic, "--kafka-timeout", "60"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    for id in ["pod-a", "pod-b", "pod-c"] {
        assert!(t.contains(&format!("chain {id}: 20 events (seq 1..20), 5 duplicates")), "{t}");
    }

    // The same topic plus one edited message.
    let topic = topic_name("edited");
    create_topic(&topic);
    let mut edited = messages.clone();
    let target = edited.iter().position(|(_, l)| l.contains("\"seq\":9,") && l.contains("pod-b")).unwrap();
    edited[target].1 = edited[target].1.replace("doc-9", "doc-0");
    produce(&topic, &edited);
    let out =
        run(&["verify", "--key", &key, "--kafka-bootstrap", &bootstrap(), "--topic", &topic, "--kafka-timeout", "60"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.lines().any(|l| l.trim_start().starts_with("chain pod-b seq 9: edit:")), "{t}");
}
