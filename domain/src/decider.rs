//! The decider pattern: the shape every aggregate in Ordo takes.

/// An aggregate expressed as two pure functions and an initial state.
///
/// Keeping `decide` and `evolve` apart is what makes event sourcing work: `decide` holds every
/// business rule and may refuse a command, while `evolve` only records what already happened and
/// therefore can never fail. Rebuilding an aggregate is `events.fold(initial_state(), evolve)`.
pub trait Decider {
    /// What a caller asks the aggregate to do.
    type Command;
    /// What happened; the only thing that is stored.
    type Event;
    /// What `decide` needs to know, derived entirely from past events.
    type State;
    /// The business rule a refused command broke.
    type Error;

    /// Stream category for this aggregate (`product`, `order`, ...). One stream per instance.
    const CATEGORY: &'static str;

    /// State before the first event.
    fn initial_state() -> Self::State;

    /// Turns a command into the events it causes, or the rule it breaks.
    ///
    /// An empty `Ok` means "nothing to do": the command was already satisfied, which makes retries
    /// of the same command harmless.
    fn decide(
        command: &Self::Command,
        state: &Self::State,
    ) -> Result<Vec<Self::Event>, Self::Error>;

    /// Applies one event. Total by design: the event is a fact, so there is nothing to validate.
    fn evolve(state: Self::State, event: &Self::Event) -> Self::State;

    /// Rebuilds state by folding events in order.
    fn fold<'a, I>(events: I) -> Self::State
    where
        I: IntoIterator<Item = &'a Self::Event>,
        Self::Event: 'a,
    {
        events.into_iter().fold(Self::initial_state(), Self::evolve)
    }
}
