//! A job row as `DescribeJobs` shows it: its `job_set` entry and the
//! statement that reads one back. A leaf: the queue (`jobs`), its views and
//! their packer all read it, and it reads none of them.

use rusqlite::{Connection, OptionalExtension};

use crate::store::StoreError;
pub use crate::store::queue::{JobEntry, JobView};

/// The columns [`entry_row`] reads, as a macro so statements can be `concat!`ed.
macro_rules! view_columns {
    () => {
        "seq, id, action, status, create_time, status_time, resource_ids, owner, error_codes, error_message, directive, zone, output"
    };
}
pub(super) use view_columns;
pub const VIEW_COLUMNS: &str = view_columns!();

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
