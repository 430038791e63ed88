//! Settings: defaults, overridden by the `--config` TOML file, overridden by flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::store::Durability;
use crate::worker::command::ExecutorConfig;
use crate::worker::servers::ServersConfig;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// `postgres://USER@HOST:PORT/DB`: a database several gateways share;
    /// unset, the SQLite file in `data_dir`.
    pub store: Option<String>,
    /// The master key's file when the store is shared (else
    /// `QCGATE_MASTER_KEY`); the same key on every gateway.
    pub master_key_file: Option<PathBuf>,
    /// How long the model executor takes per job.
    pub model_delay_ms: u64,
    pub workers: usize,
    /// Allowed |now − time_stamp| without `expires`.
    pub time_skew_secs: i64,
    /// Longest `expires − time_stamp` accepted.
    pub max_expires_secs: i64,
    pub durability: Durability,
    /// A job's lease; a heartbeat renews it every third of this.
    pub lease_secs: i64,
    pub max_connections: usize,
    /// Time allowed to send a request's headers, from connecting or the
    /// previous reply (slowloris guard; also closes idle keep-alive connections).
    pub header_timeout_secs: u64,
    /// Time allowed to send a POST body.
    pub body_timeout_secs: u64,
    /// Pending + working jobs one owner may have; more get 2500.
    pub max_open_jobs_per_owner: u64,
    /// How long finished jobs are kept.
    pub job_retention_secs: i64,
    /// How often finished jobs past retention are pruned.
    pub prune_interval_secs: u64,
    /// Longest one attempt of a job may run.
    pub job_timeout_secs: u64,
    /// Failed signatures per access key id within the window before it is refused (2500).
    pub auth_failure_limit: u32,
    pub auth_failure_window_secs: u64,
    /// Memory for recent jobs as `DescribeJobs` shows them (packed, ~230
    /// bytes a job); a job older than these is read from SQLite.
    pub job_views_mib: u64,
    /// Programs that run the jobs of some services, and the hosts jobs may target.
    pub executor: ExecutorConfig,
    /// Limits of DR operations on registered servers.
    pub servers: ServersConfig,
    /// Who may read `GET /metrics`.
    pub metrics: crate::metrics::MetricsConfig,
    /// `text` (the default) or `json`: one object per line.
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 7777)),
            data_dir: PathBuf::from("./qcgate-data"),
            store: None,
            master_key_file: None,
            model_delay_ms: 1000,
            workers: 8,
            time_skew_secs: 60,
            max_expires_secs: 3600,
            durability: Durability::Normal,
            lease_secs: 30,
            max_connections: 1024,
            header_timeout_secs: 10,
            body_timeout_secs: 30,
            max_open_jobs_per_owner: 1000,
            job_retention_secs: 7 * 24 * 3600,
            prune_interval_secs: 60,
            job_timeout_secs: 3600,
            auth_failure_limit: 20,
            auth_failure_window_secs: 60,
            job_views_mib: (crate::store::views::CAP_BYTES >> 20) as u64,
            executor: ExecutorConfig::default(),
            servers: ServersConfig::default(),
            metrics: Default::default(),
            log_format: LogFormat::Text,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
}

impl Config {
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every ```toml block of the README parses as a config file.
    #[test]
    fn the_readme_examples_parse() {
        let readme = include_str!("../README.md");
        let blocks: Vec<&str> = readme
            .split("```toml\n")
            .skip(1)
            .filter_map(|b| b.split("```").next())
            .collect();
        assert!(blocks.len() >= 2, "README has config examples");
        for b in blocks {
            let cfg: Config = toml::from_str(b).unwrap_or_else(|e| panic!("{e}\n{b}"));
            assert!(!cfg.executor.allow_hosts.is_empty());
        }
    }

    #[test]
    fn an_unknown_executor_setting_is_an_error() {
        let e = toml::from_str::<Config>(
            "[executor.commands.restart_node]\nprogram = \"/bin/true\"\nenv = []\n",
        );
        assert!(e.is_err());
    }
}
