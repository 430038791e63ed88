//! Prometheus metrics (`GET /metrics`, text format, from `prometheus-client`):
//! requests by action and ret_code with their latency, jobs by service and
//! outcome with their run time, the open queue, and the replication of
//! each standby DR tasks follow. Never a secret; resource names (cluster
//! ids) only when `[metrics] resource_labels = true`.

use std::sync::{LazyLock, OnceLock};
use std::time::Duration;

use prometheus_client::encoding::text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use serde::Deserialize;

use crate::store::queue::Queue;
use crate::store::{Store, StoreError};

type Labels = Vec<(&'static str, String)>;

/// `[metrics]` in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// `loopback` (only to clients on this machine), `everyone`, or `off`.
    pub serve: String,
    /// Label standbys with their cluster ids (a tenant's resource names).
    pub resource_labels: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            serve: "loopback".into(),
            resource_labels: false,
        }
    }
}

struct Metrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    request_seconds: Family<Labels, Histogram>,
    jobs: Family<Labels, Counter>,
    job_seconds: Family<Labels, Histogram>,
}

fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

fn run_time() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 16))
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::default();
    let requests = Family::<Labels, Counter>::default();
    let request_seconds =
        Family::<Labels, Histogram>::new_with_constructor(latency as fn() -> Histogram);
    let jobs = Family::<Labels, Counter>::default();
    let job_seconds =
        Family::<Labels, Histogram>::new_with_constructor(run_time as fn() -> Histogram);
    registry.register(
        "qcgate_requests",
        "API requests by action and ret_code",
        requests.clone(),
    );
    registry.register(
        "qcgate_request_duration_seconds",
        "API request latency by action",
        request_seconds.clone(),
    );
    registry.register(
        "qcgate_jobs_finished",
        "Jobs that ended, by service and status",
        jobs.clone(),
    );
    registry.register(
        "qcgate_job_duration_seconds",
        "Job run time by service",
        job_seconds.clone(),
    );
    Metrics {
        registry,
        requests,
        request_seconds,
        jobs,
        job_seconds,
    }
});

/// Every ret_code the API answers (error.rs), and 0.
const CODES: [u32; 10] = [0, 1100, 1101, 1200, 1300, 1400, 2100, 2500, 5000, 5100];

/// One action's series, made once: a request then costs two atomic adds
/// and no allocation or lock.
struct PerAction {
    name: &'static str,
    latency: Histogram,
    by_code: Vec<Counter>,
}

static PER_ACTION: OnceLock<Vec<PerAction>> = OnceLock::new();

/// Makes the series of every action the API has (the gateway calls it at
/// start, with the actions' names).
pub fn init(actions: Vec<&'static str>) {
    PER_ACTION.get_or_init(|| per_action(actions));
}

fn per_action(actions: Vec<&'static str>) -> Vec<PerAction> {
    let m = &*METRICS;
    actions
        .into_iter()
        .chain(std::iter::once("unknown"))
        .map(|name| PerAction {
            name,
            latency: m
                .request_seconds
                .get_or_create(&vec![("action", name.to_string())])
                .clone(),
            by_code: CODES
                .iter()
                .map(|c| {
                    m.requests
                        .get_or_create(&vec![
                            ("action", name.to_string()),
                            ("ret_code", c.to_string()),
                        ])
                        .clone()
                })
                .collect(),
        })
        .collect()
}

/// One API request. An action that does not exist counts as `unknown` (a
/// caller's random names would grow the label set without bound).
pub fn request(action: &str, ret_code: u32, took: Duration) {
    let all = PER_ACTION.get_or_init(|| per_action(Vec::new()));
    let Some(a) = all.iter().find(|a| a.name == action).or_else(|| all.last()) else {
        return;
    };
    match CODES.iter().position(|c| *c == ret_code) {
        Some(i) => {
            a.by_code[i].inc();
        }
        None => {
            METRICS
                .requests
                .get_or_create(&vec![
                    ("action", a.name.to_string()),
                    ("ret_code", ret_code.to_string()),
                ])
                .inc();
        }
    }
    a.latency.observe(took.as_secs_f64());
}

/// One job that ended.
pub fn job(service: &str, status: &str, took: Duration) {
    let m = &*METRICS;
    m.jobs
        .get_or_create(&vec![
            ("service", service.to_string()),
            ("status", status.to_string()),
        ])
        .inc();
    m.job_seconds
        .get_or_create(&vec![("service", service.to_string())])
        .observe(took.as_secs_f64());
}

/// The text exposition: the counters, then what is read at scrape time.
pub fn render(store: &Store, cfg: &MetricsConfig) -> Result<String, StoreError> {
    let mut out = String::new();
    text::encode_registry(&mut out, &METRICS.registry)
        .map_err(|e| StoreError::Commit(e.to_string()))?;
    let now = scrape(store, cfg)?;
    text::encode(&mut out, &now).map_err(|e| StoreError::Commit(e.to_string()))?;
    Ok(out)
}

fn scrape(store: &Store, cfg: &MetricsConfig) -> Result<Registry, StoreError> {
    let mut r = Registry::default();
    let open = Family::<Labels, Gauge>::default();
    let counts = store.open_jobs()?;
    let tasks = store.read(|m| m.sampled_tasks())?;
    for status in ["pending", "working"] {
        let n = counts
            .iter()
            .find(|(s, _)| s == status)
            .map_or(0, |(_, n)| *n);
        open.get_or_create(&vec![("status", status.to_string())])
            .set(n);
    }
    r.register(
        "qcgate_jobs_open",
        "Jobs waiting or running (the queue)",
        open,
    );
    let lag = Family::<Labels, Gauge>::default();
    let delay = Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    let in_sync = Family::<Labels, Gauge>::default();
    let by_status = Family::<Labels, Gauge>::default();
    for (i, t) in tasks.iter().enumerate() {
        let Some(p) = &t.progress else { continue };
        let who = if cfg.resource_labels {
            vec![("standby", t.standby_cluster.clone())]
        } else {
            vec![("standby", format!("standby-{}", i + 1))]
        };
        if let Some(n) = p["lag_trx"].as_i64() {
            lag.get_or_create(&who).set(n);
        }
        if let Some(ms) = p["rpo"]["delay_ms"].as_f64() {
            delay.get_or_create(&who).set(ms / 1000.0);
        }
        in_sync
            .get_or_create(&who)
            .set(i64::from(p["sync_status"] == "NORMAL"));
        by_status
            .get_or_create(&vec![(
                "sync_status",
                p["sync_status"].as_str().unwrap_or("UNKNOWN").to_string(),
            )])
            .inc();
    }
    r.register(
        "qcgate_standby_lag_transactions",
        "Transactions a standby lacks (not received or not applied)",
        lag,
    );
    r.register(
        "qcgate_standby_delay_seconds",
        "How long a heartbeat took to reach a standby",
        delay,
    );
    r.register(
        "qcgate_standby_in_sync",
        "1 while a standby is NORMAL",
        in_sync,
    );
    r.register(
        "qcgate_standbys",
        "Standbys followed by DR tasks, by sync status",
        by_status,
    );
    Ok(r)
}
