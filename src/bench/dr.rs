//! `qcgate bench dr`: DR drills on MariaDB servers it starts itself (the
//! `lab`), through a real gateway and signed requests, with an application
//! writing all the while. It prints the write-unavailable window (measured
//! by the gateway from fence to promotion, and as the writer saw it), the
//! switchover job's time from request to `successful`, the failover time,
//! and the acknowledged writes lost.

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use serde_json::json;

use super::drlab::{DrLab, DynError, ZONE, evidence, percentile, say};
use crate::lab::{Server, Writer};

pub struct DrOptions {
    pub drills: usize,
    pub rows: u32,
    pub quiet: bool,
}

#[derive(Debug, serde::Serialize)]
pub struct DrReport {
    pub drills: usize,
    /// Fence → promoted, as the gateway measured it (ms).
    pub window_ms: Vec<f64>,
    /// The longest pause between two acknowledged writes around each drill (ms).
    pub writer_gap_ms: Vec<f64>,
    /// Request → `successful` (ms).
    pub switchover_ms: Vec<f64>,
    pub acknowledged_writes: usize,
    pub lost_writes: usize,
    /// Request → `successful` for a failover after `kill -9` of the primary.
    pub failover_ms: f64,
    /// The promotion itself, as the gateway measured it.
    pub failover_promote_ms: f64,
    /// Writes acknowledged by the dead primary that the new one lacks
    /// (asynchronous replication may lose these; switchover never may).
    pub failover_lost_writes: usize,
    pub zero_lost: bool,
}

const APP_PASSWORD: &str = "Bench#App1";
const REPL_PASSWORD: &str = "Bench#Repl1";

pub async fn run(opts: &DrOptions) -> Result<DrReport, DynError> {
    say(opts.quiet, "starting three MariaDB servers on loopback…");
    let mut lab = DrLab::start(
        &[101, 102, 103],
        &["cl-bencha01", "cl-benchb01", "cl-benchc01"],
    )
    .await?;
    // A primary with data, an application account, and a chain A → B → C.
    say(
        opts.quiet,
        &format!("loading {} rows and building A → B → C…", opts.rows),
    );
    lab.servers[0]
        .exec(&format!(
            "SET GLOBAL read_only=OFF; \
             CREATE USER 'repl'@'%' IDENTIFIED BY '{REPL_PASSWORD}'; \
             GRANT REPLICATION SLAVE, REPLICATION SLAVE ADMIN, BINLOG MONITOR, SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES, RELOAD ON *.* TO 'repl'@'%'; \
             CREATE DATABASE app; CREATE TABLE app.t (id BIGINT PRIMARY KEY, v VARCHAR(64) NOT NULL) ENGINE=InnoDB"
        ))
        .await?;
    let mut root = lab.servers[0].root().await?;
    let mut i = 1;
    while i <= opts.rows {
        let end = (i + 999).min(opts.rows);
        let values: Vec<String> = (i..=end).map(|n| format!("({n},'seed')")).collect();
        root.query_drop(format!("INSERT INTO app.t VALUES {}", values.join(",")))
            .await?;
        i = end + 1;
    }
    root.disconnect().await?;
    let ports = [lab.servers[0].port, lab.servers[1].port];
    for (cluster, port, source_cluster) in [
        ("cl-benchb01", ports[0], "cl-bencha01"),
        ("cl-benchc01", ports[1], "cl-benchb01"),
    ] {
        let sp = json!({"sync_way": "full", "zone": ZONE, "host": "127.0.0.1", "cluster_id": source_cluster,
                        "user": "repl", "password": REPL_PASSWORD, "port": port});
        let job = lab
            .service(cluster, "start_standby", &sp.to_string())
            .await?;
        let (j, _) = lab.wait(&job).await?;
        if j["status"] != "successful" {
            return Err(format!("start_standby on {cluster}: {}", j["error_message"]).into());
        }
    }
    lab.servers[0]
        .exec(&format!(
            "CREATE USER 'app'@'%' IDENTIFIED BY '{APP_PASSWORD}'; GRANT INSERT, SELECT ON app.* TO 'app'@'%'"
        ))
        .await?;

    let writer = Writer::start(
        [lab.servers[0].port, lab.servers[1].port],
        "app",
        APP_PASSWORD,
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut report = DrReport {
        drills: opts.drills,
        window_ms: Vec::new(),
        writer_gap_ms: Vec::new(),
        switchover_ms: Vec::new(),
        acknowledged_writes: 0,
        lost_writes: 0,
        failover_ms: 0.0,
        failover_promote_ms: 0.0,
        failover_lost_writes: 0,
        zero_lost: false,
    };
    for n in 0..opts.drills {
        // B and A take turns as the standby.
        let standby = if n % 2 == 0 {
            "cl-benchb01"
        } else {
            "cl-bencha01"
        };
        let t0 = Instant::now();
        let job = lab.service(standby, "switchover", "").await?;
        let (j, done) = lab.wait(&job).await?;
        if j["status"] != "successful" {
            return Err(format!("switchover {n} failed: {}", j["error_message"]).into());
        }
        report.switchover_ms.push(done.as_secs_f64() * 1000.0);
        let ev = evidence(&j);
        if ev["fence_gtid"] != ev["standby_gtid"] {
            return Err(
                format!("switchover {n}: the standby was not at the fence position: {ev}").into(),
            );
        }
        report
            .window_ms
            .push(ev["window_ms"].as_f64().unwrap_or(0.0));
        tokio::time::sleep(Duration::from_millis(300)).await;
        report
            .writer_gap_ms
            .push(writer.longest_gap_since(t0).await);
        say(
            opts.quiet,
            &format!(
                "switchover {}/{}: window {:.1} ms, writer paused {:.1} ms, job {:.0} ms",
                n + 1,
                opts.drills,
                report.window_ms[n],
                report.writer_gap_ms[n],
                report.switchover_ms[n]
            ),
        );
    }
    let acked = writer.finish().await;
    report.acknowledged_writes = acked.len();
    // The current primary: the one that takes writes.
    let primary = if opts.drills % 2 == 1 { 1 } else { 0 };
    let standby_cluster = if primary == 1 {
        "cl-bencha01"
    } else {
        "cl-benchb01"
    };
    report.lost_writes = missing(&lab.servers[primary], &acked).await?;

    // Failover: the primary's mariadbd is killed.
    let standby = 1 - primary;
    lab.servers[primary].kill9();
    let job = lab.service(standby_cluster, "failover", "").await?;
    let (j, done) = lab.wait(&job).await?;
    if j["status"] != "successful" {
        return Err(format!("failover failed: {}", j["error_message"]).into());
    }
    report.failover_ms = done.as_secs_f64() * 1000.0;
    report.failover_promote_ms = evidence(&j)["promote_ms"].as_f64().unwrap_or(0.0);
    report.failover_lost_writes = missing(&lab.servers[standby], &acked).await?;
    report.zero_lost = report.lost_writes == 0;
    lab.gw.shutdown().await;
    Ok(report)
}

/// Acknowledged ids the server does not hold.
async fn missing(server: &Server, acked: &[(u64, Instant)]) -> Result<usize, DynError> {
    let mut c = server.root().await?;
    let ids: Vec<u64> = c
        .query("SELECT id FROM app.t WHERE id > 1000000000")
        .await?;
    c.disconnect().await?;
    let present: std::collections::HashSet<u64> = ids.into_iter().collect();
    Ok(acked.iter().filter(|(id, _)| !present.contains(id)).count())
}

pub fn print(r: &DrReport) -> std::io::Result<()> {
    crate::output::outln!(
        "DR drills on three local MariaDB servers (A → B → C), an application writing throughout:\n\
         \n  switchovers                 {}\n\
         \x20 write-unavailable window    p50 {:.1} ms   p99 {:.1} ms   (fence → promoted, measured by the gateway)\n\
         \x20 writer's longest pause      p50 {:.1} ms   p99 {:.1} ms   (between acknowledged writes, as the application saw it)\n\
         \x20 switchover job              p50 {:.0} ms   p99 {:.0} ms   (request → successful)\n\
         \x20 acknowledged writes         {}   lost {}{}\n\
         \x20 failover after kill -9      {:.0} ms (request → successful; promotion {:.1} ms); acknowledged writes the new primary lacks: {}",
        r.drills,
        percentile(&r.window_ms, 0.5),
        percentile(&r.window_ms, 0.99),
        percentile(&r.writer_gap_ms, 0.5),
        percentile(&r.writer_gap_ms, 0.99),
        percentile(&r.switchover_ms, 0.5),
        percentile(&r.switchover_ms, 0.99),
        r.acknowledged_writes,
        r.lost_writes,
        if r.zero_lost {
            " (RPO 0)"
        } else {
            "  ← DATA LOST"
        },
        r.failover_ms,
        r.failover_promote_ms,
        r.failover_lost_writes
    )
}
