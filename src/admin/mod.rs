//! What the local commands do to the inventory (servers, clusters), as
//! functions the command line and the benchmarks share.

pub mod clusters;
pub mod servers;

/// A runtime for the few connections these make; call them off any runtime.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}
