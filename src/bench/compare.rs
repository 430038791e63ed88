//! `qcgate bench compare`: how long a DR task's content comparison takes to
//! find one planted difference in a large table, on MariaDB servers it
//! starts itself; and, when Debian's `percona-toolkit` is installed,
//! `pt-table-checksum` on the same data, as the peer.

use std::time::{Duration, Instant};

use serde_json::json;

use super::drlab::{DrLab, DynError, say};

pub struct CompareOptions {
    pub rows: u64,
    pub quiet: bool,
}

#[derive(Debug, serde::Serialize)]
pub struct CompareReport {
    pub rows: u64,
    pub table_mb: f64,
    /// `CreateDRTaskCompare` (contents) request → `successful`, seconds.
    pub compare_s: f64,
    /// The comparison itself, as the job measured it.
    pub compare_job_s: f64,
    pub found_planted_key: bool,
    pub diff_rows: u64,
    /// `pt-table-checksum` on the source with the standby as its replica,
    /// seconds; `None` when it is not installed.
    pub pt_table_checksum_s: Option<f64>,
    pub pt_table_checksum_found: Option<bool>,
    /// Copying the source to the standby (`StartDRTasks`, full), seconds.
    pub full_copy_s: f64,
}

pub async fn run(opts: &CompareOptions) -> Result<CompareReport, DynError> {
    say(opts.quiet, "starting two MariaDB servers on loopback…");
    let mut lab = DrLab::start(&[201, 202], &["cl-cmpsrc01", "cl-cmpdst01"]).await?;
    say(opts.quiet, &format!("loading {} rows…", opts.rows));
    lab.servers[0]
        .exec(&format!(
            "SET GLOBAL read_only=OFF; CREATE DATABASE app; \
             CREATE TABLE app.t (id BIGINT PRIMARY KEY, k INT NOT NULL, c CHAR(60) NOT NULL, pad CHAR(20) NOT NULL) ENGINE=InnoDB; \
             INSERT INTO app.t SELECT seq, seq MOD 1000, CONCAT('row-', seq, '-', REPEAT('x', 40)), 'pad' FROM app.seq_1_to_{}",
            opts.rows
        ))
        .await?;
    let r = lab
        .call(
            "CreateDRTask",
            &[
                ("name", "bench-compare"),
                ("standby_cluster", "cl-cmpdst01"),
                ("source_cluster", "cl-cmpsrc01"),
            ],
        )
        .await?;
    let task = r["dr_task_id"].as_str().ok_or("no task id")?.to_string();
    let r = lab
        .call("PrecheckDRTasks", &[("dr_tasks.1", &task)])
        .await?;
    let job = r["job_ids"][task.as_str()]
        .as_str()
        .ok_or("no job")?
        .to_string();
    lab.ok(&job).await?;
    say(
        opts.quiet,
        "copying it to the standby (StartDRTasks, full)…",
    );
    let t = Instant::now();
    let r = lab
        .call(
            "StartDRTasks",
            &[("dr_tasks.1", &task), ("confirm_alarms", "1")],
        )
        .await?;
    let job = r["job_ids"][task.as_str()]
        .as_str()
        .ok_or("no job")?
        .to_string();
    lab.ok(&job).await?;
    let full_copy_s = t.elapsed().as_secs_f64();
    // One row changed on the standby alone.
    let planted = (opts.rows * 2 / 3).max(1);
    lab.servers[1]
        .exec(&format!(
            "SET SESSION sql_log_bin=0; UPDATE app.t SET c = 'planted' WHERE id = {planted}"
        ))
        .await?;
    say(opts.quiet, "comparing contents…");
    let t = Instant::now();
    let r = lab
        .call(
            "CreateDRTaskCompare",
            &[("dr_task", &task), ("compare_type.1", "contents")],
        )
        .await?;
    let (cid, job) = (
        r["compare_id"].as_str().ok_or("no compare id")?.to_string(),
        r["job_id"].as_str().ok_or("no job")?.to_string(),
    );
    lab.ok(&job).await?;
    let compare_s = t.elapsed().as_secs_f64();
    let r = lab
        .call(
            "DescribeDRTaskCompareResults",
            &[("dr_task", &task), ("compare_id", &cid)],
        )
        .await?;
    let found = r["diff_set"].as_array().is_some_and(|d| {
        d.iter()
            .any(|x| x["key_values"]["id"] == json!(planted.to_string()))
    });
    let diff_rows = r["diff_count"].as_u64().unwrap_or(0);
    let compare_job_s = r["summary"]["duration_ms"].as_f64().unwrap_or(0.0) / 1000.0;
    let mb: f64 = {
        let mut c = lab.servers[0].root().await?;
        mysql_async::prelude::Queryable::query_drop(&mut c, "ANALYZE TABLE app.t").await?;
        let v: Option<f64> = mysql_async::prelude::Queryable::query_first(
            &mut c,
            "SELECT (DATA_LENGTH + INDEX_LENGTH) / 1048576 FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'app' AND TABLE_NAME = 't'",
        )
        .await?;
        c.disconnect().await?;
        v.unwrap_or(0.0)
    };
    let (pt_s, pt_found) = pt_table_checksum(&lab, opts.quiet).await;
    lab.gw.shutdown().await;
    Ok(CompareReport {
        rows: opts.rows,
        table_mb: mb,
        compare_s,
        compare_job_s,
        found_planted_key: found,
        diff_rows,
        pt_table_checksum_s: pt_s,
        pt_table_checksum_found: pt_found,
        full_copy_s,
    })
}

/// `pt-table-checksum` run on the source, the standby found as its replica.
async fn pt_table_checksum(lab: &DrLab, quiet: bool) -> (Option<f64>, Option<bool>) {
    let found = std::process::Command::new("pt-table-checksum")
        .arg("--version")
        .output();
    if !found.is_ok_and(|o| o.status.success()) {
        say(
            quiet,
            "pt-table-checksum is not installed (apt-get install percona-toolkit): no peer figure",
        );
        return (None, None);
    }
    say(quiet, "pt-table-checksum on the same data…");
    let dsn = format!("h=127.0.0.1,P={},u=root", lab.servers[0].port);
    let t = Instant::now();
    let out = tokio::process::Command::new("pt-table-checksum")
        .arg(&dsn)
        .args([
            "--databases=app",
            "--recursion-method=hosts",
            "--no-check-binlog-format",
            "--no-version-check",
            "--chunk-time=0.5",
        ])
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(Duration::from_secs(600), out).await {
        Ok(Ok(o)) => {
            let secs = t.elapsed().as_secs_f64();
            let text = String::from_utf8_lossy(&o.stdout);
            // Its table: TS ERRORS DIFFS ROWS DIFF_ROWS CHUNKS SKIPPED TIME TABLE
            let diffs = text
                .lines()
                .find(|l| l.ends_with("app.t"))
                .and_then(|l| l.split_whitespace().nth(2))
                .and_then(|d| d.parse::<u64>().ok());
            (Some(secs), diffs.map(|d| d > 0))
        }
        _ => (None, None),
    }
}

pub fn print(r: &CompareReport) -> std::io::Result<()> {
    crate::output::outln!(
        "Content comparison of a DR task, one planted difference on the standby:\n\
         \n  table                       {} rows, {:.0} MB\n\
         \x20 full copy to the standby    {:.1} s (StartDRTasks, request → successful)\n\
         \x20 compare, request → done     {:.2} s (the comparison itself {:.2} s); planted key found: {}; differing rows {}\n\
         \x20 pt-table-checksum (peer)    {}",
        r.rows,
        r.table_mb,
        r.full_copy_s,
        r.compare_s,
        r.compare_job_s,
        r.found_planted_key,
        r.diff_rows,
        match (r.pt_table_checksum_s, r.pt_table_checksum_found) {
            (Some(s), f) => format!(
                "{s:.2} s; difference found: {}",
                f.map_or("?".into(), |f| f.to_string())
            ),
            _ => "not installed (apt-get install percona-toolkit)".into(),
        }
    )
}
