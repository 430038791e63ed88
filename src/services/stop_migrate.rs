//! `stop_migrate` (MySQL Plus `disable_migration.md`): end the data migration
//! `migrate_data` started.

use super::features::Stop;
use super::migrate_data::MIGRATION;

pub const STOP_MIGRATE: Stop = Stop {
    service: "stop_migrate",
    feature: MIGRATION,
    switch: None,
};
