//! `rebuildme` (MySQL Plus `rebuild_node.md`): rebuild a read-only instance
//! node; the docs allow it on `readinstance` nodes only.

use super::node_op::NodeOp;
use crate::store::nodes;

pub const REBUILDME: NodeOp = NodeOp {
    service: "rebuildme",
    roles: &["readinstance"],
    does: "rebuilds a node",
    record: nodes::rebuilt,
};
