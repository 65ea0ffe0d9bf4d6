//! Behaviour of the engine: each detector on its forms and its near-misses, actions, key rules, fail-closed.

use std::time::Duration;

use serde_json::json;

use super::*;
use crate::config::{RedactionConfig, Secret};

fn r() -> Redactor {
    Redactor::default()
}

#[track_caller]
fn same(input: &str, want: &str) {
    assert_eq!(r().redact_str(input), want, "input: {input}");
}

#[test]
fn detectors_mask_each_form() {
    same("SSN 123-45-6789 on file", "SSN [SSN] on file");
    same("ssn: 123456789", "ssn: [SSN]");
    same("call (617) 555-0123 or 617.555.0199", "call [PHONE] or [PHONE]");
    same("fax +1 617 555 0123, intl +44 20 7946 0958", "fax [PHONE], intl [PHONE]");
    same("Phone: 6175550123", "Phone: [PHONE]");
    same("mail jane.roe+x@mail.example.org.", "mail [EMAIL].");
    same("DOB 03/02/1985, admitted 2024-05-01T10:30:00Z", "DOB [DATE], admitted [DATE]");
    same("born March 2, 1985; seen 2nd of March 1985; in Mar. 1985", "born [DATE]; seen [DATE]; in [DATE]");
    same("lives at 42 Elm Street, Apt 3, Springfield, IL 62704", "lives at [ADDRESS]");
    same("PO Box 1234, ZIP 02139-4307", "[ADDRESS], ZIP [ZIP]");
    same("Boston, MA 02139", "Boston, MA [ZIP]");
    same("card 4111 1111 1111 1111 exp", "card [CREDIT_CARD] exp");
    same("IBAN GB82 WEST 1234 5698 7654 32", "IBAN [IBAN]");
    same("from 192.168.10.20 and 2001:db8::8a2e:370:7334", "from [IP] and [IP]");
    same("see https://portal.example.com/p?id=7.", "see [URL].");
    same("NPI 1234567893, DEA AB1234563", "NPI [NPI], DEA [DEA]");
    same("MBI 1EG4-TE5-MK73", "MBI [MBI]");
    same("MRN: 00442211; Member ID ABC123456", "MRN: [MRN]; Member ID [HEALTH_PLAN]");
    same("pacemaker Serial number: PM-88123-X", "pacemaker Serial number: [DEVICE_SERIAL]");
    same("key sk-proj-abcDEF1234567890abcdEFGH", "key [API_KEY]");
    same("sk-ant-api03-abcdefghijklmnop1234567890_xyz", "[API_KEY]");
    same("AKIAIOSFODNN7EXAMPLE ghp_0123456789abcdefghijABCDEFGHIJ012345", "[API_KEY] [API_KEY]");
    same("Authorization: Bearer abc123DEF456ghi789", "Authorization: Bearer [BEARER_TOKEN]");
    same("postgres://admin:s3cr3t@db.internal/app", "postgres://admin:[PASSWORD]@db.internal/app");
    same(
        "Patient: Jane Roe was seen by Dr. Smith and Mrs. O'Brien",
        "Patient: [NAME] was seen by Dr. [NAME] and Mrs. [NAME]",
    );
}

#[test]
fn jwts_are_found() {
    let jwt =
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
    same(&format!("token={jwt} ok"), "token=[JWT] ok");
}

#[test]
fn near_misses_stay() {
    for clean in [
        "Order #88123411 shipped, total $1,234.56",
        "ICD-10 E11.9 and I10; HbA1c 7.2%, glucose 142 mg/dL",
        "In 2019 the patient had 3 visits; BP 120/80, ratio 3/4",
        "SSN 666-12-3456 and 900-12-3456 are not issued",
        "card 4111 1111 1111 1112 fails Luhn",
        "NPI 1234567890 fails its check",
        "version 1.2.3 of the model, build 10.0.19041",
        "meeting at 10:30:00 in room 5",
        "may 5 patients be seen; Q3 2024 results",
        "Patient: Stable overnight",
        "model gpt-4o-2024-08-06 and claude-3-5-sonnet-20241022, v2.1.0-2024.05.01",
    ] {
        same(clean, clean);
    }
}

#[test]
fn json_values_follow_key_rules() {
    let mut v = json!({
        "ssn": 123456789,
        "patientName": "Jane Roe",
        "password": "hunter2",
        "notes": ["call 617-555-0123", {"dob": "1985-03-02"}],
        "jane.roe@example.org": true,
        "count": 12,
    });
    r().redact_value(&mut v);
    assert_eq!(
        v,
        json!({
            "ssn": "[SSN]",
            "patientName": "[NAME]",
            "password": "[PASSWORD]",
            "notes": ["call [PHONE]", {"dob": "[DATE]"}],
            "[EMAIL]": true,
            "count": 12,
        })
    );
    let policy = RedactionConfig {
        allow_keys: vec!["contact".into()],
        redact_keys: vec!["diagnosis_text".into()],
        actions: vec![(Kind::Password, Action::Drop)],
        ..Default::default()
    };
    let r = Redactor::new(&policy).unwrap();
    let mut v = json!({"contact": "617-555-0123", "diagnosis_text": "flu", "pwd": "x", "n": 4111111111111111u64});
    r.redact_value(&mut v);
    assert_eq!(v, json!({"contact": "617-555-0123", "diagnosis_text": "[REDACTED]", "n": "[CREDIT_CARD]"}));
}

#[test]
fn hash_action_joins_equal_values() {
    let policy = RedactionConfig {
        actions: vec![(Kind::Ssn, Action::Hash)],
        hmac_key: Some(Secret::new("k".repeat(32))),
        ..Default::default()
    };
    let r = Redactor::new(&policy).unwrap();
    let a = r.redact_str("SSN 123-45-6789").into_owned();
    let b = r.redact_str("ssn: 123456789").into_owned();
    let c = r.redact_str("SSN 123-45-6780").into_owned();
    let tag = |s: &str| s[s.find('[').unwrap()..].to_owned();
    assert!(a.contains("[SSN:hmac:"), "{a}");
    assert_eq!(tag(&a), tag(&b));
    assert_ne!(tag(&a), tag(&c));
    let mut v = json!({"ssn": "123-45-6789"});
    r.redact_value(&mut v);
    assert_eq!(v["ssn"].as_str().unwrap(), tag(&a), "the key rule hashes the same way");
    assert!(!format!("{r:?} {policy:?}").contains("kkkk"), "the key is never in Debug");
}

#[test]
fn fails_closed() {
    let policy = RedactionConfig { max_value_bytes: 64, ..Default::default() };
    let r = Redactor::new(&policy).unwrap();
    assert_eq!(r.redact_str(&"x".repeat(65)), "[REDACTED:oversize]");
    assert_eq!(r.redact_str("short"), "short");

    let erring = RedactionConfig {
        detectors: vec![CustomDetector::new(Kind::custom("ticket"), r"T-\d+").validator(|_| Err("backend down".into()))],
        ..Default::default()
    };
    let r = Redactor::new(&erring).unwrap();
    assert_eq!(r.redact_str("SSN 123-45-6789 re T-42"), "[REDACTED:error]");
    assert_eq!(r.redact_str("nothing to see"), "nothing to see");

    let panicking = RedactionConfig {
        detectors: vec![CustomDetector::new(Kind::custom("ticket"), r"T-\d+").validator(|_| panic!("bug"))],
        // Capturing the panic's backtrace may take long on a loaded machine: not what is tested here.
        time_budget: Duration::from_secs(30),
        ..Default::default()
    };
    let r = Redactor::new(&panicking).unwrap();
    let mut v = json!({"a": "T-1", "b": "fine"});
    r.redact_value(&mut v);
    assert_eq!(v, json!({"a": "[REDACTED:error]", "b": "fine"}));

    let slow = RedactionConfig {
        time_budget: Duration::from_millis(5),
        detectors: vec![CustomDetector::new(Kind::custom("slow"), r"S\d").validator(|_| {
            std::thread::sleep(Duration::from_millis(3));
            Ok(false)
        })],
        ..Default::default()
    };
    let r = Redactor::new(&slow).unwrap();
    let mut v = json!(["S1 S2 S3 S4", "S5", "plain"]);
    r.redact_value(&mut v);
    assert_eq!(v[0], "[REDACTED:timeout]", "{v}");
    assert_eq!(v[1], "[REDACTED:timeout]");
    let mut deep = json!("x");
    for _ in 0..100 {
        deep = json!([deep]);
    }
    r.redact_value(&mut deep);
    assert!(deep.to_string().contains("[REDACTED:depth]"));
}

#[test]
fn custom_detectors_and_labels() {
    let policy = RedactionConfig {
        labels: vec![Label::new(Kind::Mrn, "Chart ID"), Label::new(Kind::Account, "Acct")],
        detectors: vec![
            CustomDetector::new(Kind::custom("employee id"), r"\bEMP-(?P<v>\d{6})\b")
                .validator(|m| Ok(m.ends_with(['0', '2', '4', '6', '8']))),
            CustomDetector::new(Kind::Mrn, r"\bMR\d{8}\b").action(Action::Drop),
        ],
        ..Default::default()
    };
    let r = Redactor::new(&policy).unwrap();
    assert_eq!(r.redact_str("Chart ID: 88-1234; Acct 99812"), "Chart ID: [MRN]; Acct [ACCOUNT]");
    assert_eq!(r.redact_str("EMP-000122 EMP-000123"), "EMP-[EMPLOYEE_ID] EMP-000123");
    assert_eq!(r.redact_str("ref MR00012345."), "ref .");
    let bad = RedactionConfig { detectors: vec![CustomDetector::new(Kind::Mrn, r"(unclosed")], ..Default::default() };
    assert_eq!(Redactor::new(&bad).unwrap_err().field, "redaction.detectors[0]");
}

#[test]
fn disabled_kinds_and_policy() {
    let r = Redactor::new(&RedactionConfig { disabled: vec![Kind::Url, Kind::Email], ..Default::default() }).unwrap();
    assert_eq!(r.redact_str("https://x.example.com a@b.org 123-45-6789"), "https://x.example.com a@b.org [SSN]");
    let off = Redactor::disabled();
    assert_eq!(off.redact_str("123-45-6789"), "123-45-6789");
    let mut v = json!({"ssn": "123-45-6789"});
    off.redact_value(&mut v);
    assert_eq!(v["ssn"], "123-45-6789");
}

/// Policies and values the copy-on-write walk (audit events) is compared on with the in-place one.
fn walk_cases() -> (Vec<Redactor>, Vec<serde_json::Value>) {
    let policies = [
        RedactionConfig::default(),
        RedactionConfig {
            allow_keys: vec!["contact".into()],
            redact_keys: vec!["diagnosis_text".into(), "x".repeat(80)],
            actions: vec![(Kind::Password, Action::Drop), (Kind::Email, Action::Drop)],
            ..Default::default()
        },
        RedactionConfig {
            actions: vec![(Kind::Ssn, Action::Hash), (Kind::Name, Action::Hash)],
            hmac_key: Some(Secret::new("k".repeat(32))),
            ..Default::default()
        },
        RedactionConfig { max_value_bytes: 12, ..Default::default() },
        RedactionConfig {
            detectors: vec![CustomDetector::new(Kind::custom("ticket"), r"T-\d+").validator(|_| Err("down".into()))],
            ..Default::default()
        },
    ];
    let mut deep = json!({"note": "SSN 123-45-6789"});
    for _ in 0..70 {
        deep = json!({"inner": [deep, "plain"]});
    }
    let values = vec![
        json!({}),
        json!({"model": "gpt-4o-2024-08-06", "provider": "openai", "input_tokens": 1520, "cost_usd": 0.0125}),
        json!({
            "ssn": 123456789, "patientName": "Jane Roe", "password": "hunter2", "Password": null,
            "notes": ["plain", "call 617-555-0123", {"dob": "1985-03-02"}, 4111111111111111u64, "T-42"],
            "jane.roe@example.org": true, "[EMAIL]": 1, "a@b.org": 2, "[EMAIL]'": 3, "count": 12,
            "contact": "617-555-0123", "diagnosis_text": "flu", "email": {"nested": "x"}, "n": -4111111111111111i64,
        }),
        json!({"Patient Jane": "x", "MRN: 00442211": "y", "k": "Dr. Smith", "x".repeat(80): "v", "ÄpatientNäme": "Jo"}),
        json!({"a": ["x", "y", "SSN 123-45-6789", "z"], "b": [[["DOB 03/02/1985"]]], "c": [1, 2.5, true, null]}),
        deep,
    ];
    (policies.iter().map(|p| Redactor::new(p).unwrap()).collect(), values)
}

#[test]
fn the_copy_on_write_walk_is_the_in_place_one() {
    let (policies, values) = walk_cases();
    for r in &policies {
        for value in &values {
            let serde_json::Value::Object(map) = value else { unreachable!() };
            let mut in_place = map.clone();
            r.redact_map(&mut in_place);
            let copied = r.redacted_map_of(map, &engine::Clock::default());
            assert_eq!(copied.as_ref().unwrap_or(map), &in_place, "{r:?} on {value}");
            if copied.is_none() {
                assert_eq!(&in_place, map);
            }
            // One field at a time, as change records are.
            for (key, v) in map {
                let mut in_place = v.clone();
                let kept = r.redact_field(key, &mut in_place);
                match r.field_outcome(key, v, &engine::Clock::default()) {
                    engine::Outcome::Keep => assert!(kept && in_place == *v, "{key}: {v} → {in_place}"),
                    engine::Outcome::Replace(new) => assert!(kept && new == in_place, "{key}: {new} ≠ {in_place}"),
                    engine::Outcome::Drop => assert!(!kept, "{key}"),
                }
            }
        }
    }
}
