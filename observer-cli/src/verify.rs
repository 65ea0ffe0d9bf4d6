//! `observer-trail verify`: every chain of the given trails, with a human or JSON report.

use clap::Args;
use observer::integrity::{TrailReport, TrailVerifier};
use std::path::PathBuf;

use crate::{input, keys, CliError, Outcome};

/// Arguments of `verify`.
#[derive(Args)]
pub struct VerifyArgs {
    /// JSON-lines files: the file sink's output, a topic dump, stderr captured with the `observer-audit-fallback: `
    /// lines (`-` reads stdin). Give every file a chain's events may be in (e.g. the sink's file and the captured
    /// stderr of a sink failure), or the events that are only elsewhere show as gaps.
    #[arg(value_name = "FILE")]
    files: Vec<PathBuf>,
    /// A verifier key `name+keyid+base64` that may sign checkpoints (repeatable).
    #[arg(long = "key", value_name = "KEY")]
    keys: Vec<String>,
    /// A file of verifier keys, one per line (repeatable).
    #[arg(long = "key-file", value_name = "FILE")]
    key_files: Vec<PathBuf>,
    /// Do not check checkpoint signatures (their roots are still checked). The report says so.
    #[arg(long)]
    skip_signatures: bool,
    /// The files are not in write order (e.g. a dump of a Kafka topic with several partitions or replays): do not
    /// report reorders and replays, count copies as duplicates.
    #[arg(long)]
    unordered: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    #[cfg(feature = "kafka")]
    #[command(flatten)]
    kafka: crate::kafka::KafkaArgs,
}

/// Runs `verify`.
pub fn run(args: VerifyArgs) -> Result<Outcome, CliError> {
    let keys = keys::load(&args.keys, &args.key_files)?;
    if keys.is_empty() && !args.skip_signatures {
        eprintln!("observer-trail: no --key given: every checkpoint will be reported as signed by an unknown key");
    }
    let mut verifier = TrailVerifier::new(keys).skip_signatures(args.skip_signatures);
    #[cfg(feature = "kafka")]
    let from_kafka = crate::kafka::read_topic(&args.kafka, &mut verifier)?;
    #[cfg(not(feature = "kafka"))]
    let from_kafka = false;
    if args.files.is_empty() && !from_kafka {
        return Err(CliError("nothing to verify: give FILE arguments (or - for stdin)".into()));
    }
    for path in &args.files {
        let source = verifier.add_source(&path.display().to_string(), !args.unordered);
        input::read_file(&mut verifier, source, path)?;
    }
    let report = verifier.finish();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", human(&report));
    }
    Ok(if report.ok { Outcome::Verified } else { Outcome::Failed })
}

/// The human report.
pub fn human(report: &TrailReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for c in &report.chains {
        let _ = writeln!(
            out,
            "chain {}: {} events (seq {}..{}), {} duplicates, {} resumed, {} checkpoints, signed up to seq {}{}: {}",
            c.chain_id,
            c.events,
            c.first_seq,
            c.last_seq,
            c.duplicates,
            c.resumed,
            c.checkpoints,
            c.signed_size,
            if c.signed_by.is_empty() { String::new() } else { format!(" by {}", c.signed_by.join(", ")) },
            if c.ok() { "OK" } else { "FAILED" }
        );
        for f in &c.findings {
            let _ = writeln!(out, "  {f}");
        }
    }
    for f in &report.findings {
        let _ = writeln!(out, "{f}");
    }
    if report.other_lines > 0 {
        let _ = writeln!(
            out,
            "{} other line(s) ignored (not audit events or checkpoints), e.g. {}",
            report.other_lines,
            report.other_line_examples.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
        );
    }
    if !report.signatures_checked {
        let _ = writeln!(out, "checkpoint signatures were NOT checked (--skip-signatures)");
    }
    let failures = report.all_findings().count();
    let _ = writeln!(
        out,
        "{}: {} line(s), {} chain(s), {} finding(s)",
        if report.ok { "VERIFIED" } else { "FAILED" },
        report.lines,
        report.chains.len(),
        failures
    );
    out
}
