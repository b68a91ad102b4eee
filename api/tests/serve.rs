//! `ordo serve` as a user runs it: a real process on a real port, a private Redis, a data
//! directory with a listed product; plain HTTP/1.1 over a TCP socket.

use ordo_domain::product::{self, Product, ProductCommand};
use ordo_domain::{Currency, Money, Sku, Timestamp};
use ordo_eventstore::command::{CommandContext, Repository};
use ordo_eventstore::{EmbeddedConfig, EmbeddedStore};
use std::io::{Read, Write};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `(status, content type, body)` of `GET path`.
fn get(port: u16, path: &str) -> Option<(u16, String, String)> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let content_type = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-type: ").map(str::to_owned))
        .unwrap_or_default();
    Some((status, content_type, body.to_owned()))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_catalogue_queries_with_problems_for_errors_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let position = {
        let store = Arc::new(
            EmbeddedStore::open(EmbeddedConfig::new(data.join("events.redb"))).expect("store"),
        );
        let products = Repository::<Product, _>::new(store.clone(), 10);
        let list = ProductCommand::List(product::ListProduct {
            sku: Sku::parse("MUG-1").expect("valid"),
            name: "Stoneware mug".into(),
            description: "Holds 350 ml.".into(),
            category: "kitchen".into(),
            brand: "Potter".into(),
            price: Money::new(1_250, Currency::EUR),
            image_urls: vec![],
            store_currency: Currency::EUR,
            now: Timestamp(0),
        });
        let receipt =
            products.execute("MUG-1", &list, &CommandContext::default()).await.expect("listed");
        store.close();
        receipt.position.expect("appended").0
    };
    // As `just run` does: a relative data directory and no REDIS_URL, so `ordo serve` starts
    // (and must stop) its own private Redis under `data/redis`.
    let port = free_port();
    let mut served = Served(
        Command::new(env!("CARGO_BIN_EXE_ordo"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir", "data"])
            .current_dir(dir.path())
            .env_remove("REDIS_URL")
            // The access log, which is off at the default level.
            .env("RUST_LOG", "info,ordo_api::http=debug")
            .env_remove("ORDO_LOG_FORMAT")
            .stderr(std::fs::File::create(dir.path().join("serve.log")).expect("log file"))
            .spawn()
            .expect("ordo serve starts"),
    );
    let started = Instant::now();
    while get(port, "/health/ready").is_none_or(|(status, ..)| status != 200) {
        assert!(started.elapsed() < Duration::from_secs(20), "never became ready");
        std::thread::sleep(Duration::from_millis(50));
    }

    let (status, content_type, body) =
        get(port, &format!("/v1/products/MUG-1?min_position={position}")).expect("answer");
    assert_eq!(status, 200, "{body}");
    assert!(content_type.starts_with("application/json"));
    assert!(
        body.contains("\"name\":\"Stoneware mug\"") && body.contains("\"minor\":1250"),
        "{body}"
    );

    let (status, _, body) = get(port, "/v1/products?q=stonew&limit=5").expect("answer");
    assert!(
        status == 200 && body.contains("MUG-1") && body.contains("\"total\":1"),
        "{status} {body}"
    );

    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(stream, "GET /health/live HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: trace-me-42\r\nConnection: close\r\n\r\n").expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    assert!(response.to_ascii_lowercase().contains("x-request-id: trace-me-42"), "{response}");

    let (status, content_type, body) = get(port, "/v1/products/NOPE").expect("answer");
    assert_eq!((status, content_type.as_str()), (404, "application/problem+json"));
    assert!(body.contains("\"status\":404") && body.contains("/problems/not-found"), "{body}");

    let (status, content_type, body) = get(port, "/v1/products?limit=0").expect("answer");
    assert_eq!((status, content_type.as_str()), (400, "application/problem+json"), "{body}");

    let (status, _, body) = get(port, "/openapi.json").expect("answer");
    assert!(status == 200 && body.contains("\"/v1/products/{sku}\""));

    let (status, _, metrics) = get(port, "/metrics").expect("answer");
    assert_eq!(status, 200);
    for series in [
        "ordo_http_requests_total{operation=\"get_product\",method=\"GET\",status=\"404\"} 1",
        "ordo_http_request_seconds_bucket{operation=\"search_products\"",
        "ordo_projection_events_applied_total{projection=\"catalogue\"}",
    ] {
        assert!(metrics.contains(series), "missing {series} in:\n{metrics}");
    }

    let pid = served.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs").success());
    let stopping = Instant::now();
    let status = loop {
        if let Some(status) = served.0.try_wait().expect("wait") {
            break status;
        }
        assert!(stopping.elapsed() < Duration::from_secs(15), "did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}");
    let reopened = EmbeddedStore::open(EmbeddedConfig::new(data.join("events.redb")).read_only())
        .expect("closed cleanly");
    assert_eq!(reopened.verify().expect("intact").events, 1);

    let log = std::fs::read_to_string(dir.path().join("serve.log")).expect("log");
    let traced = log.lines().find(|l| l.contains("trace-me-42")).unwrap_or_default();
    assert!(
        traced.contains("response") && traced.contains("/health/live"),
        "the request's line carries its id and path: {traced:?} in\n{log}"
    );
}
