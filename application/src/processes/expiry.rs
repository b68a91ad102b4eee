//! Cart expiry: a timer over the due times the checkout process keeps from the log.

use super::Processes;
use crate::ids::name_uuid;
use crate::leases::Lease;
use crate::payments::PaymentGateway;
use ordo_domain::cart::{CartCommand, ExpireCart};
use ordo_domain::CartId;
use ordo_eventstore::clock::now;
use ordo_eventstore::command::{CommandContext, CommandError};
use ordo_eventstore::EventStore;
use std::sync::Arc;
use tokio::sync::watch;

impl<S: EventStore, G: PaymentGateway> Processes<S, G> {
    /// Sends `ExpireCart` to every cart whose due time has passed, while `lease` holds.
    pub(super) async fn expire_due_carts(
        self: Arc<Self>,
        lease: Lease,
        mut stopping: watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(self.config.expiry_tick);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stopping.wait_for(|stop| *stop) => return,
            }
            let at = now();
            let due: Vec<(String, i64)> = {
                let open = self.due.lock().unwrap_or_else(|p| p.into_inner());
                open.iter().filter(|(_, t)| **t <= at.0).map(|(c, t)| (c.clone(), *t)).collect()
            };
            for (cart, due_at) in due {
                if !lease.is_held() {
                    return;
                }
                let Ok(cart_id) = CartId::parse(cart.clone()) else { continue };
                let context = CommandContext {
                    idempotency_key: Some(name_uuid(&format!("expire:{cart_id}:{due_at}"))),
                    ..CommandContext::default()
                };
                let command = CartCommand::Expire(ExpireCart { now: at });
                match self.shop.carts().execute(cart_id.as_str(), &command, &context).await {
                    // The log will confirm (CartExpired, or a later change that moved the due
                    // time); until then, do not send it again.
                    Ok(receipt) => {
                        if !receipt.events.is_empty() {
                            metrics::counter!("ordo_cart_expirations_total").increment(1);
                        }
                        self.forget_due(&cart, due_at);
                    }
                    Err(CommandError::Domain(_)) => self.forget_due(&cart, due_at),
                    Err(e) => {
                        tracing::warn!(%cart_id, error = %e, "expiring a cart failed; retrying")
                    }
                }
            }
        }
    }

    /// Stops sending `ExpireCart` for this due time (the log will confirm the expiry, or a later
    /// change moved it).
    fn forget_due(&self, cart: &str, due_at: i64) {
        let mut open = self.due.lock().unwrap_or_else(|p| p.into_inner());
        if open.get(cart) == Some(&due_at) {
            open.remove(cart);
        }
    }
}
