//! Verifier keys from `--key` strings and `--key-file` files.

use observer::integrity::NoteVerifier;
use std::path::PathBuf;

use crate::CliError;

/// Parses every `--key` and every non-empty, non-`#` line of every `--key-file`.
pub fn load(keys: &[String], files: &[PathBuf]) -> Result<Vec<NoteVerifier>, CliError> {
    let mut out = Vec::new();
    for k in keys {
        out.push(NoteVerifier::parse(k).map_err(|e| CliError(format!("--key {k:?}: {e}")))?);
    }
    for f in files {
        let text = std::fs::read_to_string(f).map_err(|e| CliError(format!("{}: {e}", f.display())))?;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if line.starts_with("PRIVATE+KEY+") {
                return Err(CliError(format!(
                    "{}:{}: this is a private key; give the verifier key (observer-trail keygen prints it)",
                    f.display(),
                    i + 1
                )));
            }
            out.push(NoteVerifier::parse(line).map_err(|e| CliError(format!("{}:{}: {e}", f.display(), i + 1)))?);
        }
    }
    Ok(out)
}
