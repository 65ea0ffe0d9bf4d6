//! `observer-trail`: verifies the tamper-evident audit trails the observer SDK writes (see `docs/INTEGRITY.md`).
//!
//! Exit codes: 0 everything verified; 1 an integrity failure; 2 a usage or input error.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod accounting;
mod input;
#[cfg(feature = "kafka")]
mod kafka;
mod keygen;
mod keys;
mod prove;
mod verify;

/// Verifies tamper-evident audit trails written by the observer SDK.
#[derive(Parser)]
#[command(name = "observer-trail", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Verify the hash chains and signed checkpoints of JSON-lines audit trails (files, stdin, a Kafka topic).
    Verify(verify::VerifyArgs),
    /// Produce an inclusion proof (JSON) of one event against a signed checkpoint.
    Prove(prove::ProveArgs),
    /// Check an inclusion proof with only the proof, the event's line and the verifier key.
    CheckProof(prove::CheckProofArgs),
    /// Generate an Ed25519 checkpoint signing key: writes the private key file, prints the verifier key.
    Keygen(keygen::KeygenArgs),
    /// The accounting of disclosures (HIPAA 164.528) for one patient over a date range: date, recipient, purpose,
    /// data disclosed, description (table or JSON).
    Accounting(accounting::AccountingArgs),
}

/// A usage or input error (exit code 2).
#[derive(Debug)]
pub struct CliError(pub String);

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<E: std::error::Error> From<E> for CliError {
    fn from(e: E) -> Self {
        CliError(e.to_string())
    }
}

/// The outcome of a command that ran: verified or not.
pub enum Outcome {
    /// Everything verified.
    Verified,
    /// An integrity failure was found (reported already).
    Failed,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Verify(args) => verify::run(args),
        Command::Prove(args) => prove::run_prove(args),
        Command::CheckProof(args) => prove::run_check(args),
        Command::Keygen(args) => keygen::run(args),
        Command::Accounting(args) => accounting::run(args),
    };
    match result {
        Ok(Outcome::Verified) => ExitCode::SUCCESS,
        Ok(Outcome::Failed) => ExitCode::from(1),
        Err(e) => {
            eprintln!("observer-trail: error: {e}");
            ExitCode::from(2)
        }
    }
}
