//! Audit sinks in OCSF and FHIR R4 `AuditEvent` format: the output of every audit helper (and every event type,
//! action, outcome and severity, with and without an actor) is checked by independent validators
//! (`scripts/check-audit-formats.py`: the OCSF JSON Schema of `ocsf-json-schema` with `jsonschema`, the
//! `pydantic-ocsf` models; `fhirclient`'s FHIR 4.0.1 models and `fhir.resources`' R4B models), and a file sink in
//! OCSF format writes one OCSF object per line.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use observer::export::{self, MemorySink, Pipeline, Record, Sink};
use observer::{
    audit, ActorContext, AuditAction, AuditEvent, AuditEventType, AuditFormat, AuditOutcome, AuditSeverity, AuditSink,
    ChangeRecord, ExporterError, ObserverConfig, ResourceType,
};

/// The Python with the checkers (`OBSERVER_PYTHON`, from `scripts/python-env.sh`; else `python3`).
fn python() -> String {
    std::env::var("OBSERVER_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Runs the independent validators over `lines` (one record each) and returns how many they found valid.
fn validate(format: &str, lines: &[serde_json::Value]) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{format}.jsonl"));
    let mut f = std::fs::File::create(&path).unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
    drop(f);
    validate_file(format, &path)
}

fn validate_file(format: &str, path: &Path) -> usize {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/check-audit-formats.py");
    let out =
        Command::new(python()).arg(script).arg(format).arg(path).output().unwrap_or_else(|e| {
            panic!("cannot run {} ({e}): set OBSERVER_PYTHON, see scripts/python-env.sh", python())
        });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => stdout.lines().filter(|l| l.starts_with("ok line")).count(),
        Some(3) => panic!(
            "the {format} validators are not installed: {stderr}\n(run `eval \"$(bash scripts/python-env.sh)\"; export \
             OBSERVER_PYTHON`; scripts/test.sh does)"
        ),
        _ => panic!("{format} output rejected by the independent validators:\n{stdout}\n{stderr}"),
    }
}

/// A patient reference as the SDK writes it (a keyed hash), without needing the key.
fn patient_ref(i: usize) -> audit::PatientRef {
    audit::PatientRef::parse(&format!("{}{:064x}", audit::PATIENT_REF_PREFIX, i + 1)).expect("a patient reference")
}

fn full_actor() -> ActorContext {
    ActorContext {
        name: Some("Dr. Alice Example".into()),
        username: Some("alice".into()),
        groups: vec!["cardiology".into()],
        tenant_id: Some("tenant-1".into()),
        organization_id: Some("org-7".into()),
        ..ActorContext::new("user-123")
            .email("alice@example.com")
            .roles(["clinician", "admin"])
            .session_id("sess-9")
            .ip_address("10.1.2.3")
            .user_agent("Mozilla/5.0")
    }
}

#[observer::audit(create, Document, id = ret.id)]
fn create_document(title: &str) -> Result<Doc, std::io::Error> {
    Ok(Doc { id: format!("doc-{}", title.len()) })
}

#[observer::audit(delete, File, id = path)]
fn delete_file(path: &str) -> Result<(), std::io::Error> {
    Err(std::io::Error::other(format!("cannot delete {path}")))
}

struct Doc {
    id: String,
}

/// Emits one event of every helper, and every event type × action, outcome, severity; returns them.
fn emit_everything() -> Vec<Arc<AuditEvent>> {
    let mut events = Vec::new();
    let logger = observer::get_audit_logger();
    observer::actor::with_actor_sync(full_actor(), || {
        events.push(
            audit::log_create(ResourceType::Document, "doc-1")
                .resource_name("Project Proposal")
                .description("Created new project proposal document")
                .metadata("department", "cardiology")
                .emit()
                .unwrap(),
        );
        events.push(audit::log_read(ResourceType::Document, "doc-1").emit().unwrap());
        events.push(
            audit::log_update(ResourceType::Document, "doc-1")
                .changes([ChangeRecord::new("title", "Draft", "Final"), ChangeRecord::new("pages", 3, 4)])
                .emit()
                .unwrap(),
        );
        events.push(audit::log_delete(ResourceType::Document, "doc-1").emit().unwrap());
        events.push(
            audit::log_llm_interaction("openai", "gpt-4o")
                .flow_id("flow-1")
                .session_id("sess-9")
                .input_tokens(1000)
                .output_tokens(500)
                .cost(0.0125)
                .prompt_summary("summarise the note")
                .response_summary("a summary")
                .emit()
                .unwrap(),
        );
        events.push(
            audit::log_data_export(ResourceType::Dataset, "patients-2024")
                .export_format("CSV")
                .record_count(1500)
                .destination("s3://exports/patients.csv")
                .reason("quarterly report")
                .emit()
                .unwrap(),
        );
        events.push(audit::log_logout("user-123").emit().unwrap());
        // Disclosures: every purpose (with and without an HL7 code), with and without the optional fields.
        for (i, purpose) in audit::PurposeOfUse::ALL.iter().enumerate() {
            let mut b = audit::log_disclosure(ResourceType::Document, format!("chart-{i}"))
                .recipient("Acme Insurance")
                .purpose_of_use(*purpose)
                .patient_ref(patient_ref(i));
            if i % 2 == 0 {
                b = b
                    .data_categories(["diagnoses", "lab_results"])
                    .retention_days(2190)
                    .compliance_frameworks(["HIPAA", "GDPR"])
                    .immutable(true);
            }
            events.push(b.emit().unwrap());
        }
        create_document("Quarterly report").unwrap();
        delete_file("/tmp/x").unwrap_err();
    });
    // Login without an actor in context: the user logging in is the actor; a failed one with reason, IP, agent.
    events.push(audit::log_login("user-123").emit().unwrap());
    events.push(
        audit::log_login("mallory")
            .success(false)
            .reason("Invalid password")
            .ip_address("2001:db8::1")
            .user_agent("curl/8")
            .emit()
            .unwrap(),
    );
    // Every event type × every action, no actor / system / service actors, every outcome and severity.
    let actors = [None, Some(ActorContext::system()), Some(ActorContext::service("payment-service"))];
    let mut i = 0;
    for ty in AuditEventType::ALL {
        for action in AuditAction::ALL {
            let outcome = AuditOutcome::ALL[i % AuditOutcome::ALL.len()];
            let severity = AuditSeverity::ALL[i % AuditSeverity::ALL.len()];
            let mut b = logger.log(*ty, *action, ResourceType::ALL[i % ResourceType::ALL.len()], format!("r-{i}"));
            b = b.outcome(outcome).severity(severity).metadata("n", i as u64);
            if let Some(a) = actors[i % actors.len()].clone() {
                b = b.actor(a);
            }
            events.push(b.emit().unwrap());
            i += 1;
        }
    }
    // A built event with a trace, an unknown resource id, an invalid e-mail and an unparsable IP.
    let mut e = AuditEvent::new(AuditEventType::DataAccess, AuditAction::Read, ResourceType::Api, "");
    e.trace_id = Some("0af7651916cd43dd8448eb211c80319c".into());
    e.span_id = Some("b7ad6b7169203331".into());
    e.actor = Some(Arc::new(ActorContext::new("u").email("not an e-mail").ip_address("somewhere")));
    events.push(logger.log_event(e).unwrap());
    events
}

fn pipeline(audit_format: AuditFormat, extra: Vec<Arc<dyn Sink>>) -> (Pipeline, MemorySink) {
    let sink = MemorySink::new();
    let pipeline = Pipeline::new(ObserverConfig {
        service_name: "formats-test".into(),
        service_version: "2.0.0".into(),
        environment: "test".into(),
        audit_sink: AuditSink::Memory(sink.clone()),
        audit_format,
        extra_sinks: extra,
        ..Default::default()
    })
    .unwrap();
    (pipeline, sink)
}

#[test]
fn every_helper_in_ocsf_and_fhir_passes_the_independent_validators() {
    let fhir = MemorySink::new().in_format(AuditFormat::Fhir);
    let json = MemorySink::new();
    let (pipeline, ocsf) = pipeline(AuditFormat::Ocsf, vec![Arc::new(fhir.clone()), Arc::new(json.clone())]);
    let emitted = export::with_pipeline_sync(&pipeline, emit_everything);
    pipeline.flush(Duration::from_secs(10)).unwrap();
    // What the sinks got: the emitted events and the two of `#[audit]` functions.
    let events = ocsf.events();
    assert_eq!(events.len(), emitted.len() + 2);
    assert!(emitted.iter().all(|e| events.iter().any(|r| r.event_id == e.event_id)));
    assert!(events.len() >= 100, "{}", events.len());

    let o = ocsf.output();
    let f = fhir.output();
    assert_eq!((o.len(), f.len(), json.len()), (events.len(), events.len(), events.len()));
    // Each sink got its own format; the guide JSON is still what every sink's `json` holds.
    assert_eq!(json.output(), json.json());
    assert_eq!(ocsf.json(), json.json());
    for ((e, o), f) in events.iter().zip(&o).zip(&f) {
        assert_eq!(o["metadata"]["uid"], e.event_id.as_str());
        assert_eq!(f["extension"][0]["extension"][0]["valueString"], e.event_id.as_str());
    }
    assert_eq!(validate("ocsf", &o), events.len());
    assert_eq!(validate("fhir", &f), events.len());

    // Spot checks of the mapping (the validators check the shape, these the meaning).
    let login_failed = &o[events.iter().position(|e| e.resource_id == "mallory").unwrap()];
    assert_eq!((login_failed["class_uid"].as_u64(), login_failed["type_uid"].as_u64()), (Some(3002), Some(300201)));
    assert_eq!(login_failed["status_id"], 2);
    assert_eq!(login_failed["status_detail"], "Invalid password");
    // The client's IP is personal data: the default redaction masks it in the event, so it is no `ip_t` any more.
    let guide = &json.json()[events.iter().position(|e| e.resource_id == "mallory").unwrap()];
    assert_ne!(guide["metadata"]["ip_address"], "2001:db8::1", "redacted: {guide}");
    assert!(login_failed.get("src_endpoint").is_none(), "{login_failed}");
    assert!(!login_failed.to_string().contains("2001:db8::1"), "{login_failed}");
    let export = events.iter().position(|e| e.action == AuditAction::Export).unwrap();
    assert_eq!(o[export]["activity_name"], "Export");
    assert_eq!(o[export]["dst_endpoint"]["svc_name"], "s3://exports/patients.csv");
    assert_eq!(f[export]["type"]["code"], "110106");
    assert_eq!(f[export]["entity"][1]["role"]["code"], "16", "the destination is a Data Destination entity");
    let create = &f[0];
    assert_eq!((create["action"].as_str(), create["subtype"][0]["code"].as_str()), (Some("C"), Some("create")));
    assert_eq!(create["agent"][0]["who"]["identifier"]["value"], "user-123");
    assert_eq!(create["agent"][0]["role"][0]["text"], "clinician");
    assert_eq!(create["source"]["observer"]["display"], "formats-test 2.0.0");
    assert_eq!(o[0]["actor"]["user"]["email_addr"], "alice@example.com");
    assert_eq!(o[0]["actor"]["session"]["uid"], "sess-9");
    let failed_macro = events.iter().position(|e| e.resource_id == "/tmp/x").unwrap();
    assert_eq!(f[failed_macro]["outcome"], "4");
    let disclosure = events.iter().position(|e| e.recipient.is_some() && e.retention_days.is_some()).unwrap();
    let purpose = events[disclosure].purpose_of_use.unwrap();
    assert_eq!(f[disclosure]["type"]["code"], "110106", "a disclosure is an export");
    assert_eq!(f[disclosure]["purposeOfEvent"][0]["text"], purpose.as_str());
    assert_eq!(f[disclosure]["purposeOfEvent"][0]["coding"][0]["code"], purpose.hl7_code().unwrap());
    assert_eq!(f[disclosure]["agent"][1]["who"]["display"], "Acme Insurance");
    assert_eq!(f[disclosure]["agent"][1]["requestor"], false);
    let patient = f[disclosure]["entity"].as_array().unwrap().iter().find(|e| e["role"]["code"] == "1").unwrap();
    assert_eq!(patient["what"]["identifier"]["value"], events[disclosure].patient_ref.as_deref().unwrap());
    let d = &o[disclosure]["unmapped"]["disclosure"];
    assert_eq!(
        (d["recipient"].as_str(), d["purpose_of_use"].as_str()),
        (Some("Acme Insurance"), Some(purpose.as_str()))
    );
    assert_eq!(d["data_categories"], serde_json::json!(["diagnoses", "lab_results"]));
    assert_eq!(o[disclosure]["resources"][1]["type"], "PATIENT");
    let uncoded = events.iter().position(|e| e.purpose_of_use.is_some_and(|p| p.hl7_code().is_none())).unwrap();
    assert!(f[uncoded]["purposeOfEvent"][0].get("coding").is_none(), "no HL7 code: text only");
    let traced = o.last().unwrap();
    assert_eq!(traced["trace"]["uid"], "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(traced["unmapped"]["span_id"], "b7ad6b7169203331");
}

#[test]
fn a_file_sink_in_ocsf_format_writes_one_ocsf_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.ocsf.jsonl");
    let pipeline = Pipeline::new(ObserverConfig {
        service_name: "formats-file".into(),
        audit_sink: AuditSink::file(&path),
        audit_format: AuditFormat::Ocsf,
        ..Default::default()
    })
    .unwrap();
    let events = export::with_pipeline_sync(&pipeline, || {
        let mut events: Vec<_> =
            (0..50).map(|i| audit::log_read(ResourceType::Document, format!("doc-{i}")).emit().unwrap()).collect();
        events.push(audit::log_login("bob").emit().unwrap());
        events
    });
    assert_eq!(pipeline.sink_names(), [format!("file {} (ocsf)", path.display())]);
    pipeline.shutdown().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).expect("a JSON object per line")).collect();
    assert_eq!(lines.len(), events.len());
    for (line, e) in lines.iter().zip(&events) {
        assert_eq!(line["metadata"]["uid"], e.event_id.as_str());
        assert!(line.get("audit_type").is_none(), "OCSF, not the guide's JSON: {line}");
    }
    assert_eq!(lines[50]["class_uid"], 3002);
    assert_eq!(validate_file("ocsf", &path), events.len());
}

/// A sink of your own that asks for FHIR.
#[derive(Debug, Default)]
struct FhirCollector {
    got: std::sync::Mutex<Vec<(serde_json::Value, serde_json::Value)>>,
}

impl Sink for FhirCollector {
    fn name(&self) -> String {
        "fhir-collector".into()
    }
    fn format(&self) -> AuditFormat {
        AuditFormat::Fhir
    }
    fn write(&self, record: Record<'_>) -> Result<(), ExporterError> {
        let output = serde_json::from_slice(record.output).unwrap();
        let json = serde_json::from_slice(record.json).unwrap();
        self.got.lock().unwrap().push((output, json));
        Ok(())
    }
}

#[test]
fn a_custom_sink_gets_its_format_in_output_and_the_guide_json_in_json() {
    let collector = Arc::new(FhirCollector::default());
    let (pipeline, _json) = pipeline(AuditFormat::Json, vec![collector.clone()]);
    let e = export::with_pipeline_sync(&pipeline, || audit::log_read(ResourceType::Document, "d").emit().unwrap());
    pipeline.flush(Duration::from_secs(10)).unwrap();
    let got = collector.got.lock().unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0["resourceType"], "AuditEvent");
    assert_eq!(got[0].0["action"], "R");
    assert_eq!(got[0].1["event_id"], e.event_id.as_str());
    assert_eq!(got[0].1["audit_type"], "DATA_ACCESS");
}

#[test]
fn the_environment_picks_the_format_and_a_bad_one_names_the_variable() {
    let lookup = |vars: &'static [(&'static str, &'static str)]| {
        move |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())
    };
    let c = ObserverConfig::default().apply_env_from(&lookup(&[("OBSERVER_AUDIT_FORMAT", "OCSF")])).unwrap();
    assert_eq!(c.audit_format, AuditFormat::Ocsf);
    let c = ObserverConfig::default().apply_env_from(&lookup(&[("OBSERVER_AUDIT_FORMAT", "fhir")])).unwrap();
    assert_eq!(c.audit_format, AuditFormat::Fhir);
    assert_eq!(ObserverConfig::default().audit_format, AuditFormat::Json);
    let err = ObserverConfig::default().apply_env_from(&lookup(&[("OBSERVER_AUDIT_FORMAT", "cef")])).unwrap_err();
    assert_eq!(err.field, "OBSERVER_AUDIT_FORMAT");
    assert!(err.message.contains("json, ocsf, fhir"), "{err}");
    let k = observer::KafkaConfig::default().apply_env_from(&lookup(&[("KAFKA_AUDIT_FORMAT", "ocsf")])).unwrap();
    assert_eq!(k.audit_format, AuditFormat::Ocsf);
    let err = observer::KafkaConfig::default().apply_env_from(&lookup(&[("KAFKA_AUDIT_FORMAT", "x")])).unwrap_err();
    assert_eq!(err.field, "KAFKA_AUDIT_FORMAT");
}

#[test]
fn with_the_integrity_chain_on_ocsf_and_fhir_carry_each_events_chain_id_seq_and_hash() {
    let ocsf = MemorySink::new().in_format(AuditFormat::Ocsf);
    let fhir = MemorySink::new().in_format(AuditFormat::Fhir);
    let json = MemorySink::new();
    let pipeline = Pipeline::new(ObserverConfig {
        service_name: "formats-chain".into(),
        audit_sink: AuditSink::Memory(json.clone()),
        extra_sinks: vec![Arc::new(ocsf.clone()), Arc::new(fhir.clone())],
        integrity: observer::IntegrityConfig { enabled: true, checkpoint_every: 2, ..Default::default() },
        ..Default::default()
    })
    .unwrap();
    export::with_pipeline_sync(&pipeline, || {
        for i in 0..5 {
            audit::log_read(ResourceType::Document, format!("doc-{i}")).emit().unwrap();
        }
    });
    pipeline.shutdown().unwrap();
    let guide: Vec<serde_json::Value> = json.json().into_iter().filter(|v| v.get("integrity").is_some()).collect();
    assert_eq!(guide.len(), 5);
    let (o, f) = (ocsf.output(), fhir.output());
    assert_eq!((o.len(), f.len()), (5, 5));
    for ((g, o), f) in guide.iter().zip(&o).zip(&f) {
        let integrity = &g["integrity"];
        assert_eq!(o["unmapped"]["integrity"]["chain_id"], integrity["chain_id"]);
        assert_eq!(o["unmapped"]["integrity"]["seq"], integrity["seq"]);
        assert_eq!(o["unmapped"]["integrity"]["hash"], integrity["hash"]);
        assert_eq!(o["metadata"]["sequence"], integrity["seq"]);
        let subs = f["extension"][0]["extension"].as_array().unwrap();
        let sub = |u: &str| subs.iter().find(|s| s["url"] == u).map(|s| s["valueString"].clone());
        assert_eq!(sub("chainId"), Some(integrity["chain_id"].clone()));
        assert_eq!(sub("chainSeq"), Some(serde_json::Value::from(integrity["seq"].to_string())));
        assert_eq!(sub("chainHash"), Some(integrity["hash"].clone()));
    }
    assert_eq!(validate("ocsf", &o), 5);
    assert_eq!(validate("fhir", &f), 5);
}
