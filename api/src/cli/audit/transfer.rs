//! `ordo export` and `ordo import`: the log as JSON lines, for outside audit tools or moving
//! between stores, ids, order and times kept.

use super::{stream_events, with_store, Source};
use crate::cli::environment::{DataDir, StoreArgs};
use anyhow::{bail, Context};
use ordo_eventstore::clock::rfc3339;
use ordo_eventstore::codec::AnyEvent;
use ordo_eventstore::*;
use serde_json::{json, Value};
use std::io::{BufRead, Write};

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
