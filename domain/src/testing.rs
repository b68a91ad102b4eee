//! Given/when/then harness for deciders: tests read like the rule they check.
//!
//! ```text
//! Product::given([listed(), received(5)]).when(reserve("cart-1", 6)).then_err(InsufficientStock..)
//! ```

use crate::Decider;
use std::fmt::Debug;

/// Entry point, available on every decider: `Order::given([...])`.
pub trait DeciderTest: Decider + Sized {
    /// Past events the aggregate has already recorded.
    fn given(events: impl IntoIterator<Item = Self::Event>) -> Given<Self> {
        Given { state: Self::fold(&events.into_iter().collect::<Vec<_>>()) }
    }
}

impl<D: Decider> DeciderTest for D {}

/// State rebuilt from the given events.
pub struct Given<D: Decider> {
    state: D::State,
}

impl<D: Decider> Given<D> {
    /// The command under test.
    pub fn when(self, command: D::Command) -> When<D> {
        let outcome = D::decide(&command, &self.state);
        When { state: self.state, outcome }
    }
}

/// Outcome of deciding the command.
pub struct When<D: Decider> {
    state: D::State,
    outcome: Result<Vec<D::Event>, D::Error>,
}

impl<D: Decider> When<D>
where
    D::Event: Debug + PartialEq,
    D::Error: Debug + PartialEq,
{
    /// Asserts the command was accepted with exactly these events, and returns the state after
    /// folding them, for further checks.
    #[track_caller]
    pub fn then(self, expected: impl IntoIterator<Item = D::Event>) -> D::State {
        let expected: Vec<_> = expected.into_iter().collect();
        match self.outcome {
            Ok(events) => {
                assert_eq!(events, expected, "decide produced different events");
                events.iter().fold(self.state, D::evolve)
            }
            Err(error) => panic!("expected events {expected:?}, but the command failed: {error:?}"),
        }
    }

    /// Asserts the command was refused for exactly this reason.
    #[track_caller]
    pub fn then_err(self, expected: D::Error) {
        match self.outcome {
            Ok(events) => panic!("expected error {expected:?}, but got events {events:?}"),
            Err(error) => assert_eq!(error, expected, "command failed for a different reason"),
        }
    }
}
