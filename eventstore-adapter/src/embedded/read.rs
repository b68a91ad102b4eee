//! Reads: pages of the log by position (what subscriptions and followers read), and one
//! stream's events through the stream index, the on-disk part merged with the in-memory one.

use super::index::PendingStream;
use super::schema::*;
use super::EmbeddedStore;
use crate::error::StoreError;
use crate::model::*;

/// What [`EmbeddedStore::read_page`] found.
pub(crate) struct Page {
    /// The events the filter kept, oldest first.
    pub events: Vec<RecordedEvent>,
    /// The position after the last event looked at; `None` if there was none.
    pub next: Option<u64>,
}

impl EmbeddedStore {
    /// Looks at up to `limit` events from position `from` on and returns those `filter` keeps.
    /// An event the filter drops is not decoded: only its stream name is read. Each follower
    /// keeps a part of the log (the cart projection about a third of the HTTP mix's events),
    /// and decoding every event for each of the five was a tenth of the background thread.
    ///
    /// A page at the live edge (the last [`LIVE_EDGE`] events) is read on the caller's thread:
    /// its pages were just written, so they are in redb's cache and the read takes microseconds,
    /// less than handing it to a blocking thread and back. Every follower (three projections,
    /// checkout, the outbox) reads there after each commit; profiles of the HTTP mix showed
    /// those hand-offs among the server's largest costs. Older pages (catch-up, rebuilds,
    /// exports) may need the disk and are read on a blocking thread.
    pub(crate) async fn read_page(
        &self,
        from: u64,
        limit: usize,
        filter: &EventFilter,
    ) -> Result<Page, StoreError> {
        let db = self.inner.db.clone();
        let read = move |filter: &EventFilter| {
            let txn = db.begin_read()?;
            let events = txn.open_table(EVENTS)?;
            let mut page = Page { events: Vec::with_capacity(limit.min(4_096)), next: None };
            let keeps_all = filter.stream_prefixes.is_empty();
            for entry in events.range(from..)?.take(limit) {
                let (key, value) = entry?;
                let (position, record) = (key.value(), value.value());
                page.next = Some(position + 1);
                if keeps_all || filter.accepts(stored_stream(position, record)?) {
                    page.events.push(to_recorded(position, record)?);
                }
            }
            Ok(page)
        };
        if self.len().saturating_sub(from) <= LIVE_EDGE {
            read(filter)
        } else {
            let filter = filter.clone();
            blocking(move || read(&filter)).await
        }
    }

    /// Up to `limit` events of `stream` from version `from` on, in `direction`: the stream
    /// index gives their positions (on disk below the in-memory index's first version, in
    /// memory from there), the log gives the events.
    pub(super) async fn read_stream_events(
        &self,
        stream: &StreamName,
        from: u64,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.refresh()?;
        let db = self.inner.db.clone();
        // Snapshot the in-memory index before opening the read transaction (see `index`).
        let recent = self.recent(stream)?;
        // Events the in-memory index holds are among the log's last few thousand: their pages
        // are in redb's cache, and a short read of them takes microseconds on this thread, less
        // than a hand-off to a blocking thread and back (as with `read_page`). The checkout
        // process reads each order's stream for every event of it, all of them recent.
        let in_memory =
            recent.as_ref().and_then(|r| positions_in_memory(r, from, direction, limit));
        if let Some(positions) = in_memory {
            let txn = db.begin_read()?;
            return events_at(&txn.open_table(EVENTS)?, positions);
        }
        let stream = stream.clone();
        blocking(move || {
            let txn = db.begin_read()?;
            let index = txn.open_table(STREAM_INDEX)?;
            let events = txn.open_table(EVENTS)?;
            let name = stream.as_str();
            // On-disk entries cover versions below `split`; the snapshot covers the rest.
            let split = recent.as_ref().map_or(u64::MAX, |r| r.first_version);
            let disk = |range: std::ops::RangeInclusive<u64>| -> Result<Vec<u64>, StoreError> {
                let (lo, hi) = (*range.start(), (*range.end()).min(split.saturating_sub(1)));
                if split == 0 || lo > hi {
                    return Ok(vec![]);
                }
                let found = index.range((name, lo)..=(name, hi))?;
                Ok(found.map(|e| e.map(|(_, p)| p.value())).collect::<Result<_, _>>()?)
            };
            let memory = |lo: u64, hi: u64| -> Vec<u64> {
                recent.as_ref().map_or_else(Vec::new, |r| {
                    (lo.max(r.first_version)..=hi.min(r.last_version().unwrap_or(0)))
                        .filter_map(|v| r.position(v))
                        .collect()
                })
            };
            let positions: Vec<u64> = match direction {
                Direction::Forward => {
                    let mut p = disk(from..=u64::MAX)?;
                    p.extend(memory(from, u64::MAX));
                    p.truncate(limit);
                    p
                }
                Direction::Backward => {
                    let mut p = memory(0, from);
                    p.reverse();
                    let mut older = disk(0..=from)?;
                    older.reverse();
                    p.extend(older);
                    p.truncate(limit);
                    p
                }
            };
            events_at(&events, positions)
        })
        .await
    }

    /// This stream's entries in the in-memory index, if it has any.
    pub(super) fn recent(&self, stream: &StreamName) -> Result<Option<PendingStream>, StoreError> {
        let index = self
            .inner
            .index
            .read()
            .map_err(|_| StoreError::Storage("index lock poisoned".into()))?;
        Ok(index.streams.get(stream.as_str()).cloned())
    }
}

/// The positions of the events a stream read asks for, if the in-memory index holds them all
/// and they are at most [`LIVE_EDGE`] (`None`: some are only in the on-disk index, or the read
/// is long enough to belong on a blocking thread).
fn positions_in_memory(
    recent: &PendingStream,
    from: u64,
    direction: Direction,
    limit: usize,
) -> Option<Vec<u64>> {
    let last = recent.last_version()?;
    let limit = u64::try_from(limit).unwrap_or(u64::MAX);
    let versions: Vec<u64> = match direction {
        Direction::Forward => {
            let count = (last + 1).saturating_sub(from).min(limit);
            if from < recent.first_version || count > LIVE_EDGE {
                return None;
            }
            (from..from + count).collect()
        }
        Direction::Backward => {
            let top = from.min(last);
            let count = (top + 1).min(limit);
            if (count > 0 && top + 1 - count < recent.first_version) || count > LIVE_EDGE {
                return None;
            }
            (0..count).map(|i| top - i).collect()
        }
    };
    versions.into_iter().map(|v| recent.position(v)).collect()
}

/// The events at `positions`, in that order.
fn events_at(
    events: &redb::ReadOnlyTable<u64, &[u8]>,
    positions: Vec<u64>,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut out = Vec::with_capacity(positions.len());
    for position in positions {
        let record = events.get(position)?.ok_or_else(|| StoreError::Corrupt {
            position,
            reason: "indexed event missing".into(),
        })?;
        out.push(to_recorded(position, record.value())?);
    }
    Ok(out)
}

/// How far behind the head a read still counts as live (see [`EmbeddedStore::read_page`]). It
/// also bounds the work such a read does on an async worker: at most this many events, a
/// fraction of a millisecond. Followers in step with the writer read a few dozen at a time.
const LIVE_EDGE: u64 = 256;

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Storage(format!("reader task failed: {e}")))?
}
