//! `observer-trail accounting` run as a process: the disclosures of one patient over a date range (both days
//! included), as a table and as JSON; malformed lines warned about, not fatal; the patient's identifier never in the
//! output; usage errors exit 2.

use std::process::{Command, Output};

use observer::audit::{PatientKey, PurposeOfUse};
use observer::{AuditAction, AuditEvent, AuditEventType, ResourceType};

const KEY: &[u8] = b"cli accounting test key 0123456789";

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_observer-trail"))
        .args(args)
        .env_remove("OBSERVER_HMAC_KEY_FILE")
        .env_remove("OBSERVER_REDACTION_HMAC_KEY")
        .output()
        .expect("run observer-trail")
}

fn disclosure(ts: &str, patient: &str, recipient: &str, purpose: PurposeOfUse, doc: &str) -> String {
    let mut e = AuditEvent::new(AuditEventType::DataExport, AuditAction::Share, ResourceType::Document, doc);
    e.timestamp = ts.parse().unwrap();
    e.recipient = Some(recipient.into());
    e.purpose_of_use = Some(purpose);
    e.patient_ref = Some(PatientKey::new(KEY).unwrap().reference(patient).into());
    e.data_categories = vec!["diagnoses".into(), "medications".into()];
    e.description = Some(format!("Sent {doc}"));
    serde_json::to_string(&e).unwrap()
}

struct Trail {
    dir: tempfile::TempDir,
}

impl Trail {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key"), [KEY, b"\n"].concat()).unwrap();
        let file = [
            disclosure("2026-02-28T23:59:59Z", "MRN-A-77", "Too Early LLC", PurposeOfUse::Payment, "a0"),
            disclosure("2026-03-01T00:00:00Z", "MRN-A-77", "Acme Insurance", PurposeOfUse::Payment, "a1"),
            disclosure("2026-03-05T00:00:00Z", "MRN-B-88", "Other Patient Co", PurposeOfUse::Payment, "b1"),
            "{\"event_id\": \"evt_cut".to_owned(),
            disclosure("2026-03-31T23:59:59Z", "MRN-A-77", "County Health Dept", PurposeOfUse::PublicHealth, "a2"),
            disclosure("2026-04-01T00:00:00Z", "MRN-A-77", "Too Late Inc", PurposeOfUse::Research, "a3"),
        ]
        .join("\n");
        std::fs::write(dir.path().join("audit.jsonl"), file + "\n").unwrap();
        let stderr = format!(
            "some other log line\nobserver-audit-fallback: {}\n",
            disclosure("2026-03-10T12:00:00Z", "MRN-A-77", "Law Firm LLP", PurposeOfUse::JudicialProceeding, "a4")
        );
        std::fs::write(dir.path().join("stderr.log"), stderr).unwrap();
        Self { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn accounting(&self, extra: &[&str]) -> Output {
        let (key, file, stderr) = (self.path("key"), self.path("audit.jsonl"), self.path("stderr.log"));
        let mut args = vec!["accounting", "--patient", "MRN-A-77", "--from", "2026-03-01", "--to", "2026-03-31"];
        args.extend_from_slice(&["--key-file", &key]);
        args.extend_from_slice(extra);
        args.extend_from_slice(&[&file, &stderr]);
        run(&args)
    }
}

fn all_bytes(out: &Output) -> Vec<u8> {
    [out.stdout.as_slice(), out.stderr.as_slice()].concat()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn table_lists_the_patients_disclosures_in_the_range() {
    let t = Trail::new();
    let out = t.accounting(&[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let rows: Vec<&str> = stdout.lines().filter(|l| l.starts_with("2026-")).collect();
    assert_eq!(rows.len(), 3, "{stdout}");
    assert!(rows[0].contains("Acme Insurance") && rows[0].contains("PAYMENT") && rows[0].contains("diagnoses"));
    assert!(rows[1].contains("Law Firm LLP") && rows[1].contains("JUDICIAL_PROCEEDING"), "the fallback line");
    assert!(rows[2].starts_with("2026-03-31 23:59:59") && rows[2].contains("County Health Dept"), "--to day included");
    assert!(!stdout.contains("Too Early") && !stdout.contains("Too Late") && !stdout.contains("Other Patient"));
    assert!(stderr.contains("audit.jsonl:4: cut off"), "malformed line reported: {stderr}");
    let reference = PatientKey::new(KEY).unwrap().reference("MRN-A-77");
    assert!(stdout.contains(reference.as_str()), "{stdout}");
    assert!(!contains(&all_bytes(&out), "MRN-A-77"), "the identifier never appears in the output");
}

#[test]
fn json_output() {
    let t = Trail::new();
    let out = t.accounting(&["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let recipients: Vec<&str> =
        v["entries"].as_array().unwrap().iter().map(|e| e["recipient"].as_str().unwrap()).collect();
    assert_eq!(recipients, ["Acme Insurance", "Law Firm LLP", "County Health Dept"]);
    assert_eq!(v["from"], "2026-03-01T00:00:00Z");
    assert_eq!(v["to"], "2026-04-01T00:00:00Z", "the --to day is included: the bound is the next midnight");
    assert_eq!(v["malformed"][0]["line"], 4);
    assert_eq!(v["entries"][0]["data_categories"], serde_json::json!(["diagnoses", "medications"]));
    assert!(!contains(&all_bytes(&out), "MRN-A-77"));
}

#[test]
fn patient_ref_without_the_key_and_rfc3339_bounds() {
    let t = Trail::new();
    let reference = PatientKey::new(KEY).unwrap().reference("MRN-A-77");
    let (file, stderr) = (t.path("audit.jsonl"), t.path("stderr.log"));
    let out = run(&[
        "accounting",
        "--patient-ref",
        reference.as_str(),
        "--from",
        "2026-03-01T00:00:01Z",
        "--to",
        "2026-03-31T23:59:59Z",
        "--json",
        &file,
        &stderr,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = v["entries"].as_array().unwrap().iter().map(|e| e["resource_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["a4"], "an RFC 3339 `--from` is inclusive and `--to` exclusive, to the second");
}

#[test]
fn usage_errors_exit_2() {
    let t = Trail::new();
    let file = t.path("audit.jsonl");
    let no_key = run(&["accounting", "--patient", "MRN-A-77", "--from", "2026-03-01", "--to", "2026-03-31", &file]);
    assert_eq!(no_key.status.code(), Some(2));
    assert!(contains(&no_key.stderr, "no patient key"), "{}", String::from_utf8_lossy(&no_key.stderr));
    assert!(!contains(&all_bytes(&no_key), "MRN-A-77"));

    let reference = PatientKey::new(KEY).unwrap().reference("x").to_string();
    let with =
        |from: &str, to: &str| run(&["accounting", "--patient-ref", &reference, "--from", from, "--to", to, &file]);
    let bad_date = with("2026-03-01", "31/03/2026");
    assert_eq!(bad_date.status.code(), Some(2));
    assert!(
        contains(&bad_date.stderr, "--to `31/03/2026` is neither a date"),
        "{}",
        String::from_utf8_lossy(&bad_date.stderr)
    );
    let empty = with("2026-03-31", "2026-03-01");
    assert_eq!(empty.status.code(), Some(2), "--to before --from");
    assert!(contains(&empty.stderr, "empty date range"), "{}", String::from_utf8_lossy(&empty.stderr));
    assert_eq!(with("2026-03-01", "2026-03-01").status.code(), Some(0), "one whole day");

    let not_a_ref =
        run(&["accounting", "--patient-ref", "MRN-A-77", "--from", "2026-03-01", "--to", "2026-03-31", &file]);
    assert_eq!(not_a_ref.status.code(), Some(2));
    assert!(!contains(&all_bytes(&not_a_ref), "MRN-A-77"), "a refused reference is not echoed");
    let missing = run(&[
        "accounting",
        "--patient-ref",
        &reference,
        "--from",
        "2026-03-01",
        "--to",
        "2026-03-31",
        "/nonexistent/trail",
    ]);
    assert_eq!(missing.status.code(), Some(2));
}
