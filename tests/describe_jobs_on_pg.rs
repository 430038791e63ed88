//! The `describe_jobs` suite again, on a PostgreSQL store (`common::on_postgres`).
#[path = "describe_jobs.rs"]
mod suite;
