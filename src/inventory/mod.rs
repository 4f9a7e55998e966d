//! The key inventory: loading, validation, lint and in-place edits (DESIGN section 3).

pub mod edit;
pub mod lint;
pub mod load;
pub mod model;
mod reader;
mod spec;
pub mod view;

pub use load::{InventoryError, Problem, load};
#[cfg(feature = "testing")]
pub use load::load_str;
pub use model::*;
