//! The `dr_seed001` suite again, with the control plane on PostgreSQL (`common::on_postgres`).
#[path = "dr_seed001.rs"]
mod suite;
