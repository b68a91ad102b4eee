//! The catalogue (staff only): list a product, change its price, receive stock, delist it.

use super::{Done, Shop};
use crate::error::AppError;
use crate::request::Request;
use ordo_domain::product::{self, ProductCommand};
use ordo_domain::{Money, Sku};
use ordo_eventstore::clock::now;
use ordo_eventstore::EventStore;

/// A product to list.
#[derive(Clone, Debug)]
pub struct NewProduct {
    /// Display name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Category facet.
    pub category: String,
    /// Brand facet.
    pub brand: String,
    /// Price in minor units of the shop currency.
    pub price_minor: i64,
    /// Image URLs.
    pub image_urls: Vec<String>,
}

impl<S: EventStore> Shop<S> {
    async fn product_command(
        &self,
        sku: &str,
        command: ProductCommand,
        request: &Request,
    ) -> Result<Done, AppError> {
        request.require_admin()?;
        let sku = Sku::parse(sku)?;
        let receipt = self.products.execute(sku.as_str(), &command, &request.context(0)).await?;
        self.done(sku.as_str(), &receipt, &[]).await
    }

    /// Lists a new product.
    pub async fn list_product(
        &self,
        sku: &str,
        p: NewProduct,
        request: &Request,
    ) -> Result<Done, AppError> {
        request.require_admin()?;
        let currency = self.config.currency;
        let command = ProductCommand::List(product::ListProduct {
            sku: Sku::parse(sku)?,
            name: p.name,
            description: p.description,
            category: p.category,
            brand: p.brand,
            price: Money::new(p.price_minor, currency),
            image_urls: p.image_urls,
            store_currency: currency,
            now: now(),
        });
        self.product_command(sku, command, request).await
    }

    /// Changes a product's price. Carts keep the price they were filled at.
    pub async fn change_price(
        &self,
        sku: &str,
        price_minor: i64,
        request: &Request,
    ) -> Result<Done, AppError> {
        let currency = self.config.currency;
        let command = ProductCommand::ChangePrice(product::ChangePrice {
            price: Money::new(price_minor, currency),
            store_currency: currency,
            now: now(),
        });
        self.product_command(sku, command, request).await
    }

    /// Books received units into on-hand stock.
    pub async fn receive_stock(
        &self,
        sku: &str,
        quantity: u32,
        request: &Request,
    ) -> Result<Done, AppError> {
        let command = ProductCommand::ReceiveStock(product::ReceiveStock { quantity, now: now() });
        self.product_command(sku, command, request).await
    }

    /// Takes a product out of the catalogue; history and orders keep it.
    pub async fn delist(&self, sku: &str, request: &Request) -> Result<Done, AppError> {
        let command = ProductCommand::Delist(product::DelistProduct { now: now() });
        self.product_command(sku, command, request).await
    }
}
