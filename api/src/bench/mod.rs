//! `ordo bench`: repeatable measurements on this machine, printed as JSON for tracking.
//!
//! Speed claims in the README and issue notes come from here, never from timed tests.

mod connection;
mod cpu;
pub mod hot_sku;
pub mod http;
mod open_loop;
pub mod projections;
mod shop_history;
pub mod store;
mod target;

/// The `p`-th percentile (0..=100) of `samples`, in milliseconds; sorts in place.
pub fn percentile_ms(samples: &mut [std::time::Duration], p: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.sort_unstable();
    let rank = ((p / 100.0) * (samples.len() - 1) as f64).round() as usize;
    samples[rank.min(samples.len() - 1)].as_secs_f64() * 1_000.0
}

/// Events per second, rounded.
pub fn rate(events: usize, elapsed: std::time::Duration) -> f64 {
    (events as f64 / elapsed.as_secs_f64()).round()
}

/// A temporary directory for a benchmark's store and Redis, inside `dir` if given (the disk you
/// will run on: fsync cost is the disk's).
pub fn temp_dir(dir: Option<&std::path::Path>) -> anyhow::Result<tempfile::TempDir> {
    use anyhow::Context;
    match dir {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .context("creating a temporary directory for the benchmark")
}

/// Prints the figures: one JSON object with `json`, else one aligned line per figure.
pub fn print(figures: &serde_json::Value, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(figures)?);
    } else if let Some(map) = figures.as_object() {
        for (k, v) in map {
            println!("{k:>28}  {v}");
        }
    }
    Ok(())
}
