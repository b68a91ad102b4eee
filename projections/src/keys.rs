//! The Redis key layout (ADR 0007). Every key starts with `ordo:<projection>:v<version>:`, so a
//! rebuild can fill `v<N+1>` while `v<N>` serves, and the switch is one `SET`.
//!
//! Hash tags (`{...}`) mark the keys that must live in one Redis Cluster slot: a customer's
//! history indexes share `{<customer id>}`; the whole catalogue search index shares
//! `{catalogue}` because one search intersects all of it.

/// One projection's keys at one read-model version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Namespace {
    /// Projection name (`orders`, `catalogue`, `carts`).
    pub projection: &'static str,
    /// Read-model version.
    pub version: u32,
    prefix: String,
}

impl Namespace {
    /// The namespace of `projection` at `version`.
    pub fn new(projection: &'static str, version: u32) -> Self {
        Self { projection, version, prefix: format!("ordo:{projection}:v{version}") }
    }

    /// `ordo:<projection>:v<version>`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A key inside the namespace.
    pub fn key(&self, rest: &str) -> String {
        format!("{}:{rest}", self.prefix)
    }

    /// The last global position applied to this namespace.
    pub fn checkpoint(&self) -> String {
        self.key("checkpoint")
    }

    /// `SCAN MATCH` pattern for every key of this namespace.
    pub fn pattern(&self) -> String {
        format!("{}:*", self.prefix)
    }
}

/// Which version of `projection` queries read.
pub fn active_version_key(projection: &str) -> String {
    format!("ordo:{projection}:active")
}

/// The version a rebuild of `projection` is filling, while it runs.
pub fn building_version_key(projection: &str) -> String {
    format!("ordo:{projection}:building")
}

/// Position, lag and last error of `projection`.
pub fn status_key(projection: &str) -> String {
    format!("ordo:status:{projection}")
}
