//! A shop served by several `ordo serve` instances on one private PostgreSQL and one private
//! Redis, and what the tests of several instances check in the log and in Redis.

use crate::{Options, Server};
use ordo_eventstore::postgres::private::PrivatePostgres;
use ordo_eventstore::postgres::{PostgresConfig, PostgresStore};
use ordo_eventstore::{Direction, EventStore, RecordedEvent, StreamName, SubscribeFrom};
use ordo_projections::keys::Namespace;
use ordo_projections::rebuild::digest;
use ordo_projections::redis_server::PrivateRedis;
use ordo_projections::runner::{Runner, RunnerConfig};
use ordo_projections::views::View;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The products every test shop sells.
pub const SKUS: [&str; 3] = ["MUG-0", "MUG-1", "MUG-2"];
/// The simulator's cards shoppers pay with: approving, declining, slow.
pub const CARDS: [&str; 3] = ["tok_visa", "tok_declined", "tok_slow"];
/// Units each product starts with.
pub const STOCK: u32 = 500;

/// A private PostgreSQL and Redis, and the data directories of the instances serving them.
pub struct Shop {
    /// Where the instances keep leases, checkpoints and idempotency records
    /// (`ordo serve --coordination`).
    pub coordination: &'static str,
    postgres: PrivatePostgres,
    /// The one Redis every instance uses.
    pub redis: PrivateRedis,
    dir: tempfile::TempDir,
}

impl Shop {
    /// Starts the private PostgreSQL and Redis, and prepares three instances' data directories;
    /// the instances coordinate through the store's database.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Self::coordinated_by("store")
    }

    /// As [`Shop::new`], with `--coordination <coordination>` (`store` or `redis`).
    pub fn coordinated_by(coordination: &'static str) -> Self {
        let mut dir = tempfile::tempdir().expect("temp dir");
        // `ORDO_TEST_KEEP=1`: keep the instances' logs and data to look at afterwards.
        if std::env::var_os("ORDO_TEST_KEEP").is_some() {
            dir.disable_cleanup(true);
            eprintln!("keeping {}", dir.path().display());
        }
        let redis = PrivateRedis::start(&dir.path().join("redis"), false).expect("private Redis");
        let postgres = PrivatePostgres::start().expect("private PostgreSQL");
        // One signing secret for every instance, as a deployment would configure it.
        let secret = "ab".repeat(32);
        for n in 0..3 {
            let data = dir.path().join(format!("node-{n}"));
            std::fs::create_dir_all(&data).expect("data dir");
            std::fs::write(data.join("jwt-secret"), &secret).expect("secret");
        }
        Self { coordination, postgres, redis, dir }
    }

    /// Instance `n`'s log file.
    pub fn log(&self, n: usize) -> PathBuf {
        self.dir.path().join(format!("node-{n}.log"))
    }

    /// Starts instance `n` (again, after a kill: same data directory and name), with carts
    /// that lapse after 3 s so that some fall due during a test.
    pub fn start(&self, n: usize) -> Server {
        self.start_with_cart_ttl(n, "3s")
    }

    /// Starts instance `n` with carts that lapse after `cart_ttl`.
    pub fn start_with_cart_ttl(&self, n: usize, cart_ttl: &str) -> Server {
        let args = [
            "--store",
            &self.postgres.url(),
            "--instance-id",
            &format!("node-{n}"),
            "--lease-ttl",
            "2s",
            "--cart-ttl",
            cart_ttl,
            "--coordination",
            self.coordination,
        ];
        Server::start_in(
            &self.dir.path().join(format!("node-{n}")),
            Options {
                redis_url: Some(self.redis.url()),
                args: args.iter().map(|a| a.to_string()).collect(),
                log: Some(self.log(n)),
            },
        )
    }

    /// The shared store, opened by the test itself.
    pub async fn store(&self) -> PostgresStore {
        let config = PostgresConfig::from_url(&self.postgres.url()).expect("url");
        PostgresStore::open(config).await.expect("store opens")
    }
}

/// Who holds each role, asked of `server`.
pub async fn holders(server: &Server, admin: &str) -> BTreeMap<String, (String, bool)> {
    let (status, body) = server.call("GET", "/v1/admin/roles", Some(admin), None).await;
    assert_eq!(status, 200, "{body}");
    let roles = body["roles"].as_array().expect("roles");
    roles
        .iter()
        .map(|r| {
            let holder = r["holder"].as_str().unwrap_or("").to_owned();
            (r["role"].as_str().expect("role").to_owned(), (holder, r["live"] == true))
        })
        .collect()
}

/// Waits until every role has a live holder other than `not`; returns the checkout role's.
pub async fn all_roles_held(server: &Server, admin: &str, not: Option<&str>) -> String {
    let started = Instant::now();
    loop {
        let roles = holders(server, admin).await;
        let taken = roles.len() == 5
            && roles.values().all(|(holder, live)| *live && Some(holder.as_str()) != not);
        if taken {
            return roles["checkout"].0.clone();
        }
        assert!(started.elapsed() < Duration::from_secs(15), "roles never all taken: {roles:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every event of one stream.
pub async fn stream(store: &PostgresStore, name: &str) -> Vec<RecordedEvent> {
    let name = StreamName::new(name.to_owned()).expect("stream name");
    store.read_stream(&name, 0, Direction::Forward, 10_000).await.expect("read")
}

/// Every event of the log, oldest first.
pub async fn whole_log(store: &PostgresStore) -> Vec<RecordedEvent> {
    let mut log = Vec::new();
    let mut from = SubscribeFrom::Start;
    loop {
        let page = store.read_all(from, 4_096).await.expect("read all");
        let Some(last) = page.last() else { return log };
        from = SubscribeFrom::After(last.position);
        log.extend(page);
    }
}

/// The types of `events`.
pub fn types(events: &[RecordedEvent]) -> Vec<&str> {
    events.iter().map(|e| e.event_type.as_str()).collect()
}

/// How many of `events` are of type `kind`.
pub fn count(events: &[RecordedEvent], kind: &str) -> usize {
    events.iter().filter(|e| e.event_type == kind).count()
}

/// Polls `check` (returning what is still missing) for up to `limit`.
pub async fn settles<F: std::future::Future<Output = Vec<String>>>(
    what: &str,
    limit: Duration,
    check: impl Fn() -> F,
) {
    let started = Instant::now();
    loop {
        let missing = check().await;
        if missing.is_empty() {
            return;
        }
        assert!(started.elapsed() < limit, "{what}: still {} missing: {missing:?}", missing.len());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Integration entries: event id -> (type, order id), failing on any event id seen twice.
pub fn published_once(url: &str) -> HashMap<String, (String, String)> {
    let client = redis::Client::open(url).expect("url");
    let mut con = client.get_connection().expect("redis");
    let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg("ordo:integration:orders")
        .arg("-")
        .arg("+")
        .query(&mut con)
        .expect("xrange");
    let mut seen = HashMap::new();
    for (_, fields) in entries {
        let pairs: HashMap<&str, &str> =
            fields.chunks(2).map(|kv| (kv[0].as_str(), kv[1].as_str())).collect();
        let id = pairs["event_id"].to_owned();
        let entry = (pairs["type"].to_owned(), pairs["order_id"].to_owned());
        assert!(seen.insert(id.clone(), entry).is_none(), "event {id} published twice");
    }
    seen
}

/// Rebuilds `V` from the log into a spare version and compares it with what the instances
/// projected.
pub async fn equals_a_clean_rebuild<V: View>(store: &PostgresStore, redis_url: &str) {
    let client = redis::Client::open(redis_url).expect("url");
    let mut con = client.get_connection_manager().await.expect("redis");
    let head = store.last_position().await.expect("head").expect("events");
    let mut runner =
        Runner::<V, _>::new(Arc::new(store.clone()), con.clone(), 99, RunnerConfig::default())
            .await
            .expect("runner");
    runner.run(Some(head), |_| {}).await.expect("rebuilt");
    let live = digest(&mut con, &Namespace::new(V::PROJECTION, 1)).await.expect("digest");
    let rebuilt = digest(&mut con, &Namespace::new(V::PROJECTION, 99)).await.expect("digest");
    assert_eq!(live, rebuilt, "{} differs from a clean rebuild", V::PROJECTION);
}
