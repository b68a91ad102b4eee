//! Use cases that span aggregates, decided as pure plans: which command goes to which
//! aggregate, in which order, and what undoes a step if a later one is refused.
//!
//! An aggregate's `decide` sees only its own state, so a rule such as "reserve the stock
//! before the cart records the line, and give it back if the cart refuses" belongs to no
//! single aggregate. It lives here, as a function of the states involved, tested like a
//! decider (given states, when planned, then these commands); the application layer only
//! carries the plan out (load, run each step, undo on refusal).

mod checkout;
mod set_item;
#[cfg(test)]
mod tests;

pub use checkout::{plan_checkout, CheckoutPlan};
pub use set_item::{plan_set_item, LinePlan, SetItemRefused};
