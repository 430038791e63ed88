//! The `clusters` suite again, on a PostgreSQL store (`common::on_postgres`).
#[path = "clusters.rs"]
mod suite;
