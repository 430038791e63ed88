//! A job row as `DescribeJobs` shows it: its `job_set` entry and the
//! statement that reads one back. A leaf: the queue (`jobs`), its views and
//! their packer all read it, and it reads none of them.

use rusqlite::{Connection, OptionalExtension};

use super::StoreError;
use crate::written::{self, Written};

/// One row of `job_set`. Fields in alphabetical order: replies are written
/// straight from this struct ([`JobView::written`]), and every other object
/// in them has sorted keys. The serde derive is the reference tests hold
/// that writing to.
#[derive(Debug, Clone)]
#[cfg_attr(test, derive(serde::Serialize))]
pub struct JobView {
    pub create_time: String,
    pub directive: String,
    pub error_codes: String,
    #[cfg_attr(test, serde(skip_serializing_if = "String::is_empty"))]
    pub error_message: String,
    pub job_action: String,
    pub job_id: String,
    /// What a command executor printed, secrets removed (extension).
    #[cfg_attr(test, serde(skip_serializing_if = "String::is_empty"))]
    pub output: String,
    pub owner: String,
    pub resource_ids: String,
    pub status: String,
    pub status_time: String,
}

impl JobView {
    /// What serde_json writes for this struct, with its long strings
    /// escaped faster (see [`written::Object`]).
    pub fn written(&self) -> Written {
        let strings = self.directive.len() + self.output.len() + self.error_message.len();
        let mut o = written::Object::with_capacity(strings + strings / 4 + 256);
        o.str("create_time", &self.create_time)
            .str("directive", &self.directive)
            .str("error_codes", &self.error_codes);
        if !self.error_message.is_empty() {
            o.str("error_message", &self.error_message);
        }
        o.str("job_action", &self.job_action)
            .str("job_id", &self.job_id);
        if !self.output.is_empty() {
            o.str("output", &self.output);
        }
        o.str("owner", &self.owner)
            .str("resource_ids", &self.resource_ids)
            .str("status", &self.status)
            .str("status_time", &self.status_time);
        o.written()
    }
}

/// The columns [`entry_row`] reads, as a macro so statements can be `concat!`ed.
macro_rules! view_columns {
    () => {
        "seq, id, action, status, create_time, status_time, resource_ids, owner, error_codes, error_message, directive, zone, output"
    };
}
pub(super) use view_columns;
pub const VIEW_COLUMNS: &str = view_columns!();

/// One job as `DescribeJobs` shows it: its `job_set` entry, written once,
/// and the fields that filters compare.
#[derive(Debug)]
pub struct JobEntry {
    pub seq: i64,
    pub id: String,
    pub owner: String,
    pub zone: String,
    pub status: String,
    pub action: String,
    pub resource_ids: String,
    pub json: Written,
}

impl JobEntry {
    pub(super) fn new(seq: i64, zone: String, view: JobView) -> JobEntry {
        let json = view.written();
        JobEntry {
            seq,
            zone,
            id: view.job_id,
            owner: view.owner,
            status: view.status,
            action: view.job_action,
            resource_ids: view.resource_ids,
            json,
        }
    }
}

pub(super) fn entry_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobEntry> {
    let view = JobView {
        job_id: r.get(1)?,
        job_action: r.get(2)?,
        status: r.get(3)?,
        create_time: crate::clock::format_ts(r.get(4)?),
        status_time: crate::clock::format_ts(r.get(5)?),
        resource_ids: r.get(6)?,
        owner: r.get(7)?,
        error_codes: r.get(8)?,
        error_message: r.get(9)?,
        directive: r.get(10)?,
        output: r.get(12)?,
    };
    Ok(JobEntry::new(r.get(0)?, r.get(11)?, view))
}

/// A job by seq, as `DescribeJobs` shows it.
pub fn entry_by_seq(conn: &Connection, seq: i64) -> Result<Option<JobEntry>, StoreError> {
    Ok(conn
        .prepare_cached(concat!(
            "SELECT ",
            view_columns!(),
            " FROM jobs WHERE seq = ?1"
        ))?
        .query_row([seq], entry_row)
        .optional()?)
}
