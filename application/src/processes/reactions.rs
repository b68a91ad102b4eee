//! Carrying reactions out: each command through the normal command path with ids derived from
//! the event that caused it, payment-provider calls with retries and a timeout, and what a
//! refusal means (the state already moved on: nothing to retry).

use super::{ProcessError, Processes};
use crate::payments::{GatewayError, PaymentGateway};
use ordo_domain::payment::{PaymentCommand, RecordAuthorized, RecordDeclined};
use ordo_domain::process::Reaction;
use ordo_domain::OrderId;
use ordo_eventstore::clock::now;
use ordo_eventstore::command::{derived_id, CommandContext, CommandError};
use ordo_eventstore::{EventStore, RecordedEvent};
use std::collections::BTreeMap;
use std::time::Duration;

impl<S: EventStore, G: PaymentGateway> Processes<S, G> {
    fn context(cause: &RecordedEvent, index: usize) -> CommandContext {
        let mut headers = BTreeMap::new();
        headers.insert("actor".to_owned(), "process".to_owned());
        headers.insert("role".to_owned(), "system".to_owned());
        CommandContext {
            correlation_id: cause.metadata.correlation_id,
            causation_id: Some(cause.id),
            idempotency_key: Some(derived_id(cause.id, index)),
            headers,
        }
    }

    pub(super) async fn react(
        &self,
        reaction: Reaction,
        cause: &RecordedEvent,
        index: usize,
    ) -> Result<(), ProcessError> {
        let context = Self::context(cause, index);
        let outcome = match reaction {
            Reaction::Order { order_id, command } => {
                settle(self.shop.orders().execute(order_id.as_str(), &command, &context).await)
            }
            Reaction::Product { sku, command } => {
                settle(self.shop.products().execute(sku.as_str(), &command, &context).await)
            }
            Reaction::Cart { cart_id, command } => {
                settle(self.shop.carts().execute(cart_id.as_str(), &command, &context).await)
            }
            Reaction::Payment { order_id, command } => {
                let receipt =
                    self.shop.payments().execute(order_id.as_str(), &command, &context).await;
                let changed = matches!(&receipt, Ok(r) if !r.events.is_empty());
                let outcome = settle(receipt);
                if changed {
                    self.tell_provider(&order_id, &command, cause).await;
                }
                outcome
            }
            Reaction::AuthorizeWithProvider { order_id, amount, token } => {
                let command = match self.authorize(&order_id, amount, &token).await {
                    Ok(provider_ref) => PaymentCommand::RecordAuthorized(RecordAuthorized {
                        provider_ref,
                        at: now(),
                    }),
                    Err(reason) => {
                        PaymentCommand::RecordDeclined(RecordDeclined { reason, at: now() })
                    }
                };
                settle(self.shop.payments().execute(order_id.as_str(), &command, &context).await)
            }
        };
        match outcome {
            Outcome::Done => Ok(()),
            Outcome::Refused(reason) => {
                // A rule refused the step: the state already moved on (a repeat after a crash,
                // a hold that lapsed and was cleaned up). Nothing to retry.
                tracing::info!(%reason, cause = %cause.id, "process step refused; skipped");
                Ok(())
            }
            Outcome::Retry(e) => Err(e),
        }
    }

    /// Authorizes with retries on transient failures and a timeout per attempt; the reason
    /// when it does not succeed.
    async fn authorize(
        &self,
        order_id: &OrderId,
        amount: ordo_domain::Money,
        token: &str,
    ) -> Result<String, String> {
        let mut pause = Duration::from_millis(100);
        for attempt in 1..=self.config.payment_attempts {
            let call = self.gateway.authorize(order_id, amount, token);
            match tokio::time::timeout(self.config.payment_timeout, call).await {
                Ok(Ok(reference)) => {
                    metrics::counter!("ordo_payments_total", "outcome" => "authorized")
                        .increment(1);
                    return Ok(reference);
                }
                Ok(Err(GatewayError::Declined(reason))) => {
                    metrics::counter!("ordo_payments_total", "outcome" => "declined").increment(1);
                    return Err(reason);
                }
                Ok(Err(GatewayError::Transient(reason))) => {
                    tracing::info!(%order_id, attempt, %reason, "payment provider failed transiently");
                    metrics::counter!("ordo_payment_attempts_failed_total", "why" => "transient")
                        .increment(1);
                }
                Err(_) => {
                    tracing::info!(%order_id, attempt, "payment provider timed out");
                    metrics::counter!("ordo_payment_attempts_failed_total", "why" => "timeout")
                        .increment(1);
                }
            }
            if attempt < self.config.payment_attempts {
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
        }
        metrics::counter!("ordo_payments_total", "outcome" => "gave_up").increment(1);
        Err(format!(
            "payment provider did not answer after {} attempts",
            self.config.payment_attempts
        ))
    }

    /// Voids and refunds recorded on the payment go to the provider too (keyed, idempotent).
    async fn tell_provider(
        &self,
        order_id: &OrderId,
        command: &PaymentCommand,
        cause: &RecordedEvent,
    ) {
        let result = match command {
            PaymentCommand::Void(_) => self.gateway.void(order_id).await,
            PaymentCommand::Refund(r) => {
                self.gateway.refund(order_id, &cause.id.to_string(), r.amount).await
            }
            _ => Ok(()),
        };
        if let Err(e) = result {
            tracing::error!(%order_id, error = %e, "payment provider refused a void or refund; needs a person");
        }
    }
}

enum Outcome {
    Done,
    Refused(String),
    Retry(ProcessError),
}

fn settle<T, E: std::error::Error + 'static>(result: Result<T, CommandError<E>>) -> Outcome {
    match result {
        Ok(_) => Outcome::Done,
        Err(CommandError::Domain(e)) => Outcome::Refused(e.to_string()),
        Err(CommandError::Conflict { stream, .. }) => {
            Outcome::Retry(ProcessError::Contention(stream))
        }
        Err(CommandError::Store(e)) => Outcome::Retry(e.into()),
        Err(CommandError::Codec(e)) => Outcome::Retry(e.into()),
    }
}
