//! The librdkafka side of the exporter: its client configuration, creating a producer, purging one, asking the
//! cluster about a topic.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::producer::{BaseProducer, Producer, PurgeConfig};

use super::delivery::{ExportContext, Shared};
use crate::config::{KafkaConfig, SecurityProtocol};
use crate::error::ExporterError;

/// The librdkafka properties for `config`. Holds the SASL password: never log it.
pub(super) fn client_config(config: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.bootstrap_servers)
        .set("client.id", &config.client_id)
        .set("acks", &config.acks)
        .set("retries", config.retries.to_string())
        .set("retry.backoff.ms", config.retry_backoff.as_millis().to_string())
        .set("batch.size", config.batch_size.to_string())
        .set("linger.ms", config.linger.as_millis().to_string())
        .set("compression.type", config.compression.as_str())
        .set("enable.idempotence", config.enable_idempotence.to_string())
        .set("message.timeout.ms", config.message_timeout.as_millis().to_string())
        .set("security.protocol", config.effective_security_protocol().as_str());
    if let Some(m) = config.effective_sasl_mechanism() {
        c.set("sasl.mechanism", m.as_str());
    }
    if let Some(u) = &config.sasl_username {
        c.set("sasl.username", u);
    }
    if let Some(p) = &config.sasl_password {
        c.set("sasl.password", p.expose());
    }
    if let Some(ca) = &config.ssl_ca_location {
        c.set("ssl.ca.location", ca.to_string_lossy());
    }
    if matches!(config.effective_security_protocol(), SecurityProtocol::Ssl | SecurityProtocol::SaslSsl) {
        c.set("ssl.endpoint.identification.algorithm", "https");
    }
    c
}

pub(super) fn new_producer(
    config: &KafkaConfig,
    shared: &Arc<Shared>,
) -> Result<BaseProducer<ExportContext>, ExporterError> {
    client_config(config)
        .set_log_level(RDKafkaLogLevel::Warning)
        .create_with_context(ExportContext { shared: shared.clone() })
        .map_err(ExporterError::ProducerCreation)
}

/// Purges what `producer` still holds; the purged messages come back as failed delivery reports and are
/// collected for the spool.
pub(super) fn purge_into_spool(producer: &BaseProducer<ExportContext>) {
    if producer.in_flight_count() > 0 {
        producer.purge(PurgeConfig::default().queue().inflight());
        let deadline = Instant::now() + Duration::from_secs(5);
        while producer.in_flight_count() > 0 && Instant::now() < deadline {
            producer.poll(Duration::from_millis(10));
        }
    }
    producer.poll(Duration::ZERO);
}

pub(super) fn check_topic(
    producer: &BaseProducer<ExportContext>,
    topic: &str,
    timeout: Duration,
) -> Result<(), ExporterError> {
    let metadata = producer
        .client()
        .fetch_metadata(Some(topic), timeout)
        .map_err(|source| ExporterError::TopicMetadata { topic: topic.to_owned(), source })?;
    match metadata.topics().iter().find(|t| t.name() == topic) {
        Some(t) if t.error().is_none() && !t.partitions().is_empty() => Ok(()),
        _ => Err(ExporterError::UnknownTopic(topic.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{SaslMechanism, Secret};
    use crate::export::KafkaExporter;

    #[test]
    fn every_setting_reaches_librdkafka() {
        let config = KafkaConfig {
            bootstrap_servers: "k1:9093,k2:9093".into(),
            client_id: "my-service-producer".into(),
            security_protocol: SecurityProtocol::SaslSsl,
            sasl_mechanism: Some(SaslMechanism::ScramSha512),
            sasl_username: Some("user".into()),
            sasl_password: Some(Secret::new("hunter2")),
            ssl_ca_location: Some("/etc/ssl/ca.pem".into()),
            acks: "all".into(),
            retries: 7,
            retry_backoff: Duration::from_millis(250),
            batch_size: 32_768,
            linger: Duration::from_millis(9),
            compression: crate::config::Compression::Zstd,
            ..Default::default()
        };
        let c = client_config(&config);
        for (k, v) in [
            ("bootstrap.servers", "k1:9093,k2:9093"),
            ("client.id", "my-service-producer"),
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", "user"),
            ("sasl.password", "hunter2"),
            ("ssl.ca.location", "/etc/ssl/ca.pem"),
            ("acks", "all"),
            ("retries", "7"),
            ("retry.backoff.ms", "250"),
            ("batch.size", "32768"),
            ("linger.ms", "9"),
            ("compression.type", "zstd"),
            ("enable.idempotence", "true"),
            ("message.timeout.ms", "30000"),
        ] {
            assert_eq!(c.get(k), Some(v), "{k}");
        }
        // The guide's settings (username and password only) reach librdkafka as SASL_SSL with PLAIN.
        let guide = client_config(&KafkaConfig {
            sasl_username: Some("user".into()),
            sasl_password: Some(Secret::new("pass")),
            ..Default::default()
        });
        assert_eq!(guide.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(guide.get("sasl.mechanism"), Some("PLAIN"));
        assert_eq!(guide.get("ssl.endpoint.identification.algorithm"), Some("https"));
        assert_eq!(client_config(&KafkaConfig::default()).get("sasl.mechanism"), None);
        // librdkafka accepts the whole set (SSL and SASL are compiled in).
        let dir = std::env::temp_dir().join(format!("observer-kafka-unit-{}", std::process::id()));
        let exporter =
            KafkaExporter::new(KafkaConfig { spool_dir: Some(dir.clone()), ssl_ca_location: None, ..config })
                .expect("producer");
        let shown = format!("{exporter:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        exporter.shutdown(Duration::from_secs(1)).expect("shutdown");
        let _ = std::fs::remove_dir_all(dir);
    }
}
