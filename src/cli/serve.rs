//! `qcgate serve`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use super::CliResult;
use crate::cli::outln;
use crate::config::Config;
use crate::store::Durability;
use crate::store::keys::NewKey;

#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on (default 127.0.0.1:7777).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Where the SQLite file lives (default ./qcgate-data); with --store,
    /// only this gateway's scratch space.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// postgres://USER@HOST:PORT/DB: a database several gateways share
    /// (default: the SQLite file in the data dir).
    #[arg(long)]
    store: Option<String>,
    /// With --store: the master key's file, the same on every gateway
    /// (else QCGATE_MASTER_KEY).
    #[arg(long)]
    master_key_file: Option<PathBuf>,
    /// A TOML file with any of the settings in README "Configuration".
    #[arg(long)]
    config: Option<PathBuf>,
    /// Milliseconds the model executor takes per job (default 1000).
    #[arg(long)]
    model_delay: Option<u64>,
    /// normal: survives a crash; full: also survives power loss.
    #[arg(long, value_enum)]
    durability: Option<Durability>,
    /// text (default) or json: one JSON object per log line.
    #[arg(long, value_enum)]
    log_format: Option<crate::config::LogFormat>,
}

impl Args {
    /// The log format asked for: the flag, else the config file's.
    pub fn log_format(&self) -> crate::config::LogFormat {
        self.log_format.unwrap_or_else(|| {
            Config::load(self.config.as_deref())
                .map(|c| c.log_format)
                .unwrap_or_default()
        })
    }
}

pub fn run(args: Args) -> CliResult {
    let mut cfg = Config::load(args.config.as_deref())?;
    if let Some(l) = args.listen {
        cfg.listen = l;
    }
    if let Some(d) = args.data_dir {
        cfg.data_dir = d;
    }
    if let Some(ms) = args.model_delay {
        cfg.model_delay_ms = ms;
    }
    if let Some(s) = args.store {
        cfg.store = Some(s);
    }
    if let Some(f) = args.master_key_file {
        cfg.master_key_file = Some(f);
    }
    if let Some(d) = args.durability {
        cfg.durability = d;
    }
    super::runtime()?.block_on(async {
        // Registered before the address is printed: a supervisor may send
        // SIGTERM as soon as it sees it.
        let stop = shutdown_signal()?;
        let gw = crate::app::start(&cfg).await?;
        let data = match &cfg.store {
            Some(url) => format!("store {}", crate::redact::url(url)),
            None => format!("data in {}", cfg.data_dir.display()),
        };
        outln!("qcgate is listening on http://{}/iaas/ ({data})", gw.addr)?;
        match &gw.first_key {
            Some(key) => print_first_key(key, gw.addr)?,
            None if cfg.store.is_some() => outln!(
                "Using the access keys already in the shared store (qcgate keys list --store …)."
            )?,
            None => outln!("Using the access keys already in the data dir (qcgate keys list).")?,
        }
        outln!("Console: http://{}/console/", gw.addr)?;
        match cfg.metrics.serve.as_str() {
            "off" => {}
            who => outln!("Metrics: http://{}/metrics ({who})", gw.addr)?,
        }
        if let Err(e) = print_what_is_real(&gw.store) {
            tracing::warn!(error = %e, "listing clusters for the banner");
        }
        stop.await;
        tracing::info!("shutting down: finishing in-flight requests and running jobs");
        gw.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// Resolves on SIGINT or SIGTERM; the handlers are installed when this returns.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

fn print_first_key(key: &NewKey, addr: SocketAddr) -> std::io::Result<()> {
    let (host, port) = (addr.ip(), addr.port());
    let (ak, sk) = (&key.access_key_id, &key.secret_access_key);
    outln!(
        r#"
A first access key was created. Its secret is shown only this once:
  access_key_id:     {ak}
  secret_access_key: {sk}
  owner:             {owner}

Python SDK (pip install qingcloud-sdk):
  from qingcloud.iaas.connection import APIConnection
  conn = APIConnection("{ak}", "{sk}", "sh1a",
                       host="{host}", port={port}, protocol="http")
  print(conn.send_request("DescribeJobs", {{"zone": "sh1a"}}))

qingcloud-cli (save as qcgate.yaml, then: qingcloud iaas describe-jobs -f qcgate.yaml):
  qy_access_key_id: '{ak}'
  qy_secret_access_key: '{sk}'
  zone: 'sh1a'
  host: '{host}'
  port: {port}
  protocol: 'http'

qcgate call:
  export QCGATE_ACCESS_KEY_ID={ak} QCGATE_SECRET_ACCESS_KEY={sk}
  {bin} call DescribeJobs --endpoint http://{host}:{port}/iaas/ --zone sh1a
"#,
        owner = key.owner,
        bin = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "qcgate".into())
    )
}

/// Which clusters run on servers and which are only simulated, so nobody
/// mistakes a model job for DR on real databases.
fn print_what_is_real(store: &crate::store::Store) -> Result<(), Box<dyn std::error::Error>> {
    let (all, servers) = store.read(|m| Ok((m.clusters()?, m.servers()?)))?;
    let (real, model): (Vec<_>, Vec<_>) = all
        .iter()
        .filter(|c| c.status != "ceased" && c.status != "deleted")
        .partition(|c| c.on_servers());
    let names = |v: &[&crate::store::clusters::Cluster]| {
        let mut s: Vec<&str> = v.iter().take(8).map(|c| c.cluster_id.as_str()).collect();
        if v.len() > 8 {
            s.push("…");
        }
        s.join(", ")
    };
    let free = servers.iter().filter(|s| s.cluster_id.is_none()).count();
    outln!(
        "Servers: {} registered, {free} free (qcgate servers list).",
        servers.len()
    )?;
    if !real.is_empty() {
        outln!("On servers (jobs run on the databases): {}", names(&real))?;
    }
    if !model.is_empty() {
        outln!(
            "Simulated by the model executor (jobs change no database): {}",
            names(&model)
        )?;
    }
    Ok(())
}
