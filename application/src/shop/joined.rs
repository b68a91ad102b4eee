//! One command carrying another aggregate's prepared events into its commit (ADR 0022), the
//! protocol every joined use case follows: the rider is prepared on its own aggregate, rides
//! with the carrier's command, and is then adopted into its cache; if its stream moved in
//! between, nothing was written and its cache catches up, so the use case can plan again.

use super::Shop;
use crate::error::AppError;
use ordo_domain::Decider;
use ordo_eventstore::codec::DomainEvent;
use ordo_eventstore::command::{CommandContext, CommandError, Prepared, Receipt, Repository};
use ordo_eventstore::{EventStore, StoreError};

/// One side of a joined commit: an aggregate's command path and the aggregate's id.
pub(super) struct Side<'a, D: Decider, S>
where
    D::Error: std::error::Error + 'static,
{
    pub repository: &'a Repository<D, S>,
    pub id: &'a str,
}

impl<S: EventStore> Shop<S> {
    /// Runs `command` on `carrier` with `rider` (prepared on `riders`) in the same commit.
    /// Both receipts, or `None` when the rider's stream moved since it was prepared. The
    /// rider's receipt is of its prepared events, or of its current state when an earlier
    /// attempt of the same keyed request had committed both.
    pub(super) async fn joined<C, R>(
        &self,
        carrier: Side<'_, C, S>,
        command: &C::Command,
        context: &CommandContext,
        riders: Side<'_, R, S>,
        rider: Prepared<R::Event>,
    ) -> Result<Option<(Receipt<C::Event>, Receipt<R::Event>)>, AppError>
    where
        C: Decider + 'static,
        C::State: Clone + Send + Sync + 'static,
        C::Event: DomainEvent + Send + Sync + 'static,
        C::Command: Clone + Send + Sync + 'static,
        C::Error: std::error::Error + Send + Into<AppError> + 'static,
        R: Decider + 'static,
        R::State: Clone + Send + Sync + 'static,
        R::Event: DomainEvent + Send + Sync + 'static,
        R::Command: Clone + Send + Sync + 'static,
        R::Error: std::error::Error + Send + Into<AppError> + 'static,
    {
        let companion = rider.append.clone();
        let joined = carrier.repository.execute_joined(carrier.id, command, context, companion);
        let carried = match joined.await {
            Ok(carried) => carried,
            Err(CommandError::Store(StoreError::WrongExpectedVersion { stream, .. }))
                if stream == rider.append.stream.as_str() =>
            {
                riders.repository.catch_up(riders.id).await?;
                return Ok(None);
            }
            Err(other) => return Err(other.into()),
        };
        let rode = match carried.joined {
            Some(outcome) => riders.repository.adopt(riders.id, rider, &outcome).await?,
            None => riders.repository.unchanged(riders.id).await?,
        };
        Ok(Some((carried, rode)))
    }
}
