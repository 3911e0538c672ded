//! Compile-time errors of the macros, checked against `tests/ui/fail/*.stderr`.
//! Regenerate with `TRYBUILD=overwrite cargo test -p house-macros --test ui` and review the diff.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
