//! What a crash of `ordo serve` leaves behind, and what the next start and the offline tools
//! make of it: the private Redis dies with its server, and a file left by a killed writer is
//! repaired by the right command.

use ordo_tests::{ordo_bin, Options, Server};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The process id of the Redis answering on the data directory's private socket.
fn private_redis_pid(data: &Path) -> Option<u32> {
    ordo_projections::redis_server::pid_on(&data.join("redis").join("redis.sock"))
}

fn alive(pid: u32) -> bool {
    // Zombies count as gone: /proc/<pid>/stat's third field is the state.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.split_whitespace().nth(2) != Some("Z"))
}

fn eventually(what: &str, done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(10), "{what} did not happen within 10 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_private_redis_dies_with_a_killed_server() {
    // Given a server with its private Redis
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let server = Server::start_in(&data, Options::default());
    let redis = private_redis_pid(&data).expect("a private Redis answers");
    // When the server is killed outright
    server.kill();
    // Then its Redis goes too
    eventually("the orphaned redis-server exiting", || !alive(redis));
}

#[test]
fn a_server_replaces_a_private_redis_it_finds_running() {
    // Given a redis-server already on the data directory's socket (as a server killed on a
    // machine without setpriv would leave it)
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let leftover = ordo_projections::redis_server::PrivateRedis::start(&data.join("redis"), true)
        .expect("redis");
    let leftover_pid = leftover.pid();
    std::mem::forget(leftover);
    // When a server starts on that data directory
    let server = Server::start_in(&data, Options::default());
    // Then the leftover was shut down and the server runs its own, which stops with it
    eventually("the leftover redis-server exiting", || !alive(leftover_pid));
    let own = private_redis_pid(&data).expect("the server's own Redis answers");
    assert_ne!(own, leftover_pid);
    assert!(server.terminate().success());
    eventually("the server's Redis stopping with it", || !alive(own));
}

#[test]
fn the_offline_tools_point_a_file_left_by_a_killed_server_to_ordo_repair() {
    // Given a store file left open by a killed server
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let server = Server::start_in(&data, Options::default());
    let admin = server.admin();
    tokio::runtime::Runtime::new().expect("runtime").block_on(async {
        server.stock_product(&admin, "MUG-1", "Mug", 1_250, 5).await;
    });
    server.kill();
    let ordo = |args: &[&str]| {
        Command::new(ordo_bin()).args(args).arg("--data-dir").arg(&data).output().expect("runs")
    };
    // When an operator verifies it, they are told what to run
    let verify = ordo(&["audit", "verify"]);
    let message = String::from_utf8_lossy(&verify.stderr);
    assert!(!verify.status.success(), "a killed writer's file needs repair");
    assert!(message.contains("ordo repair"), "{message}");
    assert_eq!(message.trim().lines().count(), 1, "one line: {message}");
    // And after `ordo repair`, verify and export work and nothing acknowledged is lost
    let repair = ordo(&["repair"]);
    assert!(repair.status.success(), "{}", String::from_utf8_lossy(&repair.stderr));
    let verify = ordo(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));
    let export = ordo(&["export"]);
    assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
    assert_eq!(String::from_utf8_lossy(&export.stdout).lines().count(), 2, "listed and stocked");
}

/// A server on its private Redis, five mugs in its catalogue, that Redis killed.
struct KilledRedis {
    _dir: tempfile::TempDir,
    data: PathBuf,
    server: Server,
    /// The killed Redis's pid.
    first: u32,
    /// Where the mugs' stock was written in the log.
    stocked: u64,
}

async fn a_server_whose_private_redis_was_killed() -> KilledRedis {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let server = Server::start_in(&data, Options::default());
    let admin = server.admin();
    let stocked = server.stock_product(&admin, "MUG-1", "Mug", 1_250, 5).await;
    let first = private_redis_pid(&data).expect("a private Redis answers");
    Command::new("kill").args(["-9", &first.to_string()]).status().expect("kill");
    KilledRedis { _dir: dir, data, server, first, stocked }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_redis_that_dies_is_started_again_and_queries_recover() {
    // Given a server on its private Redis, with a product in the catalogue, when that Redis is
    // killed
    let KilledRedis { _dir, data, server, first, stocked } =
        a_server_whose_private_redis_was_killed().await;
    // Then the server starts it again on its data, and queries answer again. The new Redis may
    // have lost the last second of writes (its log is synced every second), which the runner
    // applies again: a query at the stock's position waits for that, and reads the stock.
    let started = Instant::now();
    let at_stock = format!("/v1/products/MUG-1?min_position={stocked}");
    loop {
        let (status, body) = server.call("GET", &at_stock, None, None).await;
        if status == 200 {
            assert_eq!(body["available"], 5, "{body}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "queries never recovered: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = server.call("GET", "/v1/products/MUG-1", None, None).await;
    assert_eq!((status, &body["available"]), (200, &serde_json::json!(5)), "{body}");
    let again = private_redis_pid(&data).expect("a private Redis answers again");
    assert_ne!(again, first, "a new server process");
    assert!(server.terminate().success());
    eventually("the restarted Redis stopping with the server", || !alive(again));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_its_private_redis_is_back_no_query_fails_on_a_connection_that_died_idle() {
    // Given a server on its private Redis, with a product in the catalogue, whose Redis is
    // killed and started again while no query comes
    let KilledRedis { _dir, data, server, first, .. } =
        a_server_whose_private_redis_was_killed().await;
    eventually("a new private Redis", || private_redis_pid(&data).is_some_and(|p| p != first));
    // When queries come again, more of them than the server holds query connections (each of
    // which died with the old Redis without noticing)
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(server.call("GET", "/v1/products/MUG-1", None, None).await.0);
    }
    // Then every one is answered, none with 503 (the mug may be missing, 404, until the runner
    // has applied again what the new Redis lost)
    assert!(statuses.iter().all(|s| *s == 200 || *s == 404), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_gone_a_query_fails_fast() {
    // Given a server whose Redis is then stopped for good
    let redis_dir = tempfile::tempdir().expect("temp dir");
    let mut redis = ordo_projections::redis_server::PrivateRedis::start(redis_dir.path(), false)
        .expect("redis");
    let server = Server::start_with(Options { redis_url: Some(redis.url()), ..Options::default() });
    let (status, _) = server.call("GET", "/v1/products", None, None).await;
    assert_eq!(status, 200);
    redis.stop();
    // When queries keep coming, each answers 503 quickly instead of waiting out reconnects
    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        let started = Instant::now();
        let (status, _) = server.call("GET", "/v1/products", None, None).await;
        slowest = slowest.max(started.elapsed());
        assert_eq!(status, 503);
    }
    assert!(slowest < Duration::from_secs(1), "slowest 503 took {slowest:?}");
}
