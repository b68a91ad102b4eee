//! The readable event catalogue (`schemas/events.md`), generated from code.

use super::{sample_events, AnyEvent, DomainEvent};
use std::fmt::Write;

/// Renders the catalogue: every event type, its versions, and an example payload.
pub fn catalogue_markdown() -> String {
    let mut out = String::from(
        "# Event catalogue\n\n\
         Generated from code by `ORDO_UPDATE_SCHEMAS=1 cargo test -p ordo-eventstore --test golden`;\n\
         do not edit by hand. Payloads are postcard-encoded; the type name and schema version are\n\
         stored beside the payload, not inside it. Every (type, version) has a golden fixture in\n\
         `events/<Type>.v<version>.hex`, decoded by a test on every build.\n\n\
         | Stream category | Event type | Current version | Older versions (upcast) |\n\
         | --- | --- | --- | --- |\n",
    );
    let catalogue = AnyEvent::catalogue();
    for info in &catalogue {
        let older: Vec<String> = info.older_versions.iter().map(|v| format!("v{v}")).collect();
        let older = if older.is_empty() { "-".to_owned() } else { older.join(", ") };
        let _ = writeln!(
            out,
            "| `{}` | `{}` | v{} | {} |",
            info.category, info.event_type, info.version, older
        );
    }
    out.push_str(
        "\n## Examples\n\nThe sample each golden fixture encodes, shown as JSON for reading.\n",
    );
    for sample in sample_events() {
        let event_type = match &sample {
            AnyEvent::Product(e) => e.event_type(),
            AnyEvent::Cart(e) => e.event_type(),
            AnyEvent::Order(e) => e.event_type(),
            AnyEvent::Payment(e) => e.event_type(),
        };
        let json = serde_json::to_string_pretty(&sample)
            .unwrap_or_else(|e| format!("<unrenderable: {e}>"));
        let _ = write!(out, "\n### `{event_type}`\n\n```json\n{json}\n```\n");
    }
    out
}
