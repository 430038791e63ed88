//! `qcgate bench`: drives real gateways (child processes of this binary, each
//! on a temporary data dir) with signed requests over keep-alive connections,
//! and measures a bare hyper server in the same run as the ceiling.

mod ceiling;
pub mod compare;
pub mod dr;
pub mod drlab;
mod load;
mod pglab;
pub mod shared;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

pub use ceiling::serve as serve_ceiling;
use load::{LoadResult, Planned, Planner, Shape};

use crate::client::{self, Credentials};
use crate::output::outln;
use crate::secret::Secret;
use crate::store::{self, Durability, clusters, jobs};

pub type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Debug, Clone)]
pub struct Options {
    pub connections: usize,
    pub duration: Duration,
    /// Jobs stored before the read phases (the memory figure is taken after them).
    pub preload: u64,
    pub quiet: bool,
    /// Phases to run; empty: all of them.
    pub only: Vec<Phase>,
    /// A gateway already running, instead of child processes of this binary.
    pub endpoint: Option<Endpoint>,
    /// Ceiling-then-gateway runs per phase; the round with the median ratio
    /// is reported.
    pub rounds: usize,
}

/// A running gateway to measure (`--endpoint`): loopback only, with a key and
/// clusters of its own. Only the write, read and mixed phases run against it;
/// CPU and memory figures need its `pid`.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub authority: String,
    pub creds: Credentials,
    pub zone: String,
    pub clusters: Vec<String>,
    pub pid: Option<u32>,
}

impl Endpoint {
    /// Checks that `url` (`http://HOST:PORT/iaas/`) names a loopback address:
    /// the benchmark never sends load anywhere else.
    pub fn parse_url(url: &str) -> Result<String, String> {
        let authority = url
            .strip_prefix("http://")
            .ok_or("the endpoint must be http://HOST:PORT/iaas/")?
            .split('/')
            .next()
            .unwrap_or_default();
        let host = match authority.rsplit_once(':') {
            Some((h, port)) if port.parse::<u16>().is_ok() => h,
            _ => return Err(format!("the endpoint [{authority}] needs a port")),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            return Err(format!(
                "the endpoint host [{host}] is not a loopback address; qcgate bench only loads this machine"
            ));
        }
        Ok(authority.to_string())
    }
}

/// Where a gateway phase sends its load, and as whom.
struct Target {
    authority: String,
    /// The process whose CPU time is counted, when known.
    pid: Option<u32>,
    /// The gateway's data dir, when this command started it.
    data_dir: Option<std::path::PathBuf>,
    creds: Credentials,
    zone: String,
}

/// A part of the benchmark, for `--only` (profiling one path at a time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Phase {
    /// RunClusterCustomService with synchronous=NORMAL.
    Write,
    /// DescribeJobs by id.
    Read,
    /// One write for four reads.
    Mixed,
    /// RunClusterCustomService with synchronous=FULL.
    Full,
    /// Enqueue → executor start latency.
    Start,
}

#[derive(Debug, Serialize)]
pub struct PhaseReport {
    pub name: String,
    pub ok: u64,
    pub failed: u64,
    pub seconds: f64,
    pub requests_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub ratio_to_ceiling: f64,
    /// The server's own CPU time (user + system, all threads) per successful
    /// request: steadier than req/s on a shared machine. Null when the
    /// server's process is not known (`--endpoint` without `--pid`).
    pub server_cpu_us_per_request: Option<f64>,
    /// The same, by thread name (as Linux keeps it, cut to 15 bytes): the
    /// writer's and the checkpointer's share moves less than the whole.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub server_cpu_us_per_request_by_thread: BTreeMap<String, f64>,
    /// The load generator's CPU time per successful request. With the
    /// server's and the idle share it accounts for a ratio: on 2 cores,
    /// req/s ≈ 2 s × (1 − idle) / (server + load CPU per request).
    pub load_cpu_us_per_request: f64,
    /// The share of the machine's CPU time left unused during the run, in
    /// percent: a server that leaves cores idle is bound by waiting, not CPU.
    pub machine_idle_percent: Option<f64>,
    /// Every round of the phase, in the order run; the fields above are
    /// those of the round with the median ratio. Empty for the ceiling.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rounds: Vec<Round>,
}

/// One ceiling run and the gateway run right after it.
#[derive(Debug, Clone, Serialize)]
pub struct Round {
    pub ceiling_requests_per_sec: f64,
    pub requests_per_sec: f64,
    pub ratio_to_ceiling: f64,
    pub ok: u64,
    pub failed: u64,
    pub p99_ms: f64,
    pub server_cpu_us_per_request: Option<f64>,
    pub load_cpu_us_per_request: f64,
    pub machine_idle_percent: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub connections: usize,
    pub seconds_per_phase: f64,
    pub ceiling: PhaseReport,
    pub phases: Vec<PhaseReport>,
    pub enqueue_to_start_p50_ms: f64,
    pub enqueue_to_start_p99_ms: f64,
    pub enqueue_to_start_jobs: u64,
    pub jobs_stored: u64,
    pub gateway_rss_mib: f64,
    /// The most it was resident at any time (`VmHWM`).
    pub gateway_peak_rss_mib: f64,
}

/// A gateway child process on a temporary data dir.
struct Gateway {
    child: Child,
    authority: String,
    creds: Credentials,
    owner: String,
    dir: tempfile::TempDir,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_child(
    args: &[&str],
) -> BenchResult<(
    Child,
    std::io::Lines<BufReader<std::process::ChildStdout>>,
    String,
)> {
    // The request path measured without a log line per request (at info a
    // gateway logs every change it accepts).
    let mut child = Command::new(std::env::current_exe()?)
        .env("RUST_LOG", "qcgate=warn")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
    let first = lines.next().ok_or("child printed nothing")??;
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .ok_or("no address in the child's first line")?;
    let authority = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    Ok((child, lines, authority))
}

fn start_gateway(model_delay_ms: u64, durability: Durability) -> BenchResult<Gateway> {
    let dir = tempfile::tempdir()?;
    let durability = match durability {
        Durability::Normal => "normal",
        Durability::Full => "full",
    };
    let data_dir = dir
        .path()
        .to_str()
        .ok_or("temp dir is not UTF-8")?
        .to_string();
    // The write phases keep every job queued: lift the per-owner queue quota.
    let config = format!("{data_dir}/bench.toml");
    std::fs::write(&config, "max_open_jobs_per_owner = 100000000\n")?;
    let (child, mut lines, authority) = spawn_child(&[
        "serve",
        "--config",
        &config,
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        &data_dir,
        "--model-delay",
        &model_delay_ms.to_string(),
        "--durability",
        durability,
    ])?;
    let mut field = |name: &str| -> BenchResult<String> {
        for l in lines.by_ref() {
            if let Some(v) = l?.trim().strip_prefix(name) {
                return Ok(v.trim().to_string());
            }
        }
        Err(format!("serve did not print {name}").into())
    };
    let (id, secret, owner) = (
        field("access_key_id:")?,
        field("secret_access_key:")?,
        field("owner:")?,
    );
    std::thread::spawn(move || for _ in lines {});
    Ok(Gateway {
        child,
        authority,
        creds: Credentials {
            access_key_id: id,
            secret_access_key: Secret::new(secret),
        },
        owner,
        dir,
    })
}

impl Gateway {
    fn target(&self) -> Target {
        Target {
            authority: self.authority.clone(),
            pid: Some(self.child.id()),
            data_dir: Some(self.dir.path().to_path_buf()),
            creds: self.creds.clone(),
            zone: "sh1a".into(),
        }
    }

    fn add_clusters(&self, n: usize) -> BenchResult<Vec<String>> {
        let ids: Vec<String> = (0..n).map(|i| format!("cl-b{i:07}")).collect();
        let mut conn = store::open_rw(&store::db_path(self.dir.path()))?;
        let (owner, list) = (self.owner.clone(), ids.clone());
        store::with_tx(&mut conn, move |c| {
            for id in &list {
                clusters::add(c, id, "sh1a", &owner, "bench", &Default::default())?;
            }
            Ok(())
        })?;
        Ok(ids)
    }

    /// Stores `n` finished jobs, as a long-running gateway would have.
    fn preload(&self, n: u64) -> BenchResult<()> {
        let mut conn = store::open_rw(&store::db_path(self.dir.path()))?;
        let owner = self.owner.clone();
        let mut left = n;
        while left > 0 {
            let batch = left.min(50_000);
            let owner = owner.clone();
            store::with_tx(&mut conn, move |c| {
                let job = jobs::NewJob {
                    owner,
                    zone: "sh1a".into(),
                    action: "RunClusterCustomService".into(),
                    lane: "bench-preload".into(),
                    resource_ids: vec!["cl-preload".into()],
                    directive: r#"{"action":"RunClusterCustomService","service":"start_standby"}"#
                        .into(),
                    task: "{}".into(),
                    secrets: None,
                };
                for _ in 0..batch {
                    jobs::insert(c, &job)?;
                }
                c.execute("UPDATE jobs SET status = 'successful' WHERE lane = 'bench-preload' AND status = 'pending'", [])?;
                c.execute(
                    "UPDATE lanes SET pending = 0, head = NULL, tail = NULL WHERE lane = 'bench-preload'",
                    [],
                )?;
                c.execute(
                    "UPDATE owner_open SET open = open - ?2 WHERE owner = ?1",
                    rusqlite::params![job.owner, batch as i64],
                )?;
                Ok(())
            })?;
            left -= batch;
        }
        Ok(())
    }

    fn jobs_stored(&self) -> BenchResult<u64> {
        let conn = store::open_rw(&store::db_path(self.dir.path()))?;
        Ok(conn.query_row("SELECT COUNT(*) FROM jobs", [], |r| r.get::<_, i64>(0))? as u64)
    }

    /// Enqueue → executor start, from the stored timestamps.
    fn start_latencies(&self) -> BenchResult<Vec<i64>> {
        let conn = store::open_rw(&store::db_path(self.dir.path()))?;
        let mut stmt = conn.prepare(
            "SELECT started_ms - enqueued_ms FROM jobs WHERE started_ms IS NOT NULL ORDER BY 1",
        )?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// User + system CPU time of a process, all its threads, in microseconds.
fn cpu_us(pid: u32) -> u64 {
    stat_cpu_us(Path::new(&format!("/proc/{pid}/stat")))
}

/// User + system CPU time in a `/proc/…/stat` file, in microseconds.
fn stat_cpu_us(path: &Path) -> u64 {
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0;
    };
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let ticks: u64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    // USER_HZ is 100 on Linux.
    ticks * 10_000
}

/// Idle (and disk-wait) and total CPU time of the whole machine so far, in
/// clock ticks, from the first line of `/proc/stat`.
fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu = stat.lines().next()?.strip_prefix("cpu ")?;
    // user nice system idle iowait irq softirq steal (guest time is in user).
    let t: Vec<u64> = cpu
        .split_whitespace()
        .take(8)
        .filter_map(|f| f.parse().ok())
        .collect();
    (t.len() == 8).then(|| (t[3] + t[4], t.iter().sum()))
}

/// The idle share between two [`machine_ticks`] readings.
fn idle_share(before: Option<(u64, u64)>, after: Option<(u64, u64)>) -> Option<f64> {
    let ((idle0, total0), (idle1, total1)) = (before?, after?);
    let total = total1.checked_sub(total0).filter(|t| *t > 0)?;
    Some(idle1.saturating_sub(idle0) as f64 / total as f64)
}

/// CPU time of a process's live threads, summed by thread name.
fn thread_cpu_us(pid: u32) -> BTreeMap<String, u64> {
    let mut by_name = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return by_name;
    };
    for task in tasks.flatten() {
        let dir = task.path();
        let name = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        let us = stat_cpu_us(&dir.join("stat"));
        *by_name.entry(name.trim().to_string()).or_insert(0) += us;
    }
    by_name
}

/// A line of `/proc/PID/status` in KiB: `VmRSS:` now, `VmHWM:` its peak.
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// RunClusterCustomService, each request uniquely signed (a fresh `req_id`).
fn rccs_planner(t: &Target, clusters: Arc<Vec<String>>, spread: usize) -> Planner {
    let (creds, zone) = (t.creds.clone(), t.zone.clone());
    let sp = r#"{"sync_way":"full","zone":"sh1a","host":"127.0.0.1","cluster_id":"cl-source00","user":"repl","password":"Passwd@123","port":3306}"#;
    Arc::new(move |conn, n| {
        let cluster = &clusters[(conn + n as usize * spread) % clusters.len()];
        let q = client::sign(
            &creds,
            "GET",
            "/iaas/",
            vec![
                ("action".into(), "RunClusterCustomService".into()),
                ("cluster".into(), cluster.clone()),
                ("service".into(), "start_standby".into()),
                ("role".into(), "maininstance".into()),
                ("service_params".into(), sp.into()),
                ("zone".into(), zone.clone()),
                ("req_id".into(), format!("{conn}-{n}")),
            ],
        );
        Planned::get(format!("/iaas/?{q}"))
    })
}

fn describe_planner(t: &Target, job_ids: Arc<Vec<String>>) -> Planner {
    let (creds, zone) = (t.creds.clone(), t.zone.clone());
    Arc::new(move |conn, n| {
        let id = &job_ids[(conn * 7919 + n as usize * 104_729) % job_ids.len()];
        let q = client::sign(
            &creds,
            "GET",
            "/iaas/",
            vec![
                ("action".into(), "DescribeJobs".into()),
                ("jobs.1".into(), id.clone()),
                ("zone".into(), zone.clone()),
                ("req_id".into(), format!("{conn}-{n}")),
            ],
        );
        Planned::get(format!("/iaas/?{q}"))
    })
}

/// Signs `per_conn` requests of every connection before the phase starts, so
/// the generator only replays bytes while measuring (as wrk does); past them
/// it signs on the fly.
fn presigned(plan: Planner, conns: usize, per_conn: u64) -> Planner {
    let table: Arc<Vec<Vec<Planned>>> = Arc::new(
        (0..conns)
            .map(|c| (0..per_conn).map(|n| plan(c, n)).collect())
            .collect(),
    );
    Arc::new(
        move |c, n| match table.get(c).and_then(|v| v.get(n as usize)) {
            Some(p) => p.clone(),
            None => plan(c, n),
        },
    )
}

fn job_ids(r: &LoadResult) -> Vec<String> {
    r.kept
        .iter()
        .filter_map(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
        .filter_map(|v| v["job_id"].as_str().map(str::to_string))
        .collect()
}

struct Bars {
    quiet: bool,
}

impl Bars {
    fn bar(&self, name: &str, duration: Duration) -> ProgressBar {
        let bar = ProgressBar::with_draw_target(
            Some(duration.as_millis() as u64),
            if self.quiet {
                ProgressDrawTarget::hidden()
            } else {
                ProgressDrawTarget::stderr()
            },
        );
        if let Ok(style) = ProgressStyle::with_template("{prefix:<34} [{bar:30}] {msg}") {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(name.to_string());
        bar
    }
}

/// One load run against the server at `authority` (process `pid`).
async fn phase(
    bars: &Bars,
    name: &str,
    (authority, pid): (&str, Option<u32>),
    shape: Shape,
    plan: Planner,
) -> BenchResult<LoadResult> {
    let bar = bars.bar(name, shape.duration);
    let cpu_before = pid.map(|pid| (cpu_us(pid), thread_cpu_us(pid)));
    let (load_before, machine_before) = (cpu_us(std::process::id()), machine_ticks());
    let mut r = load::run(authority, shape, plan, &bar).await?;
    r.load_cpu_us = cpu_us(std::process::id()).saturating_sub(load_before);
    r.machine_idle = idle_share(machine_before, machine_ticks());
    if let Some((pid, (before, threads_before))) = pid.zip(cpu_before) {
        r.server_cpu_us = Some(cpu_us(pid).saturating_sub(before));
        // Threads that ended during the run count in the total only.
        r.server_thread_cpu_us = thread_cpu_us(pid)
            .into_iter()
            .map(|(name, us)| {
                let was = threads_before.get(&name).copied().unwrap_or(0);
                (name, us.saturating_sub(was))
            })
            .collect();
    }
    bar.finish_with_message(format!("{:.0} req/s, p99 {:.2} ms", r.rps(), r.ms(0.99)));
    Ok(r)
}

fn report(name: &str, r: &LoadResult, ceiling: f64) -> PhaseReport {
    PhaseReport {
        name: name.to_string(),
        ok: r.ok,
        failed: r.failed,
        seconds: r.elapsed.as_secs_f64(),
        requests_per_sec: r.rps(),
        p50_ms: r.ms(0.5),
        p99_ms: r.ms(0.99),
        p999_ms: r.ms(0.999),
        ratio_to_ceiling: if ceiling > 0.0 {
            r.rps() / ceiling
        } else {
            0.0
        },
        server_cpu_us_per_request: r.server_cpu_us.map(|us| per_request(us, r.ok)),
        server_cpu_us_per_request_by_thread: r
            .server_thread_cpu_us
            .iter()
            .map(|(name, &us)| (name.clone(), per_request(us, r.ok)))
            .collect(),
        load_cpu_us_per_request: per_request(r.load_cpu_us, r.ok),
        machine_idle_percent: r.machine_idle.map(|f| f * 100.0),
        rounds: Vec::new(),
    }
}

fn per_request(us: u64, ok: u64) -> f64 {
    if ok > 0 { us as f64 / ok as f64 } else { 0.0 }
}

/// Waits (at most 10 s) for the gateway's background work to end: its log
/// copied back and truncated, which it does after 2 s without a commit (when
/// its data dir is known), then 200 ms without CPU use. Otherwise that work
/// could run during the ceiling's run and lower it.
async fn settle(target: &Target) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let pause = |ms| tokio::time::sleep(Duration::from_millis(ms));
    if let Some(dir) = &target.data_dir {
        let wal = store::db_path(dir).with_extension("db-wal");
        while std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0)
            && std::time::Instant::now() < deadline
        {
            pause(100).await;
        }
    }
    if let Some(pid) = target.pid {
        let mut last = cpu_us(pid);
        while std::time::Instant::now() < deadline {
            pause(200).await;
            let now = cpu_us(pid);
            if now == last {
                break;
            }
            last = now;
        }
    }
}

/// The ceiling, and the reports of the phases measured against it.
struct Runs {
    ceiling: Ceiling,
    bars: Bars,
    phases: Vec<PhaseReport>,
    /// At least one.
    rounds: usize,
}

impl Runs {
    /// A gateway phase, each round right after a ceiling run under the same
    /// conditions; the report of the round with the median ratio joins
    /// `phases`, with every round's figures. Returns the last round's result:
    /// its kept replies name the newest jobs, the ones later phases read
    /// (as with one round), whichever round was the median.
    /// `plan` makes each round's requests: writes must be signed anew per
    /// round, or a later round would replay the first.
    async fn compared(
        &mut self,
        target: &Target,
        (title, key): (&str, &str),
        shape: Shape,
        plan: impl Fn(u64) -> Planner,
    ) -> BenchResult<LoadResult> {
        let mut runs = Vec::with_capacity(self.rounds);
        let mut last = None;
        for round in 0..self.rounds as u64 {
            let plan = plan(round);
            settle(target).await;
            let c = self.ceiling.measure(&self.bars, shape).await?;
            let r = phase(
                &self.bars,
                title,
                (&target.authority, target.pid),
                shape,
                plan,
            )
            .await?;
            runs.push((report(key, &r, c), c));
            last = Some(r);
        }
        let rounds: Vec<Round> = runs
            .iter()
            .map(|(p, c)| Round {
                ceiling_requests_per_sec: *c,
                requests_per_sec: p.requests_per_sec,
                ratio_to_ceiling: p.ratio_to_ceiling,
                ok: p.ok,
                failed: p.failed,
                p99_ms: p.p99_ms,
                server_cpu_us_per_request: p.server_cpu_us_per_request,
                load_cpu_us_per_request: p.load_cpu_us_per_request,
                machine_idle_percent: p.machine_idle_percent,
            })
            .collect();
        runs.sort_by(|a, b| a.0.ratio_to_ceiling.total_cmp(&b.0.ratio_to_ceiling));
        // The lower of the middle two for an even count: never the luckier.
        let (mut report, _) = runs.swap_remove((runs.len() - 1) / 2);
        if rounds.len() > 1 {
            report.rounds = rounds;
        }
        self.phases.push(report);
        last.ok_or_else(|| "a phase ran no round".into())
    }
}

/// A write phase's round `round`: its requests numbered from `round << 32`,
/// the first `per_conn` (at most 4000) of each connection signed ahead.
fn round_writes(
    t: &Target,
    clusters: &Arc<Vec<String>>,
    conns: usize,
    per_conn: u64,
    round: u64,
) -> Planner {
    let plan = rccs_planner(t, clusters.clone(), 0);
    presigned(numbered(plan, round << 32), conns, per_conn.min(4000))
}

/// `plan` with its requests numbered from `from`: rounds and phases that
/// write take numbers apart, so every signature stays unique.
fn numbered(plan: Planner, from: u64) -> Planner {
    Arc::new(move |conn, n| plan(conn, from + n))
}

/// The bare hyper server, measured right before each gateway phase so that
/// each ratio compares two runs taken under the same machine conditions.
struct Ceiling {
    child: Child,
    authority: String,
    runs: Vec<LoadResult>,
}

impl Drop for Ceiling {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Ceiling {
    fn start() -> BenchResult<Ceiling> {
        let (child, lines, authority) = spawn_child(&["bench-ceiling", "--listen", "127.0.0.1:0"])?;
        std::thread::spawn(move || for _ in lines {});
        Ok(Ceiling {
            child,
            authority,
            runs: Vec::new(),
        })
    }

    async fn measure(&mut self, bars: &Bars, shape: Shape) -> BenchResult<f64> {
        let shape = Shape {
            keep_bodies: false,
            ..shape
        };
        let root = Planned::get("/".into());
        let plan: Planner = Arc::new(move |_, _| root.clone());
        let target = (self.authority.as_str(), Some(self.child.id()));
        let r = phase(bars, "bare hyper (ceiling)", target, shape, plan).await?;
        let rps = r.rps();
        self.runs.push(r);
        Ok(rps)
    }
}

pub async fn run(opts: &Options) -> BenchResult<Report> {
    let bars = Bars { quiet: opts.quiet };
    let want = |p: Phase| opts.only.is_empty() || opts.only.contains(&p);
    let local_only = |p: Phase| opts.only.contains(&p);
    if opts.endpoint.is_some() {
        if local_only(Phase::Full) || local_only(Phase::Start) || opts.preload > 0 {
            return Err(
                "with --endpoint only the write, read and mixed phases run (FULL durability, \
                        enqueue → start and --preload need a gateway this command starts)"
                    .into(),
            );
        }
        if !opts.quiet {
            eprintln!("against --endpoint: the write, read and mixed phases only");
        }
    }
    let want_local = |p: Phase| want(p) && opts.endpoint.is_none();
    let shape = Shape {
        conns: opts.connections,
        duration: opts.duration,
        pace: None,
        keep_bodies: false,
    };
    // Enough pre-signed requests per connection for ~100k req/s.
    let per_conn = 100_000 * opts.duration.as_secs().max(1) / opts.connections as u64 + 1;
    let mut runs = Runs {
        ceiling: Ceiling::start()?,
        bars,
        phases: Vec::new(),
        rounds: opts.rounds.max(1),
    };
    let (mut rss, mut peak_rss, mut stored) = (0.0, 0.0, 0);

    // The request path with synchronous=NORMAL. Jobs stay queued (the model
    // delay is an hour), so every request passes validation and stores a job.
    // Against --endpoint, the clusters named there take the requests.
    if want(Phase::Write) || want(Phase::Read) || want(Phase::Mixed) {
        let (gw, target, clusters) = match &opts.endpoint {
            None => {
                let gw = start_gateway(3_600_000, Durability::Normal)?;
                let clusters = gw.add_clusters(opts.connections.max(1))?;
                let target = gw.target();
                (Some(gw), target, clusters)
            }
            Some(e) => {
                let target = Target {
                    authority: e.authority.clone(),
                    pid: e.pid,
                    data_dir: None,
                    creds: e.creds.clone(),
                    zone: e.zone.clone(),
                };
                (None, target, e.clusters.clone())
            }
        };
        if clusters.is_empty() {
            return Err("the write phase needs at least one cluster".into());
        }
        let clusters = Arc::new(clusters);
        let writes = |round| round_writes(&target, &clusters, shape.conns, per_conn, round);
        // Without the write phase, a short unmeasured one stores the jobs
        // the reads look up.
        let w = if want(Phase::Write) {
            let keep = Shape {
                keep_bodies: true,
                ..shape
            };
            let names = (
                "RunClusterCustomService (NORMAL)",
                "run_cluster_custom_service_normal",
            );
            runs.compared(&target, names, keep, writes).await?
        } else {
            let fill = Shape {
                keep_bodies: true,
                duration: Duration::from_secs(1),
                ..shape
            };
            let to = (target.authority.as_str(), target.pid);
            phase(&runs.bars, "storing jobs to read", to, fill, writes(0)).await?
        };
        let ids = Arc::new(job_ids(&w));
        if ids.is_empty() {
            return Err("the write phase created no job".into());
        }
        if let (Some(gw), true) = (&gw, opts.preload > 0) {
            if !opts.quiet {
                eprintln!("storing {} more jobs …", opts.preload);
            }
            gw.preload(opts.preload)?;
        }
        // Reads need not be unique: a pool of signed requests is replayed,
        // signed again for each round so that none outlives its time_stamp
        // (`time_skew_secs`, 60 s by default, which the phases before a
        // later round can take together).
        let replays = || -> Planner {
            let pool = presigned(describe_planner(&target, ids.clone()), shape.conns, 256);
            Arc::new(move |conn, n| pool(conn, n % 256))
        };
        if want(Phase::Read) {
            let names = ("DescribeJobs by id", "describe_jobs_by_id");
            runs.compared(&target, names, shape, |_| replays()).await?;
        }
        if want(Phase::Mixed) {
            // Its writes are numbered apart from the write phase's rounds
            // (from 1 << 40, then 1 << 32 more per round).
            let mixed = |round: u64| -> Planner {
                let write = numbered(
                    rccs_planner(&target, clusters.clone(), 0),
                    (1 << 40) + (round << 32),
                );
                let replay = replays();
                Arc::new(move |conn, n| {
                    if n % 5 == 0 {
                        write(conn, n)
                    } else {
                        replay(conn, n)
                    }
                })
            };
            let names = ("mixed (1 write : 4 reads)", "mixed_1_write_4_reads");
            runs.compared(&target, names, shape, mixed).await?;
        }
        let mib = |field| {
            target
                .pid
                .map_or(0.0, |pid| status_kib(pid, field) as f64 / 1024.0)
        };
        (rss, peak_rss) = (mib("VmRSS:"), mib("VmHWM:"));
        stored = match &gw {
            Some(gw) => gw.jobs_stored()?,
            None => ids.len() as u64,
        };
    }

    // The same write path with synchronous=FULL.
    if want_local(Phase::Full) {
        let gw = start_gateway(3_600_000, Durability::Full)?;
        let clusters = Arc::new(gw.add_clusters(opts.connections.max(1))?);
        let target = gw.target();
        let writes = |round| round_writes(&target, &clusters, shape.conns, per_conn, round);
        let names = (
            "RunClusterCustomService (FULL)",
            "run_cluster_custom_service_full",
        );
        runs.compared(&target, names, shape, writes).await?;
    }

    // Enqueue → executor start: idle workers, a steady 500 jobs/s on distinct clusters.
    let mut lat = Vec::new();
    if want_local(Phase::Start) {
        let gw = start_gateway(0, Durability::Normal)?;
        let paced = Shape {
            conns: 10,
            duration: opts.duration,
            pace: Some(Duration::from_millis(20)),
            keep_bodies: false,
        };
        let per_conn = (opts.duration.as_millis() / 20) as usize + 10;
        let clusters = Arc::new(gw.add_clusters(paced.conns * per_conn)?);
        let target = gw.target();
        phase(
            &runs.bars,
            "enqueue → start (500 jobs/s)",
            (&target.authority, target.pid),
            paced,
            rccs_planner(&target, clusters, paced.conns),
        )
        .await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        lat = gw.start_latencies()?;
    }
    let pct = |q: f64| -> f64 {
        if lat.is_empty() {
            return 0.0;
        }
        lat[((lat.len() - 1) as f64 * q).round() as usize] as f64
    };

    Ok(Report {
        connections: opts.connections,
        seconds_per_phase: opts.duration.as_secs_f64(),
        ceiling: {
            // The median ceiling run, for the table; each phase's ratio uses its own.
            let mut all: Vec<&LoadResult> = runs.ceiling.runs.iter().collect();
            all.sort_by(|a, b| a.rps().total_cmp(&b.rps()));
            match all.get(all.len() / 2) {
                Some(mid) => {
                    let mut r = report("bare_hyper_ceiling_median", mid, mid.rps());
                    r.ratio_to_ceiling = 1.0;
                    r
                }
                None => report("bare_hyper_ceiling_median", &LoadResult::empty(), 0.0),
            }
        },
        phases: runs.phases,
        enqueue_to_start_p50_ms: pct(0.5),
        enqueue_to_start_p99_ms: pct(0.99),
        enqueue_to_start_jobs: lat.len() as u64,
        jobs_stored: stored,
        gateway_rss_mib: rss,
        gateway_peak_rss_mib: peak_rss,
    })
}

/// The human-readable table.
pub fn print(r: &Report) -> std::io::Result<()> {
    outln!(
        "\n{:<36} {:>10} {:>9} {:>9} {:>9} {:>9} {:>11} {:>11} {:>6}",
        "path",
        "req/s",
        "p50 ms",
        "p99 ms",
        "p999 ms",
        "ceiling",
        "cpu µs/req",
        "load µs/req",
        "idle"
    )?;
    for p in std::iter::once(&r.ceiling).chain(&r.phases) {
        outln!(
            "{:<36} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>8.0}% {:>11} {:>11.1} {:>6}{}",
            p.name,
            p.requests_per_sec,
            p.p50_ms,
            p.p99_ms,
            p.p999_ms,
            p.ratio_to_ceiling * 100.0,
            p.server_cpu_us_per_request
                .map_or_else(|| "-".to_string(), |us| format!("{us:.1}")),
            p.load_cpu_us_per_request,
            p.machine_idle_percent
                .map_or_else(|| "-".to_string(), |pc| format!("{pc:.0}%")),
            if p.failed > 0 {
                format!("  ({} failed)", p.failed)
            } else {
                String::new()
            }
        )?;
        let threads: Vec<String> = p
            .server_cpu_us_per_request_by_thread
            .iter()
            .filter(|(_, us)| **us >= 0.05)
            .map(|(name, us)| format!("{name} {us:.1}"))
            .collect();
        if !threads.is_empty() {
            outln!("    cpu µs/req by thread: {}", threads.join(", "))?;
        }
        if !p.rounds.is_empty() {
            let ratios: Vec<String> = p
                .rounds
                .iter()
                .map(|r| match r.failed {
                    0 => format!("{:.0}%", r.ratio_to_ceiling * 100.0),
                    n => format!("{:.0}% ({n} failed)", r.ratio_to_ceiling * 100.0),
                })
                .collect();
            outln!(
                "    rounds (ratio to each one's ceiling): {}",
                ratios.join(", ")
            )?;
        }
    }
    outln!(
        "\nenqueue → executor start: p50 {:.1} ms, p99 {:.1} ms over {} jobs",
        r.enqueue_to_start_p50_ms,
        r.enqueue_to_start_p99_ms,
        r.enqueue_to_start_jobs
    )?;
    outln!(
        "gateway resident memory: {:.1} MiB (peak {:.1} MiB) with {} jobs stored ({} connections, {:.0} s per phase)",
        r.gateway_rss_mib,
        r.gateway_peak_rss_mib,
        r.jobs_stored,
        r.connections,
        r.seconds_per_phase
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_idle_share_is_the_idle_ticks_over_all_ticks_between_readings() {
        assert_eq!(idle_share(Some((10, 100)), Some((30, 200))), Some(0.2));
        // No tick passed, or a reading is missing: no share to tell.
        assert_eq!(idle_share(Some((10, 100)), Some((10, 100))), None);
        assert_eq!(idle_share(None, Some((30, 200))), None);
        let (idle, total) = machine_ticks().expect("/proc/stat on Linux");
        assert!(idle <= total && total > 0, "{idle} of {total}");
    }
}
