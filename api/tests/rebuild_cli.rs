//! `ordo rebuild` as an operator runs it: against a data directory and a Redis URL.

use ordo_domain::product::{self, Product, ProductCommand};
use ordo_domain::{Currency, Money, Sku, Timestamp};
use ordo_eventstore::command::{CommandContext, Repository};
use ordo_eventstore::{EmbeddedConfig, EmbeddedStore};
use ordo_projections::redis_server::PrivateRedis;
use std::process::Command;
use std::sync::Arc;

fn ordo() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ordo"))
}

async fn shop_with_products(data: &std::path::Path, n: usize) -> Arc<EmbeddedStore> {
    let store = Arc::new(
        EmbeddedStore::open(EmbeddedConfig::new(data.join("events.redb"))).expect("store"),
    );
    let products = Repository::<Product, _>::new(store.clone(), 10);
    for i in 0..n {
        let sku = format!("SKU-{i}");
        let list = ProductCommand::List(product::ListProduct {
            sku: Sku::parse(&sku).expect("valid"),
            name: format!("Mug number {i}"),
            description: String::new(),
            category: "kitchen".into(),
            brand: "Potter".into(),
            price: Money::new(100 + i as i64, Currency::EUR),
            image_urls: vec![],
            store_currency: Currency::EUR,
            now: Timestamp(0),
        });
        products.execute(&sku, &list, &CommandContext::default()).await.expect("listed");
    }
    store
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_switches_versions_while_the_writer_keeps_the_store_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    // The store stays open for writing, as under `ordo serve`; rebuild opens it read-only.
    let _writer = shop_with_products(&data, 3).await;
    let redis = PrivateRedis::start(&dir.path().join("redis"), false).expect("redis");

    for expected_version in [2, 3] {
        let out = ordo()
            .args(["rebuild", "--projection", "catalogue", "--grace-ms", "0", "--data-dir"])
            .arg(&data)
            .env("REDIS_URL", redis.url())
            .output()
            .expect("ordo runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
        assert!(
            stdout.contains(&format!(
                "rebuilt catalogue: v{expected_version} active at position 2, 3 events"
            )),
            "{stdout}"
        );
    }
    let client = redis::Client::open(redis.url()).expect("url");
    let mut con = client.get_multiplexed_async_connection().await.expect("connection");
    let active: u32 =
        redis::cmd("GET").arg("ordo:catalogue:active").query_async(&mut con).await.expect("active");
    let name: String = redis::cmd("HGET")
        .arg("ordo:catalogue:v3:{catalogue}:product:SKU-1")
        .arg("name")
        .query_async(&mut con)
        .await
        .expect("product");
    let old: Vec<String> =
        redis::cmd("KEYS").arg("ordo:catalogue:v2:*").query_async(&mut con).await.expect("keys");
    assert_eq!((active, name.as_str(), old.len()), (3, "Mug number 1", 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_of_every_projection_runs_them_at_once_and_waits_out_one_grace_period() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let _writer = shop_with_products(&data, 3).await;
    let redis = PrivateRedis::start(&dir.path().join("redis"), false).expect("redis");
    let started = std::time::Instant::now();
    let out = ordo()
        .args(["rebuild", "--grace-ms", "1500", "--data-dir"])
        .arg(&data)
        .env("REDIS_URL", redis.url())
        .output()
        .expect("ordo runs");
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let rebuilt: Vec<&str> = stdout
        .lines()
        .filter_map(|line| line.strip_prefix("rebuilt "))
        .filter_map(|rest| rest.split(':').next())
        .collect();
    assert_eq!(rebuilt, ["orders", "catalogue", "carts"], "{stdout}");
    // Each replayed the whole log (three products listed), and applied its own events only.
    let lines = stdout.lines().filter(|line| line.starts_with("rebuilt "));
    for (line, own) in lines.zip(["0", "3", "0"]) {
        assert!(line.contains(", 3 events in "), "{stdout}");
        assert!(line.contains(&format!(", {own} of them its own;")), "{stdout}");
    }
    // One after another, three grace periods would take 4.5 s.
    assert!(took < std::time::Duration::from_millis(4_500), "took {took:?}");
}

#[test]
fn rebuild_without_a_store_says_so_in_one_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = ordo()
        .args(["rebuild", "--data-dir"])
        .arg(dir.path())
        .env("REDIS_URL", "redis://127.0.0.1:1")
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("ordo: no event store at"), "{stderr}");
}
