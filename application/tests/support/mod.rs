//! Given/when/then over the application layer, in process: an embedded store in a temporary
//! directory, the real `Shop`, no HTTP and no Redis.
//!
//! `given` appends events to streams as if earlier commands had written them; a use case runs;
//! `then` lists, per stream, the types of the events the use case appended.

#![allow(dead_code, reason = "each test file uses part of the harness")]

use ordo_application::{Caller, Request, Role, Shop, ShopConfig};
use ordo_domain::cart::{CartEvent, CartOpened, ItemQuantitySet};
use ordo_domain::product::{
    ProductEvent, ProductListed, ReservationReleased, StockReceived, StockReserved,
};
use ordo_domain::{CartId, Currency, CustomerId, Money, ReservationId, Sku};
use ordo_eventstore::clock::now;
use ordo_eventstore::codec::AnyEvent;
use ordo_eventstore::embedded::EmbeddedSubscription;
use ordo_eventstore::{
    AppendOutcome, Direction, EmbeddedConfig, EmbeddedStore, EventFilter, EventMetadata,
    EventStore, ExpectedVersion, NewEvent, Position, RecordedEvent, StoreError, StreamName,
    SubscribeFrom,
};
use std::collections::HashMap;
use std::sync::Arc;

pub mod rendezvous;

/// A shop over a fresh embedded store (`S`: the store as the shop sees it).
pub struct Shopfront<S = EmbeddedStore> {
    _dir: tempfile::TempDir,
    /// The store, for `given` and `then`.
    pub store: Arc<EmbeddedStore>,
    /// The application layer under test.
    pub shop: Arc<Shop<S>>,
    /// Each stream's length when the `when` began.
    before: HashMap<String, usize>,
}

fn fresh_store() -> (tempfile::TempDir, Arc<EmbeddedStore>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = EmbeddedConfig::new(dir.path().join("events.redb"));
    (dir, Arc::new(EmbeddedStore::open(config).expect("store")))
}

impl Shopfront {
    /// An empty shop.
    pub fn new() -> Self {
        let (dir, store) = fresh_store();
        let shop = Arc::new(Shop::new(store.clone(), ShopConfig::default()));
        Self { _dir: dir, store, shop, before: HashMap::new() }
    }
}

impl Shopfront<OneStreamPerCommit> {
    /// An empty shop on a store that commits one stream at a time, as KurrentDB does.
    pub fn one_stream_per_commit() -> Self {
        Shopfront::seeing(OneStreamPerCommit::new)
    }
}

impl<S: EventStore> Shopfront<S> {
    /// An empty shop that sees the embedded store through `seen` (`given` and `then` do not).
    pub fn seeing(seen: impl FnOnce(Arc<EmbeddedStore>) -> S) -> Self {
        let (dir, store) = fresh_store();
        let shop = Arc::new(Shop::new(Arc::new(seen(store.clone())), ShopConfig::default()));
        Self { _dir: dir, store, shop, before: HashMap::new() }
    }
}

impl<S: EventStore> Shopfront<S> {
    /// Appends `events` to `stream` as earlier commands would have.
    pub async fn given(self, stream: &str, events: Vec<AnyEvent>) -> Self {
        self.append(stream, events).await;
        self
    }

    /// Appends behind the shop's back (another instance, a concurrent request).
    pub async fn append(&self, stream: &str, events: Vec<AnyEvent>) {
        let new = events
            .iter()
            .map(|e| {
                let id = uuid::Uuid::now_v7();
                e.encode().expect("encodes").into_new_event(id, EventMetadata::default())
            })
            .collect();
        let name = StreamName::new(stream).expect("stream");
        self.store.append(&name, ExpectedVersion::Any, new).await.expect("appended");
    }

    /// Remembers the streams' lengths: `then` reports what came after.
    pub async fn when_starts(&mut self, streams: &[&str]) {
        for stream in streams {
            let len = self.events(stream).await.len();
            self.before.insert((*stream).to_owned(), len);
        }
    }

    /// The types of `stream`'s events, in order.
    pub async fn events(&self, stream: &str) -> Vec<String> {
        let name = StreamName::new(stream).expect("stream");
        let recorded =
            self.store.read_stream(&name, 0, Direction::Forward, 10_000).await.expect("read");
        recorded.iter().map(|e| e.event_type.clone()).collect()
    }

    /// The last event of `stream`.
    pub async fn last(&self, stream: &str) -> RecordedEvent {
        let name = StreamName::new(stream).expect("stream");
        let mut last =
            self.store.read_stream(&name, u64::MAX, Direction::Backward, 1).await.expect("read");
        last.pop().expect("the stream has events")
    }

    /// Asserts, per stream, the types of the events appended since `when_starts`.
    pub async fn then(&self, expected: &[(&str, &[&str])]) {
        for (stream, types) in expected {
            let all = self.events(stream).await;
            let from = self.before.get(*stream).copied().unwrap_or(0);
            let new: Vec<&str> = all[from.min(all.len())..].iter().map(String::as_str).collect();
            assert_eq!(&new, types, "events appended to {stream}");
        }
    }
}

/// The product's and the cart's streams.
pub const PRODUCT: &str = "product-MUG-1";
/// The shopper's cart's stream.
pub const CART: &str = "cart-cart-1";

/// Ten mugs on the shelf, two of them in the shopper's cart (held for it).
pub async fn two_mugs_in_the_cart() -> Shopfront {
    with_two_mugs_in_the_cart(Shopfront::new()).await
}

/// `front` with ten mugs on the shelf, two of them in the shopper's cart.
pub async fn with_two_mugs_in_the_cart<S: EventStore>(front: Shopfront<S>) -> Shopfront<S> {
    front
        .given(PRODUCT, stocked_mug(10))
        .await
        .given(PRODUCT, vec![held_for_cart(2)])
        .await
        .given(CART, open_cart(2))
        .await
}

/// A shipping address.
pub fn address() -> ordo_domain::order::Address {
    ordo_domain::order::Address {
        name: "Ada Lovelace".into(),
        line1: "1 Main St".into(),
        line2: String::new(),
        city: "Berlin".into(),
        postal_code: "10115".into(),
        country: "DE".into(),
    }
}

/// The shopper `cus-1`'s request, with an idempotency key if given.
pub fn shopper(key: Option<u128>) -> Request {
    Request {
        caller: Caller { subject: "cus-1".into(), role: Role::Customer },
        idempotency_key: key.map(uuid::Uuid::from_u128),
        correlation_id: None,
    }
}

/// Another shopper's request.
pub fn stranger() -> Request {
    Request {
        caller: Caller { subject: "cus-2".into(), role: Role::Customer },
        idempotency_key: None,
        correlation_id: None,
    }
}

/// The mug's SKU.
pub fn mug() -> Sku {
    Sku::parse("MUG-1").expect("sku")
}

/// The shopper's cart.
pub fn cart_id() -> CartId {
    CartId::parse("cart-1").expect("cart")
}

/// The stream of the order the shopper's cart checks out into.
pub fn order_stream() -> String {
    format!("order-{}", ordo_application::ids::order_id_for(&cart_id()))
}

/// A listed mug at 12.50 EUR with `stock` units on hand.
pub fn stocked_mug(stock: u32) -> Vec<AnyEvent> {
    stocked(mug(), stock)
}

/// A listed product `sku` at 12.50 EUR with `stock` units on hand.
pub fn stocked(sku: Sku, stock: u32) -> Vec<AnyEvent> {
    let at = now();
    vec![
        AnyEvent::Product(ProductEvent::Listed(ProductListed {
            sku,
            name: "Stoneware mug".into(),
            description: String::new(),
            category: "kitchen".into(),
            brand: "Potter".into(),
            price: Money::new(1_250, Currency::EUR),
            image_urls: vec![],
            at,
        })),
        AnyEvent::Product(ProductEvent::StockReceived(StockReceived { quantity: stock, at })),
    ]
}

/// `quantity` mugs held for the cart.
pub fn held_for_cart(quantity: u32) -> AnyEvent {
    AnyEvent::Product(ProductEvent::StockReserved(StockReserved {
        reservation_id: ReservationId::from(&cart_id()),
        quantity,
        expires_at: now().plus_millis(900_000),
        at: now(),
    }))
}

/// The cart's hold of two mugs released (it lapsed and was cleaned up).
pub fn hold_released() -> AnyEvent {
    AnyEvent::Product(ProductEvent::ReservationReleased(ReservationReleased {
        reservation_id: ReservationId::from(&cart_id()),
        quantity: 2,
        at: now(),
    }))
}

/// The shopper's open cart, with `mugs` mugs in it (none if 0).
pub fn open_cart(mugs: u32) -> Vec<AnyEvent> {
    let at = now();
    let mut events = vec![AnyEvent::Cart(CartEvent::Opened(CartOpened {
        cart_id: cart_id(),
        customer_id: CustomerId::parse("cus-1").expect("customer"),
        ttl_ms: 900_000,
        expires_at: at.plus_millis(900_000),
        at,
    }))];
    if mugs > 0 {
        events.push(AnyEvent::Cart(CartEvent::ItemQuantitySet(ItemQuantitySet {
            sku: mug(),
            quantity: mugs,
            unit_price: Money::new(1_250, Currency::EUR),
            expires_at: at.plus_millis(900_000),
            at,
        })));
    }
    events
}

/// The embedded store, seen as a backend that cannot append to several streams in one commit
/// (KurrentDB through its client): what the use cases do there is run here too. Each append
/// first waits for `before`, a test's hook (none by default).
pub struct OneStreamPerCommit<B = ()> {
    store: Arc<EmbeddedStore>,
    /// The hook each append waits for.
    pub before: B,
}

impl OneStreamPerCommit {
    /// `store`, one stream per commit.
    pub fn new(store: Arc<EmbeddedStore>) -> Self {
        Self { store, before: () }
    }
}

impl<B> OneStreamPerCommit<B> {
    /// `store`, one stream per commit, each append waiting for `before` first.
    pub fn with(store: Arc<EmbeddedStore>, before: B) -> Self {
        Self { store, before }
    }
}

/// What a test does before an append reaches the store.
pub trait BeforeAppend: Send + Sync + 'static {
    /// Runs before `events` are appended.
    fn before(&self, events: &[NewEvent]) -> impl std::future::Future<Output = ()> + Send;
}

impl BeforeAppend for () {
    async fn before(&self, _: &[NewEvent]) {}
}

impl<B: BeforeAppend> EventStore for OneStreamPerCommit<B> {
    type Subscription = EmbeddedSubscription;

    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        self.before.before(&events).await;
        self.store.append(stream, expected, events).await
    }

    async fn read_stream(
        &self,
        stream: &StreamName,
        from: u64,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.store.read_stream(stream, from, direction, limit).await
    }

    async fn read_all(
        &self,
        from: SubscribeFrom,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.store.read_all(from, limit).await
    }

    async fn last_position(&self) -> Result<Option<Position>, StoreError> {
        self.store.last_position().await
    }

    async fn stream_version(&self, stream: &StreamName) -> Result<Option<u64>, StoreError> {
        self.store.stream_version(stream).await
    }

    async fn subscribe_all(
        &self,
        from: SubscribeFrom,
        filter: EventFilter,
    ) -> Result<EmbeddedSubscription, StoreError> {
        self.store.subscribe_all(from, filter).await
    }
}
