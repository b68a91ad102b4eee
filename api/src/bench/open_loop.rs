//! `ordo bench http --rate N`: queries at a fixed offered load (open loop), latency as users
//! feel it.
//!
//! A closed loop (each client waits for its answer before asking again) slows down with the
//! server and so never sees the queue it would build. Here requests start on a fixed schedule
//! whether or not earlier ones have answered, and each latency counts from the moment the
//! request was *due*, not sent, so time spent waiting behind a slow server is measured
//! (no coordinated omission). The mix is the closed loop's queries: half searches, a quarter
//! product pages, a quarter order histories.

use super::connection::Connection;
use super::percentile_ms;
use hyper::Method;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What one request of the mix asks for.
#[derive(Clone, Copy)]
enum Kind {
    Search,
    Product,
    History,
}

impl Kind {
    fn of(n: u64) -> Self {
        match n % 4 {
            0 | 1 => Kind::Search,
            2 => Kind::Product,
            _ => Kind::History,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Search => "search",
            Kind::Product => "product",
            Kind::History => "history",
        }
    }
}

/// What the schedule drives: the server, the catalogue's SKUs, words to search for, and
/// shoppers' tokens for histories.
pub(super) struct Load {
    pub(super) base: String,
    pub(super) skus: Arc<Vec<String>>,
    pub(super) words: &'static [&'static str],
    pub(super) tokens: Vec<String>,
}

/// Idle keep-alive connections: anonymous ones for public reads, and each shopper's own for
/// its history. A request takes one (or opens one, when every connection is busy: an open
/// loop needs as many as there are requests in flight) and gives it back once answered.
///
/// The generator shares the cores it measures. Through `reqwest` it spent 184-192 µs of CPU
/// per request (the server 198-237), so that at 2,000 requests per second it kept a fifth of
/// the machine busy; on connections of its own, as the closed loop's shoppers already were
/// (`connection.rs`), 142-153. The rest is the open loop's own: a task per request, started
/// from the schedule's thread, on a runtime that is idle between requests.
struct Pools {
    base: String,
    anonymous: Mutex<Vec<Connection>>,
    shoppers: Vec<(String, Mutex<Vec<Connection>>)>,
}

impl Pools {
    fn new(load: &Load) -> Self {
        Self {
            base: load.base.clone(),
            anonymous: Mutex::default(),
            shoppers: load.tokens.iter().map(|t| (t.clone(), Mutex::default())).collect(),
        }
    }

    /// Sends a GET for `path`, as shopper `shopper` if given; whether it answered 2xx.
    async fn get(&self, path: &str, shopper: Option<usize>) -> bool {
        let (pool, token) = match shopper.and_then(|i| self.shoppers.get(i)) {
            Some((token, pool)) => (pool, Some(token)),
            None => (&self.anonymous, None),
        };
        let idle = pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let connection = match (idle, token) {
            (Some(connection), _) => Ok(connection),
            (None, Some(token)) => Connection::new(&self.base, token),
            (None, None) => Connection::anonymous(&self.base),
        };
        let Ok(mut connection) = connection else { return false };
        let answered = connection.send(Method::GET, path, None).await;
        let ok = matches!(answered, Ok((status, _)) if status.is_success());
        pool.lock().unwrap_or_else(|p| p.into_inner()).push(connection);
        ok
    }
}

/// Offers `rate` requests per second for `duration`; figures per kind.
///
/// The schedule runs on a blocking thread that sleeps with the operating system's timer,
/// not Tokio's: Tokio's timer ticks in whole milliseconds, so at 2,000 requests per second
/// every other request would leave half a millisecond late, and since latency counts from
/// the moment a request was due, the generator's own rounding would be charged to the server
/// (it was: three quarters of the measured p50). The thread only starts requests; the runtime
/// sends them.
pub(super) async fn run(load: Load, rate: u32, duration: Duration) -> Value {
    let pools = Arc::new(Pools::new(&load));
    let load = Arc::new(load);
    let period = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let total = (duration.as_secs_f64() * f64::from(rate)).round() as u64;
    let runtime = tokio::runtime::Handle::current();
    let started = Instant::now();
    let schedule = tokio::task::spawn_blocking({
        let load = load.clone();
        move || {
            let mut tasks = Vec::with_capacity(total as usize);
            let mut late = Vec::with_capacity(total as usize);
            for n in 0..total {
                let due = started + period.mul_f64(n as f64);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                // How far behind schedule the generator itself fell: a figure that says
                // whether this machine could offer the load at all, and how much of each
                // latency is the generator's.
                late.push(Instant::now().saturating_duration_since(due));
                let (load, pools) = (load.clone(), pools.clone());
                tasks.push(runtime.spawn(async move {
                    let kind = Kind::of(n);
                    let ok = one(&load, &pools, kind, n).await;
                    (kind, ok, due.elapsed())
                }));
            }
            (tasks, late)
        }
    });
    let (tasks, mut late) = schedule.await.unwrap_or_default();
    let mut latencies: [Vec<Duration>; 3] = Default::default();
    let mut errors = total - tasks.len() as u64;
    for task in tasks {
        match task.await {
            Ok((kind, true, latency)) => latencies[kind as usize].push(latency),
            _ => errors += 1,
        }
    }
    let elapsed = started.elapsed();
    let answered: usize = latencies.iter().map(Vec::len).sum();
    let mut figures = json!({
        "offered_rps": rate,
        "answered_rps": (answered as f64 / elapsed.as_secs_f64()).round(),
        "requests": total,
        "errors": errors,
        "generator_late_p99_ms": round3(percentile_ms(&mut late, 99.0)),
        "generator_late_max_ms": round3(percentile_ms(&mut late, 100.0)),
    });
    let mut everything: Vec<Duration> = latencies.iter().flatten().copied().collect();
    for (kind, samples) in [Kind::Search, Kind::Product, Kind::History].iter().zip(&mut latencies) {
        add_percentiles(&mut figures, kind.name(), samples);
    }
    add_percentiles(&mut figures, "query", &mut everything);
    figures
}

fn add_percentiles(figures: &mut Value, kind: &str, samples: &mut [Duration]) {
    for (label, p) in [("p50", 50.0), ("p99", 99.0), ("p999", 99.9)] {
        figures[format!("{kind}_{label}_ms")] = json!(round3(percentile_ms(samples, p)));
    }
}

/// Sends request `n` of `kind`; whether it answered 2xx.
async fn one(load: &Load, pools: &Pools, kind: Kind, n: u64) -> bool {
    let i = (n / 4) as usize;
    match kind {
        Kind::Search => {
            let word = load.words[i % load.words.len()];
            pools.get(&format!("/v1/products?q={word}&limit=20"), None).await
        }
        Kind::Product => {
            let sku = &load.skus[i % load.skus.len()];
            pools.get(&format!("/v1/products/{sku}"), None).await
        }
        Kind::History => {
            pools.get("/v1/me/orders?limit=20", Some(i % load.tokens.len().max(1))).await
        }
    }
}

fn round3(ms: f64) -> f64 {
    (ms * 1_000.0).round() / 1_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_request_numbers_when_kinds_are_assigned_then_the_mix_is_half_search_and_a_quarter_each_other(
    ) {
        let kinds: Vec<&str> = (0..8).map(|n| Kind::of(n).name()).collect();
        assert_eq!(
            kinds,
            ["search", "search", "product", "history", "search", "search", "product", "history"]
        );
    }
}
