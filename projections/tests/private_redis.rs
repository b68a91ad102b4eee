//! A private Redis restarted on its own data is ready once it has loaded that data, however
//! long loading takes; only accepting connections has a time limit.

use ordo_projections::redis_server::{answers_ping, PrivateRedis, RedisOptions};
use std::time::{Duration, Instant};

const KEYS: usize = 5_000;

#[test]
fn given_data_that_loads_slowly_when_the_server_restarts_then_start_waits_for_the_load() {
    // Given a persisting private Redis holding a few thousand keys in its append-only file's
    // base (a snapshot: what a restart loads key by key)
    let dir = tempfile::tempdir().expect("temp dir");
    let options = RedisOptions { persist: true, ..RedisOptions::default() };
    let mut first = PrivateRedis::start_with(dir.path(), &options).expect("first start");
    let client = redis::Client::open(first.url()).expect("url");
    let mut con = client.get_connection().expect("connection");
    let mut fill = redis::pipe();
    for i in 0..KEYS {
        fill.cmd("SET").arg(format!("key-{i}")).arg(i).ignore();
    }
    let _: () = fill.query(&mut con).expect("fill");
    let _: () = redis::cmd("BGREWRITEAOF").query(&mut con).expect("rewrite");
    let rewritten = Instant::now();
    while rewriting(&mut con) {
        assert!(rewritten.elapsed() < Duration::from_secs(10), "the rewrite never finished");
        std::thread::sleep(Duration::from_millis(20));
    }
    first.stop();

    // When it is started again with loading slowed down (Redis's `key-load-delay`, in
    // microseconds per key: 1.5 s for these keys; and answering `LOADING` meanwhile, which by
    // default it does every 2 MB read) and one second to accept connections
    let slow = RedisOptions {
        persist: true,
        ready_within: Some(Duration::from_millis(1000)),
        args: ["--key-load-delay", "300", "--loading-process-events-interval-bytes", "1024"]
            .map(String::from)
            .to_vec(),
        ..RedisOptions::default()
    };
    let started = Instant::now();
    let again = PrivateRedis::start_with(dir.path(), &slow).expect("started on its data");
    let took = started.elapsed();

    // Then start returned past that second, once the server answered, with every key loaded
    assert!(took > Duration::from_secs(1), "the load took {took:?}: too quick to tell");
    let socket = dir.path().canonicalize().expect("dir").join("redis.sock");
    assert!(answers_ping(&socket));
    let client = redis::Client::open(again.url()).expect("url");
    let keys: usize =
        redis::cmd("DBSIZE").query(&mut client.get_connection().expect("con")).expect("dbsize");
    assert_eq!(keys, KEYS);
}

fn rewriting(con: &mut redis::Connection) -> bool {
    let info: String = redis::cmd("INFO").arg("persistence").query(con).expect("info");
    ["aof_rewrite_in_progress:1", "aof_rewrite_scheduled:1"].iter().any(|flag| info.contains(flag))
}
