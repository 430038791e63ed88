//! `configuring_SSL`: turn SSL on or off; it restarts the database
//! (MySQL Plus `config_ssl_node.md`).

use super::settings::Switch;

pub const CONFIGURING_SSL: Switch = Switch {
    service: "configuring_SSL",
    field: "configssl",
    setting: "ssl",
    restarts: true,
};
