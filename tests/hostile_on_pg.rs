//! The `hostile` suite again, on a PostgreSQL store (`common::on_postgres`).
#[path = "hostile.rs"]
mod suite;
