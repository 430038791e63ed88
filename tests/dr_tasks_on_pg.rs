//! The `dr_tasks` suite again, with the control plane on PostgreSQL (`common::on_postgres`).
#[path = "dr_tasks.rs"]
mod suite;
