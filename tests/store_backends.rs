//! The same service on every store that runs here: a shop served from PostgreSQL, and a log
//! moved from the embedded file into PostgreSQL with the same events and the same chain.

use ordo_eventstore::postgres::private::PrivatePostgres;
use ordo_tests::{ordo_bin, Options, Server};
use std::process::Command;

fn ordo(args: &[&str]) -> std::process::Output {
    Command::new(ordo_bin()).args(args).env_remove("ORDO_STORE").output().expect("ordo runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shop_served_from_postgresql_takes_an_order_to_confirmed() {
    // Given `ordo serve --store postgres://...`
    let cluster = PrivatePostgres::start().expect("private PostgreSQL");
    let url = format!("{}?schema=shop", cluster.url());
    let server =
        Server::start_with(Options { args: vec!["--store".into(), url], ..Options::default() });
    let admin = server.admin();
    server.stock_product(&admin, "MUG-1", "Stoneware mug", 1_250, 10).await;
    // When a shopper checks out
    let (guest, _) = server.guest().await;
    let placed = server.check_out(&guest, "MUG-1", 2).await;
    // Then the processes, following the PostgreSQL log, confirm it and commit its stock
    let order = placed["id"].as_str().expect("order id");
    server.eventually(&format!("/v1/orders/{order}"), &guest, |o| o["status"] == "confirmed").await;
    let started = std::time::Instant::now();
    loop {
        let product = server.event_types(&admin, "product-MUG-1").await;
        if product.last().map(String::as_str) == Some("ReservationCommitted") {
            break;
        }
        assert!(started.elapsed().as_secs() < 10, "stock never committed: {product:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_from_the_embedded_store_imports_into_postgresql_unchanged() {
    // Given an embedded store with a little history
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let server = Server::start_in(&data, Options::default());
    let admin = server.admin();
    server.stock_product(&admin, "MUG-1", "Stoneware mug", 1_250, 10).await;
    server.stock_product(&admin, "CUP-1", "Cup", 450, 3).await;
    assert!(server.terminate().success());
    let data = data.to_str().expect("utf-8 path");
    let first = dir.path().join("first.jsonl");
    let exported = ordo(&["export", "--data-dir", data, "--out", first.to_str().expect("path")]);
    assert!(exported.status.success(), "{}", String::from_utf8_lossy(&exported.stderr));
    // When it is imported into PostgreSQL
    let cluster = PrivatePostgres::start().expect("private PostgreSQL");
    let url = cluster.url();
    let imported = ordo(&["import", first.to_str().expect("path"), "--store", &url]);
    assert!(imported.status.success(), "{}", String::from_utf8_lossy(&imported.stderr));
    // Then exporting it again gives the same lines (ids, order, times, metadata, payloads)
    let second = dir.path().join("second.jsonl");
    let again = ordo(&["export", "--store", &url, "--out", second.to_str().expect("path")]);
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    let (a, b) = (
        std::fs::read_to_string(&first).expect("first"),
        std::fs::read_to_string(&second).expect("second"),
    );
    assert_eq!(a.lines().count(), 4);
    assert_eq!(a, b);
    // And both stores verify to the same chain head
    let head = |args: &[&str]| {
        let out = ordo(args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.split("(head ").nth(1).map(|h| h[..16].to_owned()).unwrap_or_else(|| panic!("{text}"))
    };
    assert_eq!(
        head(&["audit", "verify", "--data-dir", data]),
        head(&["audit", "verify", "--store", &url])
    );
}
