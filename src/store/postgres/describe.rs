//! `DescribeJobs` on PostgreSQL: a page by filters, or jobs by id.

use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::Pg;
use crate::store::StoreError;
use crate::store::queue::{Described, JobEntry, JobFilter, JobView};

const VIEW: &str = "seq, id, action, status, create_time, status_time, resource_ids, owner, \
                    error_codes, error_message, directive, zone, output";

fn entry(r: &Row) -> JobEntry {
    let view = JobView {
        job_id: r.get(1),
        job_action: r.get(2),
        status: r.get(3),
        create_time: crate::clock::format_ts(r.get(4)),
        status_time: crate::clock::format_ts(r.get(5)),
        resource_ids: r.get(6),
        owner: r.get(7),
        error_codes: r.get(8),
        error_message: r.get(9),
        directive: r.get(10),
        output: r.get(12),
    };
    JobEntry::new(r.get(0), r.get(11), view)
}

pub fn page(pg: &Pg, f: &JobFilter) -> Result<Described, StoreError> {
    let mut clause = String::from("owner = $1");
    let mut args: Vec<Box<dyn ToSql + Sync + Send>> = vec![Box::new(f.owner.clone())];
    if let Some(zone) = &f.zone {
        clause.push_str(&format!(" AND zone = ${}", args.len() + 1));
        args.push(Box::new(zone.clone()));
    }
    if !f.statuses.is_empty() {
        clause.push_str(&format!(" AND status = ANY(${})", args.len() + 1));
        args.push(Box::new(f.statuses.clone()));
    }
    if let Some(action) = &f.action {
        clause.push_str(&format!(" AND action = ${}", args.len() + 1));
        args.push(Box::new(action.clone()));
    }
    if let Some(lane) = &f.lane {
        clause.push_str(&format!(" AND lane = ${}", args.len() + 1));
        args.push(Box::new(lane.clone()));
    }
    let n = args.len();
    let limit = i64::try_from(f.limit).unwrap_or(i64::MAX);
    let offset = i64::try_from(f.offset).unwrap_or(i64::MAX);
    args.push(Box::new(limit));
    args.push(Box::new(offset));
    let params: Vec<&(dyn ToSql + Sync)> =
        args.iter().map(|a| &**a as &(dyn ToSql + Sync)).collect();
    pg.with_client(|c, pg| {
        let total: i64 = pg
            .wait(c.query_one(
                &format!("SELECT COUNT(*) FROM jobs WHERE {clause}"),
                &params[..n],
            ))?
            .get(0);
        let rows = pg.wait(c.query(
            &format!(
                "SELECT {VIEW} FROM jobs WHERE {clause} ORDER BY seq DESC LIMIT ${} OFFSET ${}",
                n + 1,
                n + 2
            ),
            &params,
        ))?;
        Ok(Described::Page(
            rows.iter().map(entry).collect(),
            total as u64,
        ))
    })
}

/// As the SQLite store does it: every id must name one of the owner's jobs
/// (else the first that does not is named), then filters and paging.
pub fn ids(pg: &Pg, f: &JobFilter) -> Result<Described, StoreError> {
    let seqs: Vec<i64> = f.ids.iter().filter_map(|id| pg.ids().decode(id)).collect();
    let rows = pg.with_client(|c, pg| {
        Ok(pg.wait(c.query(
            &format!("SELECT {VIEW} FROM jobs WHERE seq = ANY($1) AND owner = $2"),
            &[&seqs, &f.owner],
        ))?)
    })?;
    let mut entries: Vec<JobEntry> = rows.iter().map(entry).collect();
    for id in &f.ids {
        let ok = entries
            .iter()
            .any(|e| e.id == *id && f.zone.as_ref().is_none_or(|z| *z == e.zone));
        if !ok {
            return Ok(Described::Missing(id.clone()));
        }
    }
    entries.sort_by_key(|e| std::cmp::Reverse(e.seq));
    let matching: Vec<JobEntry> = entries
        .into_iter()
        .filter(|e| f.statuses.is_empty() || f.statuses.contains(&e.status))
        .filter(|e| f.action.as_ref().is_none_or(|a| *a == e.action))
        .filter(|e| {
            f.lane
                .as_ref()
                .is_none_or(|l| e.resource_ids.split(' ').any(|r| r == l))
        })
        .collect();
    let total = matching.len() as u64;
    let page = matching
        .into_iter()
        .skip(f.offset.min(usize::MAX as u64) as usize)
        .take(f.limit.min(usize::MAX as u64) as usize)
        .collect();
    Ok(Described::Page(page, total))
}
