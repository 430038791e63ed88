//! `qcgate drtasks list|show|logs|compare`: DR tasks for a person, read
//! from the data dir (works while `serve` runs).

use std::process::ExitCode;

use super::{CliResult, DataDir};
use crate::cli::outln;
use crate::store::dr_tasks::{self, TaskFilter};
use crate::store::local::Local;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Every task, newest first.
    List {
        #[command(flatten)]
        dir: DataDir,
    },
    /// One task: its sides, status, pre-check and progress (as a bar).
    Show {
        id: String,
        #[command(flatten)]
        dir: DataDir,
    },
    /// A task's log, oldest first.
    Logs {
        id: String,
        #[command(flatten)]
        dir: DataDir,
    },
    /// A task's latest comparison (or `--compare drc-…`).
    Compare {
        id: String,
        #[arg(long)]
        compare: Option<String>,
        #[command(flatten)]
        dir: DataDir,
    },
}

fn task(dir: &DataDir, id: &str) -> Result<(Local, dr_tasks::DrTask), Box<dyn std::error::Error>> {
    let db = dir.open()?;
    let t = db
        .read(|m| m.task(id))?
        .filter(|t| t.status != "deleted")
        .ok_or_else(|| format!("no DR task {id}"))?;
    Ok((db, t))
}

/// `[#######-------------]` for a share in 0..=1.
fn bar(share: f64) -> String {
    let filled = (share.clamp(0.0, 1.0) * 30.0).round() as usize;
    format!("[{}{}]", "#".repeat(filled), "-".repeat(30 - filled))
}

pub fn run(cmd: Command) -> CliResult {
    match cmd {
        Command::List { dir } => {
            let db = dir.open()?;
            let mut all = Vec::new();
            for owner in db.read(|m| m.task_owners())? {
                let f = TaskFilter {
                    owner,
                    limit: 1000,
                    ..Default::default()
                };
                all.extend(db.read(|m| m.tasks(&f))?.0);
            }
            outln!(
                "{:<13} {:<20} {:<14} {:<14} {:<14} {:<9} STATUS",
                "TASK",
                "NAME",
                "OWNER",
                "STANDBY",
                "SOURCE",
                "SYNC_WAY"
            )?;
            for t in all {
                outln!(
                    "{:<13} {:<20} {:<14} {:<14} {:<14} {:<9} {}",
                    t.id,
                    t.name,
                    t.owner,
                    t.standby_cluster,
                    t.source_cluster
                        .clone()
                        .unwrap_or(t.source_endpoint.clone()),
                    t.sync_way,
                    t.status
                )?;
            }
        }
        Command::Show { id, dir } => {
            let (_, t) = task(&dir, &id)?;
            outln!("{} {} ({})", t.id, t.name, t.status)?;
            outln!(
                "  {} ← {}   sync_way {}, created {}",
                t.standby_cluster,
                t.source_cluster
                    .clone()
                    .unwrap_or(t.source_endpoint.clone()),
                t.sync_way,
                crate::clock::format_ts(t.create_time)
            )?;
            if !t.last_error.is_empty() {
                outln!("  last error: {}", t.last_error)?;
            }
            if let Some(pc) = &t.precheck {
                outln!(
                    "  pre-check: {}% passed, result {}",
                    pc["total_passed_rate"],
                    pc["result"]
                )?;
                for i in pc["precheck_result_set"].as_array().into_iter().flatten() {
                    if i["result"] != "PASSED" {
                        outln!(
                            "    {} {}: {}",
                            i["result"].as_str().unwrap_or(""),
                            i["item"].as_str().unwrap_or(""),
                            i["failed_reason"].as_str().unwrap_or("")
                        )?;
                    }
                }
            }
            match (&t.progress, t.status.as_str()) {
                (Some(p), _) => {
                    let lag = p["lag_trx"].as_u64();
                    let share = if p["sync_status"] == "NORMAL" {
                        1.0
                    } else {
                        0.5
                    };
                    outln!(
                        "  sync {} {} lag {} trx (not received {}, not applied {}), heartbeat delay {} ms, apply delay {} ms",
                        bar(share),
                        p["sync_status"].as_str().unwrap_or("?"),
                        lag.map_or("?".into(), |l| l.to_string()),
                        p["rpo"]["lag_trx"],
                        p["rto"]["lag_trx"],
                        ms(&p["rpo"]["delay_ms"], false),
                        ms(&p["rto"]["delay_ms"], p["rto"]["delay_capped"] == true)
                    )?;
                    if let Some(e) = p["last_error"].as_str() {
                        outln!("  replication error: {e}")?;
                    }
                }
                (None, "initializing" | "starting") => outln!("  copy {} in progress", bar(0.5))?,
                _ => {}
            }
        }
        Command::Logs { id, dir } => {
            let (db, t) = task(&dir, &id)?;
            let (lines, _) = db.read(|m| m.task_logs(&t.id, &[], 0, u64::MAX))?;
            for l in lines {
                outln!("{} {:<7} {:<22} {}", l.time, l.level, l.code, l.message)?;
            }
        }
        Command::Compare { id, compare, dir } => {
            let (db, t) = task(&dir, &id)?;
            let all = db.read(|m| m.compares(&t.id))?;
            let c = match compare {
                Some(cid) => all.into_iter().find(|c| c.id == cid),
                None => all.into_iter().next(),
            }
            .ok_or("no comparison of this task")?;
            outln!("{} {} at {} {}", c.id, c.status, c.at_gtid, c.error)?;
            outln!("  summary: {}", c.result["summary"])?;
            for o in c.result["object_overview_set"]
                .as_array()
                .into_iter()
                .flatten()
            {
                outln!(
                    "  {:<9} source {:>5} standby {:>5}  {}",
                    o["object_type"].as_str().unwrap_or(""),
                    o["source_count"],
                    o["target_count"],
                    o["result"].as_str().unwrap_or("")
                )?;
            }
            for tb in c.result["table_set"].as_array().into_iter().flatten() {
                outln!(
                    "  {}.{}: rows {} / {} ({}), contents {}",
                    tb["db_name"].as_str().unwrap_or(""),
                    tb["table_name"].as_str().unwrap_or(""),
                    tb["source_row_num"],
                    tb["target_row_num"],
                    tb["line_result"].as_str().unwrap_or("-"),
                    tb["content_result"].as_str().unwrap_or("-")
                )?;
            }
            for d in c.result["diff_set"]
                .as_array()
                .into_iter()
                .flatten()
                .take(50)
            {
                outln!(
                    "  differs: {} {} — {}",
                    d["key_values"],
                    d["difference"].as_str().unwrap_or(""),
                    d["source_select_sql"].as_str().unwrap_or("")
                )?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A delay for people: `-` when unknown, `≥` when it hit its cap.
fn ms(v: &serde_json::Value, capped: bool) -> String {
    v.as_f64().map_or("-".into(), |d| {
        format!("{}{d:.0}", if capped { ">=" } else { "" })
    })
}
