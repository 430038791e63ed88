//! The `reliability` suite again, on a PostgreSQL store (`common::on_postgres`).
#[path = "reliability.rs"]
mod suite;
