//! `ordo rebuild`: rebuild read models from the event log into a fresh version, switch, clean up.

use crate::environment::{open_store_read_only, redis_for, DataDir};
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use ordo_eventstore::{EmbeddedStore, EventStore, Position};
use ordo_projections::rebuild::{rebuild, RebuildReport};
use ordo_projections::runner::RunnerConfig;
use ordo_projections::views::{CartView, OrderView, ProductView, View};
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Projections `ordo rebuild` knows.
pub const PROJECTIONS: [&str; 3] = ["orders", "catalogue", "carts"];

/// Options of `ordo rebuild`.
#[derive(clap::Args, Debug)]
pub struct RebuildArgs {
    /// Rebuild only this projection (orders, catalogue, carts); default: all of them.
    #[arg(long, value_parser = PROJECTIONS)]
    pub projection: Option<String>,
    /// Data directory.
    #[command(flatten)]
    pub data: DataDir,
    /// Redis to rebuild in (default: $REDIS_URL, else the private server of the data directory).
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,
    /// How long old keys stay after the switch, for queries already reading them.
    #[arg(long, default_value_t = 2_000)]
    pub grace_ms: u64,
}

/// Runs `ordo rebuild`.
pub fn run(args: &RebuildArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let store = Arc::new(open_store_read_only(&args.data)?);
        let (redis, _private) = redis_for(&args.data, args.redis_url.as_deref()).await?;
        let grace = Duration::from_millis(args.grace_ms);
        for name in PROJECTIONS.iter().filter(|p| args.projection.as_deref().is_none_or(|only| only == **p)) {
            let report = match *name {
                "orders" => rebuild_one::<OrderView>(&store, &redis, grace).await?,
                "catalogue" => rebuild_one::<ProductView>(&store, &redis, grace).await?,
                _ => rebuild_one::<CartView>(&store, &redis, grace).await?,
            };
            let events = report.position.map_or(0, |p| p.0 + 1);
            let seconds = report.elapsed.as_secs_f64();
            println!(
                "rebuilt {}: v{} active at position {}, {events} events in {seconds:.2}s ({:.0} events/s), {} old keys removed",
                report.projection,
                report.version,
                report.position.map_or("-".to_owned(), |p| p.to_string()),
                events as f64 / seconds.max(1e-9),
                report.removed_keys
            );
        }
        anyhow::Ok(())
    })
}

async fn rebuild_one<V: View>(
    store: &Arc<EmbeddedStore>,
    redis: &redis::Client,
    grace: Duration,
) -> anyhow::Result<RebuildReport> {
    let connection = redis.get_connection_manager().await.context("connecting to Redis")?;
    let target = store.last_position().await?.map_or(0, |p| p.0 + 1);
    let progress = Progress::new(V::PROJECTION, target);
    let report =
        rebuild::<V, _>(store.clone(), connection, RunnerConfig::default(), grace, |p, _| {
            progress.update(p)
        })
        .await
        .with_context(|| format!("rebuilding {}", V::PROJECTION))?;
    progress.finish();
    Ok(report)
}

/// A progress bar on a terminal, a log line a second otherwise.
struct Progress {
    bar: Option<ProgressBar>,
    name: &'static str,
    total: u64,
    started: Instant,
    last_line: std::cell::Cell<Instant>,
}

impl Progress {
    fn new(name: &'static str, total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            let style = ProgressStyle::with_template(
                "{prefix:>10} [{bar:40}] {pos}/{len} events, {rate}, ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .with_key("rate", |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0} events/s", state.per_sec());
            })
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(name);
            bar
        });
        Self {
            bar,
            name,
            total,
            started: Instant::now(),
            last_line: std::cell::Cell::new(Instant::now()),
        }
    }

    fn update(&self, applied: Position) {
        let done = applied.0 + 1;
        match &self.bar {
            Some(bar) => bar.set_position(done),
            None if self.last_line.get().elapsed() >= Duration::from_secs(1) => {
                self.last_line.set(Instant::now());
                let rate = done as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
                eprintln!(
                    "rebuild {}: {done}/{} events ({rate:.0} events/s)",
                    self.name, self.total
                );
            }
            None => {}
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
