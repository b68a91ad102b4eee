//! `ordo replay`, `ordo audit verify`, `ordo export` and `ordo import`, run as an auditor would.

use ordo_domain::order::{self, Address, NewOrderLine, Order, OrderCommand};
use ordo_domain::{Currency, CustomerId, Money, OrderId, ReservationId, Sku, Timestamp};
use ordo_eventstore::command::{CommandContext, Repository};
use ordo_eventstore::{EmbeddedConfig, EmbeddedStore};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

fn ordo(args: &[&str], data: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ordo"))
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .output()
        .expect("ordo runs")
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "ordo failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An order placed, paid, confirmed and shipped: versions 0 to 3.
async fn scripted_order(data: &Path) {
    let store = Arc::new(
        EmbeddedStore::open(EmbeddedConfig::new(data.join("events.redb"))).expect("store"),
    );
    let orders = Repository::<Order, _>::new(store.clone(), 10);
    let eur = |m| Money::new(m, Currency::EUR);
    let commands = [
        OrderCommand::Place(order::PlaceOrder {
            order_id: OrderId::parse("ord-1").expect("valid"),
            customer_id: CustomerId::parse("cus-1").expect("valid"),
            reservation_id: ReservationId::parse("cart-1").expect("valid"),
            lines: vec![NewOrderLine {
                sku: Sku::parse("MUG-1").expect("valid"),
                name: "Mug".into(),
                quantity: 2,
                unit_price: eur(1_000),
            }],
            shipping_address: Address {
                name: "Ada".into(),
                line1: "1 Main St".into(),
                line2: String::new(),
                city: "Paris".into(),
                postal_code: "75001".into(),
                country: "FR".into(),
            },
            payment_token: "tok_approve".into(),
            placed_at: Timestamp(1_000),
        }),
        OrderCommand::RecordPaymentAuthorized(order::RecordPaymentAuthorized {
            amount: eur(2_000),
            at: Timestamp(2_000),
        }),
        OrderCommand::Confirm(order::ConfirmOrder { at: Timestamp(3_000) }),
        OrderCommand::Ship(order::ShipOrder {
            carrier: "DHL".into(),
            tracking: "JD1".into(),
            at: Timestamp(4_000),
        }),
    ];
    for command in &commands {
        orders.execute("ord-1", command, &CommandContext::default()).await.expect("accepted");
    }
}

fn state_at(data: &Path, version: &str) -> serde_json::Value {
    let out = stdout(&ordo(&["replay", "order-ord-1", "--json", "--at", version], data));
    let last = out.lines().last().expect("a state line");
    let line: serde_json::Value = serde_json::from_str(last).expect("json");
    line["state"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_shows_the_order_state_at_every_version() {
    let dir = tempfile::tempdir().expect("temp dir");
    scripted_order(dir.path()).await;
    let expected = [
        ("0", "Placed", "Pending"),
        ("1", "Placed", "Authorized"),
        ("2", "Confirmed", "Authorized"),
        ("3", "Shipped", "Authorized"),
    ];
    for (version, status, payment) in expected {
        let state = state_at(dir.path(), version);
        assert_eq!(
            (state["status"].as_str(), state["payment"].as_str()),
            (Some(status), Some(payment)),
            "at version {version}"
        );
    }
    let shipped = state_at(dir.path(), "3");
    assert_eq!(shipped["shipment"], serde_json::json!(["DHL", "JD1"]));

    let table = stdout(&ordo(&["replay", "order-ord-1", "--diff"], dir.path()));
    assert!(
        table.contains("OrderConfirmed") && table.contains("status: \"Placed\" -> \"Confirmed\""),
        "{table}"
    );
    let missing = ordo(&["replay", "order-nope"], dir.path());
    assert_eq!(
        String::from_utf8_lossy(&missing.stderr).trim(),
        "ordo: stream order-nope has no events"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_names_the_position_of_a_flipped_payload_byte() {
    let dir = tempfile::tempdir().expect("temp dir");
    scripted_order(dir.path()).await;
    assert!(stdout(&ordo(&["audit", "verify"], dir.path()))
        .starts_with("verified 4 events: hash chain intact"));

    let copy = dir.path().join("copy");
    std::fs::create_dir_all(&copy).expect("dir");
    std::fs::copy(dir.path().join("events.redb"), copy.join("events.redb")).expect("copy");
    {
        use redb::ReadableTable;
        let db = redb::Database::open(copy.join("events.redb")).expect("raw open");
        let txn = db.begin_write().expect("txn");
        {
            let table: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("events");
            let mut events = txn.open_table(table).expect("events");
            let mut record = events.get(2).expect("get").expect("present").value().to_vec();
            let last = record.len() - 1;
            record[last] ^= 0x40;
            events.insert(2, record.as_slice()).expect("insert");
        }
        txn.commit().expect("commit");
    }
    let out = ordo(&["audit", "verify"], &copy);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("ordo: audit failed at position 2: hash chain mismatch"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_import_round_trips_identical_events() {
    let dir = tempfile::tempdir().expect("temp dir");
    scripted_order(dir.path()).await;
    let exported = stdout(&ordo(&["export"], dir.path()));
    assert_eq!(exported.lines().count(), 4);
    let file = dir.path().join("export.jsonl");
    std::fs::write(&file, &exported).expect("write");

    let copy = dir.path().join("copy");
    let imported = stdout(&ordo(&["import", file.to_str().expect("utf-8")], &copy));
    let original_head = stdout(&ordo(&["audit", "verify"], dir.path()));
    let copy_head = stdout(&ordo(&["audit", "verify"], &copy));
    assert_eq!(original_head, copy_head, "same events, same hash chain");
    assert!(imported.starts_with("imported 4 events"), "{imported}");
    assert_eq!(
        stdout(&ordo(&["export"], &copy)),
        exported,
        "ids, order, times, metadata and payloads survive"
    );

    let again = ordo(&["import", file.to_str().expect("utf-8")], &copy);
    assert!(String::from_utf8_lossy(&again.stderr).contains("import only into an empty store"));
}
