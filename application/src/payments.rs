//! Payment providers behind one trait, and the built-in deterministic simulator.
//!
//! Real gateways (Stripe, Adyen, Braintree) take an idempotency key with every call; Ordo
//! passes the order id, so however often a call is retried (after a timeout, after a restart)
//! the provider authorizes the order at most once. The simulator honours the same contract
//! and, like the gateways' test modes, decides by test token:
//!
//! | token | outcome |
//! | --- | --- |
//! | `tok_declined` | declined ("card declined") |
//! | `tok_transient` | fails transiently twice per order, then approves |
//! | `tok_slow` | approves after 2 seconds |
//! | `tok_hang` | never answers (the caller's timeout declines it) |
//! | any other `tok_...` (e.g. `tok_visa`) | approves |
//! | anything else | declined ("unknown test token") |

use ordo_domain::{Money, OrderId};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

/// Why an authorization did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// The provider refused; final.
    #[error("declined: {0}")]
    Declined(String),
    /// The provider could not answer now; the same call may be retried.
    #[error("temporarily unavailable: {0}")]
    Transient(String),
}

/// A payment provider.
pub trait PaymentGateway: Send + Sync + 'static {
    /// Authorizes `amount` on `token` for `order_id` (also the idempotency key); returns the
    /// provider's reference.
    fn authorize(
        &self,
        order_id: &OrderId,
        amount: Money,
        token: &str,
    ) -> impl Future<Output = Result<String, GatewayError>> + Send;

    /// Releases an authorization (idempotent).
    fn void(&self, order_id: &OrderId) -> impl Future<Output = Result<(), GatewayError>> + Send;

    /// Refunds part of a captured amount; `refund_id` keys the refund (idempotent).
    fn refund(
        &self,
        order_id: &OrderId,
        refund_id: &str,
        amount: Money,
    ) -> impl Future<Output = Result<(), GatewayError>> + Send;
}

/// The built-in deterministic provider (see the module documentation).
#[derive(Default)]
pub struct Simulator {
    state: Mutex<SimulatorState>,
}

#[derive(Default)]
struct SimulatorState {
    /// Order -> provider reference of its one authorization.
    authorized: HashMap<String, String>,
    /// Order -> failed attempts so far (`tok_transient`).
    attempts: HashMap<String, u32>,
    voided: HashMap<String, ()>,
    refunds: HashMap<String, Money>,
}

impl Simulator {
    /// Authorizations made so far (one per order, however often it was asked).
    pub fn authorizations(&self) -> usize {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).authorized.len()
    }
}

impl PaymentGateway for Simulator {
    async fn authorize(
        &self,
        order_id: &OrderId,
        _amount: Money,
        token: &str,
    ) -> Result<String, GatewayError> {
        match token {
            "tok_hang" => {
                tokio::time::sleep(Duration::from_secs(24 * 60 * 60)).await;
                return Err(GatewayError::Transient("no answer".into()));
            }
            "tok_slow" => tokio::time::sleep(Duration::from_secs(2)).await,
            _ => {}
        }
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(reference) = state.authorized.get(order_id.as_str()) {
            return Ok(reference.clone());
        }
        match token {
            "tok_declined" => Err(GatewayError::Declined("card declined".into())),
            "tok_transient" => {
                let attempts = state.attempts.entry(order_id.to_string()).or_default();
                *attempts += 1;
                if *attempts <= 2 {
                    return Err(GatewayError::Transient(format!("attempt {attempts} timed out")));
                }
                let reference = format!("sim_{order_id}");
                state.authorized.insert(order_id.to_string(), reference.clone());
                Ok(reference)
            }
            t if t.starts_with("tok_") => {
                let reference = format!("sim_{order_id}");
                state.authorized.insert(order_id.to_string(), reference.clone());
                Ok(reference)
            }
            _ => Err(GatewayError::Declined("unknown test token".into())),
        }
    }

    async fn void(&self, order_id: &OrderId) -> Result<(), GatewayError> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .voided
            .insert(order_id.to_string(), ());
        Ok(())
    }

    async fn refund(
        &self,
        _order_id: &OrderId,
        refund_id: &str,
        amount: Money,
    ) -> Result<(), GatewayError> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .refunds
            .insert(refund_id.into(), amount);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ordo_domain::Currency;

    fn order(id: &str) -> OrderId {
        OrderId::parse(id).expect("valid")
    }

    #[tokio::test]
    async fn one_authorization_per_order_however_often_it_is_asked() {
        let sim = Simulator::default();
        let amount = Money::new(100, Currency::EUR);
        let first = sim.authorize(&order("o-1"), amount, "tok_visa").await;
        let again = sim.authorize(&order("o-1"), amount, "tok_visa").await;
        assert_eq!(first, again);
        assert_eq!(sim.authorizations(), 1);
    }

    #[tokio::test]
    async fn test_tokens_decline_or_fail_transiently_then_approve() {
        let sim = Simulator::default();
        let amount = Money::new(100, Currency::EUR);
        assert!(matches!(
            sim.authorize(&order("o-1"), amount, "tok_declined").await,
            Err(GatewayError::Declined(_))
        ));
        for _ in 0..2 {
            assert!(matches!(
                sim.authorize(&order("o-2"), amount, "tok_transient").await,
                Err(GatewayError::Transient(_))
            ));
        }
        assert!(sim.authorize(&order("o-2"), amount, "tok_transient").await.is_ok());
        assert!(sim.authorize(&order("o-3"), amount, "4111111111111111").await.is_err());
    }
}
