//! `DescribeJobs` on PostgreSQL: a page by filters, or jobs by id.

use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{Cached, Pg};
use crate::store::StoreError;
use crate::store::queue::{Described, JobEntry, JobFilter, JobView};

const VIEW: &str = "seq, action, status, create_time, status_time, resource_ids, owner, \
                    error_codes, error_message, directive, zone, output";

fn entry(pg: &Pg, r: &Row) -> Result<JobEntry, StoreError> {
    let seq: i64 = r.try_get(0)?;
    let view = JobView {
        job_id: pg.job_id(seq)?,
        job_action: r.try_get(1)?,
        status: r.try_get(2)?,
        create_time: crate::clock::format_ts(r.try_get(3)?),
        status_time: crate::clock::format_ts(r.try_get(4)?),
        resource_ids: r.try_get(5)?,
        owner: r.try_get(6)?,
        error_codes: r.try_get(7)?,
        error_message: r.try_get(8)?,
        directive: r.try_get(9)?,
        output: r.try_get(11)?,
    };
    Ok(JobEntry::new(seq, r.try_get(10)?, view))
}

pub async fn page(pg: &Pg, f: &JobFilter) -> Result<Described, StoreError> {
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
    let client = pg.client().await?;
    let c = Cached(&client);
    let total: i64 = c
        .query_one(
            &format!("SELECT COUNT(*) FROM jobs WHERE {clause}"),
            &params[..n],
        )
        .await?
        .try_get(0)?;
    let rows = c
        .query(
            &format!(
                "SELECT {VIEW} FROM jobs WHERE {clause} ORDER BY seq DESC LIMIT ${} OFFSET ${}",
                n + 1,
                n + 2
            ),
            &params,
        )
        .await?;
    let entries = rows
        .iter()
        .map(|r| entry(pg, r))
        .collect::<Result<_, _>>()?;
    Ok(Described::Page(entries, total as u64))
}

/// As the SQLite store does it: every id must name one of the owner's jobs
/// (else the first that does not is named), then filters and paging.
pub async fn ids(pg: &Pg, f: &JobFilter) -> Result<Described, StoreError> {
    let seqs: Vec<i64> = f.ids.iter().filter_map(|id| pg.ids().decode(id)).collect();
    let client = pg.client().await?;
    let c = Cached(&client);
    // Polling asks for one job: by `seq = $1` the statement is planned once
    // per connection (an array's length makes PostgreSQL plan every call).
    let rows = match seqs.as_slice() {
        [seq] => {
            let sql = format!("SELECT {VIEW} FROM jobs WHERE seq = $1 AND owner = $2");
            c.query(&sql, &[seq, &f.owner]).await?
        }
        _ => {
            let sql = format!("SELECT {VIEW} FROM jobs WHERE seq = ANY($1) AND owner = $2");
            c.query(&sql, &[&seqs, &f.owner]).await?
        }
    };
    let entries: Vec<JobEntry> = rows
        .iter()
        .map(|r| entry(pg, r))
        .collect::<Result<_, _>>()?;
    for id in &f.ids {
        let ok = entries
            .iter()
            .any(|e| e.id == *id && f.zone.as_ref().is_none_or(|z| *z == e.zone));
        if !ok {
            return Ok(Described::Missing(id.clone()));
        }
    }
    Ok(crate::store::queue::by_ids_page(entries, f))
}
