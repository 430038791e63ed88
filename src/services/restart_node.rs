//! `restart_node` (MySQL Plus `restart_node.md`): restart one node.

use super::node_op::NodeOp;

pub const RESTART_NODE: NodeOp = NodeOp {
    service: "restart_node",
    roles: &["maininstance", "readinstance", "proxy"],
    does: "restarts a node",
    record: |conn, cluster, node| conn.node_restarted(cluster, Some(node), None),
};
