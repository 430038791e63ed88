//! The `topology` suite again, on a PostgreSQL store (`common::on_postgres`).
#[path = "topology.rs"]
mod suite;
