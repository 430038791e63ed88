//! `qcgate bench shared`: durable job submissions and `DescribeJobs` polls
//! against one gateway on SQLite, then one and two gateways sharing one
//! PostgreSQL database, in the same run and with the same load, so that
//! the figures compare. It starts PostgreSQL itself unless `--store` names
//! a database (which it fills with jobs).

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::load::{LoadResult, Shape};
use super::pglab::PgServer;
use super::{
    Bars, BenchResult, Gateway, Target, describe_planner, job_ids, phase, presigned, rccs_planner,
    spawn_child, start_gateway,
};
use crate::client::Credentials;
use crate::secret::Secret;
use crate::store::Durability;
use crate::store::local::{Local, Location};
use crate::store::model::NewCluster;

pub struct SharedOptions {
    pub store: Option<String>,
    pub connections: usize,
    pub duration: Duration,
    pub quiet: bool,
}

#[derive(Debug, Serialize)]
pub struct ModeReport {
    pub mode: String,
    pub gateways: usize,
    pub writes_per_sec: f64,
    pub write_p50_ms: f64,
    pub write_p99_ms: f64,
    pub write_errors: u64,
    pub describe_per_sec: f64,
    pub describe_p50_ms: f64,
    pub describe_p99_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct SharedReport {
    pub connections: usize,
    pub seconds_per_phase: f64,
    pub modes: Vec<ModeReport>,
    /// Two gateways on PostgreSQL against one on SQLite, durable writes.
    pub two_gateways_write_ratio: f64,
}

/// A gateway process on the shared store; the first prints the first key.
struct SharedGateway {
    child: std::process::Child,
    authority: String,
    key: Option<(Credentials, String)>,
    _dir: tempfile::TempDir,
}

impl Drop for SharedGateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_shared(url: &str, key_file: &std::path::Path) -> BenchResult<SharedGateway> {
    let dir = tempfile::tempdir()?;
    let data = dir
        .path()
        .to_str()
        .ok_or("temp dir is not UTF-8")?
        .to_string();
    let config = format!("{data}/bench.toml");
    std::fs::write(&config, "max_open_jobs_per_owner = 100000000\n")?;
    let key = key_file.to_str().ok_or("key path is not UTF-8")?;
    let (child, mut lines, authority) = spawn_child(&[
        "serve",
        "--config",
        &config,
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        &data,
        "--model-delay",
        "3600000",
        "--store",
        url,
        "--master-key-file",
        key,
    ])?;
    let (mut id, mut secret, mut owner) = (None, None, None);
    for l in lines.by_ref() {
        let l = l?;
        let l = l.trim();
        if let Some(v) = l.strip_prefix("access_key_id:") {
            id = Some(v.trim().to_string());
        } else if let Some(v) = l.strip_prefix("secret_access_key:") {
            secret = Some(v.trim().to_string());
        } else if let Some(v) = l.strip_prefix("owner:") {
            owner = Some(v.trim().to_string());
            break;
        } else if l.contains("Using the access keys already") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let key = match (id, secret, owner) {
        (Some(id), Some(secret), Some(owner)) => Some((
            Credentials {
                access_key_id: id,
                secret_access_key: Secret::new(secret),
            },
            owner,
        )),
        _ => None,
    };
    Ok(SharedGateway {
        child,
        authority,
        key,
        _dir: dir,
    })
}

fn shared_clusters(at: &Location, owner: &str, n: usize, tag: &str) -> BenchResult<Vec<String>> {
    let ids: Vec<String> = (0..n).map(|i| format!("cl-{tag}{i:06}")).collect();
    let mut db = Local::open(at).map_err(|e| e.to_string())?;
    db.change(|m| {
        for id in &ids {
            let nodes = crate::store::clusters::Layout::default().nodes();
            m.create_cluster(&NewCluster {
                id,
                zone: "sh1a",
                owner,
                name: "bench",
                nodes: &nodes,
                status: "active",
            })?;
        }
        Ok(())
    })?;
    Ok(ids)
}

/// The write phase then the read phase, the load split over `targets`.
async fn measure(
    bars: &Bars,
    mode: &str,
    targets: &[Target],
    clusters: Vec<String>,
    opts: &SharedOptions,
) -> BenchResult<ModeReport> {
    let conns = (opts.connections / targets.len()).max(1);
    let per_conn = 20_000 * opts.duration.as_secs().max(1) / conns as u64 + 1;
    let clusters = Arc::new(clusters);
    let shape = |keep_bodies| Shape {
        conns,
        duration: opts.duration,
        pace: None,
        keep_bodies,
    };
    // One gateway, or two measured over the same wall-clock window.
    let run_all = |name: String, mut plans: Vec<super::load::Planner>, keep: bool| {
        let shape = shape(keep);
        async move {
            let second = plans.pop().ok_or("no plan")?;
            let results = match (targets, plans.pop()) {
                ([t], None) => vec![phase(bars, &name, (&t.authority, None), shape, second).await?],
                ([a, b], Some(first)) => {
                    let (na, nb) = (format!("{name} (1/2)"), format!("{name} (2/2)"));
                    let (ra, rb) = tokio::join!(
                        phase(bars, &na, (&a.authority, None), shape, first),
                        phase(bars, &nb, (&b.authority, None), shape, second)
                    );
                    vec![ra?, rb?]
                }
                _ => return Err("one or two gateways".into()),
            };
            BenchResult::Ok(merge(results))
        }
    };
    // Each gateway's connections take clusters of their own, as they
    // would behind a load balancer that keeps a client on one gateway: two
    // requests for one cluster at once wait on its lane's row.
    let writes: Vec<_> = targets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mine: Vec<String> = clusters
                .iter()
                .skip(i)
                .step_by(targets.len())
                .cloned()
                .collect();
            presigned(rccs_planner(t, Arc::new(mine), 1), conns, per_conn)
        })
        .collect();
    let w = run_all(format!("{mode}: RunClusterCustomService"), writes, true).await?;
    let ids = Arc::new(job_ids(&w));
    if ids.is_empty() {
        return Err(format!("{mode}: no job was stored").into());
    }
    let reads: Vec<_> = targets
        .iter()
        .map(|t| presigned(describe_planner(t, ids.clone()), conns, per_conn))
        .collect();
    let r = run_all(format!("{mode}: DescribeJobs"), reads, false).await?;
    Ok(ModeReport {
        mode: mode.to_string(),
        gateways: targets.len(),
        writes_per_sec: w.rps(),
        write_p50_ms: w.ms(0.5),
        write_p99_ms: w.ms(0.99),
        write_errors: w.failed,
        describe_per_sec: r.rps(),
        describe_p50_ms: r.ms(0.5),
        describe_p99_ms: r.ms(0.99),
    })
}

fn merge(results: Vec<LoadResult>) -> LoadResult {
    let mut all = LoadResult::empty();
    for r in results {
        all.ok += r.ok;
        all.failed += r.failed;
        all.elapsed = all.elapsed.max(r.elapsed);
        let _ = all.hist.add(&r.hist);
        all.kept.extend(r.kept);
    }
    all
}

pub async fn run(opts: &SharedOptions) -> BenchResult<SharedReport> {
    let bars = Bars { quiet: opts.quiet };
    let mut modes = Vec::new();

    // One gateway on SQLite, as shipped (NORMAL durability).
    {
        let gw: Gateway = start_gateway(3_600_000, Durability::Normal)?;
        let clusters = gw.add_clusters(opts.connections.max(1))?;
        let t = gw.target();
        modes.push(measure(&bars, "sqlite", &[t], clusters, opts).await?);
    }

    let server = match &opts.store {
        Some(_) => None,
        None => Some(PgServer::start()?),
    };
    let url = match (&opts.store, &server) {
        (Some(u), _) => u.clone(),
        (None, Some(s)) => s.url.clone(),
        (None, None) => return Err("no PostgreSQL".into()),
    };
    let keys = tempfile::tempdir()?;
    let key_file = keys.path().join("master.key");
    let key: [u8; 32] = rand::random();
    {
        use base64::Engine;
        std::fs::write(
            &key_file,
            base64::engine::general_purpose::STANDARD.encode(key),
        )?;
    }
    let at = Location {
        data_dir: keys.path().to_path_buf(),
        store: Some(url.clone()),
        master_key_file: Some(key_file.clone()),
    };
    let creds_of = |g: &SharedGateway| g.key.clone();
    let mut creds: Option<(Credentials, String)> = None;
    for (mode, n) in [("postgres", 1), ("postgres x2", 2)] {
        let mut gws = Vec::new();
        for _ in 0..n {
            let g = start_shared(&url, &key_file)?;
            if creds.is_none() {
                creds = creds_of(&g);
            }
            gws.push(g);
        }
        let (c, owner) = creds
            .clone()
            .ok_or("no access key: the store was not empty (use a new database)")?;
        let clusters = shared_clusters(&at, &owner, opts.connections.max(1), &format!("p{n}"))?;
        let targets: Vec<Target> = gws
            .iter()
            .map(|g| Target {
                authority: g.authority.clone(),
                pid: Some(g.child.id()),
                data_dir: None,
                creds: c.clone(),
                zone: "sh1a".into(),
            })
            .collect();
        modes.push(measure(&bars, mode, &targets, clusters, opts).await?);
    }
    let sqlite = modes.first().map(|m| m.writes_per_sec).unwrap_or(0.0);
    let two = modes.last().map(|m| m.writes_per_sec).unwrap_or(0.0);
    Ok(SharedReport {
        connections: opts.connections,
        seconds_per_phase: opts.duration.as_secs_f64(),
        two_gateways_write_ratio: if sqlite > 0.0 { two / sqlite } else { 0.0 },
        modes,
    })
}

pub fn print(r: &SharedReport) -> std::io::Result<()> {
    use crate::output::outln;
    outln!(
        "\n{} connections, {:.0} s a phase; every write stores a durable job\n",
        r.connections,
        r.seconds_per_phase
    )?;
    outln!(
        "{:<13} {:>8} {:>12} {:>9} {:>9} {:>12} {:>9} {:>9}",
        "store",
        "gateways",
        "writes/s",
        "p50 ms",
        "p99 ms",
        "describe/s",
        "p50 ms",
        "p99 ms"
    )?;
    for m in &r.modes {
        outln!(
            "{:<13} {:>8} {:>12.0} {:>9.2} {:>9.2} {:>12.0} {:>9.2} {:>9.2}",
            m.mode,
            m.gateways,
            m.writes_per_sec,
            m.write_p50_ms,
            m.write_p99_ms,
            m.describe_per_sec,
            m.describe_p50_ms,
            m.describe_p99_ms
        )?;
    }
    outln!(
        "\ntwo gateways on PostgreSQL: {:.2}x the SQLite gateway's durable write rate",
        r.two_gateways_write_ratio
    )
}
