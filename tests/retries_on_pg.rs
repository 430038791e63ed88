//! The `retries` suite again, on a PostgreSQL store (`common::on_postgres`).
#[path = "retries.rs"]
mod suite;
