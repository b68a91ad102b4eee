//! The projection runner's fence (`WATCH` on its checkpoint, then `MULTI/EXEC`) holds only on a
//! connection that is not replaced between the two: a transaction sent after a silent
//! reconnect runs unwatched. `fenced_connection` gives runners one that fails instead.

use ordo_projections::redis_server::PrivateRedis;
use ordo_projections::runner::fenced_connection;
use redis::aio::ConnectionManager;
use std::time::Duration;

/// Watches the checkpoint on `con`, has that connection killed from outside, lets a rival move
/// the checkpoint, then sends the fenced write on `con`. Whether the write was applied.
async fn fenced_write_after_a_kill(
    mut con: ConnectionManager,
    rival: &mut ConnectionManager,
) -> bool {
    let id: i64 = redis::cmd("CLIENT").arg("ID").query_async(&mut con).await.expect("client id");
    let _: () = redis::cmd("WATCH").arg("checkpoint").query_async(&mut con).await.expect("watch");
    let before = connected_clients(rival).await;
    let _: () =
        redis::cmd("CLIENT").arg("KILL").arg("ID").arg(id).query_async(rival).await.expect("kill");
    let _: () = redis::cmd("SET").arg("checkpoint").arg(2).query_async(rival).await.expect("rival");
    // Time for a manager that reconnects on its own to do so (the count comes back).
    for _ in 0..50 {
        if connected_clients(rival).await >= before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _: Result<Option<redis::Value>, _> = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg("written")
        .arg(id)
        .ignore()
        .query_async(&mut con)
        .await;
    let written: Option<i64> =
        redis::cmd("GET").arg("written").query_async(rival).await.expect("get");
    written == Some(id)
}

async fn connected_clients(con: &mut ConnectionManager) -> usize {
    let list: String = redis::cmd("CLIENT").arg("LIST").query_async(con).await.expect("list");
    list.lines().count()
}

#[tokio::test]
async fn given_a_resp3_url_when_a_runner_connection_drops_under_its_watch_then_its_fenced_write_is_not_applied(
) {
    // Given a Redis URL asking for RESP3, whose connection managers reconnect on their own
    let dir = tempfile::tempdir().expect("temp dir");
    let server = PrivateRedis::start(&dir.path().join("redis"), false).expect("redis-server");
    let client = redis::Client::open(format!("{}?protocol=resp3", server.url())).expect("url");
    let mut rival = client.get_connection_manager().await.expect("rival connection");

    // When a plain manager's and a runner's connection are each dropped between WATCH and EXEC
    let plain = client.get_connection_manager().await.expect("plain connection");
    let plain_applied = fenced_write_after_a_kill(plain, &mut rival).await;
    let runner = fenced_connection(&client).await.expect("runner connection");
    let runner_applied = fenced_write_after_a_kill(runner, &mut rival).await;

    // Then the plain manager's write went through unwatched (the hazard is real), and the
    // runner's was refused
    assert!(
        plain_applied,
        "the plain manager did not reconnect on its own: the test proves nothing"
    );
    assert!(!runner_applied, "a write fenced by WATCH was applied on a reconnected connection");
}
