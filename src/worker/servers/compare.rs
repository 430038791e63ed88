//! `CreateDRTaskCompare`'s job: the source and the standby compared at one
//! consistent point, without writing to the source (notes §B.11): a
//! snapshot on the source gives position G; the standby applies exactly up
//! to G (`START SLAVE UNTIL master_gtid_pos`), opens its own snapshot, and
//! replicates on. Then objects, row counts and contents (chunked checksums,
//! then row by row where a chunk differs) are read from the two snapshots.
//!
//! Steps: consistent_point → objects → lines → contents → result.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use serde_json::{Value, json};

use super::fleet::{db, internal};
use super::scope::Scope;
use super::{Op, ServersConfig, dr_task};
use crate::mariadb::checksum::{self, Shape};
use crate::mariadb::{DbError, GtidPos, Node, cell, runbook};
use crate::worker::executor::{Done, Failure};

/// Rows per chunk of the content comparison.
const CHUNK: u64 = 10_000;
/// Differing rows reported per table.
const MAX_DIFFS: usize = 1000;

pub async fn run(mut op: Op) -> Result<Done, Failure> {
    let t = dr_task::task(&mut op)?;
    let cid = op.param_str("compare_id").to_string();
    let types: Vec<String> = op
        .param("types")
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let id = cid.clone();
    op.fleet
        .store
        .change(move |c| c.compare_running(&id))
        .await
        .map_err(internal)?;
    let started = Instant::now();
    let s = dr_task::sides(&mut op, t).await?;
    let outcome = compare(&mut op, &s, &types).await;
    let (at, result) = match outcome {
        Ok((at, mut result)) => {
            result["summary"]["duration_ms"] = json!(started.elapsed().as_millis() as u64);
            (at, Ok(result))
        }
        Err(f) => (String::new(), Err(f)),
    };
    let (id, at2) = (cid.clone(), at.clone());
    let stored = match &result {
        Ok(v) => Ok(v.clone()),
        Err(f) => Err(f.message.clone()),
    };
    op.fleet
        .store
        .change(move |c| match &stored {
            Ok(v) => c.finish_compare(&id, &at2, Ok(v)),
            Err(e) => c.finish_compare(&id, &at2, Err(e)),
        })
        .await
        .map_err(internal)?;
    match result {
        Ok(v) => {
            op.steps
                .done(
                    "result",
                    format!("comparison {cid} at {at}: {}", v["summary"]),
                )
                .await?;
            Ok(Done {
                effect: Box::new(|_| Ok(())),
                output: op.steps.output(&v["summary"]),
            })
        }
        Err(f) => {
            op.steps.failed("result", f.message.clone()).await;
            Err(op.steps.fail(f, &Value::Null))
        }
    }
}

/// Opens the two snapshots at one position; returns it and the sessions.
async fn consistent_point(
    op: &mut Op,
    s: &dr_task::Sides,
) -> Result<(GtidPos, Node, Node), Failure> {
    op.steps
        .begin(
            "consistent_point",
            "snapshot on the source, the standby held at its position",
        )
        .await?;
    let mut src = Node::connect(&s.source, &s.login).await.map_err(db)?;
    src.exec("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ; START TRANSACTION WITH CONSISTENT SNAPSHOT")
        .await
        .map_err(db)?;
    let status = src
        .rows("SHOW STATUS LIKE 'binlog_snapshot_%'")
        .await
        .map_err(db)?;
    let value = |name: &str| {
        status
            .iter()
            .find(|r| cell(r, 0).eq_ignore_ascii_case(name))
            .map(|r| cell(r, 1))
            .unwrap_or_default()
    };
    let (file, pos) = (
        value("binlog_snapshot_file"),
        value("binlog_snapshot_position"),
    );
    let g = src
        .text(&format!(
            "SELECT BINLOG_GTID_POS({}, {})",
            src.lit(&file),
            pos.parse::<u64>().unwrap_or(0)
        ))
        .await
        .map_err(db)?;
    let g =
        GtidPos::parse(&g).map_err(|e| Failure::new(5000, format!("ServerError, {e}"), false))?;
    let m = &s.standby.primary;
    let mut ctl = op.fleet.connect(m).await?;
    let mut snap = op.fleet.connect(m).await?;
    let held = async {
        ctl.exec("STOP SLAVE").await?;
        ctl.exec(&format!("START SLAVE UNTIL master_gtid_pos={}", ctl.lit(&g.to_string()))).await?;
        let reached = ctl.gtid_wait(&g, ServersConfig::ms(op.cfg.relay_apply_timeout_ms)).await?;
        let at = runbook::current_pos(&mut ctl).await?;
        if reached && at == g {
            snap.exec("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ; START TRANSACTION WITH CONSISTENT SNAPSHOT").await?;
        }
        Ok::<_, DbError>((reached, at))
    }
    .await;
    // Replicating on, whatever happened (an UNTIL left running would hold it).
    let resumed = async {
        ctl.exec("STOP SLAVE").await?;
        ctl.exec("START SLAVE").await
    }
    .await;
    ctl.close().await;
    let (reached, at) = held.map_err(db)?;
    resumed.map_err(db)?;
    if !reached || at != g {
        return Err(Failure::new(
            5000,
            format!(
                "ReplicationFailed, the standby did not stop at the source's position {g} (it is at {at})"
            ),
            true,
        ));
    }
    op.steps.done("consistent_point", format!("at {g}")).await?;
    Ok((g, src, snap))
}

async fn compare(
    op: &mut Op,
    s: &dr_task::Sides,
    types: &[String],
) -> Result<(String, Value), Failure> {
    let (g, mut src, mut dst) = consistent_point(op, s).await?;
    let wants = |t: &str| types.iter().any(|x| x == t);
    let scope = Scope::from_objects(&s.task.objects);
    let schemas = schemas(&mut src, &scope).await.map_err(db)?;
    let mut result = json!({"at_gtid": g.to_string()});
    let mut summary = json!({"at_gtid": g.to_string()});
    if wants("objects") {
        op.steps
            .begin("objects", format!("schemas: {}", schemas.join(", ")))
            .await?;
        let set = objects(&mut src, &mut dst, &schemas, &scope)
            .await
            .map_err(db)?;
        let ok = set.iter().all(|o| o["result"] == "CONSISTENT");
        summary["objects"] = json!(if ok { "CONSISTENT" } else { "INCONSISTENT" });
        op.steps
            .done(
                "objects",
                summary["objects"].as_str().unwrap_or_default().to_string(),
            )
            .await?;
        result["object_overview_set"] = Value::Array(set);
    }
    let mut tables = Vec::new();
    let mut diffs = Vec::new();
    if wants("lines") || wants("contents") {
        for schema in &schemas {
            let mut names = base_tables(&mut src, schema).await.map_err(db)?;
            names.retain(|t| scope.covers(schema, t));
            let theirs: BTreeSet<String> = base_tables(&mut dst, schema)
                .await
                .map_err(db)?
                .into_iter()
                .collect();
            for table in names {
                if !theirs.contains(&table) {
                    tables.push(json!({"db_name": schema, "table_name": table, "line_result": "TARGET_DB_NOT_EXIST",
                                       "content_result": "TARGET_DB_NOT_EXIST", "message": "missing on the standby"}));
                    continue;
                }
                let shape = checksum::shape(&mut src, schema, &table)
                    .await
                    .map_err(db)?;
                let mut row = json!({"db_name": schema, "table_name": table});
                if wants("lines") {
                    let a = count(&mut src, &shape).await.map_err(db)?;
                    let b = count(&mut dst, &shape).await.map_err(db)?;
                    row["source_row_num"] = json!(a);
                    row["target_row_num"] = json!(b);
                    row["diff_row_num"] = json!(a.abs_diff(b));
                    row["line_result"] = json!(if a == b { "CONSISTENT" } else { "INCONSISTENT" });
                }
                if wants("contents") {
                    if shape.key.is_empty() {
                        row["content_result"] = json!("CAN_NOT_COMPARE");
                        row["message"] =
                            json!("no primary key: contents cannot be compared by range");
                    } else {
                        let (chunks, bad, found) =
                            contents(&mut src, &mut dst, &shape).await.map_err(db)?;
                        row["chunks_total"] = json!(chunks);
                        row["chunks_diff"] = json!(bad);
                        row["content_result"] = json!(if bad == 0 {
                            "CONSISTENT"
                        } else {
                            "INCONSISTENT"
                        });
                        diffs.extend(found);
                    }
                }
                tables.push(row);
            }
        }
        let verdict = |key: &str| {
            let all: Vec<&Value> = tables
                .iter()
                .map(|t| &t[key])
                .filter(|v| !v.is_null())
                .collect();
            if all
                .iter()
                .any(|v| *v == "INCONSISTENT" || *v == "TARGET_DB_NOT_EXIST")
            {
                "INCONSISTENT"
            } else if all.iter().any(|v| *v == "CAN_NOT_COMPARE") {
                "PARTIALLY_CONSISTENT"
            } else {
                "CONSISTENT"
            }
        };
        if wants("lines") {
            summary["lines"] = json!(verdict("line_result"));
            op.steps
                .info("lines", summary["lines"].as_str().unwrap_or_default())
                .await?;
        }
        if wants("contents") {
            summary["contents"] = json!(verdict("content_result"));
            summary["diff_rows"] = json!(diffs.len());
            op.steps
                .info(
                    "contents",
                    format!("{}, {} differing row(s)", summary["contents"], diffs.len()),
                )
                .await?;
        }
    }
    let _ = src.exec("ROLLBACK").await;
    let _ = dst.exec("ROLLBACK").await;
    src.close().await;
    dst.close().await;
    result["table_set"] = Value::Array(tables);
    result["diff_set"] = Value::Array(diffs);
    result["summary"] = summary;
    Ok((g.to_string(), result))
}

/// The task's schemas: its `objects`, or every user schema of the source.
async fn schemas(src: &mut Node, scope: &Scope) -> Result<Vec<String>, DbError> {
    match scope {
        Scope::All => runbook::user_schemas(src).await,
        Scope::Some(s) => Ok(s.iter().map(|x| x.db.clone()).collect()),
    }
}

async fn base_tables(n: &mut Node, schema: &str) -> Result<Vec<String>, DbError> {
    let rows = n
        .rows(&format!(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = {} AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1",
            n.lit(schema)
        ))
        .await?;
    Ok(rows.iter().map(|r| cell(r, 0)).collect())
}

async fn count(n: &mut Node, s: &Shape) -> Result<u64, DbError> {
    Ok(n.text(&format!("SELECT COUNT(*) FROM {}", s.name()))
        .await?
        .parse()
        .unwrap_or(0))
}

/// The names of each kind of object in the schemas, on one side.
async fn names(
    n: &mut Node,
    schemas: &[String],
    scope: &Scope,
) -> Result<BTreeMap<&'static str, BTreeSet<String>>, DbError> {
    let list = schemas
        .iter()
        .map(|s| n.lit(s))
        .collect::<Vec<_>>()
        .join(", ");
    let list = if list.is_empty() {
        "''".to_string()
    } else {
        list
    };
    let queries: [(&str, String); 8] = [
        (
            "database",
            format!(
                "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN ({list})"
            ),
        ),
        (
            "table",
            format!(
                "SELECT CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) FROM information_schema.TABLES WHERE TABLE_SCHEMA IN ({list}) AND TABLE_TYPE = 'BASE TABLE'"
            ),
        ),
        (
            "column",
            format!(
                "SELECT CONCAT(TABLE_SCHEMA, '.', TABLE_NAME, '.', COLUMN_NAME, ' ', COLUMN_TYPE) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA IN ({list})"
            ),
        ),
        (
            "index",
            format!(
                "SELECT DISTINCT CONCAT(TABLE_SCHEMA, '.', TABLE_NAME, '.', INDEX_NAME) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA IN ({list})"
            ),
        ),
        (
            "view",
            format!(
                "SELECT CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) FROM information_schema.VIEWS WHERE TABLE_SCHEMA IN ({list})"
            ),
        ),
        (
            "trigger",
            format!(
                "SELECT CONCAT(TRIGGER_SCHEMA, '.', EVENT_OBJECT_TABLE, '.', TRIGGER_NAME) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA IN ({list})"
            ),
        ),
        (
            "routine",
            format!(
                "SELECT CONCAT(ROUTINE_SCHEMA, '.', ROUTINE_NAME) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA IN ({list})"
            ),
        ),
        (
            "event",
            format!(
                "SELECT CONCAT(EVENT_SCHEMA, '.', EVENT_NAME) FROM information_schema.EVENTS WHERE EVENT_SCHEMA IN ({list})"
            ),
        ),
    ];
    let mut out = BTreeMap::new();
    for (kind, sql) in queries {
        let rows = n.rows(&sql).await?;
        let mut found: BTreeSet<String> = rows.iter().map(|r| cell(r, 0)).collect();
        // These name a table second: only the selected tables count.
        if matches!(kind, "table" | "column" | "index" | "view" | "trigger") {
            found.retain(|name| {
                let mut parts = name.splitn(3, '.');
                let (db, table) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                scope.covers(db, table)
            });
        }
        out.insert(kind, found);
    }
    Ok(out)
}

async fn objects(
    src: &mut Node,
    dst: &mut Node,
    schemas: &[String],
    scope: &Scope,
) -> Result<Vec<Value>, DbError> {
    let a = names(src, schemas, scope).await?;
    let b = names(dst, schemas, scope).await?;
    Ok(a.iter()
        .map(|(kind, ours)| {
            let empty = BTreeSet::new();
            let theirs = b.get(kind).unwrap_or(&empty);
            let differ: Vec<&String> = ours.symmetric_difference(theirs).collect();
            json!({
                "object_type": kind,
                "source_count": ours.len(),
                "target_count": theirs.len(),
                "diff_count": differ.len(),
                "result": if differ.is_empty() { "CONSISTENT" } else { "INCONSISTENT" },
                "differences": differ.iter().take(20).collect::<Vec<_>>(),
            })
        })
        .collect())
}

/// Chunks compared, chunks that differ, and the differing rows.
async fn contents(
    src: &mut Node,
    dst: &mut Node,
    s: &Shape,
) -> Result<(u64, u64, Vec<Value>), DbError> {
    let mut lo: Option<Vec<String>> = None;
    let (mut chunks, mut bad) = (0u64, 0u64);
    let mut diffs = Vec::new();
    loop {
        let hi = checksum::next_bound(src, s, lo.as_deref(), CHUNK).await?;
        let range = s.range(src, lo.as_deref(), hi.as_deref());
        let (a, b) = tokio::join!(
            checksum::chunk(src, s, &range),
            checksum::chunk(dst, s, &range)
        );
        chunks += 1;
        if a? != b? {
            bad += 1;
            if diffs.len() < MAX_DIFFS {
                diffs.extend(drill(src, dst, s, &range).await?);
            }
        }
        match hi {
            Some(h) => lo = Some(h),
            None => break,
        }
    }
    diffs.truncate(MAX_DIFFS);
    Ok((chunks, bad, diffs))
}

/// The rows of one chunk that differ, with a SELECT for each side.
async fn drill(
    src: &mut Node,
    dst: &mut Node,
    s: &Shape,
    range: &str,
) -> Result<Vec<Value>, DbError> {
    let (a, b) = tokio::join!(checksum::rows(src, s, range), checksum::rows(dst, s, range));
    let a: BTreeMap<Vec<String>, String> = a?.into_iter().collect();
    let b: BTreeMap<Vec<String>, String> = b?.into_iter().collect();
    let keys: BTreeSet<&Vec<String>> = a.keys().chain(b.keys()).collect();
    Ok(keys
        .into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            let how = match (a.contains_key(k), b.contains_key(k)) {
                (true, false) => "missing on the standby",
                (false, true) => "only on the standby",
                _ => "values differ",
            };
            let sql = checksum::select_row(src, s, k);
            json!({
                "db_name": s.db,
                "table_name": s.table,
                "key_values": s.key.iter().zip(k.iter()).map(|(c, v)| (c.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
                "difference": how,
                "source_select_sql": sql,
                "target_select_sql": sql,
            })
        })
        .collect())
}
