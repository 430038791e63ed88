//! The topology services keep DR tasks true: after a switchover, failover,
//! decouple, promotion or stop on servers, each task that follows a
//! relationship is matched to the topology as recorded, in the same
//! transaction: its sides follow a switchover, a task whose standby became
//! an independent primary ends (`completed`, or `failed_over`).

use crate::store::model::Model;

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
    conn: &dyn Model,
    service: &str,
    job_id: &str,
) -> Result<(), crate::store::StoreError> {
    for t in conn.live_tasks()? {
        let Some(standby) = conn.cluster(&t.standby_cluster)? else {
            continue;
        };
        match (&standby.standby_of, &t.source_cluster) {
            // Still a standby of a registered cluster: that is its source.
            (Some(up), Some(src)) if up != src && conn.cluster(up)?.is_some() => {
                conn.set_task_sides(&t.id, &t.standby_cluster, Some(up))?;
                relinked(conn, &t)?;
                conn.task_log(
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
                let reversed = conn
                    .cluster(src)?
                    .is_some_and(|s| s.standby_of.as_deref() == Some(t.standby_cluster.as_str()));
                if reversed {
                    conn.set_task_sides(&t.id, src, Some(&t.standby_cluster))?;
                    relinked(conn, &t)?;
                    conn.task_log(
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

/// The job just set up the task's replication anew (and checked it ran):
/// a failure sampled while it worked on it is over.
fn relinked(
    conn: &dyn Model,
    t: &crate::store::types::DrTask,
) -> Result<(), crate::store::StoreError> {
    // As it is now: a sample may have failed it since the tasks were read.
    let now = conn.task_locked(&t.id)?;
    if now.is_some_and(|n| n.status == "sync_failed") {
        conn.set_task_status(&t.id, "syncing", Some(""))?;
    }
    Ok(())
}

fn end(
    conn: &dyn Model,
    id: &str,
    service: &str,
    job_id: &str,
) -> Result<(), crate::store::StoreError> {
    let status = if service == "failover" {
        "failed_over"
    } else {
        "completed"
    };
    conn.set_task_status(id, status, None)?;
    conn.task_log(
        id,
        "info",
        service,
        job_id,
        &format!("{service}: the standby is an independent primary; the task is {status}"),
    )
}
