//! Reading an audit topic directly (feature `kafka`): every partition from its beginning to its end (the consumer's
//! end-of-partition signal after the last message), bounded by `--kafka-timeout`.

use clap::Args;
use observer::integrity::TrailVerifier;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::time::{Duration, Instant};

use crate::{input, CliError};

/// Kafka options of `verify`.
#[derive(Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers: read `--topic` directly.
    #[arg(long, value_name = "HOST:PORT,...", requires = "topic")]
    kafka_bootstrap: Option<String>,
    /// The audit topic to read (every partition, from the beginning to the current end).
    #[arg(long, requires = "kafka_bootstrap")]
    topic: Option<String>,
    /// Give up reading after this many seconds (the report then says the topic was not read to its end).
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    kafka_timeout: u64,
    /// A librdkafka client property `name=value` (security.protocol, sasl.*, ssl.*; repeatable).
    #[arg(long = "kafka-property", value_name = "NAME=VALUE")]
    kafka_properties: Vec<String>,
}

/// Reads the topic into `verifier` (one unordered source per partition). `Ok(false)` when no topic was asked for.
pub fn read_topic(args: &KafkaArgs, verifier: &mut TrailVerifier) -> Result<bool, CliError> {
    let (Some(bootstrap), Some(topic)) = (&args.kafka_bootstrap, &args.topic) else {
        return Ok(false);
    };
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("observer-trail-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("fetch.wait.max.ms", "100");
    for p in &args.kafka_properties {
        let (k, v) =
            p.split_once('=').ok_or_else(|| CliError(format!("--kafka-property {p:?}: expected NAME=VALUE")))?;
        config.set(k, v);
    }
    let consumer: BaseConsumer = config.create().map_err(|e| CliError(format!("Kafka consumer: {e}")))?;
    let deadline = Instant::now() + Duration::from_secs(args.kafka_timeout);
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(30.min(args.kafka_timeout.max(1))))
        .map_err(|e| CliError(format!("metadata of topic {topic}: {e}")))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map(|t| t.partitions().iter().map(|p| p.id()).collect())
        .unwrap_or_default();
    if partitions.is_empty() {
        return Err(CliError(format!("topic {topic} does not exist or has no partitions")));
    }
    // (partition, low, high): read offsets low..high.
    let mut ends = Vec::new();
    let mut tpl = TopicPartitionList::new();
    for &p in &partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(30))
            .map_err(|e| CliError(format!("offsets of {topic}/{p}: {e}")))?;
        ends.push((p, low, high));
        tpl.add_partition_offset(topic, p, Offset::Offset(low)).map_err(|e| CliError(e.to_string()))?;
    }
    consumer.assign(&tpl).map_err(|e| CliError(format!("assign {topic}: {e}")))?;
    let sources: Vec<_> = partitions.iter().map(|p| verifier.add_source(&format!("{topic}/{p}"), false)).collect();
    let mut next: Vec<i64> = ends.iter().map(|e| e.1).collect();
    // A partition is read to its end when the consumer reported its end after the last message it returned
    // (watermarks alone can under-count on some brokers).
    let mut at_end = vec![false; partitions.len()];
    let mut batches: Vec<Vec<Vec<u8>>> = vec![Vec::new(); partitions.len()];
    while at_end.iter().any(|e| !e) {
        if Instant::now() > deadline {
            // A topic that keeps growing: enough once every partition passed the end it had when reading started.
            if next.iter().zip(&ends).all(|(n, e)| *n >= e.2) {
                eprintln!("observer-trail: topic {topic} kept growing; verified what was read within --kafka-timeout");
                break;
            }
            let left: i64 = next.iter().zip(&ends).map(|(n, e)| (e.2 - n).max(0)).sum();
            return Err(CliError(format!(
                "topic {topic}: not read to its end within --kafka-timeout {}s (at least {left} message(s) left)",
                args.kafka_timeout
            )));
        }
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let Some(i) = partitions.iter().position(|p| *p == m.partition()) else { continue };
                next[i] = m.offset() + 1;
                at_end[i] = false;
                batches[i].push(m.payload().unwrap_or_default().to_vec());
                if batches[i].len() >= 8192 {
                    input::add_batch(verifier, sources[i], &batches[i]);
                    batches[i].clear();
                }
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                if let Some(i) = partitions.iter().position(|q| *q == p) {
                    at_end[i] = true;
                }
            }
            Some(Err(e)) => return Err(CliError(format!("reading {topic}: {e}"))),
            None => {}
        }
    }
    for (i, batch) in batches.iter().enumerate() {
        input::add_batch(verifier, sources[i], batch);
    }
    Ok(true)
}
