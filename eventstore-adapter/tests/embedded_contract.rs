//! The store contract, run against the embedded backend (always), plus what only a file can
//! show: reopening, faults at open, and the hash chain.

mod common;

use common::*;
use ordo_eventstore::*;
use std::sync::Arc;

fn open(dir: &tempfile::TempDir) -> EmbeddedStore {
    EmbeddedStore::open(EmbeddedConfig::new(dir.path().join("events.redb"))).expect("open store")
}

fn fresh() -> (tempfile::TempDir, EmbeddedStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir);
    (dir, store)
}

/// A store whose in-memory index goes to disk every 3 events, so reads constantly merge the
/// on-disk and in-memory halves of the index.
fn fresh_flushing() -> (tempfile::TempDir, EmbeddedStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = EmbeddedConfig::new(dir.path().join("events.redb"));
    config.index_flush_events = 3;
    let store = EmbeddedStore::open(config).expect("open store");
    (dir, store)
}

mod with_frequent_index_flushes {
    use super::*;

    macro_rules! contract {
        ($($name:ident),* $(,)?) => {$(
            #[tokio::test]
            async fn $name() {
                let (_dir, store) = fresh_flushing();
                common::$name(&store, "").await;
            }
        )*};
    }

    contract!(
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn subscription_catches_up_then_follows_live() {
        let (_dir, store) = fresh_flushing();
        common::subscription_catches_up_then_follows_live(Arc::new(store), "").await;
    }
}

#[tokio::test]
async fn appends_and_reads_back_in_order() {
    let (_dir, store) = fresh();
    common::appends_and_reads_back_in_order(&store, "").await;
}

#[tokio::test]
async fn rejects_wrong_expected_versions() {
    let (_dir, store) = fresh();
    common::rejects_wrong_expected_versions(&store, "").await;
}

#[tokio::test]
async fn retries_are_idempotent() {
    let (_dir, store) = fresh();
    common::retries_are_idempotent(&store, "").await;
}

#[tokio::test]
async fn a_reused_id_with_another_payload_is_refused() {
    let (_dir, store) = fresh();
    common::a_reused_id_with_another_payload_is_refused(&store, "").await;
}

#[tokio::test]
async fn reads_forward_and_backward_with_limits() {
    let (_dir, store) = fresh();
    common::reads_forward_and_backward_with_limits(&store, "").await;
}

#[tokio::test]
async fn global_log_is_ordered_and_appends_contiguous() {
    let (_dir, store) = fresh();
    common::global_log_is_ordered_and_appends_contiguous(&store, "").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_catches_up_then_follows_live() {
    let (_dir, store) = fresh();
    common::subscription_catches_up_then_follows_live(Arc::new(store), "").await;
}

#[tokio::test]
async fn subscription_resumes_after_a_checkpoint() {
    let (_dir, store) = fresh();
    common::subscription_resumes_after_a_checkpoint(&store, "").await;
}

macro_rules! on_a_fresh_store {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            let (_dir, store) = fresh();
            common::$name(&store, "").await;
        }
    )*};
}

on_a_fresh_store!(
    a_filtered_subscription_delivers_only_its_streams,
    a_filtered_subscription_fills_its_batch_and_says_how_far_it_read,
    appends_to_several_streams_commit_together,
    a_refused_part_refuses_the_whole_append,
    a_resent_append_to_several_streams_is_answered_as_before,
);

#[tokio::test]
async fn events_survive_close_and_reopen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir);
    let s = stream("", "order-9");
    store
        .append(&s, ExpectedVersion::NoStream, vec![event("A", b"1"), event("B", b"2")])
        .await
        .expect("append");
    store.close();
    assert!(matches!(
        store.append(&s, ExpectedVersion::Any, vec![event("C", b"3")]).await,
        Err(StoreError::Closed)
    ));
    drop(store);
    let reopened = open(&dir);
    assert_eq!(reopened.stream_version(&s).await.expect("head"), Some(1));
    let next = reopened
        .append(&s, ExpectedVersion::Exact(1), vec![event("C", b"3")])
        .await
        .expect("append");
    assert_eq!(next.position, Position(2), "the global log continues where it stopped");
    assert_eq!(reopened.verify().expect("chain verifies").events, 3);
}

#[tokio::test]
async fn the_index_goes_to_disk_when_the_writer_pauses_not_in_a_commit_after_it() {
    // Given a store with index entries pending in memory, appended back to back
    let (_dir, store) = fresh();
    let flushes = || store.stats().index_flushes.load(std::sync::atomic::Ordering::Relaxed);
    for _ in 0..20 {
        store.append(&stream("", "cart-1"), ExpectedVersion::Any, events(1)).await.expect("append");
    }
    // Then nothing is flushed while appends keep coming,
    assert_eq!(flushes(), 0);
    // and once the writer has had nothing to do for a while, the entries go to disk
    let waited = std::time::Instant::now();
    while flushes() == 0 && waited.elapsed() < std::time::Duration::from_secs(5) {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(flushes(), 1);
    assert!(waited.elapsed() >= std::time::Duration::from_millis(200), "{:?}", waited.elapsed());
    let all = store.read_stream(&stream("", "cart-1"), 0, Direction::Forward, 100).await;
    assert_eq!(all.expect("read").len(), 20);
}

#[tokio::test]
async fn stream_reads_agree_across_index_flushes_and_reopens() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("events.redb");
    let mut config = EmbeddedConfig::new(&path);
    config.index_flush_events = 7;
    let streams = ["order-a", "order-b", "order-c"];
    let mut expected: std::collections::BTreeMap<&str, Vec<uuid::Uuid>> = Default::default();
    for round in 0..3 {
        let store = EmbeddedStore::open(config.clone()).expect("open");
        for i in 0..40 {
            let name = streams[(i * 7 + round) % 3];
            let batch: Vec<_> = (0..1 + i % 4).map(|_| event("E", b"x")).collect();
            expected.entry(name).or_default().extend(batch.iter().map(|e| e.id));
            store.append(&stream("", name), ExpectedVersion::Any, batch).await.expect("append");
        }
        for name in streams {
            let want = &expected[name];
            let s = stream("", name);
            let ids = |v: Vec<RecordedEvent>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
            let all =
                ids(store.read_stream(&s, 0, Direction::Forward, usize::MAX).await.expect("read"));
            assert_eq!(&all, want, "forward read of {name} in round {round}");
            let mut back = ids(store
                .read_stream(&s, u64::MAX, Direction::Backward, usize::MAX)
                .await
                .expect("read"));
            back.reverse();
            assert_eq!(&back, want, "backward read of {name} in round {round}");
            for from in [0, 5, want.len() as u64 / 2, want.len() as u64 - 1] {
                let page =
                    ids(store.read_stream(&s, from, Direction::Forward, 6).await.expect("read"));
                let end = (from as usize + 6).min(want.len());
                assert_eq!(page, want[from as usize..end], "page of {name} from {from}");
                let mut page =
                    ids(store.read_stream(&s, from, Direction::Backward, 4).await.expect("read"));
                page.reverse();
                let start = (from as usize + 1).saturating_sub(4);
                assert_eq!(page, want[start..=from as usize], "page of {name} back from {from}");
            }
            assert_eq!(store.stream_version(&s).await.expect("head"), Some(want.len() as u64 - 1));
        }
        store.close();
    }
}

#[tokio::test]
async fn a_second_open_of_the_same_file_is_refused_with_its_name() {
    let (dir, _store) = fresh();
    let err = EmbeddedStore::open(EmbeddedConfig::new(dir.path().join("events.redb")))
        .err()
        .expect("refused");
    let message = err.to_string();
    assert!(message.contains("events.redb") && message.contains("already open"), "{message}");
}

#[tokio::test]
async fn a_file_that_is_not_a_store_is_refused_with_its_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("events.redb");
    std::fs::write(&path, b"this is not a database at all, just some text in a file")
        .expect("write");
    let err = EmbeddedStore::open(EmbeddedConfig::new(&path)).err().expect("refused");
    assert!(err.to_string().contains(&path.display().to_string()), "{err}");
}

#[tokio::test]
async fn a_file_whose_first_creation_was_killed_is_set_aside_and_a_new_store_created() {
    // Given what redb leaves when its creator is killed before the magic number goes in: a
    // sized file whose start is still zeros
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("events.redb");
    std::fs::write(&path, vec![0u8; 64 * 1024]).expect("write");
    // When the store opens
    let store = EmbeddedStore::open(EmbeddedConfig::new(&path)).expect("a new store");
    // Then it is a new store that takes events
    let s = stream("", "order-1");
    store.append(&s, ExpectedVersion::NoStream, vec![event("A", b"1")]).await.expect("append");
    assert_eq!(store.len(), 1);
    // and the old file is kept beside it, unchanged.
    let aside: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().contains("events.redb.unfinished-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(std::fs::read(&aside[0]).expect("read"), vec![0u8; 64 * 1024]);
}

#[tokio::test]
async fn rejects_empty_appends_and_bad_stream_names() {
    let (_dir, store) = fresh();
    assert!(matches!(
        store.append(&stream("", "x"), ExpectedVersion::Any, vec![]).await,
        Err(StoreError::EmptyAppend)
    ));
    for bad in ["", "has space", "$system", &"x".repeat(201)] {
        assert!(
            matches!(StreamName::new(bad), Err(StoreError::InvalidStreamName { .. })),
            "{bad:?}"
        );
    }
}

/// Writes `n` one-event appends and closes the store, returning the file path.
async fn store_with_events(dir: &tempfile::TempDir, n: usize) -> std::path::PathBuf {
    let store = open(dir);
    for i in 0..n {
        let s = stream("", &format!("order-{}", i % 3));
        store
            .append(
                &s,
                ExpectedVersion::Any,
                vec![event("Tested", format!("payload {i}").as_bytes())],
            )
            .await
            .expect("append");
    }
    store.close();
    store.path().to_owned()
}

#[tokio::test]
async fn verify_names_the_first_altered_event() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = store_with_events(&dir, 5).await;
    {
        // Change one payload byte of position 3 behind the store's back.
        use redb::ReadableTable;
        let db = redb::Database::open(&path).expect("raw open");
        let txn = db.begin_write().expect("txn");
        {
            let table: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("events");
            let mut events = txn.open_table(table).expect("events table");
            let mut record = events.get(3).expect("get").expect("present").value().to_vec();
            let last = record.len() - 1;
            record[last] ^= 0x01;
            events.insert(3, record.as_slice()).expect("insert");
        }
        txn.commit().expect("commit");
    }
    let store = EmbeddedStore::open(EmbeddedConfig::new(&path)).expect("reopen");
    match store.verify() {
        Err(StoreError::Corrupt { position, .. }) => assert_eq!(position, 3),
        other => panic!("expected corruption at 3, got {other:?}"),
    }
}

#[tokio::test]
async fn a_truncated_file_is_refused_at_open_with_its_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = store_with_events(&dir, 50).await;
    let len = std::fs::metadata(&path).expect("metadata").len();
    let file = std::fs::OpenOptions::new().write(true).open(&path).expect("open file");
    file.set_len(len / 2).expect("truncate");
    drop(file);
    match EmbeddedStore::open(EmbeddedConfig::new(&path)) {
        Err(err) => assert!(err.to_string().contains(&path.display().to_string()), "{err}"),
        Ok(store) => panic!("a truncated file opened silently with {} events", store.len()),
    }
}

#[tokio::test]
async fn a_read_only_handle_reads_and_follows_a_live_writer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("events.redb");
    let writer = EmbeddedStore::open(EmbeddedConfig::new(&path)).expect("writer");
    let s = stream("", "order-1");
    writer
        .append(&s, ExpectedVersion::NoStream, vec![event("A", b"1"), event("B", b"2")])
        .await
        .expect("append");

    let reader = EmbeddedStore::open(EmbeddedConfig::new(&path).read_only())
        .expect("read-only beside the writer");
    assert_eq!(reader.stream_version(&s).await.expect("head"), Some(1));
    let mut sub =
        reader.subscribe_all(SubscribeFrom::Start, EventFilter::all()).await.expect("subscribe");
    assert_eq!(sub.next().await.expect("event").version, 0);
    assert_eq!(sub.next().await.expect("event").version, 1);

    writer.append(&s, ExpectedVersion::Exact(1), vec![event("C", b"3")]).await.expect("append");
    let live = tokio::time::timeout(std::time::Duration::from_secs(5), sub.next())
        .await
        .expect("noticed")
        .expect("event");
    assert_eq!((live.version, live.event_type.as_str()), (2, "C"));
    let read = reader.read_stream(&s, 0, Direction::Forward, 10).await.expect("read");
    assert_eq!(read.len(), 3);
    assert!(matches!(
        reader.append(&s, ExpectedVersion::Any, vec![event("D", b"4")]).await,
        Err(StoreError::ReadOnly)
    ));
    assert_eq!(reader.verify().expect("verify from the reader").events, 3);
}

#[tokio::test]
async fn an_exclusive_writer_keeps_read_only_handles_out() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("events.redb");
    let mut config = EmbeddedConfig::new(&path);
    config.exclusive = true;
    let writer = EmbeddedStore::open(config).expect("writer");
    writer
        .append(&stream("", "order-1"), ExpectedVersion::NoStream, vec![event("A", b"1")])
        .await
        .expect("append");
    let refused =
        EmbeddedStore::open(EmbeddedConfig::new(&path).read_only()).err().expect("refused");
    assert!(refused.to_string().contains("already open"), "{refused}");
}

#[tokio::test]
async fn given_a_stream_half_on_disk_and_half_in_memory_when_read_then_both_halves_come_back() {
    // Given order-a's first four events flushed to the on-disk index (the fifth event of the
    // log triggers the flush) and two more only in the in-memory index
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = EmbeddedConfig::new(dir.path().join("events.redb"));
    config.index_flush_events = 5;
    let store = EmbeddedStore::open(config).expect("open");
    let (a, b) = (stream("", "order-a"), stream("", "order-b"));
    let mut want = Vec::new();
    for _ in 0..4 {
        let e = event("E", b"x");
        want.push(e.id);
        store.append(&a, ExpectedVersion::Any, vec![e]).await.expect("append");
    }
    store.append(&b, ExpectedVersion::Any, vec![event("E", b"x")]).await.expect("append");
    for _ in 0..2 {
        let e = event("E", b"x");
        want.push(e.id);
        store.append(&a, ExpectedVersion::Any, vec![e]).await.expect("append");
    }
    let ids = |v: Vec<RecordedEvent>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
    let read = |from, direction, limit| store.read_stream(&a, from, direction, limit);
    // When it is read forward and backward, from either half, then every event is there once
    assert_eq!(ids(read(0, Direction::Forward, 10).await.expect("read")), want);
    assert_eq!(ids(read(2, Direction::Forward, 3).await.expect("read")), want[2..5]);
    assert_eq!(ids(read(4, Direction::Forward, 10).await.expect("read")), want[4..]);
    let back = |v: Vec<RecordedEvent>| ids(v).into_iter().rev().collect::<Vec<_>>();
    assert_eq!(back(read(u64::MAX, Direction::Backward, 10).await.expect("read")), want);
    assert_eq!(back(read(5, Direction::Backward, 4).await.expect("read")), want[2..]);
    assert_eq!(back(read(5, Direction::Backward, 2).await.expect("read")), want[4..]);
    assert_eq!(back(read(3, Direction::Backward, 2).await.expect("read")), want[2..4]);
}
