//! `stop_zabbix` (MySQL Plus `disable_zabbix.md`).

use super::features::Stop;
use super::start_zabbix::ZABBIX;

pub const STOP_ZABBIX: Stop = Stop {
    service: "stop_zabbix",
    feature: ZABBIX,
    switch: None,
};
