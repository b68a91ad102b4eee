//! `ordo replay`: a stream's events in order, and its aggregate's state at any version or time.

use super::{stream_events, with_store, Source};
use anyhow::{bail, Context};
use ordo_domain::{cart, order, payment, product, Decider};
use ordo_eventstore::clock::{parse_rfc3339_millis, rfc3339};
use ordo_eventstore::codec::AnyEvent;
use ordo_eventstore::*;
use serde_json::{json, Value};
use std::io::Write;

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
fn json_diff(path: &str, before: &Value, after: &Value, out: &mut Vec<(String, Value, Value)>) {
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
            let millis = parse_rfc3339_millis(t)
                .with_context(|| format!("--as-of {t:?} is not an RFC 3339 time"))?;
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
