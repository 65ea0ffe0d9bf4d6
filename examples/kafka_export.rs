//! Kafka export with the durable spool. Emits N audit events (default 10) and one custom event, drops the
//! init guard (which waits for acknowledgements, then spools whatever is left), and reports what happened.
//! Run it again with N = 0 to deliver what an earlier run left in the spool.
//!
//! ```sh
//! eval "$(scripts/kafka-broker.sh start)"          # a local test broker
//! KAFKA_AUDIT_TOPIC=audit-events OBSERVER_SPOOL_DIR=/tmp/observer-spool \
//!     cargo run --example kafka_export --features kafka -- 1000
//! ```

use std::time::Duration;

use observer::{audit, AuditSink, KafkaConfig, ObserverConfig, ResourceType};
use serde_json::json;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = match std::env::args().nth(1) {
        Some(a) => a.parse().map_err(|e| format!("N must be a number: {e}"))?,
        None => 10,
    };
    // KAFKA_BOOTSTRAP_SERVERS, KAFKA_AUDIT_TOPIC, OBSERVER_SPOOL_DIR, ... come from the environment.
    let kafka = KafkaConfig::from_env()?;
    let guard = observer::init(ObserverConfig {
        service_name: "kafka-export-example".into(),
        kafka: Some(kafka.clone()),
        audit_sink: AuditSink::None, // Kafka only
        flush_timeout: Duration::from_secs(10),
        ..Default::default()
    })?;
    // SIGTERM / Ctrl-C while a large N is emitted: drain (acknowledged or spooled) before exiting.
    observer::shutdown_on_signals()?;
    let exporter = observer::kafka_exporter().ok_or("Kafka is enabled, so there is an exporter")?;
    let before = exporter.stats();
    println!(
        "broker {} topic {}; spool {} holds {} events from earlier runs",
        kafka.bootstrap_servers,
        kafka.audit_topic,
        kafka.spool_dir.as_deref().unwrap_or(std::path::Path::new(KafkaConfig::DEFAULT_SPOOL_DIR)).display(),
        before.spool_records
    );

    for i in 0..n {
        audit::log_create(ResourceType::Document, format!("doc-{i}")).resource_name(format!("Document {i}")).emit()?;
    }
    let accepted =
        exporter.export_custom_event("custom-events", "my-key", &json!({"event_type": "custom", "data": {"n": n}}))?;
    println!("custom event accepted: {accepted:?}");

    if n == 0 {
        // Give the background thread a moment to re-send what the spool held.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while exporter.stats().spool_records > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    drop(guard); // waits for acknowledgements (bounded), spools the rest
    let s = exporter.stats();
    println!(
        "emitted {n} audit events + 1 custom event: {} acknowledged by the broker ({} of them re-sent from the spool), \
         {} left in the spool, {} could not be spooled",
        s.acknowledged, s.replayed, s.spool_records, s.spool_overflow
    );
    Ok(())
}
