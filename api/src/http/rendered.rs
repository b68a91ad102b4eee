//! Response bodies the read side rendered already: the order and product documents the
//! projections store ([`ordo_projections::views::order_document_key`], the catalogue's
//! documents), sent as they are stored.
//!
//! poem-openapi renders a typed body by building a `serde_json::Value` tree and serializing that;
//! for a page of orders or products that was the larger part of the request's cost.
//! [`Body::Rendered`] skips both steps and is still documented with the typed body's schema, so
//! the API document does not change. That the stored documents match the schema is this module's
//! tests' job.

use super::dto::{OrderPageDto, SearchPageDto};
use ordo_projections::query::{Documents, HistoryPage, SearchPage};
use poem::http::header::CONTENT_TYPE;
use poem::{IntoResponse, Response};
use poem_openapi::payload::{Json, Payload};
use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::{ToJSON, Type};
use std::marker::PhantomData;

/// A JSON body: a value poem-openapi renders, or JSON rendered before, in `T`'s schema.
pub enum Body<T> {
    /// Rendered on the way out.
    Value(T),
    /// Rendered already; sent as it is.
    Rendered(String, PhantomData<T>),
}

impl<T> Body<T> {
    /// JSON rendered already, in `T`'s schema.
    pub fn rendered(json: String) -> Self {
        Body::Rendered(json, PhantomData)
    }
}

impl<T: Type> Payload for Body<T> {
    const CONTENT_TYPE: &'static str = Json::<T>::CONTENT_TYPE;

    fn check_content_type(content_type: &str) -> bool {
        Json::<T>::check_content_type(content_type)
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: ToJSON> IntoResponse for Body<T> {
    fn into_response(self) -> Response {
        match self {
            Body::Value(value) => Json(value).into_response(),
            Body::Rendered(json, _) => {
                Response::builder().header(CONTENT_TYPE, Self::CONTENT_TYPE).body(json)
            }
        }
    }
}

/// A history page of rendered orders as the `OrderPage` schema: `{"orders":[...]}` plus
/// `next_cursor` when there is a next page.
pub fn order_page(page: HistoryPage<String>) -> Body<OrderPageDto> {
    let mut json = String::from("{");
    push_array(&mut json, "orders", &page.orders);
    push_cursor(&mut json, page.next_cursor);
    json.push('}');
    Body::rendered(json)
}

/// A search page of rendered products as the `SearchPage` schema.
pub fn search_page(page: SearchPage<Documents>) -> Body<SearchPageDto> {
    use std::fmt::Write;
    let (total, exact) = (page.total, page.total_is_exact);
    let mut json = String::with_capacity(page.products.joined.len() + 96);
    let _ = write!(json, "{{\"total\":{total},\"total_is_exact\":{exact},\"products\":[");
    json.push_str(&page.products.joined);
    json.push(']');
    push_cursor(&mut json, page.next_cursor);
    json.push('}');
    Body::rendered(json)
}

/// `"name":[documents...]`.
fn push_array(json: &mut String, name: &str, documents: &[String]) {
    json.reserve(documents.iter().map(|d| d.len() + 1).sum::<usize>() + name.len() + 8);
    json.push('"');
    json.push_str(name);
    json.push_str("\":[");
    for (i, document) in documents.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push_str(document);
    }
    json.push(']');
}

/// `,"next_cursor":"..."` when there is a next page.
fn push_cursor(json: &mut String, cursor: Option<String>) {
    if let Some(cursor) = cursor {
        json.push_str(",\"next_cursor\":");
        json.push_str(&serde_json::Value::String(cursor).to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::dto::{OrderDto, ProductDto};
    use ordo_domain::order::Address;
    use ordo_projections::views::{OrderLineView, OrderView, ProductListing, ProductView};
    use serde_json::Value;

    fn placed() -> OrderView {
        OrderView {
            order_id: "ord-1".into(),
            customer_id: "cus-1".into(),
            status: "placed".into(),
            payment_status: "pending".into(),
            lines: vec![OrderLineView {
                sku: "MUG-1".into(),
                name: "Mug \"Big\" \u{2615}".into(),
                quantity: 2,
                unit_price_minor: 1250,
                line_total_minor: 2500,
            }],
            total_minor: 2500,
            refunded_minor: 0,
            currency: "EUR".into(),
            address: Address {
                name: "Ada".into(),
                line1: "1 Main St".into(),
                line2: String::new(),
                city: "Lyon".into(),
                postal_code: "69001".into(),
                country: "FR".into(),
            },
            placed_at: 1_763_800_000_123,
            confirmed_at: None,
            shipped_at: None,
            delivered_at: None,
            cancelled_at: None,
            cancel_reason: String::new(),
            cancelled_by: String::new(),
            carrier: String::new(),
            tracking: String::new(),
            version: 1,
        }
    }

    fn every_field() -> OrderView {
        OrderView {
            status: "cancelled".into(),
            payment_status: "refunded".into(),
            refunded_minor: 2500,
            confirmed_at: Some(1_763_800_001_000),
            shipped_at: Some(1_763_800_002_000),
            delivered_at: Some(1_763_800_003_000),
            cancelled_at: Some(1_763_800_004_000),
            cancel_reason: "changed mind".into(),
            cancelled_by: "customer".into(),
            carrier: "DHL".into(),
            tracking: "JD0001".into(),
            version: 7,
            ..placed()
        }
    }

    fn as_the_api_renders(views: &[OrderView], next_cursor: Option<&str>) -> Value {
        let dto = OrderPageDto {
            orders: views.iter().cloned().map(OrderDto::from).collect(),
            next_cursor: next_cursor.map(str::to_owned),
        };
        dto.to_json().expect("a page renders")
    }

    fn sent(body: Body<OrderPageDto>) -> Value {
        let Body::Rendered(json, _) = body else { panic!("a rendered page") };
        serde_json::from_str(&json).expect("the page is JSON")
    }

    #[test]
    fn given_orders_with_and_without_optional_fields_when_rendered_then_each_document_is_the_dtos_json(
    ) {
        for view in [placed(), every_field()] {
            let document: Value = serde_json::from_str(&view.document()).expect("JSON");
            let dto = OrderDto::from(view).to_json().expect("renders");
            assert_eq!(document, dto);
        }
    }

    #[test]
    fn given_a_page_with_a_next_page_when_rendered_then_it_is_the_page_dtos_json() {
        let views = [every_field(), placed()];
        let page = HistoryPage {
            orders: views.iter().map(OrderView::document).collect(),
            next_cursor: Some("1763800000123:ord-\"1".into()),
        };
        assert_eq!(
            sent(order_page(page)),
            as_the_api_renders(&views, Some("1763800000123:ord-\"1"))
        );
    }

    #[test]
    fn given_the_last_or_an_empty_page_when_rendered_then_it_has_no_cursor() {
        let last = HistoryPage { orders: vec![placed().document()], next_cursor: None };
        assert_eq!(sent(order_page(last)), as_the_api_renders(&[placed()], None));
        let empty = HistoryPage { orders: Vec::new(), next_cursor: None };
        assert_eq!(sent(order_page(empty)), as_the_api_renders(&[], None));
    }

    fn mug() -> ProductView {
        ProductView {
            sku: "MUG-1".into(),
            name: "Mug \"Big\"".into(),
            description: "Holds tea \u{2615}".into(),
            category: "kitchen".into(),
            brand: "Oak".into(),
            price_minor: 1250,
            currency: "EUR".into(),
            image_urls: vec!["https://img.example/mug.png".into()],
            on_hand: 10,
            holds: [("res-1".to_owned(), 3)].into(),
            listed: true,
            version: 4,
            terms: Default::default(),
        }
    }

    fn listing(view: &ProductView) -> ProductListing {
        ProductListing {
            sku: view.sku.clone(),
            name: view.name.clone(),
            description: view.description.clone(),
            category: view.category.clone(),
            brand: view.brand.clone(),
            price_minor: view.price_minor,
            currency: view.currency.clone(),
            image_urls: view.image_urls.clone(),
            available: view.available(),
            listed: view.listed,
        }
    }

    #[test]
    fn given_listed_and_delisted_products_when_rendered_then_each_document_is_the_dtos_json() {
        let delisted = ProductView { listed: false, image_urls: Vec::new(), ..mug() };
        for view in [mug(), delisted] {
            let listing = listing(&view);
            assert_eq!(view.document(), listing.document(), "the view and its listing agree");
            let document: Value = serde_json::from_str(&view.document()).expect("JSON");
            assert_eq!(document, ProductDto::from(listing).to_json().expect("renders"));
        }
    }

    #[test]
    fn given_a_search_page_when_rendered_then_it_is_the_page_dtos_json() {
        for (total_is_exact, next_cursor) in [(true, None), (false, Some("20".to_owned()))] {
            let page = SearchPage {
                total: 200,
                total_is_exact,
                products: Documents::join(&[mug().document(), mug().document()]),
                next_cursor: next_cursor.clone(),
            };
            let dto = SearchPageDto {
                total: 200,
                total_is_exact,
                products: vec![
                    ProductDto::from(listing(&mug())),
                    ProductDto::from(listing(&mug())),
                ],
                next_cursor,
            };
            let Body::Rendered(json, _) = search_page(page) else { panic!("a rendered page") };
            let sent: Value = serde_json::from_str(&json).expect("the page is JSON");
            assert_eq!(sent, dto.to_json().expect("renders"));
        }
    }
}
