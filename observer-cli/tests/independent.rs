//! An independent implementation (Python: `json`, `hashlib`, the `cryptography` package, written from
//! docs/INTEGRITY.md) checks our checkpoints: key id re-derived, Ed25519 signature, event hashes recomputed from the
//! canonical form, Merkle roots recomputed from the event hashes.

mod common;

use common::{trail, write_lines};
use observer::integrity::NoteSigner;
use std::process::Command;

fn python() -> String {
    std::env::var("OBSERVER_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn check(path: &std::path::Path, key: &str) -> (bool, String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/check_trail.py");
    let out = Command::new(python()).arg(script).arg(path).arg(key).output().expect("run python");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        !text.contains("ModuleNotFoundError"),
        "the Python checker needs the `cryptography` package: run through scripts/test.sh, or \
         `eval \"$(bash scripts/python-env.sh)\"; export OBSERVER_PYTHON` first:\n{text}"
    );
    (out.status.success(), text)
}

#[test]
fn python_verifies_our_checkpoints_and_rejects_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let signer = NoteSigner::generate("audit-independent").unwrap();
    let key = signer.verifier().to_string();
    let a = trail("pod-a", 13, 4, &signer);
    let b = trail("pod-b", 5, 5, &signer);
    let mut lines = a.lines.clone();
    lines.extend(b.lines.iter().cloned());
    let path = dir.path().join("trail.jsonl");
    write_lines(&path, &lines);
    let (ok, out) = check(&path, &key);
    assert!(ok, "{out}");
    assert_eq!(out.lines().filter(|l| l.starts_with("OK chain")).count(), 5, "{out}");
    assert!(out.contains("OK chain pod-a size 13") && out.contains("OK chain pod-b size 5"), "{out}");

    // The checker is not a rubber stamp: another key, an altered signature, an edited event all fail.
    let other = NoteSigner::generate("audit-independent").unwrap().verifier().to_string();
    let (ok, out) = check(&path, &other);
    assert!(!ok && (out.contains("key id") || out.contains("no signature")), "{out}");
    let mut edited = lines.clone();
    edited[1] = edited[1].replace("doc-2", "doc-9");
    write_lines(&path, &edited);
    let (ok, out) = check(&path, &key);
    assert!(!ok && out.contains("seq 2: hash mismatch"), "{out}");
    let mut resigned = lines.clone();
    let mut cp: serde_json::Value = serde_json::from_str(&resigned[4]).unwrap();
    cp["note"] = cp["note"].as_str().unwrap().replace("\n4\n", "\n3\n").into();
    cp["size"] = 3.into();
    resigned[4] = cp.to_string();
    write_lines(&path, &resigned);
    let (ok, out) = check(&path, &key);
    assert!(!ok && out.contains("invalid signature"), "{out}");
}

#[test]
fn a_trail_written_by_python_verifies_with_observer_trail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("python.jsonl");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/make_trail.py");
    let out = Command::new(python()).arg(script).arg(&path).arg("45").arg("20").output().expect("run python");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the Python producer needs the `cryptography` package (scripts/python-env.sh, OBSERVER_PYTHON): {stderr}"
    );
    let key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let verify = |path: &std::path::Path| {
        let out = common::run(&["verify", "--key", &key, path.to_str().unwrap()]);
        (out.status.code(), common::text(&out))
    };
    let (code, text) = verify(&path);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("45 events (seq 1..45)") && text.contains("signed up to seq 45"), "{text}");
    // An edit of the Python trail is found by our verifier.
    let lines: Vec<String> =
        std::fs::read_to_string(&path).unwrap().lines().map(|l| l.replace("\"doc-7\"", "\"doc-8\"")).collect();
    write_lines(&path, &lines);
    let (code, text) = verify(&path);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("seq 7: edit:"), "{text}");
}
