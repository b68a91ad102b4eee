//! What a projection asks Redis to do, as data. Projections produce these; only the runner
//! talks to Redis, so projections are tested as pure functions.

use std::collections::BTreeMap;

/// One Redis write.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// `HSET key field value ...`: views always write their complete, fixed field set.
    SetFields {
        /// Hash key.
        key: String,
        /// Every field of the view.
        fields: Vec<(&'static str, String)>,
    },
    /// `SET key value`: a string, such as a view's rendered document.
    Set {
        /// Key.
        key: String,
        /// Value.
        value: String,
    },
    /// `DEL key`.
    Delete {
        /// Key.
        key: String,
    },
    /// `ZADD key score member`.
    ZAdd {
        /// Sorted-set key.
        key: String,
        /// Score.
        score: f64,
        /// Member.
        member: String,
    },
    /// `ZREM key member`.
    ZRem {
        /// Sorted-set key.
        key: String,
        /// Member.
        member: String,
    },
    /// `SADD key member`.
    SAdd {
        /// Set key.
        key: String,
        /// Member.
        member: String,
    },
    /// `HSET key field value`: one field, such as a view's document.
    HSetField {
        /// Hash key.
        key: String,
        /// Field.
        field: String,
        /// Value.
        value: String,
    },
    /// `HDEL key field`.
    HDel {
        /// Hash key.
        key: String,
        /// Field.
        field: String,
    },
    /// `SREM key member`.
    SRem {
        /// Set key.
        key: String,
        /// Member.
        member: String,
    },
}

/// A view's membership in one index.
#[derive(Clone, Debug, PartialEq)]
pub enum IndexEntry {
    /// Member of a sorted set with a score.
    Sorted {
        /// Sorted-set key.
        key: String,
        /// Member.
        member: String,
        /// Score.
        score: f64,
    },
    /// Member of a set.
    Set {
        /// Set key.
        key: String,
        /// Member.
        member: String,
    },
}

impl IndexEntry {
    fn id(&self) -> (&str, &str) {
        match self {
            IndexEntry::Sorted { key, member, .. } | IndexEntry::Set { key, member } => {
                (key, member)
            }
        }
    }
}

/// The index writes that turn memberships `old` into `new`: removals for entries that went,
/// adds for entries that came or changed score. Unchanged entries cost nothing.
pub fn diff_indexes(old: &[IndexEntry], new: &[IndexEntry]) -> Vec<Change> {
    let old_by_id: BTreeMap<_, _> = old.iter().map(|e| (e.id(), e)).collect();
    let new_by_id: BTreeMap<_, _> = new.iter().map(|e| (e.id(), e)).collect();
    let mut changes = Vec::new();
    for (id, entry) in &old_by_id {
        if !new_by_id.contains_key(id) {
            changes.push(match entry {
                IndexEntry::Sorted { key, member, .. } => {
                    Change::ZRem { key: key.clone(), member: member.clone() }
                }
                IndexEntry::Set { key, member } => {
                    Change::SRem { key: key.clone(), member: member.clone() }
                }
            });
        }
    }
    for (id, entry) in &new_by_id {
        if old_by_id.get(id).is_some_and(|old| old == entry) {
            continue;
        }
        changes.push(match entry {
            IndexEntry::Sorted { key, member, score } => {
                Change::ZAdd { key: key.clone(), score: *score, member: member.clone() }
            }
            IndexEntry::Set { key, member } => {
                Change::SAdd { key: key.clone(), member: member.clone() }
            }
        });
    }
    changes
}
