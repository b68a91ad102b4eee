//! The catalogue's shapes: products, new products, prices, stock and search pages.

use super::super::params::{NonBlank, Sku};
use super::MoneyDto;
use ordo_projections::views::ProductListing;
use poem_openapi::{Enum, Object};

/// A product in the catalogue.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ProductDto {
    /// Stock-keeping unit.
    pub sku: String,
    /// Display name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Category.
    pub category: String,
    /// Brand.
    pub brand: String,
    /// Unit price.
    pub price: MoneyDto,
    /// Image URLs.
    pub image_urls: Vec<String>,
    /// Units that can still be bought (on hand minus held by carts and orders).
    pub available: i64,
    /// Whether the product is in the catalogue.
    pub listed: bool,
}

impl From<ProductListing> for ProductDto {
    fn from(p: ProductListing) -> Self {
        ProductDto {
            sku: p.sku,
            name: p.name,
            description: p.description,
            category: p.category,
            brand: p.brand,
            price: MoneyDto { minor: p.price_minor, currency: p.currency },
            image_urls: p.image_urls,
            available: p.available,
            listed: p.listed,
        }
    }
}

/// A page of search results.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct SearchPageDto {
    /// Matches: exact when `total_is_exact`, otherwise at least this many.
    pub total: u64,
    /// Whether `total` is exact.
    pub total_is_exact: bool,
    /// The products on this page.
    pub products: Vec<ProductDto>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Order of search results.
#[derive(Enum, Clone, Copy)]
#[oai(rename_all = "snake_case")]
pub enum Sort {
    /// Best match first; cheapest first when there are no words.
    Relevance,
    /// Cheapest first.
    PriceAsc,
    /// Dearest first.
    PriceDesc,
}

/// A new product.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct NewProductDto {
    /// Stock-keeping unit: 3 to 32 upper-case letters, digits and `-`, not starting with `-`.
    pub sku: Sku,
    /// Display name.
    #[oai(validator(max_length = 120))]
    pub name: NonBlank,
    /// Description.
    #[oai(default, validator(max_length = 4000))]
    pub description: String,
    /// Category, for filtering.
    #[oai(validator(max_length = 60))]
    pub category: NonBlank,
    /// Brand, for filtering.
    #[oai(validator(max_length = 60))]
    pub brand: NonBlank,
    /// Price in minor units of the shop's currency, at most 10^15 (what a cart may total).
    #[oai(validator(minimum(value = "1"), maximum(value = "1000000000000000")))]
    pub price_minor: i64,
    /// Image URLs (http or https, at most 2048 characters, no spaces).
    #[oai(default, validator(max_items = 10))]
    pub image_urls: Vec<String>,
}

/// A new price.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct PriceDto {
    /// Price in minor units of the shop's currency, at most 10^15 (what a cart may total).
    #[oai(validator(minimum(value = "1"), maximum(value = "1000000000000000")))]
    pub price_minor: i64,
}

/// Received stock.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct StockDto {
    /// Units received.
    #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))]
    pub quantity: u32,
}
