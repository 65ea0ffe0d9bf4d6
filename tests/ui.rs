//! Compile-time tests of the attribute macros: what compiles (`tests/ui/pass`) and the error for each kind of
//! mistake (`tests/ui/fail`, beside its `.stderr`). Regenerate with `TRYBUILD=overwrite cargo test --test ui`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
