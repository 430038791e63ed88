//! The `api_core` suite again, on a PostgreSQL store (`common::on_postgres`).
#[path = "api_core.rs"]
mod suite;
