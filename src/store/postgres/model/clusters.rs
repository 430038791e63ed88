//! `DescribeClusters` on PostgreSQL.

use crate::store::postgres::Conn;

use super::PgModel;
use super::rows::{Where, transition};
use crate::clock::format_ts;
use crate::store::StoreError;
use crate::store::types::{ClusterFilter, ClusterView};

pub fn describe<C: Conn>(
    m: &PgModel<'_, C>,
    f: &ClusterFilter,
) -> Result<(Vec<ClusterView>, u64), StoreError> {
    let mut w = Where::new("c.owner", &f.owner);
    w.eq("c.zone", f.zone.as_ref());
    if f.statuses.is_empty() {
        w.and("c.status <> 'ceased'");
    }
    w.any_of("c.id", &f.ids)
        .any_of("c.status", &f.statuses)
        .search("c.id", "c.name", f.search_word.as_ref());
    let total = m.count("clusters c", &w)?;
    let paged = w.page(f.limit, f.offset);
    let rows = m.rows(
        &format!(
            "SELECT c.id, c.name, c.owner, c.zone, c.status,
                    (SELECT j.action FROM jobs j WHERE j.status = 'working' AND j.lane = c.id LIMIT 1),
                    c.create_time, c.status_time, c.standby_of, c.sync_status, c.sync_way, c.settings,
                    c.backend
             FROM clusters c WHERE {} ORDER BY c.create_time DESC, c.id {paged}",
            w.clause
        ),
        &w.params(),
    )?;
    let mut set = Vec::with_capacity(rows.len());
    for r in &rows {
        let standby_of: Option<String> = r.get(8);
        let status: String = r.get(4);
        let id: String = r.get(0);
        set.push(ClusterView {
            accounts: super::accounts::of_cluster(m, &id)?,
            cluster_id: id,
            name: r.get(1),
            owner: r.get(2),
            zone: r.get(3),
            transition_status: transition(&status, r.get(5)).into(),
            status,
            create_time: format_ts(r.get(6)),
            status_time: format_ts(r.get(7)),
            dr: serde_json::json!({
                "role": if standby_of.is_some() { "STANDBY" } else { "PRIMARY" },
                "primary": standby_of,
                "sync_status": r.get::<_, Option<String>>(9),
                "sync_way": r.get::<_, Option<String>>(10),
            }),
            settings: serde_json::from_str(r.get(11)).unwrap_or_default(),
            executor: r.get(12),
        });
    }
    Ok((set, total))
}
