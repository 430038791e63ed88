//! `restart_node` (MySQL Plus `restart_node.md`): restart one node.

use super::node_op::NodeOp;
use crate::store::nodes;

pub const RESTART_NODE: NodeOp = NodeOp {
    service: "restart_node",
    roles: &["maininstance", "readinstance", "proxy"],
    does: "restarts a node",
    record: |conn, cluster, node| nodes::restarted(conn, cluster, Some(node), None),
};
