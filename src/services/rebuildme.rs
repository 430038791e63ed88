//! `rebuildme` (MySQL Plus `rebuild_node.md`): rebuild a read-only instance
//! node; the docs allow it on `readinstance` nodes only.

use super::node_op::NodeOp;

pub const REBUILDME: NodeOp = NodeOp {
    service: "rebuildme",
    roles: &["readinstance"],
    does: "rebuilds a node",
    record: |m, cluster, node| m.node_rebuilt(cluster, node),
};
