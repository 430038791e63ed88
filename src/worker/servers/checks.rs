//! Pre-checks several operations share, each returning the refusal that
//! names what is wrong.

use super::fleet::refused;
use crate::mariadb::{Endpoint, NodeState};
use crate::worker::executor::Failure;

/// Whether two host names are the same machine (loopback names are).
pub fn same_host(a: &str, b: &str) -> bool {
    let loopback =
        |h: &str| h.eq_ignore_ascii_case("localhost") || h.starts_with("127.") || h == "::1";
    a.eq_ignore_ascii_case(b) || (loopback(a) && loopback(b))
}

/// Whether `state` replicates from `source`.
pub fn replicates_from(state: &NodeState, source: &Endpoint) -> bool {
    state
        .replica
        .as_ref()
        .is_some_and(|r| r.source_port == source.port && same_host(&r.source_host, &source.host))
}

/// Major, minor, patch of a version string such as `10.11.14-MariaDB-…`.
pub fn version(v: &str) -> (u32, u32, u32) {
    let mut it = v
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u32>().unwrap_or(0));
    (
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
    )
}

/// A standby replicating from `source`, both threads running, no error.
pub fn healthy_replica(name: &str, state: &NodeState, source: &Endpoint) -> Result<(), Failure> {
    let Some(r) = &state.replica else {
        return Err(refused(format!("{name} does not replicate")));
    };
    if !replicates_from(state, source) {
        return Err(refused(format!(
            "{name} replicates from {}:{}, not from the primary {source}",
            r.source_host, r.source_port
        )));
    }
    if let Some(e) = r.last_error() {
        return Err(refused(format!("{name} has a replication error: {e}")));
    }
    if !r.io_running() || !r.sql_running {
        return Err(refused(format!(
            "replication on {name} is stopped (IO {}, SQL {})",
            r.io_running,
            if r.sql_running { "Yes" } else { "No" }
        )));
    }
    if !r.using_gtid.eq_ignore_ascii_case("Slave_Pos")
        && !r.using_gtid.eq_ignore_ascii_case("Current_Pos")
    {
        return Err(refused(format!(
            "{name} does not replicate by GTID (Using_Gtid {})",
            r.using_gtid
        )));
    }
    Ok(())
}

/// Settings a node must have to be promoted (binlog, chains).
pub fn promotable(name: &str, state: &NodeState) -> Result<(), Failure> {
    let missing = state.missing_settings();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(refused(format!(
            "{name} cannot be promoted: {}",
            missing.join("; ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_hosts() {
        assert_eq!(version("10.11.14-MariaDB-0+deb12u2-log"), (10, 11, 14));
        assert!(version("10.11.2") > version("10.6.20"));
        assert!(same_host("127.0.0.1", "localhost") && !same_host("10.0.0.1", "127.0.0.1"));
    }
}
