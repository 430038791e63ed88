//! The command line. Its commands and flags are a contract other tooling drives.

mod bench;
mod call;
mod clusters;
mod drtasks;
mod keys;
mod serve;
mod servers;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "qcgate",
    version,
    about = "A self-hosted, QingCloud-compatible API gateway"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the gateway and its workers.
    Serve(serve::Args),
    /// Manage access keys (local only; no API action can read or create keys).
    #[command(subcommand)]
    Keys(keys::Command),
    /// Register and list the clusters the gateway fronts.
    #[command(subcommand)]
    Clusters(clusters::Command),
    /// Register, list and remove the MariaDB servers qcgate may manage.
    #[command(subcommand)]
    Servers(servers::Command),
    /// DR tasks: list, show (progress as a bar), logs, compare results.
    #[command(subcommand)]
    Drtasks(drtasks::Command),
    /// Send one signed request and print the JSON reply.
    Call(call::Args),
    /// Measure the gateway against a bare hyper server on this machine.
    Bench(bench::Args),
    #[command(hide = true)]
    BenchCeiling(bench::CeilingArgs),
}

/// `--data-dir`, shared by the local commands.
#[derive(clap::Args, Clone)]
pub struct DataDir {
    #[arg(long, default_value = "./qcgate-data")]
    pub data_dir: PathBuf,
    /// postgres://USER@HOST:PORT/DB: the database gateways share
    /// (default: the SQLite file in --data-dir).
    #[arg(long)]
    pub store: Option<String>,
    /// With --store: the master key's file (else QCGATE_MASTER_KEY).
    #[arg(long)]
    pub master_key_file: Option<PathBuf>,
}

impl DataDir {
    pub fn location(&self) -> crate::store::local::Location {
        crate::store::local::Location {
            data_dir: self.data_dir.clone(),
            store: self.store.clone(),
            master_key_file: self.master_key_file.clone(),
        }
    }

    pub fn open(&self) -> Result<crate::store::local::Local, Box<dyn std::error::Error>> {
        crate::store::local::Local::open(&self.location())
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let format = match &cli.command {
        Command::Serve(a) => a.log_format(),
        _ => crate::config::LogFormat::Text,
    };
    init_logs(format);
    let result = match cli.command {
        Command::Serve(a) => serve::run(a),
        Command::Keys(c) => keys::run(c),
        Command::Clusters(c) => clusters::run(c),
        Command::Servers(c) => servers::run(c),
        Command::Drtasks(c) => drtasks::run(c),
        Command::Call(a) => call::run(a),
        Command::Bench(a) => bench::run(a),
        Command::BenchCeiling(a) => bench::ceiling(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("qcgate: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr at `RUST_LOG` (default `qcgate=info`); colours only
/// on a terminal; `json`: one object per line.
fn init_logs(format: crate::config::LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("qcgate=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        crate::config::LogFormat::Json => builder.json().flatten_event(true).init(),
        crate::config::LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}

pub type CliResult = Result<ExitCode, Box<dyn std::error::Error>>;

pub(crate) use crate::output::{out, outln};

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}
