//! A private Redis restarted on its own data is ready once it has loaded that data, however
//! long loading takes; only accepting connections has a time limit. A tool that would share it
//! meanwhile waits for the load too, instead of taking it for absent.

use ordo_projections::redis_server::{
    answers_once_loaded, answers_ping, PrivateRedis, RedisOptions, RedisServerError,
};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const KEYS: usize = 5_000;

/// A directory holding a stopped private Redis's data: a few thousand keys in its append-only
/// file's base (a snapshot: what a restart loads key by key).
fn data_that_loads_key_by_key() -> tempfile::TempDir {
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
    dir
}

/// Loading slowed down (Redis's `key-load-delay`, in microseconds per key: 1.5 s for these
/// keys; and answering `LOADING` meanwhile, which by default it does every 2 MB read), and one
/// second to accept connections.
fn loading_slowly() -> RedisOptions {
    RedisOptions {
        persist: true,
        ready_within: Some(Duration::from_secs(1)),
        args: ["--key-load-delay", "300", "--loading-process-events-interval-bytes", "1024"]
            .map(String::from)
            .to_vec(),
        ..RedisOptions::default()
    }
}

#[test]
fn given_data_that_loads_slowly_when_the_server_restarts_then_start_waits_for_the_load() {
    // Given a private Redis's data that loads key by key
    let dir = data_that_loads_key_by_key();

    // When it is started again with loading slowed down and one second to accept connections
    let started = Instant::now();
    let again = PrivateRedis::start_with(dir.path(), &loading_slowly()).expect("started");
    let took = started.elapsed();

    // Then start returned past that second, once the server answered, with every key loaded
    assert!(took > Duration::from_secs(1), "the load took {took:?}: too quick to tell");
    assert!(answers_ping(&socket(dir.path())));
    assert_eq!(dbsize(&again.url()), KEYS);
}

#[test]
fn given_a_server_loading_its_data_when_a_tool_asks_whether_one_answers_then_it_waits_for_the_load()
{
    // Given a private Redis restarting on data that loads slowly, in another thread
    let dir = data_that_loads_key_by_key();
    let path = dir.path().to_owned();
    let starting = std::thread::spawn(move || {
        PrivateRedis::start_with(&path, &loading_slowly()).expect("started")
    });

    // When a tool asks whether a server answers on its socket while it is loading
    let socket = socket(dir.path());
    let url = format!("redis+unix://{}", socket.display());
    let asked = Instant::now();
    while !loading(&url) {
        assert!(asked.elapsed() < Duration::from_secs(10), "never saw the server loading");
        std::thread::sleep(Duration::from_millis(5));
    }
    let answers = answers_once_loaded(&socket);

    // Then it was not taken for absent (a tool would have started a second server on the same
    // files): the answer is yes, given once every key was loaded
    assert!(answers);
    assert_eq!(dbsize(&url), KEYS);
    drop(starting.join().expect("the starting thread"));
}

#[test]
fn given_an_option_redis_refuses_when_the_server_starts_then_its_exit_is_reported_at_once() {
    // Given options Redis does not know, and a minute to accept connections
    let dir = tempfile::tempdir().expect("temp dir");
    let refused = RedisOptions {
        ready_within: Some(Duration::from_secs(60)),
        args: ["--no-such-option", "1"].map(String::from).to_vec(),
        ..RedisOptions::default()
    };

    // When the server is started
    let started = Instant::now();
    let outcome = PrivateRedis::start_with(dir.path(), &refused);

    // Then its exit is the error, seen as it happens rather than when the minute is up
    assert!(matches!(outcome, Err(RedisServerError::Exited(_))), "{:?}", outcome.err());
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
}

/// Whether the server at `url` answers `LOADING`.
fn loading(url: &str) -> bool {
    let Ok(mut con) = redis::Client::open(url).expect("url").get_connection() else {
        return false;
    };
    let pong: redis::RedisResult<String> = redis::cmd("PING").query(&mut con);
    pong.is_err_and(|e| e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::BusyLoading))
}

fn socket(dir: &Path) -> PathBuf {
    dir.canonicalize().expect("dir").join("redis.sock")
}

fn dbsize(url: &str) -> usize {
    let client = redis::Client::open(url).expect("url");
    redis::cmd("DBSIZE").query(&mut client.get_connection().expect("connection")).expect("dbsize")
}

fn rewriting(con: &mut redis::Connection) -> bool {
    let info: String = redis::cmd("INFO").arg("persistence").query(con).expect("info");
    ["aof_rewrite_in_progress:1", "aof_rewrite_scheduled:1"].iter().any(|flag| info.contains(flag))
}
