//! The log follower: every batch handled, a failed batch repeated from the checkpoint, and a
//! permanent failure reported, over the embedded store.

mod common;

use common::{event, stream};
use ordo_eventstore::follow::{follow, FollowConfig, FollowError, Handler};
use ordo_eventstore::{
    EmbeddedConfig, EmbeddedStore, EventFilter, EventStore, ExpectedVersion, Position,
    RecordedEvent,
};
use std::time::Duration;
use tokio::sync::watch;

/// Records what it handled; its checkpoint is how far its last batch reached. Fails the batches
/// listed in `fail_at` (by their first position) once each.
struct Recorder {
    filter: EventFilter,
    checkpoint: Option<Position>,
    handled: Vec<u64>,
    fail_at: Vec<u64>,
    permanent: bool,
    failures: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("batch at {0} failed")]
struct Failed(u64);

impl Handler for Recorder {
    type Error = Failed;

    fn name(&self) -> &'static str {
        "recorder"
    }

    fn filter(&self) -> EventFilter {
        self.filter.clone()
    }

    async fn checkpoint(&mut self) -> Result<Option<Position>, Failed> {
        Ok(self.checkpoint)
    }

    async fn handle(&mut self, batch: &[RecordedEvent], through: Position) -> Result<(), Failed> {
        if let Some(first) = batch.first().map(|e| e.position.0) {
            if let Some(i) = self.fail_at.iter().position(|p| *p == first) {
                self.fail_at.remove(i);
                return Err(Failed(first));
            }
        }
        self.handled.extend(batch.iter().map(|e| e.position.0));
        self.checkpoint = Some(through);
        Ok(())
    }

    fn is_permanent(&self, _: &Failed) -> bool {
        self.permanent
    }

    async fn on_failure(&mut self, error: &str) {
        self.failures.push(error.to_owned());
    }
}

async fn store_with(events: usize) -> (tempfile::TempDir, EmbeddedStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = EmbeddedStore::open(EmbeddedConfig::new(dir.path().join("e.redb"))).expect("open");
    append(&store, "f-s", events).await;
    (dir, store)
}

async fn append(store: &EmbeddedStore, name: &str, events: usize) {
    for i in 0..events {
        let new = vec![event("Happened", &[i as u8])];
        store.append(&stream(name, ""), ExpectedVersion::Any, new).await.expect("append");
    }
}

fn config() -> FollowConfig {
    FollowConfig {
        batch_size: 3,
        first_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
    }
}

#[tokio::test]
async fn a_failed_batch_is_repeated_from_the_checkpoint_and_nothing_is_skipped() {
    let (_dir, store) = store_with(10).await;
    let mut recorder = Recorder {
        filter: EventFilter::all(),
        checkpoint: None,
        handled: vec![],
        fail_at: vec![3, 6],
        permanent: false,
        failures: vec![],
    };
    let (_stop, stopping) = watch::channel(false);
    follow(&store, &mut recorder, &config(), Some(Position(9)), stopping).await.expect("followed");
    assert_eq!(recorder.handled, (0..10).collect::<Vec<_>>(), "each event once, in order");
    assert_eq!(recorder.failures, ["batch at 3 failed", "batch at 6 failed"]);
    assert_eq!(recorder.checkpoint, Some(Position(9)));
}

#[tokio::test]
async fn a_follower_resumes_after_its_checkpoint() {
    let (_dir, store) = store_with(6).await;
    let mut recorder = Recorder {
        filter: EventFilter::all(),
        checkpoint: Some(Position(3)),
        handled: vec![],
        fail_at: vec![],
        permanent: false,
        failures: vec![],
    };
    let (_stop, stopping) = watch::channel(false);
    follow(&store, &mut recorder, &config(), Some(Position(5)), stopping).await.expect("followed");
    assert_eq!(recorder.handled, [4, 5]);
}

#[tokio::test]
async fn a_permanent_failure_stops_the_follower_and_names_it() {
    let (_dir, store) = store_with(4).await;
    let mut recorder = Recorder {
        filter: EventFilter::all(),
        checkpoint: None,
        handled: vec![],
        fail_at: vec![0],
        permanent: true,
        failures: vec![],
    };
    let (_stop, stopping) = watch::channel(false);
    let result = follow(&store, &mut recorder, &config(), Some(Position(3)), stopping).await;
    assert!(matches!(result, Err(FollowError::Handler { name: "recorder", source: Failed(0) })));
    assert!(recorder.handled.is_empty());
}

#[tokio::test]
async fn a_follower_waiting_for_events_stops_when_asked() {
    let (_dir, store) = store_with(2).await;
    let mut recorder = Recorder {
        filter: EventFilter::all(),
        checkpoint: None,
        handled: vec![],
        fail_at: vec![],
        permanent: false,
        failures: vec![],
    };
    let (stop, stopping) = watch::channel(false);
    let stopper = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        stop.send(true).expect("stop");
    };
    let config = config();
    let (result, ()) =
        tokio::join!(follow(&store, &mut recorder, &config, None, stopping), stopper);
    result.expect("stopped cleanly");
    assert_eq!(recorder.handled, [0, 1]);
}

#[tokio::test]
async fn a_filtered_follower_moves_its_checkpoint_past_the_events_it_skips() {
    // Given a log that ends with events of a stream the follower does not read
    let (_dir, store) = store_with(4).await;
    append(&store, "g-t", 3).await;
    let mut recorder = Recorder {
        filter: EventFilter::streams_starting_with(["f-"]),
        checkpoint: None,
        handled: vec![],
        fail_at: vec![],
        permanent: false,
        failures: vec![],
    };
    // When it follows to the end of the log
    let (_stop, stopping) = watch::channel(false);
    let config = config();
    let followed = follow(&store, &mut recorder, &config, Some(Position(6)), stopping);
    tokio::time::timeout(Duration::from_secs(5), followed)
        .await
        .expect("reaches the end of the log")
        .expect("followed");
    // Then it handled only its own events, and its checkpoint is the end of the log
    assert_eq!(recorder.handled, [0, 1, 2, 3]);
    assert_eq!(recorder.checkpoint, Some(Position(6)));
}
