//! `crate = path`: the macros through a renamed dependency (here a module re-exporting the crate).
mod obs {
    pub use observer::*;
}

#[observer::workflow(name = "renamed", crate = crate::obs)]
fn flow() -> u8 {
    inner()
}

#[observer::step(crate = crate::obs, name = "inner")]
fn inner() -> u8 {
    1
}

fn main() {
    assert_eq!(flow(), 1);
}
