//! The accounting of disclosures: the disclosure fields written by `audit::log_disclosure` and `#[audit]` (JSON
//! checked), patient references (keyed hashes; the identifier never in clear), and `audit::accounting` over a
//! JSON-lines trail written by the file sink plus captured stderr fallback lines.
//!
//! The patient key is process-wide: the tests that change it hold `KEY_LOCK`.

mod common;

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use observer::audit::{self, Accounting, PatientKey, PurposeOfUse};
use observer::export::{self, Pipeline};
use observer::{AuditAction, AuditError, AuditEvent, AuditEventType, AuditSink, ObserverConfig, ResourceType};
use serde_json::Value;

const KEY: &[u8] = b"integration-test patient key, 32+";

static KEY_LOCK: Mutex<()> = Mutex::new(());

/// Holds the key lock with the test key set (and initialises observer with the memory sink).
fn keyed() -> MutexGuard<'static, ()> {
    common::memory_sink();
    let guard = KEY_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    audit::set_patient_key(Some(key()));
    guard
}

fn key() -> PatientKey {
    PatientKey::new(KEY).expect("key")
}

fn t(s: &str) -> DateTime<Utc> {
    s.parse().expect("timestamp")
}

#[test]
fn log_disclosure_records_every_field_and_hashes_the_patient() {
    let _k = keyed();
    let event = audit::log_disclosure(ResourceType::Document, "discharge-summary-7")
        .recipient("Acme Insurance")
        .purpose_of_use(PurposeOfUse::Payment)
        .patient("MRN-7700-CLEAR")
        .data_categories(["diagnoses", "procedures"])
        .retention_days(2190)
        .compliance_frameworks(["HIPAA"])
        .immutable(true)
        .emit()
        .expect("recorded");
    let json = common::recorded_json(&event);
    assert_eq!(json["audit_type"], "DATA_EXPORT");
    assert_eq!(json["action"], "SHARE");
    assert_eq!(json["severity"], "MEDIUM");
    assert_eq!(json["recipient"], "Acme Insurance");
    assert_eq!(json["purpose_of_use"], "PAYMENT");
    assert_eq!(json["data_categories"], serde_json::json!(["diagnoses", "procedures"]));
    assert_eq!(json["patient_ref"], key().reference("MRN-7700-CLEAR").as_str());
    assert_eq!(json["retention_days"], 2190);
    assert_eq!(json["compliance_frameworks"], serde_json::json!(["HIPAA"]));
    assert_eq!(json["immutable"], true);
    assert_eq!(json["description"], "Disclosed DOCUMENT discharge-summary-7 to Acme Insurance for PAYMENT");
    assert!(!json.to_string().contains("MRN-7700-CLEAR"), "the identifier is never in clear: {json}");
}

#[test]
fn an_event_without_disclosure_fields_has_none_of_their_keys() {
    common::memory_sink();
    let event = audit::log_read(ResourceType::Document, "plain-read-1").emit().expect("recorded");
    let json = common::recorded_json(&event);
    for key in [
        "recipient",
        "purpose_of_use",
        "data_categories",
        "patient_ref",
        "retention_days",
        "compliance_frameworks",
        "immutable",
    ] {
        assert!(json.get(key).is_none(), "{key} is left out when unset: {json}");
    }
}

#[test]
fn log_disclosure_requires_recipient_purpose_and_patient() {
    let _k = keyed();
    let missing = |b: audit::AuditBuilder<audit::kind::Disclosure>| match b.emit() {
        Err(AuditError::MissingField { field, event }) => {
            assert!(event.patient_ref.as_deref().is_none_or(|p| p.starts_with("hmac-sha256:")));
            field
        }
        other => panic!("expected MissingField, got {other:?}"),
    };
    let base = || audit::log_disclosure(ResourceType::Document, "needs-fields");
    assert_eq!(missing(base().purpose_of_use(PurposeOfUse::Research).patient("p")), "recipient");
    assert_eq!(missing(base().recipient("  ").purpose_of_use(PurposeOfUse::Research).patient("p")), "recipient");
    assert_eq!(missing(base().recipient("Univ").patient("p")), "purpose_of_use");
    assert_eq!(missing(base().recipient("Univ").purpose_of_use(PurposeOfUse::Research)), "patient_ref");
    // A reference made elsewhere with the same key is accepted as it is.
    let ok = base().recipient("Univ").purpose_of_use(PurposeOfUse::Research).patient_ref(key().reference("p")).emit();
    assert_eq!(ok.expect("recorded").patient_ref.as_deref(), Some(key().reference("p").as_str()));
}

#[test]
fn a_patient_without_a_key_is_refused_never_written_in_clear() {
    let _k = keyed();
    audit::set_patient_key(None);
    let result = audit::log_read(ResourceType::Document, "no-key-read").patient("MRN-NOKEY-1").emit();
    audit::set_patient_key(Some(key()));
    let Err(AuditError::PatientKey { reason, event }) = result else { panic!("expected PatientKey, got {result:?}") };
    assert!(reason.contains("OBSERVER_HMAC_KEY_FILE") && reason.contains("set_patient_key"), "{reason}");
    assert_eq!(event.patient_ref, None);
    let json = serde_json::to_string(&*event).expect("json");
    assert!(!json.contains("MRN-NOKEY-1") && !reason.contains("MRN-NOKEY-1"), "{json}");
}

#[observer::audit(
    share,
    Document,
    id = doc_id,
    recipient = to,
    purpose = PublicHealth,
    patient = mrn,
    data_categories = ["immunizations"],
    retention_days = 2190,
    compliance_frameworks = ["HIPAA", "SOC2"],
    immutable = true
)]
fn report_to_registry(doc_id: &str, to: &str, mrn: &str) -> Result<(), String> {
    let _ = (doc_id, to, mrn);
    Ok(())
}

#[observer::audit(share, Document, id = doc_id, recipient = ret, purpose = Treatment)]
fn referral(doc_id: &str) -> String {
    format!("Clinic for {doc_id}")
}

#[test]
fn audit_macro_writes_the_disclosure_keys() {
    let _k = keyed();
    let sink = common::memory_sink();
    report_to_registry("imm-record-3", "State Immunization Registry", "MRN-MACRO-3").expect("ok");
    referral("ref-4");
    observer::flush(Duration::from_secs(10)).expect("flush");
    let find = |id: &str| {
        let id = id.to_owned();
        let e = sink.wait_for(Duration::from_secs(10), |e| e.resource_id == id).expect("recorded");
        sink.json().into_iter().find(|j| j["event_id"] == e.event_id.as_str()).expect("json")
    };
    let json = find("imm-record-3");
    assert_eq!(json["recipient"], "State Immunization Registry");
    assert_eq!(json["purpose_of_use"], "PUBLIC_HEALTH");
    assert_eq!(json["patient_ref"], key().reference("MRN-MACRO-3").as_str());
    assert_eq!(json["data_categories"], serde_json::json!(["immunizations"]));
    assert_eq!(json["retention_days"], 2190);
    assert_eq!(json["compliance_frameworks"], serde_json::json!(["HIPAA", "SOC2"]));
    assert_eq!(json["immutable"], true);
    assert!(!json.to_string().contains("MRN-MACRO-3"));
    let json = find("ref-4");
    assert_eq!(json["recipient"], "Clinic for ref-4", "recipient from the return value");
    assert_eq!(json["purpose_of_use"], "TREATMENT");
    assert!(json.get("patient_ref").is_none() && json.get("immutable").is_none());
}

/// A disclosure event at a fixed time, recorded through the given pipeline.
fn disclose_at(when: &str, patient: &str, recipient: &str, purpose: PurposeOfUse, doc: &str) -> AuditEvent {
    let mut e = AuditEvent::new(AuditEventType::DataExport, AuditAction::Share, ResourceType::Document, doc);
    e.timestamp = t(when);
    e.recipient = Some(recipient.into());
    e.purpose_of_use = Some(purpose);
    e.patient_ref = Some(key().reference(patient).into());
    e.data_categories = vec!["diagnoses".into()];
    e.description = Some(format!("{doc} to {recipient}"));
    e
}

#[test]
fn accounting_over_a_file_trail_and_captured_stderr() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.jsonl");
    let p = Pipeline::new(ObserverConfig { audit_sink: AuditSink::file(&path), ..Default::default() }).expect("p");
    let logger = observer::get_audit_logger();
    export::with_pipeline_sync(&p, || {
        let record = |e: AuditEvent| {
            logger.log_event(e).expect("queued");
        };
        record(disclose_at("2026-02-28T23:59:59Z", "MRN-A", "Before Range LLC", PurposeOfUse::Payment, "a0"));
        record(disclose_at("2026-03-01T00:00:00Z", "MRN-A", "Acme Insurance", PurposeOfUse::Payment, "a1"));
        record(disclose_at("2026-03-02T10:00:00Z", "MRN-B", "Other Patient Inc", PurposeOfUse::Payment, "b1"));
        record(disclose_at("2026-03-15T08:30:00+02:00", "MRN-A", "State Registry", PurposeOfUse::PublicHealth, "a2"));
        record(disclose_at("2026-04-01T00:00:00Z", "MRN-A", "At The End Excluded", PurposeOfUse::Research, "a3"));
        // A use of the patient's record, not a disclosure: counted, not listed.
        let mut read =
            AuditEvent::new(AuditEventType::DataAccess, AuditAction::Read, ResourceType::Document, "a-chart");
        read.timestamp = t("2026-03-10T12:00:00Z");
        read.patient_ref = Some(key().reference("MRN-A").into());
        record(read);
        record(disclose_at("2026-03-20T00:00:00Z", "MRN-C", "Third Party", PurposeOfUse::Research, "c1"));
    });
    drop(p); // flushes and closes the file

    // Captured stderr: other output, a fallback line holding a disclosure, a torn fallback line, and a line of
    // the file written again (same event id: listed once).
    let fallback = disclose_at("2026-03-20T09:00:00Z", "MRN-A", "Law Office", PurposeOfUse::JudicialProceeding, "a4");
    let file_text = std::fs::read_to_string(&path).expect("trail");
    let first_a1 = file_text.lines().find(|l| l.contains("\"a1\"")).expect("a1 line").to_owned();
    let stderr = format!(
        "WARN something unrelated\nobserver-audit-fallback: {}\nobserver-audit-fallback: {{\"event_id\":\"evt_torn\",\"times\n{{not json at all}}\n{first_a1}\n",
        serde_json::to_string(&fallback).expect("json")
    );

    let patient = key().reference("MRN-A");
    let mut report = Accounting::new(&patient, t("2026-03-01T00:00:00Z"), t("2026-04-01T00:00:00Z")).expect("range");
    report.read("audit.jsonl", file_text.as_bytes()).expect("file");
    report.read("stderr.log", stderr.as_bytes()).expect("stderr");

    let listed: Vec<(&str, &str, Option<&str>)> = report
        .entries
        .iter()
        .map(|e| (e.resource_id.as_deref().unwrap_or(""), e.recipient.as_str(), e.purpose_of_use.as_deref()))
        .collect();
    assert_eq!(
        listed,
        [
            ("a1", "Acme Insurance", Some("PAYMENT")),
            ("a2", "State Registry", Some("PUBLIC_HEALTH")),
            ("a4", "Law Office", Some("JUDICIAL_PROCEEDING")),
        ],
        "patient A only, from inclusive, to exclusive, in date order, the fallback line included"
    );
    assert_eq!(report.entries[1].date, t("2026-03-15T06:30:00Z"), "offsets are read as UTC");
    assert_eq!(report.entries[0].data_categories, ["diagnoses"]);
    assert_eq!(report.entries[0].description.as_deref(), Some("a1 to Acme Insurance"));
    assert_eq!(report.uses, 1);
    assert_eq!(report.duplicates, 1, "the event written twice is listed once");
    let bad: Vec<(&str, u64)> = report.malformed.iter().map(|m| (m.source.as_str(), m.line)).collect();
    assert_eq!(bad, [("stderr.log", 3), ("stderr.log", 4)], "malformed lines reported, not fatal");
    assert_eq!(report.skipped, 1, "other stderr output is skipped");

    let out = serde_json::to_string(&report).expect("json");
    assert!(!out.contains("MRN-A"), "the patient identifier never appears in the output");
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["patient_ref"], patient.as_str());
    assert_eq!(v["entries"][0]["date"], "2026-03-01T00:00:00Z");
}
