//! `observer-trail keygen`: a new Ed25519 checkpoint signing key.

use clap::Args;
use observer::integrity::NoteSigner;
use std::io::Write;
use std::path::PathBuf;

use crate::{CliError, Outcome};

/// Arguments of `keygen`.
#[derive(Args)]
pub struct KeygenArgs {
    /// The key name (no spaces, no '+'), e.g. the service and environment: `billing-prod`.
    #[arg(long)]
    name: String,
    /// Where to write the private key (created with mode 0600; an existing file is never overwritten).
    #[arg(long)]
    out: PathBuf,
}

/// Writes the private key string to `--out` and prints the verifier key on stdout.
pub fn run(args: KeygenArgs) -> Result<Outcome, CliError> {
    let signer = NoteSigner::generate(&args.name)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&args.out).map_err(|e| CliError(format!("{}: {e}", args.out.display())))?;
    writeln!(file, "{}", signer.private_key_string())?;
    file.sync_all()?;
    println!("{}", signer.verifier());
    Ok(Outcome::Verified)
}
