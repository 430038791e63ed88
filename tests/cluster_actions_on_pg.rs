//! The `cluster_actions` suite again, on a PostgreSQL store (`common::on_postgres`).
#[path = "cluster_actions.rs"]
mod suite;
