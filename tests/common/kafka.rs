//! Kafka helpers for the integration tests: the broker from `scripts/kafka-broker.sh`, and consumers that
//! `assign` partitions (the test broker's consumer groups are unreliable) and count by consuming.

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// The test broker's address; the test command starts it (`scripts/test.sh`).
pub fn bootstrap() -> String {
    std::env::var("KAFKA_BOOTSTRAP_SERVERS").expect(
        "KAFKA_BOOTSTRAP_SERVERS is not set: run the Kafka tests through scripts/test.sh, or start the broker with \
         `eval \"$(scripts/kafka-broker.sh start)\"`",
    )
}

/// The broker script.
pub fn broker_script() -> Command {
    let mut c = Command::new("bash");
    c.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/kafka-broker.sh"));
    c
}

/// Resumes the paused test broker when dropped: an outage test never leaves the shared broker paused, whatever
/// happened.
pub struct Resume;

impl Drop for Resume {
    fn drop(&mut self) {
        let _ = broker_script().arg("resume").status();
    }
}

/// One consumed message.
#[derive(Debug, Clone)]
pub struct Consumed {
    pub key: Option<String>,
    pub payload: serde_json::Value,
    pub headers: HashMap<String, String>,
    pub partition: i32,
    pub offset: i64,
}

/// Consumes `topic` from the beginning of every partition until `done` says so or `timeout` passes, and
/// returns every message read.
pub fn consume_until(
    bootstrap: &str,
    topic: &str,
    timeout: Duration,
    mut done: impl FnMut(&[Consumed]) -> bool,
) -> Vec<Consumed> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("observer-test-{}", uuid_like()))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("consumer");
    let deadline = Instant::now() + timeout;
    let partitions = loop {
        match consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) {
            Ok(m) => {
                let n = m.topics().iter().find(|t| t.name() == topic).map_or(0, |t| t.partitions().len());
                if n > 0 {
                    break n;
                }
            }
            Err(e) if Instant::now() > deadline => panic!("metadata for {topic}: {e}"),
            Err(_) => {}
        }
        assert!(Instant::now() < deadline, "topic {topic} has no partitions");
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p as i32, Offset::Beginning).expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let payload = m.payload().map(|p| serde_json::from_slice(p).unwrap_or(serde_json::Value::Null));
                let headers = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| {
                                (h.key.to_owned(), String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned())
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                out.push(Consumed {
                    key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                    payload: payload.unwrap_or(serde_json::Value::Null),
                    headers,
                    partition: m.partition(),
                    offset: m.offset(),
                });
                if out.len() % 1000 == 0 && done(&out) {
                    return out;
                }
            }
            Some(Err(e)) => eprintln!("consumer: {e}"),
            None => {
                if done(&out) {
                    return out;
                }
            }
        }
    }
    out
}

fn uuid_like() -> String {
    format!("{}-{:?}", std::process::id(), Instant::now())
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// This test binary's `observer::init` with Kafka to the test broker (audit topic `observer-test-audit`, default
/// trace and workflow topics, spool in a temporary directory), and the config it was given: its exporter is the
/// process's shared producer.
#[allow(dead_code)]
pub fn init_observer(service_name: &str) -> &'static observer::ObserverConfig {
    use std::sync::OnceLock;
    static INIT: OnceLock<(observer::ObserverConfig, observer::ObserverGuard, tempfile::TempDir)> = OnceLock::new();
    &INIT
        .get_or_init(|| {
            let spool = tempfile::tempdir().expect("spool dir");
            let config = observer::ObserverConfig {
                service_name: service_name.into(),
                audit_sink: observer::AuditSink::Memory(observer::export::MemorySink::new()),
                kafka: Some(observer::KafkaConfig {
                    bootstrap_servers: bootstrap(),
                    audit_topic: "observer-test-audit".into(),
                    spool_dir: Some(spool.path().to_owned()),
                    ..Default::default()
                }),
                ..Default::default()
            };
            let guard = observer::init(config.clone()).expect("init");
            (config, guard, spool)
        })
        .0
}

/// The messages of `topic` with key `key` (at least `expected` of them, waiting up to 60 s), in offset order.
#[allow(dead_code)]
pub fn consume_key(topic: &str, key: &str, expected: usize) -> Vec<Consumed> {
    let got = consume_until(&bootstrap(), topic, Duration::from_secs(60), |msgs| {
        msgs.iter().filter(|m| m.key.as_deref() == Some(key)).count() >= expected
    });
    let mut mine: Vec<Consumed> = got.into_iter().filter(|m| m.key.as_deref() == Some(key)).collect();
    mine.sort_by_key(|m| m.offset);
    mine
}
