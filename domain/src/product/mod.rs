//! Product: one SKU's catalogue entry and inventory, one stream per SKU.
//!
//! Catalogue and stock share an aggregate because reserving stock must see whether the product is
//! still listed, and both change rarely compared with reads (which the read side serves).

mod command;
mod decide;
mod event;
mod state;
#[cfg(test)]
mod tests;

pub use command::*;
pub use decide::{
    Product, ProductError, MAX_DESCRIPTION_LEN, MAX_FACET_LEN, MAX_IMAGES, MAX_NAME_LEN,
    MAX_ON_HAND, MAX_URL_LEN,
};
pub use event::*;
pub use state::{Listing, ProductState, Reservation};
