//! The store contract against a real KurrentDB server.
//!
//! No KurrentDB server can run on the machines this project is built on, so these tests are
//! ignored by default. Point them at a server and run them explicitly:
//!
//! ```sh
//! ORDO_KURRENTDB_URL='kurrentdb://localhost:2113?tls=false' just test-kurrentdb
//! ```
//!
//! Each test uses fresh, uniquely prefixed streams, so a shared server is fine. Run without the
//! variable, they fail rather than pass vacuously.

mod common;

use ordo_eventstore::kurrent::KurrentStore;
use std::sync::Arc;

fn connect() -> KurrentStore {
    let url = std::env::var("ORDO_KURRENTDB_URL")
        .expect("ORDO_KURRENTDB_URL must name a KurrentDB server");
    KurrentStore::connect(&url).expect("connect to KurrentDB")
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test]
        #[ignore = "needs a KurrentDB server: set ORDO_KURRENTDB_URL and run `just test-kurrentdb`"]
        async fn $name() {
            common::$name(&connect(), &common::unique_prefix()).await;
        }
    )*};
}

contract!(
    appends_and_reads_back_in_order,
    rejects_wrong_expected_versions,
    retries_are_idempotent,
    reads_forward_and_backward_with_limits,
    global_log_is_ordered_and_appends_contiguous,
    subscription_resumes_after_a_checkpoint,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a KurrentDB server: set ORDO_KURRENTDB_URL and run `just test-kurrentdb`"]
async fn subscription_catches_up_then_follows_live() {
    common::subscription_catches_up_then_follows_live(
        Arc::new(connect()),
        &common::unique_prefix(),
    )
    .await;
}

#[tokio::test]
#[ignore = "needs a KurrentDB server: set ORDO_KURRENTDB_URL and run `just test-kurrentdb`"]
async fn reconnecting_sees_what_was_written() {
    let prefix = common::unique_prefix();
    let s = common::stream(&prefix, "reopen");
    let first = connect();
    use ordo_eventstore::{EventStore, ExpectedVersion};
    first
        .append(&s, ExpectedVersion::NoStream, vec![common::event("A", b"1")])
        .await
        .expect("append");
    drop(first);
    assert_eq!(connect().stream_version(&s).await.expect("head"), Some(0));
}
