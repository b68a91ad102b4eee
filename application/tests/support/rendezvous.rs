//! A hook for a test that asks whether appends were made together (with
//! [`super::OneStreamPerCommit::with`]): each append of an event of one type waits until a
//! number of them have arrived, or for at most [`WAIT`]. An append that waited that long came
//! alone.

use super::BeforeAppend;
use ordo_eventstore::NewEvent;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;

/// How long an append waits for the others before it goes on alone.
pub const WAIT: Duration = Duration::from_secs(1);

/// Holds appends of `event_type` until `count` of them arrived.
pub struct Rendezvous {
    event_type: &'static str,
    count: usize,
    arrived: Mutex<usize>,
    arrival: Notify,
    alone: AtomicUsize,
}

impl Rendezvous {
    /// Holds appends of `event_type` until `count` of them arrived.
    pub fn new(event_type: &'static str, count: usize) -> Self {
        let (arrived, arrival, alone) = (Mutex::new(0), Notify::new(), AtomicUsize::new(0));
        Self { event_type, count, arrived, arrival, alone }
    }

    /// How many appends of the type waited [`WAIT`] and went on alone.
    pub fn alone(&self) -> usize {
        self.alone.load(Ordering::SeqCst)
    }

    fn arrived(&self) -> usize {
        *self.arrived.lock().expect("not poisoned")
    }

    async fn meet(&self) {
        *self.arrived.lock().expect("not poisoned") += 1;
        self.arrival.notify_waiters();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            // Registered before the check, so an arrival between the two still wakes it.
            let next_arrival = self.arrival.notified();
            if self.arrived() >= self.count {
                return;
            }
            if tokio::time::timeout_at(deadline, next_arrival).await.is_err() {
                self.alone.fetch_add(1, Ordering::SeqCst);
                return;
            }
        }
    }
}

impl BeforeAppend for Rendezvous {
    async fn before(&self, events: &[NewEvent]) {
        if events.iter().any(|e| e.event_type == self.event_type) {
            self.meet().await;
        }
    }
}
