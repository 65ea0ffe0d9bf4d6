//! `Result` workflows and steps: `?` converting errors through `From`, early `return`, `io::Result` and other
//! aliases ending in `Result`, errors with only `Debug`, `impl Trait` in the `Ok` type.
use std::io;

use observer::{step, workflow};

#[derive(Debug)]
enum AppError {
    Io(io::Error),
    Invalid(u32),
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "io: {e}"),
            Self::Invalid(n) => write!(f, "invalid {n}"),
        }
    }
}

impl From<io::Error> for AppError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// No `Display`: the message is its `Debug` form.
#[derive(Debug)]
struct DebugOnly;

#[workflow(fields(n = n))]
fn run(n: u32) -> Result<u32, AppError> {
    if n == 0 {
        return Err(AppError::Invalid(0));
    }
    let read = read(n)?; // io::Error -> AppError
    let v = validate(read)?;
    Ok(v)
}

#[step]
fn read(n: u32) -> io::Result<u32> {
    if n > 10 {
        return Err(io::Error::other("too big"));
    }
    Ok(n)
}

#[step]
fn validate(n: u32) -> Result<u32, AppError> {
    let parsed: u32 = n.to_string().parse().map_err(|_| AppError::Invalid(n))?;
    Ok(parsed)
}

#[step]
fn debug_only(fail: bool) -> Result<(), DebugOnly> {
    if fail {
        Err(DebugOnly)
    } else {
        Ok(())
    }
}

#[workflow]
fn debug_only_flow() -> Result<(), DebugOnly> {
    debug_only(true)
}

#[step]
fn opaque(n: u32) -> Result<impl std::fmt::Display, AppError> {
    if n == 1 {
        return Err(AppError::Invalid(1));
    }
    Ok(n)
}

#[workflow]
async fn async_run(n: u32) -> Result<u32, AppError> {
    let v = async_step(n).await?;
    Ok(read(v)?)
}

#[step]
async fn async_step(n: u32) -> Result<u32, AppError> {
    if n == 7 {
        return Err(AppError::Invalid(7));
    }
    Ok(validate(n)? + 1)
}

fn main() {
    assert_eq!(run(3).expect("ok"), 3);
    assert!(matches!(run(0), Err(AppError::Invalid(0))));
    assert!(matches!(run(11), Err(AppError::Io(_))));
    assert!(debug_only(false).is_ok());
    assert!(debug_only_flow().is_err());
    assert_eq!(opaque(2).expect("ok").to_string(), "2");
    assert!(opaque(1).is_err());
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    assert_eq!(rt.block_on(async_run(2)).expect("ok"), 3);
    assert!(rt.block_on(async_run(7)).is_err());
}
