//! `Result` fns: `?` and early `return` in the body, `io::Result`, aliases, errors with only `Debug`.
use std::time::Duration;

use observer::audit;

mod app {
    /// `#[audit]` recognises a `Result` by the last segment of the return type's path.
    pub type Result<T> = std::result::Result<T, String>;
}

#[derive(Debug)]
struct Opaque;

#[audit(read, File, id = path)]
fn read_len(path: &str) -> std::io::Result<usize> {
    if path.is_empty() {
        return Err(std::io::Error::new(std::io::ErrorKind::NotFound, "empty path"));
    }
    let n: usize = path.len().to_string().parse().map_err(std::io::Error::other)?;
    Ok(n)
}

#[audit(update, Secret, id = name)]
fn rotate(name: &str) -> app::Result<u32> {
    let n: u32 = name.parse().map_err(|e: std::num::ParseIntError| e.to_string())?;
    Ok(n + 1)
}

#[audit(delete, Token, id = token)]
fn revoke(token: u64) -> Result<(), Opaque> {
    if token == 0 {
        return Err(Opaque);
    }
    Ok(())
}

fn main() {
    let sink = observer::export::MemorySink::new();
    let _guard = observer::init(observer::ObserverConfig {
        audit_sink: observer::AuditSink::Memory(sink.clone()),
        ..Default::default()
    })
    .expect("init");

    assert_eq!(read_len("abc").expect("ok"), 3);
    assert!(read_len("").is_err());
    assert_eq!(rotate("41"), Ok(42));
    assert!(rotate("x").is_err());
    assert!(revoke(0).is_err());

    let e = sink.wait_for(Duration::from_secs(5), |e| e.resource_id == "x").expect("rotate event");
    assert_eq!(e.metadata["error"], "invalid digit found in string");
    let e = sink.wait_for(Duration::from_secs(5), |e| e.resource_id == "0").expect("revoke event");
    assert_eq!(e.metadata["error"], "Opaque");
}
