//! `stop_log_server` (MySQL Plus `disable_log_server.md`); `clean_log` YES
//! also deletes the served logs.

use super::features::Stop;
use super::start_log_server::LOG_SERVER;

pub const STOP_LOG_SERVER: Stop = Stop {
    service: "stop_log_server",
    feature: LOG_SERVER,
    switch: Some("clean_log"),
};
