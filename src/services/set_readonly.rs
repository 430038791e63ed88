//! `set_readonly`: toggle the primary's read-only mode (used on the source
//! before a DR switch; MySQL Plus `assign_readonly_node.md`).

use super::settings::Switch;

pub const SET_READONLY: Switch = Switch {
    service: "set_readonly",
    field: "readonly",
    setting: "readonly",
    restarts: false,
};
