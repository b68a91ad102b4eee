//! `ordo`: one binary for operating Ordo. Parses the command line and hands over to the library.

use clap::{Parser, Subcommand};
#[cfg(feature = "bench")]
use ordo_api::bench;
use ordo_api::cli::{audit, rebuild, repair, token};
use ordo_api::http;

/// mimalloc: the server allocates many small, short-lived buffers per request (Redis replies,
/// JSON); glibc's malloc spent a quarter of the server's CPU time on them under load. Built
/// without transparent huge pages (the `no_thp` feature: mimalloc does not `madvise` its
/// regions for them): with them, a burst of requests (a flash sale's thousand connections at
/// once) faulted in and zeroed fresh 2 MiB pages mid-burst, which doubled the burst's latency,
/// while steady traffic measured no gain from them (ADR 0021).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Ordo, an event-sourced order backend for online shops.
#[derive(Parser)]
#[command(name = "ordo", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (and keep the read models up to date) until SIGTERM or ctrl-c.
    Serve(http::ServeArgs),
    /// Print the OpenAPI document.
    Openapi,
    /// Print a bearer token for operators and scripts (signed with the server's secret).
    Token(token::TokenArgs),
    /// Rebuild read models from the event log into a fresh version, then switch to it.
    Rebuild(rebuild::RebuildArgs),
    /// A stream's events in order, and the aggregate's state at any version or time.
    Replay(audit::ReplayArgs),
    /// Audit the event log.
    Audit {
        #[command(subcommand)]
        check: AuditCheck,
    },
    /// Write events as JSON lines, for outside audit tools or moving stores.
    Export(audit::ExportArgs),
    /// Load an export into an empty store, keeping ids, order and times.
    Import(audit::ImportArgs),
    /// Repair a store file left open by a killed server, so the offline tools can read it.
    Repair(repair::RepairArgs),
    /// Measure performance on this machine; prints figures (JSON with --json).
    #[cfg(feature = "bench")]
    Bench {
        #[command(subcommand)]
        target: BenchTarget,
    },
}

#[derive(Subcommand)]
enum AuditCheck {
    /// Check the hash chain and that every event decodes with today's code.
    Verify(audit::VerifyArgs),
}

#[cfg(feature = "bench")]
#[derive(Subcommand)]
enum BenchTarget {
    /// Event store: appends (1 writer, 64 writers, batches of 100), read_all and catch-up.
    Store(bench::store::StoreBenchArgs),
    /// The whole service over HTTP: a shop-like mix from many clients, and the ceiling.
    Http(bench::http::HttpBenchArgs),
    /// A flash sale: shoppers on one product, then a crowd racing for its last units.
    HotSku(bench::hot_sku::HotSkuBenchArgs),
    /// Read side: rebuild every projection from N generated events, then time history and search.
    Projections(bench::projections::ProjectionsBenchArgs),
}

/// Logs to standard error: readable by default, one JSON object per line with
/// `ORDO_LOG_FORMAT=json` (for log shippers); the level comes from `RUST_LOG` (default `info`).
///
/// `RUST_LOG` of targets and levels (`info`, `info,ordo_api::http=debug`: the usual kind) is a
/// static filter; only directives on spans or fields (`[request]=debug`) take `EnvFilter`,
/// which looks up the span on every enter and exit of it. Every request runs in a span entered
/// at each of its polls, and under load that look-up was a percent of the server's CPU.
fn init_logging() {
    use tracing_subscriber::filter::EnvFilter;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let directives = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned());
    // Colours only for a person at a terminal, not in a file or a log collector.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(ansi);
    let fmt = if std::env::var("ORDO_LOG_FORMAT").is_ok_and(|f| f == "json") {
        fmt.json().boxed()
    } else {
        fmt.compact().boxed()
    };
    let logging = tracing_subscriber::registry().with(fmt);
    match static_filter(&directives) {
        Some(targets) => logging.with(targets).init(),
        None => {
            let env = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"));
            logging.with(env).init();
        }
    }
}

/// `RUST_LOG` as a static filter, if it names only targets and levels. (`Targets` would take
/// `[span]` for a target's name: directives with spans or fields are left to `EnvFilter`.)
fn static_filter(directives: &str) -> Option<tracing_subscriber::filter::Targets> {
    if directives.contains(['[', '{']) {
        None
    } else {
        directives.parse().ok()
    }
}

fn main() {
    init_logging();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => http::run(&args),
        Command::Openapi => http::print_openapi(),
        Command::Token(args) => token::token(&args),
        Command::Rebuild(args) => rebuild::run(&args),
        Command::Replay(args) => audit::replay(&args),
        Command::Audit { check: AuditCheck::Verify(args) } => audit::verify(&args),
        Command::Export(args) => audit::export(&args),
        Command::Import(args) => audit::import(&args),
        Command::Repair(args) => repair::run(&args),
        #[cfg(feature = "bench")]
        Command::Bench { target: BenchTarget::Store(args) } => bench::store::run(&args),
        #[cfg(feature = "bench")]
        Command::Bench { target: BenchTarget::Projections(args) } => bench::projections::run(&args),
        #[cfg(feature = "bench")]
        Command::Bench { target: BenchTarget::Http(args) } => bench::http::run(&args),
        Command::Bench { target: BenchTarget::HotSku(args) } => bench::hot_sku::run(&args),
    };
    if let Err(error) = result {
        eprintln!("ordo: {}", one_line(&error));
        std::process::exit(1);
    }
}

/// The error and its causes on one line, skipping a cause its parent's message already
/// repeats (some libraries print their source inside their own message).
fn one_line(error: &anyhow::Error) -> String {
    let mut line = error.to_string();
    let mut previous = line.clone();
    for cause in error.chain().skip(1) {
        let text = cause.to_string();
        if !previous.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        previous = text;
    }
    line
}

#[cfg(test)]
mod tests {
    use super::static_filter;
    use tracing::Level;

    #[test]
    fn targets_and_levels_are_a_static_filter_and_span_directives_are_not() {
        let access_log = static_filter("info,ordo_api::http=debug").expect("static");
        assert!(access_log.would_enable("ordo_api::http::middleware", &Level::DEBUG));
        assert!(!access_log.would_enable("ordo_api::cli", &Level::DEBUG));
        assert!(static_filter("warn").expect("static").would_enable("redis", &Level::WARN));
        assert!(static_filter("[request]=debug").is_none(), "a span directive needs EnvFilter");
        assert!(static_filter("ordo_api[request{path}]=trace").is_none());
    }
}
