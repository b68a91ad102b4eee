//! The dependency rule, checked: the domain crate pulls in no runtime, I/O or clock crates,
//! and the application layer knows nothing of HTTP, the command line or how callers prove who
//! they are.

use ordo_tests::cargo;

/// Crates that would let I/O, a clock or a runtime into the pure domain.
const FORBIDDEN: &[&str] = &["tokio", "redis", "poem", "chrono", "time", "redb", "rand", "uuid"];

/// Crates that would tie the application layer to one way of being called.
const OUTER_LAYERS: &[&str] =
    &["poem", "poem-openapi", "clap", "jsonwebtoken", "ordo-api", "ordo-projections"];

/// The crates `package` depends on (normal dependencies, transitively).
fn dependencies(package: &str) -> Vec<String> {
    let output = cargo()
        .args(["tree", "-p", package, "-e", "normal", "--prefix", "none", "--offline"])
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8(output.stdout).expect("utf-8 output");
    let crates: Vec<String> =
        tree.lines().filter_map(|l| l.split_whitespace().next()).map(str::to_owned).collect();
    assert!(crates.iter().any(|c| c == package), "unexpected cargo tree output:\n{tree}");
    crates
}

#[test]
fn the_domain_depends_on_no_runtime_io_or_clock_crate() {
    let crates = dependencies("ordo-domain");
    let found: Vec<_> = crates.iter().filter(|c| FORBIDDEN.contains(&c.as_str())).collect();
    assert!(found.is_empty(), "the domain must stay pure, but depends on {found:?}");
}

#[test]
fn the_application_layer_depends_on_no_http_cli_or_token_crate() {
    let crates = dependencies("ordo-application");
    let found: Vec<_> = crates.iter().filter(|c| OUTER_LAYERS.contains(&c.as_str())).collect();
    assert!(found.is_empty(), "the application layer depends on {found:?}");
}
