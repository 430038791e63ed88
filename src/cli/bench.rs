//! `qcgate bench` and the hidden `qcgate bench-ceiling` it starts.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use super::CliResult;
use crate::bench;

#[derive(clap::Args)]
pub struct Args {
    /// Keep-alive connections per phase.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds per phase.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Extra finished jobs to store before the read phases (e.g. 1000000).
    #[arg(long, default_value_t = 0)]
    preload: u64,
    /// Run only these phases (comma-separated); default: all.
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<bench::Phase>,
    /// Print one JSON summary on stdout (and no progress bars).
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct CeilingArgs {
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
}

pub fn run(args: Args) -> CliResult {
    let opts = bench::Options {
        connections: args.connections.max(1),
        duration: Duration::from_secs(args.seconds.max(1)),
        preload: args.preload,
        quiet: args.json,
        only: args.only,
    };
    let report = super::runtime()?
        .block_on(bench::run(&opts))
        .map_err(|e| e.to_string())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        bench::print(&report);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn ceiling(args: CeilingArgs) -> CliResult {
    super::runtime()?.block_on(bench::serve_ceiling(args.listen))?;
    Ok(ExitCode::SUCCESS)
}
