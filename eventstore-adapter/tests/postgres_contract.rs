//! The store contract on PostgreSQL, against a private cluster each test starts itself
//! (`initdb` into a temporary directory, `pg_ctl` on a free port, removed afterwards), plus
//! what only PostgreSQL can show: the global order never skips an event that commits late,
//! migrations, and the hash chain.

mod common;

use common::*;
use ordo_eventstore::postgres::private::PrivatePostgres;
use ordo_eventstore::*;
use std::sync::Arc;
use std::time::Duration;

async fn open(cluster: &PrivatePostgres, schema: &str) -> PostgresStore {
    let url = format!("{}?schema={schema}", cluster.url());
    PostgresStore::open(PostgresConfig::from_url(&url).expect("url")).await.expect("open store")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_contract_holds_on_postgresql() {
    let cluster = PrivatePostgres::start().expect("private PostgreSQL");
    // One schema per case: each starts from an empty log, as on the embedded store.
    macro_rules! cases {
        ($($name:ident),* $(,)?) => {$(
            // Named after the case, cut to the longest schema name PostgreSQL's channels allow.
            let schema: String = stringify!($name).chars().take(postgres::schema::MAX_SCHEMA_LEN).collect();
            let store = open(&cluster, &schema).await;
            common::$name(&store, "").await;
        )*};
    }
    cases!(
        appends_and_reads_back_in_order,
        rejects_wrong_expected_versions,
        retries_are_idempotent,
        a_reused_id_with_another_payload_is_refused,
        reads_forward_and_backward_with_limits,
        global_log_is_ordered_and_appends_contiguous,
        subscription_resumes_after_a_checkpoint,
        a_filtered_subscription_delivers_only_its_streams,
        a_filtered_subscription_fills_its_batch_and_says_how_far_it_read,
        appends_to_several_streams_commit_together,
        a_refused_part_refuses_the_whole_append,
        a_resent_append_to_several_streams_is_answered_as_before,
    );
    let store = open(&cluster, "live").await;
    common::subscription_catches_up_then_follows_live(Arc::new(store), "").await;
}

/// The classic gap: one transaction takes position 41, another takes 42 and commits first, a
/// reader sees 42 and never looks back. Here an append transaction is held open (its `head`
/// lock taken, as every append takes it) while another append is sent: the later append
/// cannot commit, and the log shows nothing new, until the first one ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_append_never_becomes_visible_before_an_earlier_one_commits() {
    let cluster = PrivatePostgres::start().expect("private PostgreSQL");
    let store = Arc::new(open(&cluster, "ordo").await);
    store
        .append(&stream("", "a"), ExpectedVersion::Any, vec![event("First", b"1")])
        .await
        .expect("append");
    // Given an append transaction in flight in another connection: it holds the head
    let (mut held, connection) =
        tokio_postgres::connect(&cluster.url(), tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(connection);
    let tx = held.transaction().await.expect("begin");
    let next: i64 = tx
        .query_one("SELECT next_position FROM ordo.head FOR UPDATE", &[])
        .await
        .expect("head")
        .get(0);
    assert_eq!(next, 1);
    // When a later append is sent meanwhile
    let later = {
        let store = store.clone();
        tokio::spawn(async move {
            store.append(&stream("", "b"), ExpectedVersion::Any, vec![event("Later", b"2")]).await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Then it has not committed, and a reader sees nothing past position 0
    assert!(!later.is_finished(), "the later append waits for the earlier transaction");
    let visible = store.read_all(SubscribeFrom::Start, 10).await.expect("read");
    assert_eq!(visible.len(), 1, "nothing after the open transaction is visible");
    // And once the earlier transaction ends, the later append takes the next position
    tx.rollback().await.expect("rollback");
    let outcome = later.await.expect("joined").expect("appended");
    assert_eq!(outcome.position, Position(1));
    let all = store.read_all(SubscribeFrom::Start, 10).await.expect("read");
    assert_eq!(all.iter().map(|e| e.position.0).collect::<Vec<_>>(), [0, 1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hash_chain_matches_the_embedded_stores_and_names_an_altered_event() {
    let cluster = PrivatePostgres::start().expect("private PostgreSQL");
    let pg = open(&cluster, "ordo").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let embedded =
        EmbeddedStore::open(EmbeddedConfig::new(dir.path().join("e.redb"))).expect("embedded");
    // Given the same events imported into both stores (ids, times, order kept)
    let s = stream("", "chain");
    embedded.append(&s, ExpectedVersion::Any, events(5)).await.expect("append");
    let recorded = embedded.read_stream(&s, 0, Direction::Forward, 10).await.expect("read");
    pg.import(recorded).await.expect("import");
    // Then both verify to the same chain head
    let (count, head) = pg.verify().await.expect("verified");
    let report = embedded.verify().expect("verified");
    assert_eq!((count, head), (report.events, report.head_hash));
    // And an altered payload is named by its position
    let (client, connection) =
        tokio_postgres::connect(&cluster.url(), tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(connection);
    client
        .execute("UPDATE ordo.events SET payload = '\\x00' WHERE position = 3", &[])
        .await
        .expect("tamper");
    match pg.verify().await {
        Err(StoreError::Corrupt { position: 3, .. }) => {}
        other => panic!("expected corruption at 3, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_newer_than_this_code_is_refused() {
    let cluster = PrivatePostgres::start().expect("private PostgreSQL");
    drop(open(&cluster, "ordo").await);
    let (client, connection) =
        tokio_postgres::connect(&cluster.url(), tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(connection);
    client.execute("INSERT INTO ordo.schema_version VALUES (99)", &[]).await.expect("bump");
    let url = format!("{}?schema=ordo", cluster.url());
    match PostgresStore::open(PostgresConfig::from_url(&url).expect("url")).await {
        Err(e @ StoreError::SchemaTooNew { found: 99, .. }) => {
            assert!(e.to_string().contains("upgrade Ordo"), "{e}");
        }
        Err(other) => panic!("expected SchemaTooNew, got {other}"),
        Ok(_) => panic!("expected SchemaTooNew, got a store"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_from_two_stores_on_one_database_interleave_without_gaps() {
    // Two servers on one database: each has its own writer; the log stays contiguous.
    let cluster = PrivatePostgres::start().expect("private PostgreSQL");
    let a = Arc::new(open(&cluster, "ordo").await);
    let b = Arc::new(open(&cluster, "ordo").await);
    let mut writers = Vec::new();
    for (n, store) in [a.clone(), b.clone()].into_iter().enumerate() {
        writers.push(tokio::spawn(async move {
            for i in 0..50 {
                let s = stream("", &format!("w{n}-{}", i % 5));
                store.append(&s, ExpectedVersion::Any, events(2)).await.expect("append");
            }
        }));
    }
    for w in writers {
        w.await.expect("writer");
    }
    let all = a.read_all(SubscribeFrom::Start, 1_000).await.expect("read");
    assert_eq!(all.len(), 200);
    assert!(all.iter().enumerate().all(|(i, e)| e.position.0 == i as u64), "contiguous");
    assert_eq!(b.verify().await.expect("verified").0, 200);
}
