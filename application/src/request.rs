//! One command request: who asks, the client's idempotency key, and the correlation id that
//! joins its events to the logs of whatever sent it.

use crate::caller::Caller;
use crate::error::AppError;
use ordo_eventstore::command::{derived_id, CommandContext};
use std::collections::BTreeMap;
use uuid::Uuid;

/// Per-request command settings.
#[derive(Clone, Debug)]
pub struct Request {
    /// The verified caller.
    pub caller: Caller,
    /// Makes event ids (and generated ids) deterministic, so a retried request after a crash
    /// becomes a no-op in the store instead of a second effect.
    pub idempotency_key: Option<Uuid>,
    /// Joins the events to the request's logs.
    pub correlation_id: Option<Uuid>,
}

impl Request {
    /// The command context of step `step` of this request: each step of a use case gets its
    /// own derived key, so two steps never collide and a retry repeats each one exactly.
    pub fn context(&self, step: usize) -> CommandContext {
        let mut headers = BTreeMap::new();
        headers.insert("actor".to_owned(), self.caller.subject.clone());
        headers.insert(
            "role".to_owned(),
            if self.caller.is_admin() { "admin" } else { "customer" }.to_owned(),
        );
        CommandContext {
            correlation_id: self.correlation_id,
            causation_id: None,
            idempotency_key: self.idempotency_key.map(|key| derived_id(key, step)),
            headers,
        }
    }

    /// A fresh id for something this request creates; the same on every retry of a keyed
    /// request, so a retried "open a cart" finds the cart it opened.
    pub fn new_id(&self) -> Uuid {
        match self.idempotency_key {
            Some(key) => derived_id(key, usize::MAX),
            None => Uuid::now_v7(),
        }
    }

    /// Refuses callers who are not staff.
    pub fn require_admin(&self) -> Result<(), AppError> {
        if self.caller.is_admin() {
            Ok(())
        } else {
            Err(AppError::Forbidden)
        }
    }
}
