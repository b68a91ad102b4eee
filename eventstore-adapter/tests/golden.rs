//! Golden encodings: every event type and schema version Ordo has ever written must still
//! decode, and today's encoding must not drift. Run with `ORDO_UPDATE_SCHEMAS=1` to write
//! fixtures for new types or versions and to regenerate the catalogue; existing fixtures are
//! never overwritten, because changing one would hide exactly the break this guards against.

use ordo_eventstore::codec::{catalogue_markdown, sample_events, sample_old_versions, AnyEvent};
use std::path::PathBuf;

fn schemas() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas")
}

fn fixture_path(event_type: &str, version: u16) -> PathBuf {
    schemas().join("events").join(format!("{event_type}.v{version}.hex"))
}

fn updating() -> bool {
    std::env::var_os("ORDO_UPDATE_SCHEMAS").is_some()
}

fn hex(bytes: &[u8]) -> String {
    let mut s: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    s.push('\n');
    s
}

fn unhex(text: &str) -> Vec<u8> {
    let text = text.trim();
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("fixture is hex"))
        .collect()
}

/// Reads a fixture, writing it first from `bytes` when updating and it does not exist yet.
fn fixture(event_type: &str, version: u16, bytes: &[u8]) -> Vec<u8> {
    let path = fixture_path(event_type, version);
    if !path.exists() && updating() {
        std::fs::create_dir_all(path.parent().expect("has parent")).expect("create schemas/events");
        std::fs::write(&path, hex(bytes)).expect("write fixture");
    }
    let text = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!("no golden fixture {} for {event_type} v{version}; run with ORDO_UPDATE_SCHEMAS=1 to add it", path.display())
    });
    unhex(&text)
}

#[test]
fn every_event_type_and_version_has_a_sample() {
    let catalogue = AnyEvent::catalogue();
    let samples = sample_events();
    assert_eq!(samples.len(), catalogue.len(), "one sample per event type");
    for (info, sample) in catalogue.iter().zip(&samples) {
        let encoded = sample.encode().expect("encodes");
        assert_eq!((encoded.event_type, encoded.schema_version), (info.event_type, info.version));
    }
    let old = sample_old_versions().expect("old samples");
    for info in &catalogue {
        for version in info.older_versions {
            assert!(
                old.iter().any(|o| o.event_type == info.event_type && o.version == *version),
                "{} v{version} is decodable but has no sample",
                info.event_type
            );
        }
    }
}

#[test]
fn current_encodings_match_their_golden_fixtures_and_decode() {
    for sample in sample_events() {
        let encoded = sample.encode().expect("encodes");
        let golden = fixture(encoded.event_type, encoded.schema_version, &encoded.payload);
        assert_eq!(
            hex(&encoded.payload),
            hex(&golden),
            "{} v{} no longer encodes as stored: add a new schema version with an upcaster instead",
            encoded.event_type,
            encoded.schema_version
        );
        let decoded = AnyEvent::decode(
            sample.category(),
            encoded.event_type,
            encoded.schema_version,
            &golden,
        )
        .expect("golden fixture decodes");
        assert_eq!(decoded, sample);
    }
}

#[test]
fn older_versions_decode_through_their_upcasters() {
    for old in sample_old_versions().expect("old samples") {
        let golden = fixture(old.event_type, old.version, &old.payload);
        assert_eq!(
            hex(&golden),
            hex(&old.payload),
            "{} v{} fixture drifted",
            old.event_type,
            old.version
        );
        let decoded =
            AnyEvent::decode(old.category, old.event_type, old.version, &golden).expect("upcasts");
        assert_eq!(decoded, old.expected);
    }
}

#[test]
fn every_fixture_on_disk_belongs_to_a_known_type_and_version() {
    let catalogue = AnyEvent::catalogue();
    for entry in std::fs::read_dir(schemas().join("events")).expect("schemas/events exists") {
        let name = entry.expect("entry").file_name().to_string_lossy().into_owned();
        let (event_type, version) = name
            .strip_suffix(".hex")
            .and_then(|n| n.rsplit_once(".v"))
            .unwrap_or_else(|| panic!("unexpected file {name} in schemas/events"));
        let version: u16 = version.parse().expect("numeric version");
        assert!(
            catalogue.iter().any(|i| i.event_type == event_type
                && (i.version == version || i.older_versions.contains(&version))),
            "{name}: stored data of this type and version would no longer decode"
        );
    }
}

#[test]
fn the_catalogue_is_up_to_date() {
    let path = schemas().join("events.md");
    let generated = catalogue_markdown();
    if updating() {
        std::fs::write(&path, &generated).expect("write catalogue");
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(on_disk == generated, "schemas/events.md is stale; run with ORDO_UPDATE_SCHEMAS=1");
}
