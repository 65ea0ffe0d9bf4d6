//! Test-support package for the observer workspace (not published). Its one item compiles the README's examples
//! as doc tests (here, not in the published `autonomize-observer` package, whose files cannot reach the README).

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
