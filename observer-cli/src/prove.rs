//! `observer-trail prove` and `check-proof`: one event's inclusion in a signed checkpoint, shown without the
//! chain's other events.

use clap::Args;
use observer::integrity::{
    examine_line, merkle_root, parse_strict, Checkpoint, Digest, Examined, InclusionProof, FALLBACK_PREFIX,
};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::{keys, CliError, Outcome};

/// Arguments of `prove`.
#[derive(Args)]
pub struct ProveArgs {
    /// The `event_id` of the event to prove.
    #[arg(long)]
    event_id: String,
    /// The JSON-lines files holding the event's chain (every event from seq 1 up to the checkpoint, and the
    /// checkpoint).
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,
    /// Prove against the checkpoint of this size (default: the smallest valid checkpoint that covers the event).
    #[arg(long, value_name = "SIZE")]
    checkpoint_size: Option<u64>,
    /// Verifier keys: the checkpoint must be signed by one of them (repeatable; without a key the signature is
    /// not checked here, `check-proof` checks it).
    #[arg(long = "key", value_name = "KEY")]
    keys: Vec<String>,
    /// Write the proof here instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Arguments of `check-proof`.
#[derive(Args)]
pub struct CheckProofArgs {
    /// The proof (JSON) `prove` wrote.
    #[arg(long)]
    proof: PathBuf,
    /// A file holding the event's line (alone; an `observer-audit-fallback: ` prefix is allowed).
    #[arg(long)]
    event: PathBuf,
    /// A verifier key that may sign checkpoints (repeatable; at least one).
    #[arg(long = "key", value_name = "KEY", required = true)]
    keys: Vec<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

fn lines(path: &Path, mut each: impl FnMut(&[u8]) -> Result<(), CliError>) -> Result<(), CliError> {
    let file = std::fs::File::open(path).map_err(|e| CliError(format!("{}: {e}", path.display())))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        each(&line)?;
    }
}

fn strip(line: &[u8]) -> &[u8] {
    let line = line.strip_prefix(FALLBACK_PREFIX.as_bytes()).unwrap_or(line);
    line.trim_ascii()
}

/// Runs `prove`.
pub fn run_prove(args: ProveArgs) -> Result<Outcome, CliError> {
    let keys = keys::load(&args.keys, &[])?;
    // Pass 1: the event.
    let mut target: Option<(String, u64, Digest)> = None;
    let needle = serde_json::to_string(&args.event_id)?;
    for path in &args.files {
        lines(path, |line| {
            let line = strip(line);
            if target.is_some() || !contains(line, needle.as_bytes()) {
                return Ok(());
            }
            let Ok(value) = parse_strict(line) else { return Ok(()) };
            if value.get("event_id").and_then(|v| v.as_str()) != Some(args.event_id.as_str()) {
                return Ok(());
            }
            match examine_line(line) {
                Examined::Event { chain_id, seq, recorded, hash_ok: true, .. } => {
                    target = Some((chain_id, seq, recorded));
                    Ok(())
                }
                Examined::Event { .. } => Err(CliError(format!(
                    "event {}: its hash does not match its content (edited); no proof",
                    args.event_id
                ))),
                _ => Err(CliError(format!("event {} has no valid integrity object", args.event_id))),
            }
        })?;
    }
    let (chain_id, seq, hash) =
        target.ok_or_else(|| CliError(format!("no event with event_id {:?} in the files", args.event_id)))?;
    // Pass 2: the chain's hashes by seq and its checkpoints.
    let mut hashes: BTreeMap<u64, Digest> = BTreeMap::new();
    let mut checkpoints: Vec<Checkpoint> = Vec::new();
    for path in &args.files {
        lines(path, |line| {
            match examine_line(line) {
                Examined::Event { chain_id: c, seq, recorded, hash_ok: true, .. } if c == chain_id => {
                    if let Some(old) = hashes.insert(seq, recorded) {
                        if old != recorded {
                            return Err(CliError(format!(
                                "chain {chain_id} seq {seq}: two different events; run verify first"
                            )));
                        }
                    }
                }
                Examined::Checkpoint(cp) if cp.chain_id == chain_id => checkpoints.push(*cp),
                _ => {}
            }
            Ok(())
        })?;
    }
    checkpoints.sort_by_key(|c| c.size);
    let candidates = checkpoints
        .into_iter()
        .filter(|c| c.size >= seq && args.checkpoint_size.is_none_or(|s| s == c.size))
        .filter(|c| keys.is_empty() || c.verify(&keys).is_ok());
    let mut chosen = None;
    let mut last_error = String::from("no checkpoint of the chain covers the event");
    for cp in candidates {
        let leaves: Option<Vec<Digest>> = (1..=cp.size).map(|s| hashes.get(&s).copied()).collect();
        let Some(leaves) = leaves else {
            last_error = format!("the events 1..={} of chain {chain_id} are not all in the files", cp.size);
            continue;
        };
        if merkle_root(&leaves) != cp.root {
            last_error = format!("the checkpoint of size {} does not match the chain's events", cp.size);
            continue;
        }
        chosen = Some((cp, leaves));
        break;
    }
    let (cp, leaves) = chosen.ok_or_else(|| CliError(format!("chain {chain_id} seq {seq}: {last_error}")))?;
    debug_assert_eq!(leaves[(seq - 1) as usize], hash);
    let proof = InclusionProof::build(&args.event_id, seq, &leaves, cp)?;
    let text = serde_json::to_string_pretty(&proof)?;
    match &args.out {
        Some(path) => std::fs::write(path, text + "\n").map_err(|e| CliError(format!("{}: {e}", path.display())))?,
        None => println!("{text}"),
    }
    Ok(Outcome::Verified)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Runs `check-proof`.
pub fn run_check(args: CheckProofArgs) -> Result<Outcome, CliError> {
    let keys = keys::load(&args.keys, &[])?;
    let proof_text = std::fs::read(&args.proof).map_err(|e| CliError(format!("{}: {e}", args.proof.display())))?;
    let proof: InclusionProof =
        serde_json::from_slice(&proof_text).map_err(|e| CliError(format!("{}: {e}", args.proof.display())))?;
    let event_text = std::fs::read(&args.event).map_err(|e| CliError(format!("{}: {e}", args.event.display())))?;
    let event = parse_strict(strip(&event_text))
        .map_err(|e| CliError(format!("{}: the event line: {e}", args.event.display())))?;
    let result = proof.check(&event, &keys);
    let ok = result.is_ok();
    if args.json {
        let value = match &result {
            Ok(v) => serde_json::json!({
                "ok": true, "chain_id": proof.chain_id, "seq": proof.seq, "event_id": proof.event_id,
                "checkpoint_size": v.size, "signed_by": v.signed_by, "timestamp": v.timestamp,
            }),
            Err(e) => serde_json::json!({
                "ok": false, "chain_id": proof.chain_id, "seq": proof.seq, "event_id": proof.event_id, "error": e.to_string(),
            }),
        };
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        match &result {
            Ok(v) => println!(
                "VERIFIED: event {} is chain {} seq {}, included in the checkpoint of size {} signed by {} at {}",
                proof.event_id,
                proof.chain_id,
                proof.seq,
                v.size,
                v.signed_by.join(", "),
                v.timestamp
            ),
            Err(e) => println!("FAILED: chain {} seq {}: {e}", proof.chain_id, proof.seq),
        }
    }
    Ok(if ok { Outcome::Verified } else { Outcome::Failed })
}
