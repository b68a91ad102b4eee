//! The catalogue: search and product pages for anyone, listing and stock for admins.

use super::dto::{NewProductDto, PriceDto, ProductDto, ReceiptDto, SearchPageDto, Sort, StockDto};
use super::params::Sku;
use super::problem::Problem;
use super::rendered::{search_page, Body};
use super::responses::{Command, Created, Public};
use super::state::{run, App, BearerAuth, Tag};
use ordo_application::shop::NewProduct;
use ordo_projections::query::{Reader, DEFAULT_WAIT};
use ordo_projections::query::{SearchQuery, SearchSort, MAX_PAGE};
use ordo_projections::views::{ProductView, View};
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::OpenApi;
use std::sync::Arc;

/// Catalogue endpoints.
pub struct Catalogue(pub Arc<App>);

#[OpenApi]
impl Catalogue {
    /// Search the catalogue: every word must match name, brand or description (the last word
    /// as a prefix, for type-ahead), with optional filters, sorted and paged.
    #[oai(
        path = "/v1/products",
        method = "get",
        tag = "Tag::Catalogue",
        operation_id = "search_products"
    )]
    #[allow(clippy::too_many_arguments, reason = "one parameter per documented query option")]
    async fn search(
        &self,
        /// Free text.
        #[oai(validator(max_length = 200))]
        q: Query<Option<String>>,
        /// Only this category.
        category: Query<Option<String>>,
        /// Only this brand.
        brand: Query<Option<String>>,
        /// Lowest price in minor units, inclusive.
        #[oai(validator(minimum(value = "0")))]
        min_price: Query<Option<i64>>,
        /// Highest price in minor units, inclusive.
        #[oai(validator(minimum(value = "0")))]
        max_price: Query<Option<i64>>,
        /// Only products that can be bought now.
        in_stock: Query<Option<bool>>,
        /// Result order.
        sort: Query<Option<Sort>>,
        /// From a previous page's `next_cursor`.
        cursor: Query<Option<String>>,
        /// Page size.
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
        /// Wait (up to 2 s) until the read side has applied this global position.
        #[oai(validator(minimum(value = "0")))]
        min_position: Query<Option<u64>>,
    ) -> Public<SearchPageDto> {
        if let Err(e) = self.0.check_min_position(min_position.0).await {
            return e.into();
        }
        let query = SearchQuery {
            text: q.0.unwrap_or_default(),
            category: category.0,
            brand: brand.0,
            min_price: min_price.0,
            max_price: max_price.0,
            in_stock: in_stock.0.unwrap_or(false),
            sort: match sort.0.unwrap_or(Sort::Relevance) {
                Sort::Relevance => SearchSort::Relevance,
                Sort::PriceAsc => SearchSort::PriceAsc,
                Sort::PriceDesc => SearchSort::PriceDesc,
            },
            cursor: cursor.0.filter(|c| !c.is_empty()),
            limit: limit.0.map_or(20, |l| l as usize).min(MAX_PAGE),
        };
        let query = &query;
        let search = move |r: Reader| async move { r.search_documents(query).await };
        match self.0.reads.read(ProductView::PROJECTION, min_position.0, DEFAULT_WAIT, search).await
        {
            Ok(page) => Public::Ok(search_page(page)),
            Err(e) => e.into(),
        }
    }

    /// One listed product by SKU (a delisted one is gone from the catalogue: 404; its
    /// history stays in orders and the event log).
    #[oai(
        path = "/v1/products/:sku",
        method = "get",
        tag = "Tag::Catalogue",
        operation_id = "get_product"
    )]
    async fn product(
        &self,
        /// The product's SKU.
        sku: Path<Sku>,
        /// Wait (up to 2 s) until the read side has applied this global position.
        #[oai(validator(minimum(value = "0")))]
        min_position: Query<Option<u64>>,
    ) -> Public<ProductDto> {
        if let Err(e) = self.0.check_min_position(min_position.0).await {
            return e.into();
        }
        let id = &sku.0;
        let product = move |r: Reader| async move { r.product_document(id).await };
        match self
            .0
            .reads
            .read(ProductView::PROJECTION, min_position.0, DEFAULT_WAIT, product)
            .await
        {
            Ok(Some(document)) => Public::Ok(Body::rendered(document)),
            Ok(_) => Public::NotFound(Json(Problem::not_found(format!("no product {}", sku.0)))),
            Err(e) => e.into(),
        }
    }

    /// List a new product (admin). Stock starts at zero; receive stock to sell it.
    #[oai(
        path = "/v1/products",
        method = "post",
        tag = "Tag::Catalogue",
        operation_id = "list_product"
    )]
    async fn list_product(
        &self,
        auth: BearerAuth,
        body: Json<NewProductDto>,
        /// Makes a retry safe: the same key and body answer with the first response.
        #[oai(name = "Idempotency-Key", validator(min_length = 1, max_length = 255))]
        idempotency_key: Header<Option<String>>,
        req: &poem::Request,
    ) -> Created<ReceiptDto> {
        let request = auth.request(idempotency_key.0.as_deref(), req);
        let Json(p) = body;
        let new = NewProduct {
            name: p.name.into(),
            description: p.description,
            category: p.category.into(),
            brand: p.brand.into(),
            price_minor: p.price_minor,
            image_urls: p.image_urls,
        };
        run(&self.0, |shop| shop.list_product(&p.sku, new, &request)).await.into()
    }

    /// Change a product's price (admin). Items already in carts keep their price.
    #[oai(
        path = "/v1/products/:sku/price",
        method = "put",
        tag = "Tag::Catalogue",
        operation_id = "change_price"
    )]
    async fn change_price(
        &self,
        auth: BearerAuth,
        /// The product's SKU.
        sku: Path<Sku>,
        body: Json<PriceDto>,
        req: &poem::Request,
    ) -> Command<ReceiptDto> {
        let request = auth.request(None, req);
        run(&self.0, |shop| shop.change_price(&sku.0, body.0.price_minor, &request)).await.into()
    }

    /// Receive stock into on-hand inventory (admin).
    #[oai(
        path = "/v1/products/:sku/stock",
        method = "post",
        tag = "Tag::Catalogue",
        operation_id = "receive_stock"
    )]
    async fn receive_stock(
        &self,
        auth: BearerAuth,
        /// The product's SKU.
        sku: Path<Sku>,
        body: Json<StockDto>,
        /// Makes a retry safe: the same key and body answer with the first response.
        #[oai(name = "Idempotency-Key", validator(min_length = 1, max_length = 255))]
        idempotency_key: Header<Option<String>>,
        req: &poem::Request,
    ) -> Command<ReceiptDto> {
        let request = auth.request(idempotency_key.0.as_deref(), req);
        run(&self.0, |shop| shop.receive_stock(&sku.0, body.0.quantity, &request)).await.into()
    }

    /// Delist a product (admin): it can no longer be added to carts; history keeps it.
    #[oai(
        path = "/v1/products/:sku",
        method = "delete",
        tag = "Tag::Catalogue",
        operation_id = "delist_product"
    )]
    async fn delist(
        &self,
        auth: BearerAuth,
        /// The product's SKU.
        sku: Path<Sku>,
        req: &poem::Request,
    ) -> Command<ReceiptDto> {
        let request = auth.request(None, req);
        run(&self.0, |shop| shop.delist(&sku.0, &request)).await.into()
    }
}
