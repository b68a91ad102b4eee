//! `ordo bench http` as a user runs it, small: its own server, a few shoppers for a second.
//! Not a measurement (the figures of a debug build on a shared machine mean nothing); it shows
//! that both modes drive the service without a failed request, so a change to the load
//! generator cannot quietly break the bench the README's figures come from.

use ordo_tests::ordo_bin;
use serde_json::Value;
use std::process::Command;

fn bench_http(extra: &[&str]) -> Value {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(ordo_bin())
        .args(["bench", "http", "--json", "--clients", "4", "--products", "12"])
        .args(["--duration", "1s", "--ceiling-duration", "200ms", "--dir"])
        .arg(dir.path())
        .args(extra)
        .output()
        .expect("ordo bench http runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[test]
fn the_closed_loop_mix_answers_every_kind_of_request_without_an_error() {
    let figures = bench_http(&[]);
    assert_eq!(figures["errors"], 0, "{figures}");
    for kind in ["query_rps", "command_rps", "ceiling_rps"] {
        assert!(figures[kind].as_f64().is_some_and(|n| n > 0.0), "{kind}: {figures}");
    }
}

#[test]
fn the_open_loop_answers_its_offered_queries_without_an_error() {
    let figures = bench_http(&["--rate", "100"]);
    assert_eq!(figures["errors"], 0, "{figures}");
    assert!(figures["answered_rps"].as_f64().is_some_and(|n| n > 0.0), "{figures}");
}
