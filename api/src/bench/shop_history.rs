//! The shop history `ordo bench projections` generates: a catalogue, then shoppers' visits
//! (a cart, holds, an order through confirmation and sometimes shipment, delivery or
//! cancellation, stock committed), written straight to the embedded store as the domain's
//! events. Deterministic: the same seeds generate the same shop.

use ordo_domain::cart::{self, CartEvent};
use ordo_domain::order::{self, Address, OrderEvent, OrderLine};
use ordo_domain::product::{self, ProductEvent};
use ordo_domain::{CartId, Currency, CustomerId, Money, OrderId, ReservationId, Sku, Timestamp};
use ordo_eventstore::codec::DomainEvent;
use ordo_eventstore::*;

pub(super) const ADJECTIVES: [&str; 10] = [
    "Stoneware",
    "Enamel",
    "Copper",
    "Bamboo",
    "Linen",
    "Cast-iron",
    "Ceramic",
    "Glass",
    "Oak",
    "Steel",
];
pub(super) const NOUNS: [&str; 12] = [
    "Mug", "Teapot", "Kettle", "Lamp", "Tent", "Pan", "Bowl", "Knife", "Blanket", "Chair",
    "Bottle", "Jar",
];
pub(super) const CATEGORIES: [&str; 5] = ["kitchen", "outdoor", "home", "garden", "bath"];
pub(super) const BRANDS: [&str; 8] =
    ["Potter", "Trailhead", "Steelworks", "Brightly", "Northwood", "Hearth", "Kiln", "Tidewater"];

/// A small deterministic generator: the same run generates the same shop.
pub(super) struct Lcg(pub(super) u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 =
            self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::EUR)
}

/// Appends domain events to the stream of aggregate `id`.
async fn append<E: DomainEvent>(
    store: &EmbeddedStore,
    id: &str,
    expected: ExpectedVersion,
    events: &[E],
) -> anyhow::Result<()> {
    store
        .append(&StreamName::for_aggregate(E::CATEGORY, id)?, expected, new_events(events)?)
        .await?;
    Ok(())
}

fn new_events<E: DomainEvent>(events: &[E]) -> anyhow::Result<Vec<NewEvent>> {
    events
        .iter()
        .map(|e| Ok(e.encode()?.into_new_event(uuid::Uuid::now_v7(), EventMetadata::default())))
        .collect()
}

pub(super) struct Catalogue {
    skus: Vec<Sku>,
    prices: Vec<i64>,
    names: Vec<String>,
}

pub(super) async fn list_catalogue(
    store: &EmbeddedStore,
    products: usize,
    rng: &mut Lcg,
) -> anyhow::Result<(Catalogue, u64)> {
    let mut catalogue = Catalogue { skus: Vec::new(), prices: Vec::new(), names: Vec::new() };
    for i in 0..products {
        let name = format!("{} {} {}", ADJECTIVES[i % 10], NOUNS[(i / 10) % 12], 100 + i);
        let brand = BRANDS[rng.below(8) as usize];
        let price = 500 + rng.below(20_000) as i64;
        let sku = Sku::parse(format!("SKU-{i:06}"))?;
        let events = [
            ProductEvent::Listed(product::ProductListed {
                sku: sku.clone(),
                name: name.clone(),
                description: format!(
                    "{name} by {brand}: made to last, easy to clean, a favourite gift."
                ),
                category: CATEGORIES[rng.below(5) as usize].into(),
                brand: brand.into(),
                price: eur(price),
                image_urls: vec![format!("https://img.example/{sku}.jpg")],
                at: Timestamp(0),
            }),
            ProductEvent::StockReceived(product::StockReceived {
                quantity: 100_000,
                at: Timestamp(0),
            }),
        ];
        append(store, sku.as_str(), ExpectedVersion::NoStream, &events).await?;
        catalogue.skus.push(sku);
        catalogue.prices.push(price);
        catalogue.names.push(name);
    }
    Ok((catalogue, products as u64 * 2))
}

/// One shopper's visit: a cart, reservations, an order through confirmation (and sometimes
/// shipment, delivery or cancellation), stock committed. Returns events written.
pub(super) async fn session(
    store: &EmbeddedStore,
    catalogue: &Catalogue,
    customers: u64,
    n: u64,
    rng: &mut Lcg,
) -> anyhow::Result<u64> {
    let at = Timestamp(1_767_225_600_000 + n as i64 * 1_000);
    let customer = CustomerId::parse(format!("cus-{}", rng.below(customers)))?;
    let cart_id = CartId::parse(format!("cart-{n}"))?;
    let order_id = OrderId::parse(format!("ord-{n}"))?;
    let reservation = ReservationId::from(&cart_id);
    let picks: Vec<usize> = {
        let mut p: Vec<usize> = (0..1 + rng.below(3))
            .map(|_| rng.below(catalogue.skus.len() as u64) as usize)
            .collect();
        p.sort_unstable();
        p.dedup();
        p
    };
    let mut cart_events = vec![CartEvent::Opened(cart::CartOpened {
        cart_id: cart_id.clone(),
        customer_id: customer.clone(),
        ttl_ms: 900_000,
        expires_at: at.plus_millis(900_000),
        at,
    })];
    let mut lines = Vec::new();
    for &i in &picks {
        let quantity = 1 + rng.below(3) as u32;
        cart_events.push(CartEvent::ItemQuantitySet(cart::ItemQuantitySet {
            sku: catalogue.skus[i].clone(),
            quantity,
            unit_price: eur(catalogue.prices[i]),
            expires_at: at.plus_millis(900_000),
            at,
        }));
        lines.push(OrderLine {
            sku: catalogue.skus[i].clone(),
            name: catalogue.names[i].clone(),
            quantity,
            unit_price: eur(catalogue.prices[i]),
            line_total: eur(catalogue.prices[i] * i64::from(quantity)),
        });
    }
    cart_events
        .push(CartEvent::CheckedOut(cart::CartCheckedOut { order_id: order_id.clone(), at }));
    let mut written = cart_events.len() as u64;
    append(store, cart_id.as_str(), ExpectedVersion::NoStream, &cart_events).await?;
    for line in &lines {
        let reserve = [ProductEvent::StockReserved(product::StockReserved {
            reservation_id: reservation.clone(),
            quantity: line.quantity,
            expires_at: at.plus_millis(900_000),
            at,
        })];
        append(store, line.sku.as_str(), ExpectedVersion::Any, &reserve).await?;
        written += 1;
    }
    let total = eur(lines.iter().map(|l| l.line_total.minor).sum());
    let mut order_events = vec![
        OrderEvent::Placed(order::OrderPlaced {
            order_id: order_id.clone(),
            customer_id: customer,
            reservation_id: reservation.clone(),
            lines: lines.clone(),
            total,
            shipping_address: Address {
                name: "Customer".into(),
                line1: format!("{} Market St", n % 500),
                line2: String::new(),
                city: "Lyon".into(),
                postal_code: "69001".into(),
                country: "FR".into(),
            },
            payment_token: "tok_approve".into(),
            placed_at: at,
        }),
        OrderEvent::PaymentAuthorized(order::OrderPaymentAuthorized { amount: total, at }),
        OrderEvent::Confirmed(order::OrderConfirmed { at }),
    ];
    match rng.below(10) {
        0..=3 => order_events.push(OrderEvent::Shipped(order::OrderShipped {
            carrier: "DHL".into(),
            tracking: format!("JD{n}"),
            at,
        })),
        4..=5 => {
            order_events.push(OrderEvent::Shipped(order::OrderShipped {
                carrier: "UPS".into(),
                tracking: format!("1Z{n}"),
                at,
            }));
            order_events.push(OrderEvent::Delivered(order::OrderDelivered { at }));
        }
        6 => order_events.push(OrderEvent::Cancelled(order::OrderCancelled {
            reason: "changed mind".into(),
            by: order::Actor::System,
            at,
        })),
        _ => {}
    }
    written += order_events.len() as u64;
    append(store, order_id.as_str(), ExpectedVersion::NoStream, &order_events).await?;
    for line in &lines {
        let commit = [ProductEvent::ReservationCommitted(product::ReservationCommitted {
            reservation_id: reservation.clone(),
            quantity: line.quantity,
            at,
        })];
        append(store, line.sku.as_str(), ExpectedVersion::Any, &commit).await?;
        written += 1;
    }
    Ok(written)
}
