//! A product as the catalogue's queries answer it: the fields a shopper sees, read with one
//! `HMGET` of the product's hash.
//!
//! Queries do not read the whole [`ProductView`](super::ProductView): its `holds` (one entry per
//! cart or order holding stock) grow long on exactly the products a flash sale makes popular,
//! and a search page would carry and parse twenty of them. The hash keeps `available` up to date
//! for this reader.

/// What a product page and a search result show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProductListing {
    /// SKU.
    pub sku: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Category.
    pub category: String,
    /// Brand.
    pub brand: String,
    /// Unit price, minor units.
    pub price_minor: i64,
    /// ISO currency.
    pub currency: String,
    /// Image URLs.
    pub image_urls: Vec<String>,
    /// Units not held by any reservation.
    pub available: i64,
    /// In the catalogue (false once delisted).
    pub listed: bool,
}

impl ProductListing {
    /// The product hash's fields a listing reads, in the order [`Self::from_values`] takes them
    /// (the `HMGET` arguments). They are among `ProductView`'s stored fields.
    pub const FIELDS: [&'static str; 10] = [
        "sku",
        "name",
        "description",
        "category",
        "brand",
        "price_minor",
        "currency",
        "image_urls",
        "available",
        "listed",
    ];

    /// The listing from `HMGET`'s answer for [`Self::FIELDS`]; `None` when the product does not
    /// exist (every value missing) or a value does not parse.
    pub fn from_values(values: Vec<Option<String>>) -> Option<Self> {
        let mut values = values.into_iter();
        let mut next = || values.next().flatten();
        // Struct fields are evaluated in the order written: the order of `FIELDS`.
        Some(Self {
            sku: next()?,
            name: next()?,
            description: next()?,
            category: next()?,
            brand: next()?,
            price_minor: next()?.parse().ok()?,
            currency: next()?,
            image_urls: serde_json::from_str(&next()?).ok()?,
            available: next()?.parse().ok()?,
            listed: next()? == "1",
        })
    }
}
