//! `observer-trail verify` run as a process: every tampering fails with a message naming the chain, the sequence
//! number and the kind; clean trails (several chains in one file, the stderr fallback, duplicates) verify.

mod common;

use common::{checkpoint_line, run, seq_line, text, trail, write_lines};
use observer::integrity::NoteSigner;

struct Case {
    dir: tempfile::TempDir,
    signer: NoteSigner,
    key: String,
}

fn case() -> Case {
    let signer = NoteSigner::generate("audit-test").unwrap();
    let key = signer.verifier().to_string();
    Case { dir: tempfile::tempdir().unwrap(), signer, key }
}

impl Case {
    fn verify(&self, lines: &[String], extra: &[&str]) -> (i32, String) {
        let path = self.dir.path().join("audit.jsonl");
        write_lines(&path, lines);
        let mut args = vec!["verify", "--key", &self.key];
        args.extend_from_slice(extra);
        let p = path.to_str().unwrap().to_owned();
        args.push(&p);
        let out = run(&args);
        (out.status.code().unwrap_or(-1), text(&out))
    }
}

/// Asserts exit code 1 and a finding line naming chain, seq and kind.
fn assert_finding(code: i32, out: &str, chain: &str, seq: &str, kind: &str) {
    assert_eq!(code, 1, "expected an integrity failure:\n{out}");
    let wanted = format!("chain {chain} seq {seq}: {kind}:");
    assert!(out.lines().any(|l| l.trim_start().starts_with(&wanted)), "no line starting {wanted:?} in:\n{out}");
    assert!(out.contains("FAILED"), "{out}");
}

/// The trail every tampering test starts from: 10 events written by the real pipeline (file sink, chain on), a
/// checkpoint after every 5.
fn written_trail(signer: &NoteSigner) -> common::Trail {
    let dir = tempfile::tempdir().unwrap();
    common::pipeline_trail(dir.path(), 10, 5, signer)
}

#[test]
fn clean_trail_verifies_with_exit_0() {
    let c = case();
    let t = trail("pod-a", 12, 5, &c.signer);
    let (code, out) = c.verify(&t.lines, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("chain pod-a: 12 events (seq 1..12), 0 duplicates, 0 resumed, 3 checkpoints, signed up to seq 12"),
        "{out}"
    );
    assert!(out.contains("VERIFIED"), "{out}");
}

#[test]
fn edit_one_field() {
    let c = case();
    let t = written_trail(&c.signer);
    let mut lines = t.lines.clone();
    let i = seq_line(&lines, 3);
    lines[i] = lines[i].replace("doc-3", "doc-X");
    assert_ne!(lines[i], t.lines[i]);
    let (code, out) = c.verify(&lines, &[]);
    assert_finding(code, &out, &t.chain_id, "3", "edit");
}

#[test]
fn delete_a_line() {
    let c = case();
    let t = written_trail(&c.signer);
    let mut lines = t.lines.clone();
    lines.remove(seq_line(&lines, 4));
    let (code, out) = c.verify(&lines, &[]);
    assert_finding(code, &out, &t.chain_id, "4", "gap");
}

#[test]
fn swap_two_lines() {
    let c = case();
    let t = written_trail(&c.signer);
    let mut lines = t.lines.clone();
    let (i, j) = (seq_line(&lines, 6), seq_line(&lines, 7));
    lines.swap(i, j);
    let (code, out) = c.verify(&lines, &[]);
    assert_finding(code, &out, &t.chain_id, "6", "reorder");
}

#[test]
fn truncate_the_tail() {
    let c = case();
    let t = written_trail(&c.signer);
    let lines = t.lines[..=seq_line(&t.lines, 8)].to_vec(); // seq 1-5, checkpoint 5, seq 6-8
    let (code, out) = c.verify(&lines, &[]);
    assert_finding(code, &out, &t.chain_id, "6..8", "unsigned_tail");
}

#[test]
fn truncate_events_but_keep_a_checkpoint() {
    let c = case();
    let t = written_trail(&c.signer);
    let mut lines = t.lines.clone();
    for seq in [10, 9, 8] {
        lines.remove(seq_line(&lines, seq)); // the events go, the checkpoint of size 10 stays
    }
    let (code, out) = c.verify(&lines, &[]);
    assert_finding(code, &out, &t.chain_id, "8..10", "gap");
}

#[test]
fn insert_a_forged_event() {
    let c = case();
    let t = written_trail(&c.signer);
    // A forger who knows the format: a new seq-4 event with a correct own hash and the right prev_hash.
    let i = seq_line(&t.lines, 4);
    let mut forged: serde_json::Value = serde_json::from_str(&t.lines[i]).unwrap();
    forged["resource_id"] = "doc-forged".into();
    let mut integrity = observer::integrity::read_integrity(&forged).unwrap();
    integrity.hash = None;
    let hash = observer::integrity::event_hash(&forged, &integrity).unwrap();
    forged["integrity"]["hash"] = hash.to_hex().into();
    let mut lines = t.lines.clone();
    lines.insert(i + 1, forged.to_string());
    let (code, out) = c.verify(&lines, &[]);
    assert_finding(code, &out, &t.chain_id, "4", "insertion");
}

#[test]
fn forged_event_replacing_the_real_one() {
    let c = case();
    let t = written_trail(&c.signer);
    let i = seq_line(&t.lines, 4);
    let mut forged: serde_json::Value = serde_json::from_str(&t.lines[i]).unwrap();
    forged["resource_id"] = "doc-forged".into();
    let mut integrity = observer::integrity::read_integrity(&forged).unwrap();
    integrity.hash = None;
    forged["integrity"]["hash"] = observer::integrity::event_hash(&forged, &integrity).unwrap().to_hex().into();
    let mut lines = t.lines.clone();
    lines[i] = forged.to_string();
    let (code, out) = c.verify(&lines, &[]);
    assert_finding(code, &out, &t.chain_id, "5", "broken_link");
    assert_finding(code, &out, &t.chain_id, "5", "root_mismatch");
}

#[test]
fn replay_an_old_line() {
    let c = case();
    let t = written_trail(&c.signer);
    let mut lines = t.lines.clone();
    lines.insert(seq_line(&t.lines, 8) + 1, t.lines[seq_line(&t.lines, 2)].clone()); // seq 2 again after seq 8
    let (code, out) = c.verify(&lines, &[]);
    assert_finding(code, &out, &t.chain_id, "2", "replay");
}

#[test]
fn alter_a_checkpoint_signature() {
    let c = case();
    let t = written_trail(&c.signer);
    let mut lines = t.lines.clone();
    let i = checkpoint_line(&lines, 5);
    let mut cp: serde_json::Value = serde_json::from_str(&lines[i]).unwrap();
    let note = cp["note"].as_str().unwrap().to_owned();
    let (head, sig) = note.trim_end().rsplit_once(' ').unwrap();
    let mut sig: Vec<char> = sig.chars().collect();
    sig[10] = if sig[10] == 'A' { 'B' } else { 'A' };
    cp["note"] = format!("{head} {}\n", sig.into_iter().collect::<String>()).into();
    lines[i] = cp.to_string();
    let (code, out) = c.verify(&lines, &[]);
    assert_finding(code, &out, &t.chain_id, "5", "bad_signature");
}

#[test]
fn sign_with_another_key() {
    let c = case();
    let other = NoteSigner::generate("audit-test").unwrap(); // same name, another key
    let t = written_trail(&other);
    let (code, out) = c.verify(&t.lines, &[]);
    assert_finding(code, &out, &t.chain_id, "5", "unknown_key");
    assert_finding(code, &out, &t.chain_id, "10", "unknown_key");
    assert_finding(code, &out, &t.chain_id, "1..10", "unsigned_tail");
}

#[test]
fn three_chains_in_one_file_and_json_output() {
    let c = case();
    let ts: Vec<_> = ["pod-a", "pod-b", "pod-c"].iter().map(|id| trail(id, 9, 4, &c.signer)).collect();
    let mut lines = Vec::new();
    for i in 0..12 {
        for t in &ts {
            lines.extend(t.lines.get(i).cloned());
        }
    }
    lines.insert(3, "some unrelated log line".into());
    let (code, out) = c.verify(&lines, &["--json"]);
    assert_eq!(code, 0, "{out}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["ok"], true);
    assert_eq!(report["chains"].as_array().unwrap().len(), 3);
    assert_eq!(report["other_lines"], 1);
    // The same with one edit: JSON names chain, seq and kind.
    lines[7] = lines[7].replace("read number", "READ number");
    let (code, out) = c.verify(&lines, &["--json"]);
    assert_eq!(code, 1, "{out}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let findings: Vec<_> =
        report["chains"].as_array().unwrap().iter().flat_map(|c| c["findings"].as_array().unwrap().clone()).collect();
    assert_eq!(findings.len(), 1, "{out}");
    assert_eq!(findings[0]["kind"], "edit");
    assert!(findings[0]["chain_id"].is_string() && findings[0]["seq"].is_u64(), "{out}");
}

#[test]
fn stderr_fallback_lines_fill_the_gap_only_when_given() {
    let c = case();
    let t = written_trail(&c.signer);
    // Events 3 and 4 went to the stderr fallback (a sink failure): the file lacks them.
    let file: Vec<String> =
        t.lines.iter().enumerate().filter(|(i, _)| *i != 2 && *i != 3).map(|(_, l)| l.clone()).collect();
    let stderr = vec![
        "observer: audit sink file failed: disk full".to_owned(),
        format!("observer-audit-fallback: {}", t.lines[2]),
        format!("observer-audit-fallback: {}", t.lines[3]),
    ];
    let (code, out) = c.verify(&file, &[]);
    assert_finding(code, &out, &t.chain_id, "3..4", "gap");
    let stderr_path = c.dir.path().join("stderr.log");
    write_lines(&stderr_path, &stderr);
    let (code, out) = c.verify(&file, &[stderr_path.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1 other line(s) ignored"), "{out}");
}

#[test]
fn at_least_once_duplicates_are_accepted_and_counted() {
    let c = case();
    let t = written_trail(&c.signer);
    let mut lines = t.lines.clone();
    lines.extend(t.lines[2..7].iter().cloned()); // a spool replay
    let (code, out) = c.verify(&lines, &["--unordered"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("4 duplicates"), "{out}");
    // In write order (a file), the same copies are replays.
    let (code, out) = c.verify(&lines, &[]);
    assert_finding(code, &out, &t.chain_id, "3", "replay");
}

#[test]
fn usage_errors_exit_2() {
    let c = case();
    let out = run(&["verify", "--key", "not-a-key", "x"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("malformed key"), "{}", text(&out));
    let out = run(&["verify", "--key", &c.key, "/nonexistent/file.jsonl"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = run(&["verify", "--key", &c.key]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn without_a_key_checkpoints_fail_unless_signatures_are_skipped() {
    let c = case();
    let t = trail("pod-a", 6, 3, &c.signer);
    let path = c.dir.path().join("a.jsonl");
    write_lines(&path, &t.lines);
    let out = run(&["verify", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("unknown_key"), "{}", text(&out));
    let out = run(&["verify", "--skip-signatures", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("NOT checked"), "{}", text(&out));
}

#[test]
fn reads_stdin() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let c = case();
    let t = written_trail(&c.signer);
    let mut child = Command::new(env!("CARGO_BIN_EXE_observer-trail"))
        .args(["verify", "--key", &c.key, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = t.lines.clone();
    lines.remove(seq_line(&lines, 2));
    stdin.write_all(lines.join("\n").as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_finding(out.status.code().unwrap_or(-1), &text, &t.chain_id, "2", "gap");
}
