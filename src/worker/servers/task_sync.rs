//! The topology services keep DR tasks true: after a switchover, failover,
//! decouple, promotion or stop on servers, each task that follows a
//! relationship is matched to the topology as recorded, in the same
//! transaction: its sides follow a switchover, a task whose standby became
//! an independent primary ends (`completed`, or `failed_over`).

use rusqlite::Connection;

use crate::store::clusters;
use crate::store::dr_tasks;
use crate::store::effect::{Effect, EffectError};

/// `effect`, then the tasks matched to what it recorded.
pub fn after(service: &str, job_id: &str, mut effect: Effect) -> Effect {
    let (service, job_id) = (service.to_string(), job_id.to_string());
    Box::new(move |conn| {
        effect(conn)?;
        reconcile(conn, &service, &job_id).map_err(EffectError::Store)
    })
}

fn reconcile(
    conn: &Connection,
    service: &str,
    job_id: &str,
) -> Result<(), crate::store::StoreError> {
    for t in dr_tasks::live(conn)? {
        let Some(standby) = clusters::get(conn, &t.standby_cluster)? else {
            continue;
        };
        match (&standby.standby_of, &t.source_cluster) {
            // Still a standby of a registered cluster: that is its source.
            (Some(up), Some(src)) if up != src && clusters::get(conn, up)?.is_some() => {
                dr_tasks::set_sides(conn, &t.id, &t.standby_cluster, Some(up))?;
                dr_tasks::log(
                    conn,
                    &t.id,
                    "info",
                    service,
                    job_id,
                    &format!(
                        "{service}: [{}] now receives from [{up}] (was [{src}])",
                        t.standby_cluster
                    ),
                )?;
            }
            (Some(_), _) => {}
            // Its standby is a primary now; roles swapped if its source follows it.
            (None, Some(src)) => {
                let reversed = clusters::get(conn, src)?
                    .is_some_and(|s| s.standby_of.as_deref() == Some(t.standby_cluster.as_str()));
                if reversed {
                    dr_tasks::set_sides(conn, &t.id, src, Some(&t.standby_cluster))?;
                    dr_tasks::log(
                        conn,
                        &t.id,
                        "info",
                        service,
                        job_id,
                        &format!(
                            "{service}: roles swapped: [{}] is the source, [{src}] receives",
                            t.standby_cluster
                        ),
                    )?;
                } else {
                    end(conn, &t.id, service, job_id)?;
                }
            }
            (None, None) => end(conn, &t.id, service, job_id)?,
        }
    }
    Ok(())
}

fn end(
    conn: &Connection,
    id: &str,
    service: &str,
    job_id: &str,
) -> Result<(), crate::store::StoreError> {
    let status = if service == "failover" {
        "failed_over"
    } else {
        "completed"
    };
    dr_tasks::set_status(conn, id, status, None)?;
    dr_tasks::log(
        conn,
        id,
        "info",
        service,
        job_id,
        &format!("{service}: the standby is an independent primary; the task is {status}"),
    )
}
