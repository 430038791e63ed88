//! The `dr_topology` suite again, with the control plane on PostgreSQL (`common::on_postgres`).
#[path = "dr_topology.rs"]
mod suite;
