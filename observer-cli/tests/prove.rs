//! `observer-trail prove` / `check-proof` / `keygen` run as processes: a proof checks with only the proof, the
//! event's line and the key; a changed event, another event's line, another key or a changed path fail.

mod common;

use common::{run, text, trail, write_lines};
use observer::integrity::NoteSigner;

#[test]
fn prove_then_check_with_only_the_event_line() {
    let dir = tempfile::tempdir().unwrap();
    let signer = NoteSigner::generate("audit-proof").unwrap();
    let key = signer.verifier().to_string();
    let a = trail("pod-a", 23, 10, &signer);
    let b = trail("pod-b", 5, 5, &signer);
    let mut lines = a.lines.clone();
    lines.extend(b.lines.iter().cloned());
    let file = dir.path().join("audit.jsonl");
    write_lines(&file, &lines);
    let proof = dir.path().join("proof.json");
    // seq 13 of pod-a (line index 13: seq 1-10, checkpoint 10, seq 11-…).
    let event_id = &a.event_ids[12];
    let out = run(&[
        "prove",
        "--event-id",
        event_id,
        "--key",
        &key,
        "--out",
        proof.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let p: serde_json::Value = serde_json::from_slice(&std::fs::read(&proof).unwrap()).unwrap();
    assert_eq!((p["chain_id"].as_str(), p["seq"].as_u64()), (Some("pod-a"), Some(13)));
    assert_eq!(p["checkpoint"]["size"], 20, "the smallest checkpoint that covers seq 13");

    let event = dir.path().join("event.json");
    std::fs::write(&event, format!("observer-audit-fallback: {}\n", a.lines[13])).unwrap();
    let check = |event: &std::path::Path, key: &str| {
        let out =
            run(&["check-proof", "--proof", proof.to_str().unwrap(), "--event", event.to_str().unwrap(), "--key", key]);
        (out.status.code(), text(&out))
    };
    let (code, out) = check(&event, &key);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("VERIFIED: event") && out.contains("chain pod-a seq 13"), "{out}");

    // The event changed: its hash no longer matches.
    std::fs::write(&event, a.lines[13].replace("doc-13", "doc-31")).unwrap();
    let (code, out) = check(&event, &key);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("FAILED: chain pod-a seq 13") && out.contains("hash mismatch"), "{out}");
    // Another event's line.
    std::fs::write(&event, &a.lines[14]).unwrap();
    let (code, out) = check(&event, &key);
    assert_eq!(code, Some(1), "{out}");
    // Another key.
    std::fs::write(&event, &a.lines[13]).unwrap();
    let other = NoteSigner::generate("audit-proof").unwrap().verifier().to_string();
    let (code, out) = check(&event, &other);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("no signature by a known key"), "{out}");
    // A changed path.
    let mut tampered = p.clone();
    tampered["path"][0] = "0".repeat(64).into();
    std::fs::write(&proof, tampered.to_string()).unwrap();
    let (code, out) = check(&event, &key);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("the path does not lead"), "{out}");
    // An event after the last checkpoint cannot be proven yet.
    let out = run(&["prove", "--event-id", &a.event_ids[22], "--key", &key, file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "seq 23 is covered by the final checkpoint: {}", text(&out));
    let mut short = a.lines.clone();
    short.pop(); // the final checkpoint
    write_lines(&file, &short);
    let out = run(&["prove", "--event-id", &a.event_ids[22], file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("chain pod-a seq 23: no checkpoint"), "{}", text(&out));
}

#[test]
fn keygen_writes_a_private_key_the_sdk_loads_and_prints_its_verifier_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.key");
    let out = run(&["keygen", "--name", "billing-prod", "--out", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let verifier = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let private = std::fs::read_to_string(&path).unwrap();
    let signer = NoteSigner::from_private_key(private.trim()).unwrap();
    assert_eq!(signer.verifier().to_string(), verifier);
    assert!(verifier.starts_with("billing-prod+"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    // Never overwrites; a bad name is a usage error.
    let again = run(&["keygen", "--name", "billing-prod", "--out", path.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), private);
    let bad = run(&["keygen", "--name", "a b", "--out", dir.path().join("x").to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    // A private key given as a verifier key file is refused with a clear message.
    let trail_file = dir.path().join("t.jsonl");
    write_lines(&trail_file, &trail("c", 2, 2, &signer).lines);
    let out = run(&["verify", "--key-file", path.to_str().unwrap(), trail_file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("this is a private key"), "{}", text(&out));
    let keys = dir.path().join("keys.txt");
    std::fs::write(&keys, format!("# auditors' keys\n{verifier}\n")).unwrap();
    let out = run(&["verify", "--key-file", keys.to_str().unwrap(), trail_file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}
