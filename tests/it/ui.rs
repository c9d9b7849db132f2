//! Compile-time errors of `#[derive(Mapping)]`: one case per rule under `tests/ui/`,
//! each `.stderr` pinned to the rustc named in the README.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
