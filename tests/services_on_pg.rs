//! The `services` suite again, on a PostgreSQL store (`common::on_postgres`).
#[path = "services.rs"]
mod suite;
