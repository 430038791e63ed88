//! The SQLite backend's implementations of the store's interfaces.

mod model;
mod queue;

pub use queue::{apply, rescue};
