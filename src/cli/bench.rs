//! `qcgate bench` and the hidden `qcgate bench-ceiling` it starts.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use super::CliResult;
use crate::bench;
use crate::cli::outln;
use crate::client::Credentials;
use crate::secret::Secret;

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    /// Another benchmark instead of the gateway's request path.
    #[command(subcommand)]
    what: Option<What>,
    /// Keep-alive connections per phase.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds per phase.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Ceiling-then-gateway runs per phase; the round with the median ratio
    /// is reported (the lower middle one for an even count), with every
    /// round's figures in --json.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Extra finished jobs to store before the read phases (e.g. 1000000).
    #[arg(long, default_value_t = 0)]
    preload: u64,
    /// Run only these phases (comma-separated); default: all.
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<bench::Phase>,
    /// Print one JSON summary on stdout (and no progress bars).
    #[arg(long)]
    json: bool,
    /// postgres://USER@HOST:PORT/DB (an empty database): durable writes and
    /// DescribeJobs on SQLite, then one and two gateways on this database
    /// (what `bench shared --store` does).
    #[arg(long, conflicts_with_all = ["endpoint", "only", "preload", "rounds"])]
    store: Option<String>,
    /// Measure a gateway already running at this loopback URL instead of
    /// starting one (write, read and mixed phases; needs --cluster).
    #[arg(long)]
    endpoint: Option<String>,
    /// Clusters of the key's owner that take the write phase's
    /// start_standby requests (with --endpoint; comma-separated).
    #[arg(long, value_delimiter = ',', requires = "endpoint")]
    cluster: Vec<String>,
    /// The zone of those clusters (with --endpoint).
    #[arg(long, default_value = "sh1a", requires = "endpoint")]
    zone: String,
    /// The gateway's process id, for its CPU time and memory (with --endpoint).
    #[arg(long, requires = "endpoint")]
    pid: Option<u32>,
    #[arg(long, env = "QCGATE_ACCESS_KEY_ID", requires = "endpoint")]
    access_key_id: Option<String>,
    #[arg(
        long,
        env = "QCGATE_SECRET_ACCESS_KEY",
        hide_env_values = true,
        requires = "endpoint"
    )]
    secret_access_key: Option<String>,
}

#[derive(clap::Subcommand)]
enum What {
    /// DR drills on MariaDB servers it starts: switchover window and time,
    /// failover time, acknowledged writes lost.
    Dr {
        /// Switchovers to run (the standby alternates).
        #[arg(long, default_value_t = 20)]
        drills: usize,
        /// Rows in the table before the drills.
        #[arg(long, default_value_t = 100_000)]
        rows: u32,
        /// Print one JSON summary on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Durable job submissions and DescribeJobs on one gateway on SQLite,
    /// then one and two gateways sharing one PostgreSQL database.
    Shared {
        /// postgres://USER@HOST:PORT/DB: an empty database to use (default:
        /// a PostgreSQL server this command starts and stops).
        #[arg(long)]
        store: Option<String>,
        /// Seconds per phase.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Keep-alive connections per phase, split over the gateways.
        #[arg(long, default_value_t = 64)]
        connections: usize,
        /// Print one JSON summary on stdout.
        #[arg(long)]
        json: bool,
    },
    /// A DR task's content comparison finding one planted difference in a
    /// large table (and pt-table-checksum on the same data, if installed).
    Compare {
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
pub struct CeilingArgs {
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
}

fn shared(store: Option<String>, seconds: u64, connections: usize, json: bool) -> CliResult {
    let opts = bench::shared::SharedOptions {
        store,
        connections: connections.max(1),
        duration: std::time::Duration::from_secs(seconds.max(1)),
        quiet: json,
    };
    let report = super::runtime()?
        .block_on(bench::shared::run(&opts))
        .map_err(|e| e.to_string())?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        bench::shared::print(&report)?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run(args: Args) -> CliResult {
    if let Some(What::Compare { rows, json }) = args.what {
        let opts = bench::compare::CompareOptions {
            rows: rows.max(1),
            quiet: json,
        };
        let report = super::runtime()?
            .block_on(bench::compare::run(&opts))
            .map_err(|e| e.to_string())?;
        if json {
            outln!("{}", serde_json::to_string_pretty(&report)?)?;
        } else {
            bench::compare::print(&report)?;
        }
        return Ok(if report.found_planted_key {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    if let Some(What::Shared {
        store,
        seconds,
        connections,
        json,
    }) = args.what
    {
        return shared(store, seconds, connections, json);
    }
    if args.what.is_none() && args.store.is_some() {
        return shared(args.store, args.seconds, args.connections, args.json);
    }
    if let Some(What::Dr { drills, rows, json }) = args.what {
        let opts = bench::dr::DrOptions {
            drills: drills.max(1),
            rows,
            quiet: json,
        };
        let report = super::runtime()?
            .block_on(bench::dr::run(&opts))
            .map_err(|e| e.to_string())?;
        if json {
            outln!("{}", serde_json::to_string_pretty(&report)?)?;
        } else {
            bench::dr::print(&report)?;
        }
        return Ok(if report.zero_lost {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let endpoint =
        match &args.endpoint {
            None => None,
            Some(url) => Some(bench::Endpoint {
                authority: bench::Endpoint::parse_url(url)?,
                creds: Credentials {
                    access_key_id: args
                        .access_key_id
                        .clone()
                        .ok_or("--endpoint needs --access-key-id or QCGATE_ACCESS_KEY_ID")?,
                    secret_access_key: Secret::new(args.secret_access_key.clone().ok_or(
                        "--endpoint needs --secret-access-key or QCGATE_SECRET_ACCESS_KEY",
                    )?),
                },
                zone: args.zone.clone(),
                clusters: args.cluster.clone(),
                pid: args.pid,
            }),
        };
    let opts = bench::Options {
        connections: args.connections.max(1),
        duration: Duration::from_secs(args.seconds.max(1)),
        preload: args.preload,
        quiet: args.json,
        only: args.only,
        endpoint,
        rounds: args.rounds,
    };
    let report = super::runtime()?
        .block_on(bench::run(&opts))
        .map_err(|e| e.to_string())?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        bench::print(&report)?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn ceiling(args: CeilingArgs) -> CliResult {
    super::runtime()?.block_on(bench::serve_ceiling(args.listen))?;
    Ok(ExitCode::SUCCESS)
}
