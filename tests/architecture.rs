//! The dependency rule, checked: the domain crate pulls in no runtime, I/O or clock crates.

use ordo_tests::cargo;

/// Crates that would let I/O, a clock or a runtime into the pure domain.
const FORBIDDEN: &[&str] = &["tokio", "redis", "poem", "chrono", "time", "redb", "rand", "uuid"];

#[test]
fn the_domain_depends_on_no_runtime_io_or_clock_crate() {
    let output = cargo()
        .args(["tree", "-p", "ordo-domain", "-e", "normal", "--prefix", "none", "--offline"])
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8(output.stdout).expect("utf-8 output");
    let crates: Vec<&str> = tree.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert!(crates.contains(&"ordo-domain"), "unexpected cargo tree output:\n{tree}");
    let found: Vec<_> = crates.iter().filter(|c| FORBIDDEN.contains(c)).collect();
    assert!(found.is_empty(), "the domain must stay pure, but depends on {found:?}:\n{tree}");
}
