//! Reading JSON lines from files or stdin into a [`TrailVerifier`], examining lines on every core.

use observer::integrity::{examine_line, Examined, SourceId, TrailVerifier};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use crate::CliError;

/// Lines examined per batch (parsed and hashed in parallel, then added in order).
const BATCH: usize = 8192;

/// Reads every line of `path` (`-` = stdin) into `verifier` as the source `source`.
pub fn read_file(verifier: &mut TrailVerifier, source: SourceId, path: &Path) -> Result<(), CliError> {
    if path == Path::new("-") {
        return read_lines(verifier, source, std::io::stdin().lock());
    }
    let file = std::fs::File::open(path).map_err(|e| CliError(format!("{}: {e}", path.display())))?;
    read_lines(verifier, source, file).map_err(|e| CliError(format!("{}: {e}", path.display())))
}

/// Reads every line of `reader`.
pub fn read_lines(verifier: &mut TrailVerifier, source: SourceId, reader: impl Read) -> Result<(), CliError> {
    let mut reader = BufReader::with_capacity(1 << 20, reader);
    let mut batch: Vec<Vec<u8>> = Vec::with_capacity(BATCH);
    loop {
        let mut line = Vec::new();
        let n = reader.read_until(b'\n', &mut line)?;
        if n > 0 {
            batch.push(line);
        }
        if batch.len() == BATCH || (n == 0 && !batch.is_empty()) {
            add_batch(verifier, source, &batch);
            batch.clear();
        }
        if n == 0 {
            return Ok(());
        }
    }
}

/// Examines `lines` on all cores and adds them in order.
pub fn add_batch(verifier: &mut TrailVerifier, source: SourceId, lines: &[Vec<u8>]) {
    for examined in examine_parallel(lines) {
        verifier.add_examined(source, examined);
    }
}

fn examine_parallel(lines: &[Vec<u8>]) -> Vec<Examined> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(16);
    if threads <= 1 || lines.len() < 256 {
        return lines.iter().map(|l| examine_line(l)).collect();
    }
    let chunk = lines.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = lines
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(|l| examine_line(l)).collect::<Vec<_>>()))
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("examining a line never panics")).collect()
    })
}
