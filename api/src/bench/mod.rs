//! `ordo bench`: repeatable measurements on this machine, printed as JSON for tracking.
//!
//! Speed claims in the README and issue notes come from here, never from timed tests.

pub mod projections;
pub mod store;

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
