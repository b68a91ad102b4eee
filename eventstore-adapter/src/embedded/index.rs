//! The recent part of the stream and id indexes, kept in memory and flushed to redb in bulk.
//!
//! Why: the on-disk stream index is keyed by (stream, version). Writing it on every commit
//! dirties one B-tree leaf per distinct stream in the batch, and those page writes, not the
//! fsync, dominated commit time (measured: 0.8 ms per 32-event commit against 0.35 ms for one
//! event). The global log itself is append-only and cheap to write. So commits write only the
//! log; the index entries of the last events stay here and are written to redb every
//! `index_flush_events` events (default [`FLUSH_EVENTS`], or when the writer is idle), in the same transaction as a batch,
//! so the on-disk index and the `indexed_through` mark move together. At open, the entries
//! after that mark are rebuilt by scanning the log tail, which is at most a few thousand events.
//!
//! Readers take a snapshot of this index before opening their read transaction, then merge:
//! on-disk entries below the snapshot's first version, snapshot entries from there on. The
//! writer clears entries only after the flush that wrote them has committed, so a reader
//! never misses an event it was told about.

use std::collections::HashMap;

/// Default for `EmbeddedConfig::index_flush_events`: flush once this many events are pending.
pub const FLUSH_EVENTS: usize = 16_384;

/// Index entries of one stream that are not on disk yet: contiguous versions from `first`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PendingStream {
    /// Version of `positions[0]`.
    pub first_version: u64,
    /// Global positions of versions `first_version..`.
    pub positions: Vec<u64>,
}

impl PendingStream {
    /// The last version held here.
    pub fn last_version(&self) -> Option<u64> {
        (self.positions.len() as u64).checked_sub(1).map(|n| self.first_version + n)
    }

    /// Position of `version`, if it is held here.
    pub fn position(&self, version: u64) -> Option<u64> {
        let i = version.checked_sub(self.first_version)?;
        self.positions.get(usize::try_from(i).ok()?).copied()
    }
}

/// Index entries written to the log but not yet to the on-disk index tables.
#[derive(Debug, Default)]
pub struct PendingIndex {
    /// By stream name.
    pub streams: HashMap<String, PendingStream>,
    /// Event id -> position.
    pub ids: HashMap<u128, u64>,
    /// Events held.
    pub events: usize,
}

impl PendingIndex {
    /// Records that `stream` got `version` at `position`, with event `id`.
    pub fn add(&mut self, stream: &str, version: u64, position: u64, id: u128) {
        let entry = self
            .streams
            .entry(stream.to_owned())
            .or_insert_with(|| PendingStream { first_version: version, positions: Vec::new() });
        entry.positions.push(position);
        self.ids.insert(id, position);
        self.events += 1;
    }

    /// Moves everything from `other` into `self` (a committed batch joining the shared index).
    pub fn absorb(&mut self, other: PendingIndex) {
        for (stream, entries) in other.streams {
            match self.streams.get_mut(&stream) {
                Some(existing) => existing.positions.extend(entries.positions),
                None => {
                    self.streams.insert(stream, entries);
                }
            }
        }
        self.ids.extend(other.ids);
        self.events += other.events;
    }
}
