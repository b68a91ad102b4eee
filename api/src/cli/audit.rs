//! Audit tools over the event log: `ordo replay`, `ordo audit verify`, `ordo export`, `ordo import`.
//!
//! They read the store read-only, so they work while `ordo serve` runs, and they work on every
//! backend `--store` names (the hash chain is checked on the embedded store and PostgreSQL;
//! KurrentDB has none).

use crate::cli::environment::{DataDir, StoreArgs};
use anyhow::{bail, Context};
use ordo_domain::{cart, order, payment, product, Decider};
use ordo_eventstore::clock::rfc3339;
use ordo_eventstore::codec::AnyEvent;
use ordo_eventstore::*;
use serde_json::{json, Value};
use std::io::{BufRead, Write};
use std::time::UNIX_EPOCH;

/// Where to read events from.
#[derive(clap::Args, Debug, Clone)]
pub struct Source {
    /// Data directory.
    #[command(flatten)]
    pub data: DataDir,
    /// The event store to read.
    #[command(flatten)]
    pub store: StoreArgs,
}

const PAGE: usize = 1_000;

/// An aggregate's state, whichever kind the stream holds. One lives per replay: its size
/// does not matter.
#[derive(Debug)]
#[allow(clippy::large_enum_variant, reason = "a single value per replay")]
enum AnyState {
    Product(product::ProductState),
    Cart(cart::CartState),
    Order(order::OrderState),
    Payment(payment::PaymentState),
}

impl AnyState {
    fn initial(category: &str) -> anyhow::Result<Self> {
        Ok(match category {
            "product" => AnyState::Product(product::Product::initial_state()),
            "cart" => AnyState::Cart(cart::Cart::initial_state()),
            "order" => AnyState::Order(order::Order::initial_state()),
            "payment" => AnyState::Payment(payment::Payment::initial_state()),
            other => bail!("streams of category {other:?} hold no aggregate Ordo knows"),
        })
    }

    fn apply(self, event: &AnyEvent) -> Self {
        match (self, event) {
            (AnyState::Product(s), AnyEvent::Product(e)) => {
                AnyState::Product(product::Product::evolve(s, e))
            }
            (AnyState::Cart(s), AnyEvent::Cart(e)) => AnyState::Cart(cart::Cart::evolve(s, e)),
            (AnyState::Order(s), AnyEvent::Order(e)) => AnyState::Order(order::Order::evolve(s, e)),
            (AnyState::Payment(s), AnyEvent::Payment(e)) => {
                AnyState::Payment(payment::Payment::evolve(s, e))
            }
            (state, _) => state,
        }
    }

    fn to_json(&self) -> Value {
        let value = match self {
            AnyState::Product(s) => serde_json::to_value(s),
            AnyState::Cart(s) => serde_json::to_value(s),
            AnyState::Order(s) => serde_json::to_value(s),
            AnyState::Payment(s) => serde_json::to_value(s),
        };
        value.unwrap_or(Value::Null)
    }
}

/// Field-level differences between two JSON values, as `(path, before, after)`.
pub fn json_diff(path: &str, before: &Value, after: &Value, out: &mut Vec<(String, Value, Value)>) {
    match (before, after) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let sub = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                json_diff(
                    &sub,
                    a.get(key).unwrap_or(&Value::Null),
                    b.get(key).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        (a, b) if a != b => out.push((path.to_owned(), a.clone(), b.clone())),
        _ => {}
    }
}

/// Options of `ordo replay`.
#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// The stream, e.g. `order-ord_123`.
    pub stream: String,
    /// Show the aggregate's state after this version.
    #[arg(long, conflicts_with = "as_of")]
    pub at: Option<u64>,
    /// Show the aggregate's state as of this time (RFC 3339, e.g. 2026-11-22T10:00:00Z).
    #[arg(long)]
    pub as_of: Option<String>,
    /// Show what each event changed in the aggregate's state.
    #[arg(long)]
    pub diff: bool,
    /// JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Where to read.
    #[command(flatten)]
    pub source: Source,
}

/// Runs `ordo replay`.
pub fn replay(args: &ReplayArgs) -> anyhow::Result<()> {
    let stream = StreamName::new(args.stream.clone())?;
    let events =
        with_store(&args.source, |store| async move { stream_events(&store, &stream).await })?;
    if events.is_empty() {
        bail!("stream {} has no events", args.stream);
    }
    let stop_at = match (&args.at, &args.as_of) {
        (Some(v), _) => Some(*v),
        (None, Some(t)) => {
            let time = humantime::parse_rfc3339_weak(t)
                .with_context(|| format!("--as-of {t:?} is not an RFC 3339 time"))?;
            let millis = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
            match events.iter().rev().find(|e| e.recorded_at <= millis) {
                Some(e) => Some(e.version),
                None => bail!("stream {} has no events at or before {t}", args.stream),
            }
        }
        (None, None) => None,
    };
    let mut out = std::io::stdout().lock();
    let mut state = AnyState::initial(events[0].stream.category())?;
    if !args.json {
        writeln!(
            out,
            "{:>7}  {:>9}  {:<24}  {:<24}  payload",
            "version", "position", "recorded", "type"
        )?;
    }
    for recorded in &events {
        if stop_at.is_some_and(|v| recorded.version > v) {
            break;
        }
        let event = AnyEvent::from_recorded(recorded)
            .with_context(|| format!("event at version {} does not decode", recorded.version))?;
        let before = args.diff.then(|| state.to_json());
        state = state.apply(&event);
        let mut changes = Vec::new();
        if let Some(before) = before {
            json_diff("", &before, &state.to_json(), &mut changes);
        }
        if args.json {
            let mut line = json!({
                "version": recorded.version,
                "position": recorded.position.0,
                "recorded_at": rfc3339(recorded.recorded_at),
                "type": recorded.event_type,
                "schema_version": recorded.schema_version,
                "id": recorded.id.to_string(),
                "event": event,
            });
            if args.diff {
                line["changes"] = changes
                    .iter()
                    .map(|(p, a, b)| json!({"path": p, "before": a, "after": b}))
                    .collect();
            }
            writeln!(out, "{line}")?;
        } else {
            let payload = serde_json::to_string(&event)?;
            writeln!(
                out,
                "{:>7}  {:>9}  {:<24}  {:<24}  {payload}",
                recorded.version,
                recorded.position.0,
                rfc3339(recorded.recorded_at),
                recorded.event_type
            )?;
            for (path, before, after) in &changes {
                let path = if path.is_empty() { "(created)" } else { path };
                writeln!(out, "{:>46}{path}: {before} -> {after}", "")?;
            }
        }
    }
    if let Some(version) = stop_at {
        let version = version.min(events.last().map_or(0, |e| e.version));
        if args.json {
            writeln!(out, "{}", json!({ "state_at_version": version, "state": state.to_json() }))?;
        } else {
            writeln!(
                out,
                "\nstate after version {version}:\n{}",
                serde_json::to_string_pretty(&state.to_json())?
            )?;
        }
    }
    Ok(())
}

/// Opens the source read-only and runs `f` on it inside a runtime.
fn with_store<T, F, Fut>(source: &Source, f: F) -> anyhow::Result<T>
where
    F: FnOnce(AnyStore) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let store = source.store.open(&source.data, Access::Read).await?;
        f(store).await
    })
}

/// Every event of `stream`, oldest first.
async fn stream_events(
    store: &AnyStore,
    stream: &StreamName,
) -> anyhow::Result<Vec<RecordedEvent>> {
    let mut events = Vec::new();
    loop {
        let page = store.read_stream(stream, events.len() as u64, Direction::Forward, PAGE).await?;
        let done = page.len() < PAGE;
        events.extend(page);
        if done {
            return Ok(events);
        }
    }
}

/// Options of `ordo audit verify`.
#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// Where to read.
    #[command(flatten)]
    pub source: Source,
}

/// Runs `ordo audit verify`: the hash chain (embedded store), then every event decoded with
/// today's code. Fails naming the first bad position.
pub fn verify(args: &VerifyArgs) -> anyhow::Result<()> {
    with_store(&args.source, |store| async move {
        let progress = crate::cli::progress::Progress::new("decode", None);
        let report = ordo_eventstore::audit::verify(&store, |n| progress.update(n)).await?;
        progress.finish();
        println!("{}", report.summary(store.kind()));
        Ok(())
    })
}

/// Options of `ordo export`.
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// Only events at or after this global position.
    #[arg(long, default_value_t = 0)]
    pub from: u64,
    /// Only this stream.
    #[arg(long)]
    pub stream: Option<String>,
    /// Write to this file instead of standard output.
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
    /// Where to read.
    #[command(flatten)]
    pub source: Source,
}

/// One exported event: everything needed to import it again, plus a readable rendering.
fn export_line(e: &RecordedEvent) -> Value {
    json!({
        "id": e.id.to_string(),
        "stream": e.stream.as_str(),
        "version": e.version,
        "position": e.position.0,
        "recorded_at": rfc3339(e.recorded_at),
        "recorded_at_ms": e.recorded_at,
        "type": e.event_type,
        "schema_version": e.schema_version,
        "correlation_id": e.metadata.correlation_id.map(|u| u.to_string()),
        "causation_id": e.metadata.causation_id.map(|u| u.to_string()),
        "headers": e.metadata.headers,
        "payload_hex": e.payload.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        "event": AnyEvent::from_recorded(e).ok(),
    })
}

/// Runs `ordo export`: JSON lines, one event each, in log order.
pub fn export(args: &ExportArgs) -> anyhow::Result<()> {
    let mut out: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let count = with_store(&args.source, |store| async move {
        let mut count = 0u64;
        if let Some(name) = &args.stream {
            for e in stream_events(&store, &StreamName::new(name.clone())?).await? {
                if e.position.0 >= args.from {
                    writeln!(out, "{}", export_line(&e))?;
                    count += 1;
                }
            }
        } else {
            // Positions are opaque (on KurrentDB they are byte offsets): read from the start
            // and skip, never step back from `--from` by one.
            let mut from = SubscribeFrom::Start;
            loop {
                let page = store.read_all(from, 4_096).await?;
                let Some(last) = page.last() else { break };
                from = SubscribeFrom::After(last.position);
                for e in page.iter().filter(|e| e.position.0 >= args.from) {
                    writeln!(out, "{}", export_line(e))?;
                    count += 1;
                }
            }
        }
        out.flush()?;
        Ok(count)
    })?;
    eprintln!("exported {count} events");
    Ok(())
}

/// Options of `ordo import`.
#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// A file written by `ordo export` (`-` for standard input).
    pub file: std::path::PathBuf,
    /// Data directory to import into (its `events.redb`, unless `--store` names another);
    /// the store must be empty.
    #[command(flatten)]
    pub data: DataDir,
    /// The event store to import into.
    #[command(flatten)]
    pub store: StoreArgs,
}

fn parse_line(number: usize, line: &str) -> anyhow::Result<RecordedEvent> {
    let v: Value =
        serde_json::from_str(line).with_context(|| format!("line {number} is not JSON"))?;
    let text = |k: &str| v[k].as_str().with_context(|| format!("line {number}: missing {k}"));
    let int = |k: &str| v[k].as_u64().with_context(|| format!("line {number}: missing {k}"));
    let uuid = |k: &str| -> anyhow::Result<Option<uuid::Uuid>> {
        v[k].as_str()
            .map(|s| s.parse().with_context(|| format!("line {number}: bad {k}")))
            .transpose()
    };
    let hex = text("payload_hex")?;
    let payload = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("x"), 16))
        .collect::<Result<Vec<u8>, _>>()
        .with_context(|| format!("line {number}: payload_hex is not hex"))?;
    Ok(RecordedEvent {
        id: text("id")?.parse().with_context(|| format!("line {number}: bad id"))?,
        stream: StreamName::new(text("stream")?)?,
        version: int("version")?,
        position: Position(int("position")?),
        event_type: text("type")?.to_owned(),
        schema_version: u16::try_from(int("schema_version")?)?,
        recorded_at: v["recorded_at_ms"]
            .as_i64()
            .with_context(|| format!("line {number}: missing recorded_at_ms"))?,
        metadata: EventMetadata {
            correlation_id: uuid("correlation_id")?,
            causation_id: uuid("causation_id")?,
            headers: serde_json::from_value(v["headers"].clone()).unwrap_or_default(),
        },
        payload,
    })
}

/// Runs `ordo import`: loads an export into an empty store, keeping ids, order and times.
pub fn import(args: &ImportArgs) -> anyhow::Result<()> {
    let reader: Box<dyn BufRead> = if args.file.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(&args.file)
                .with_context(|| format!("opening {}", args.file.display()))?,
        ))
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let location = args.store.location(&args.data);
        let store = args.store.open(&args.data, Access::Write).await?;
        if let Some(last) = store.last_position().await? {
            bail!("{} already holds events (up to position {last}); import only into an empty store", location.describe());
        }
        // Runs of consecutive events of one stream, each imported as one append, all queued
        // in order and committed by the writer in large transactions.
        let mut runs: Vec<Vec<RecordedEvent>> = Vec::new();
        let mut count = 0u64;
        for (i, line) in reader.lines().enumerate() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let event = parse_line(i + 1, &line)?;
            match runs.last_mut() {
                Some(run) if run.last().is_some_and(|l| l.stream == event.stream && l.version + 1 == event.version) => {
                    run.push(event)
                }
                _ => runs.push(vec![event]),
            }
            count += 1;
        }
        let first_positions: Vec<(u64, u64)> = runs.iter().map(|r| (r[0].position.0, r.len() as u64)).collect();
        let outcomes = store.import_all(runs).await.context("importing")?;
        let moved: u64 = first_positions
            .iter()
            .zip(&outcomes)
            .filter(|((first, n), outcome)| outcome.position.0 + 1 - n != *first)
            .map(|((_, n), _)| n)
            .sum();
        store.close();
        let head = match store.verify_chain().await? {
            Some((_, head)) => format!("hash chain head {}", &head[..16]),
            None => "no hash chain".to_owned(),
        };
        println!(
            "imported {count} events into {}; {head}{}",
            location.describe(),
            if moved > 0 { format!("; {moved} events got new global positions (the source numbered them differently)") } else { String::new() }
        );
        Ok(())
    })
}
