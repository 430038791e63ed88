//! `CreateDRTask`: a DR task in `configuration`, not yet checked or started.

use serde_json::{Value, json};

use super::super::{Action, Context, Reply};
use crate::BoxFuture;
use crate::error::ApiError;
use crate::ids::{dr_task_id, is_cluster_id};
use crate::secret::Secret;
use crate::services::schema::{self, Fields, is_db_user, is_host};
use crate::store::StoreError;
use crate::store::clusters::Cluster;
use crate::store::dr_tasks::{self, DrTask};
use crate::worker::allow::AllowList;

pub struct CreateDRTask;

/// DRS's rule: a letter first, 4–50 of letters, digits, `-`, `_`.
fn is_task_name(s: &str) -> bool {
    (4..=50).contains(&s.len())
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// At most 256 characters, none of DRS's forbidden ones.
fn is_description(s: &str) -> bool {
    s.chars().count() <= 256
        && !s
            .chars()
            .any(|c| "!=<>'&\"\\".contains(c) || c.is_control())
}

fn is_schema_name(s: &str) -> bool {
    // `,` separates the standby's replication filter patterns.
    (1..=64).contains(&s.chars().count()) && !s.contains(['`', '\0', '/', '\\', '.', ','])
}

/// `objects`: `["*"]` (all), or `[{"db_name": "app"}, {"db_name": "shop",
/// "table_name": ["orders"]}, …]`: whole databases, or some of their tables.
fn objects(raw: Option<&str>) -> Result<Value, ApiError> {
    let Some(raw) = raw.filter(|s| !s.trim().is_empty()) else {
        return Ok(json!(["*"]));
    };
    let bad = |why: &str| ApiError::invalid("objects", why);
    let v: Value = serde_json::from_str(raw).map_err(|_| bad("is not valid JSON"))?;
    let Value::Array(items) = v else {
        return Err(bad("must be a JSON array"));
    };
    if items == [json!("*")] {
        return Ok(json!(["*"]));
    }
    if items.is_empty() || items.len() > 100 {
        return Err(bad("must name 1 to 100 databases, or be [\"*\"]"));
    }
    let mut dbs = Vec::new();
    for it in &items {
        let Some(o) = it.as_object() else {
            return Err(bad(
                "items must be objects {\"db_name\": …}, or the list [\"*\"]",
            ));
        };
        if o.keys().any(|k| k != "db_name" && k != "table_name") {
            return Err(bad("items take db_name (and table_name)"));
        }
        let name = o
            .get("db_name")
            .and_then(Value::as_str)
            .filter(|n| is_schema_name(n));
        let Some(name) = name else {
            return Err(bad(
                "db_name must be a database name (1-64 characters, no ` / \\ . ,)",
            ));
        };
        if dbs.iter().any(|d: &Value| d["db_name"] == name) {
            return Err(bad(&format!("names the database [{name}] twice")));
        }
        let tables = match o.get("table_name") {
            None => None,
            Some(Value::String(t)) => Some(vec![t.as_str()]),
            Some(Value::Array(a)) => Some(a.iter().map(|t| t.as_str().unwrap_or("")).collect()),
            Some(_) => return Err(bad("table_name must be a name or a list of names")),
        };
        match tables {
            None => dbs.push(json!({"db_name": name})),
            Some(t) => {
                if t.is_empty() || t.len() > 1000 {
                    return Err(bad("table_name must name 1 to 1000 tables"));
                }
                if let Some(wrong) = t.iter().find(|t| !is_schema_name(t)) {
                    return Err(bad(&format!(
                        "table_name [{wrong}] is not a table name (1-64 characters, no ` / \\ . ,)"
                    )));
                }
                let mut t: Vec<&str> = t;
                t.sort_unstable();
                t.dedup();
                dbs.push(json!({"db_name": name, "table_name": t}));
            }
        }
    }
    Ok(Value::Array(dbs))
}

/// `flow_control`: `{"max_mbps": 1..9999, "periods": [{"start": "HH:MM", "end": "HH:MM"}]}`.
fn flow_control(raw: Option<&str>) -> Result<Value, ApiError> {
    let mut f = Fields::named(
        "flow_control",
        schema::parse_param("flow_control", raw)?,
        raw.is_none(),
    );
    if !f.has("max_mbps") && !f.has("periods") {
        f.finish()?;
        return Ok(json!({}));
    }
    let max = f.int("max_mbps", 1, 9999)?;
    let periods = periods(f.take("periods"))?;
    f.finish()?;
    Ok(json!({"max_mbps": max, "periods": periods}))
}

/// At most three daily periods `HH:MM`–`HH:MM` that do not overlap (one
/// may run past midnight); none: all day.
fn periods(v: Option<Value>) -> Result<Value, ApiError> {
    let bad = |why: &str| ApiError::invalid("flow_control.periods", why);
    let items = match v {
        None | Some(Value::Null) => return Ok(json!([])),
        Some(Value::Array(a)) => a,
        Some(_) => {
            return Err(bad(
                "must be a list of {\"start\": \"HH:MM\", \"end\": \"HH:MM\"}",
            ));
        }
    };
    if items.len() > 3 {
        return Err(bad("has at most 3 periods"));
    }
    let minute = |v: Option<&Value>| -> Option<u32> {
        let s = v?.as_str()?;
        let (h, m) = s.split_once(':')?;
        let (h, m) = (h.parse::<u32>().ok()?, m.parse::<u32>().ok()?);
        (s.len() == 5 && h < 24 && m < 60).then_some(h * 60 + m)
    };
    let mut spans: Vec<(u32, u32)> = Vec::new();
    let mut out = Vec::new();
    for it in &items {
        let o = it.as_object().ok_or_else(|| bad("items must be objects"))?;
        if o.keys().any(|k| k != "start" && k != "end") {
            return Err(bad("items take start and end"));
        }
        let (Some(a), Some(b)) = (minute(o.get("start")), minute(o.get("end"))) else {
            return Err(bad("start and end must be times HH:MM"));
        };
        if a == b {
            return Err(bad("a period must not end when it starts"));
        }
        // Past midnight: two spans.
        let parts = if a < b {
            vec![(a, b)]
        } else {
            vec![(a, 1440), (0, b)]
        };
        for (x, y) in parts {
            if spans.iter().any(|(p, q)| x < *q && *p < y) {
                return Err(bad("periods must not overlap"));
            }
            spans.push((x, y));
        }
        out.push(it.clone());
    }
    Ok(Value::Array(out))
}

fn cluster(cx: &Context<'_>, id: &str, param: &str) -> Result<Cluster, ApiError> {
    if !is_cluster_id(id) {
        return Err(ApiError::invalid(
            param,
            "must be a cluster id such as cl-9np7ig3g",
        ));
    }
    let c = cx
        .state
        .store
        .cluster(&cx.caller.owner, id)?
        .ok_or_else(|| ApiError::not_found(id))?;
    if !c.on_servers() {
        return Err(ApiError::PermissionDenied(format!(
            "cluster [{id}] is simulated (not bound to servers); a DR task needs clusters on servers"
        )));
    }
    Ok((*c).clone())
}

/// The external source: `{host, port, user, password}`.
struct External {
    host: String,
    port: i64,
    user: String,
    password: Secret,
}

fn external(raw: &str, allow: &AllowList) -> Result<External, ApiError> {
    let mut f = Fields::named("source", schema::parse_param("source", Some(raw))?, false);
    let host = f.checked("host", "an IP address or host name", is_host)?;
    let port = f.int("port", 1, 65535)?;
    let user = f.checked(
        "user",
        "a database account name (1-32 of A-Z a-z 0-9 _ . -)",
        is_db_user,
    )?;
    let password = f.secret(&["password", "passwd"], 128)?;
    f.finish()?;
    if !allow.allows(&host) {
        return Err(ApiError::PermissionDenied(format!(
            "host [{host}] is not in the executor's allow_hosts"
        )));
    }
    Ok(External {
        host,
        port,
        user,
        password,
    })
}

impl Action for CreateDRTask {
    fn name(&self) -> &'static str {
        "CreateDRTask"
    }

    fn handle<'a>(&'a self, cx: &'a Context<'a>) -> BoxFuture<'a, Result<Reply, ApiError>> {
        Box::pin(async move {
            let p = cx.params;
            let zone = super::super::zone(p)?.to_string();
            let name = p.required("name")?;
            if !is_task_name(name) {
                return Err(ApiError::invalid(
                    "name",
                    "must start with a letter and have 4 to 50 letters, digits, - or _",
                ));
            }
            let description = p.optional("description").unwrap_or_default();
            if !is_description(description) {
                return Err(ApiError::invalid(
                    "description",
                    "must be at most 256 characters, none of ! = < > ' & \" \\",
                ));
            }
            let direction = match p.optional("direction").unwrap_or("standby") {
                d @ ("standby" | "active") => d,
                _ => return Err(ApiError::invalid("direction", "must be standby or active")),
            };
            let sync_way = match p.optional("sync_way").unwrap_or("full") {
                s @ ("full" | "increment") => s,
                _ => return Err(ApiError::invalid("sync_way", "must be full or increment")),
            };
            let objects = objects(p.optional("objects"))?;
            let flow_control = flow_control(p.optional("flow_control"))?;
            let migrate_definer = match p.optional("migrate_definer").unwrap_or("1") {
                "0" => false,
                "1" => true,
                _ => return Err(ApiError::invalid("migrate_definer", "must be 0 or 1")),
            };
            let named = cluster(cx, p.required("standby_cluster")?, "standby_cluster")?;
            if named.zone != zone {
                return Err(ApiError::not_found(&named.cluster_id));
            }
            let allow = &cx.state.fleet.allow;
            let id = dr_task_id();
            let mut t = DrTask::new(id.clone(), &cx.caller.owner, &zone, name, &named.cluster_id);
            t.description = description.to_string();
            t.direction = direction.to_string();
            t.sync_way = sync_way.to_string();
            t.objects = objects;
            t.flow_control = flow_control;
            t.migrate_definer = migrate_definer;
            match (p.optional("source_cluster"), p.optional("source")) {
                (Some(_), Some(_)) => {
                    return Err(ApiError::invalid(
                        "source",
                        "cannot be given with source_cluster",
                    ));
                }
                (None, None) => return Err(ApiError::missing("source_cluster")),
                (Some(sc), None) => {
                    let other = cluster(cx, sc, "source_cluster")?;
                    if other.cluster_id == named.cluster_id {
                        return Err(ApiError::invalid(
                            "source_cluster",
                            "must not be the standby cluster itself",
                        ));
                    }
                    // `active`: the named cluster is the source.
                    if direction == "active" {
                        t.standby_cluster = other.cluster_id.clone();
                        t.source_cluster = Some(named.cluster_id.clone());
                    } else {
                        t.source_cluster = Some(other.cluster_id.clone());
                    }
                }
                (None, Some(raw)) => {
                    if direction == "active" {
                        return Err(ApiError::PermissionDenied(
                            "direction active needs the receiving side bound to servers: give it as source_cluster".into(),
                        ));
                    }
                    let e = external(raw, allow)?;
                    t.source_endpoint = crate::mariadb::Endpoint {
                        host: e.host,
                        port: e.port as u16,
                    }
                    .to_string();
                    t.source_user = e.user;
                    t.source_secret = Some(dr_tasks::seal_source_password(
                        &cx.state.store.master,
                        &id,
                        &e.password,
                    ));
                }
            }
            let row = t.clone();
            let inserted = cx
                .state
                .store
                .change(move |c| {
                    if !c.insert_task(&row)? {
                        return Err(StoreError::Conflict(format!("task id {} is taken", row.id)));
                    }
                    c.task_log(
                        &row.id,
                        "info",
                        "created",
                        "",
                        &format!(
                            "task created: {} receives from {}",
                            row.standby_cluster,
                            row.source_cluster
                                .clone()
                                .unwrap_or_else(|| row.source_endpoint.clone())
                        ),
                    )
                })
                .await;
            inserted?;
            let mut r = Reply::new();
            r.insert("dr_task_id".into(), Value::String(id));
            r.insert("dr_task".into(), super::view(&t));
            Ok(r)
        })
    }
}
