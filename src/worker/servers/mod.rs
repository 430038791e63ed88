//! The servers executor: jobs of clusters bound to MariaDB servers run on
//! those servers. One file per operation, its steps in the order they run
//! (each recorded before it changes anything, see [`steps`]); one line of
//! registration in `OPS`. Jobs of other clusters go to the inner executor
//! (command programs, else the model), and so do services an operator
//! configured a program for.

mod accounts;
mod assignmaster;
mod checks;
mod compare;
mod create_cluster;
mod decouple;
mod detach;
mod dr_task;
mod failover;
pub mod fleet;
pub mod live;
mod locks;
mod precheck;
mod promote_standby;
mod recover;
mod reparent;
pub mod sampler;
mod scope;
mod seed;
mod set_readonly;
mod shaping;
mod start_standby;
mod steps;
mod stop_standby;
mod switchover;
mod task_sync;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::allow::AllowList;
use super::executor::{Done, Executor, Failure};
use super::model::job_kind;
use crate::BoxFuture;
use crate::secret::Secret;
use crate::services::{self, Task};
use crate::store::Store;
use crate::store::jobs::{self, Claimed};
use fleet::{Fleet, internal, refused};
use steps::Steps;

/// `[servers]` in the config file: the limits DR operations work within.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServersConfig {
    /// Switchover: how long the standby may take to reach the primary's
    /// position before the fence (nothing is fenced if it does not).
    pub pre_sync_timeout_ms: u64,
    /// Switchover: how long the standby may take to apply the fenced
    /// primary's last transaction before the fence is undone.
    pub catch_up_timeout_ms: u64,
    /// Switchover refuses a standby further behind than this.
    pub max_lag_trx: u64,
    /// Switchover refuses while a write transaction is older than this.
    pub long_trx_secs: u64,
    /// How long the fence may wait for locks held by running statements.
    pub lock_wait_secs: u64,
    /// Failover: connection attempts that must all fail before the primary
    /// counts as gone, and the pause between them.
    pub failover_probes: u32,
    pub failover_probe_interval_ms: u64,
    /// How long applying received transactions (relay logs) may take.
    pub relay_apply_timeout_ms: u64,
    /// `rpl_semi_sync_master_timeout` for semisync clusters.
    pub semi_sync_timeout_ms: u64,
    /// Longest a full copy (dump and restore) may take.
    pub seed_timeout_secs: u64,
    /// Where copies and the tools' option files are written while they
    /// run: `<data dir>/scratch`, emptied at start, so that a gateway
    /// killed mid-copy leaves no data or password behind (not configurable;
    /// unset, the system's temporary directory).
    #[serde(skip)]
    pub scratch_dir: Option<std::path::PathBuf>,
}

impl Default for ServersConfig {
    fn default() -> Self {
        ServersConfig {
            pre_sync_timeout_ms: 10_000,
            catch_up_timeout_ms: 5_000,
            max_lag_trx: 100_000,
            long_trx_secs: 10,
            lock_wait_secs: 5,
            failover_probes: 3,
            failover_probe_interval_ms: 300,
            relay_apply_timeout_ms: 30_000,
            semi_sync_timeout_ms: 10_000,
            seed_timeout_secs: 3600,
            scratch_dir: None,
        }
    }
}

impl ServersConfig {
    pub fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }
}

/// Everything an operation needs: its job, the fleet, its step recorder.
pub struct Op {
    pub job: Claimed,
    pub task: Task,
    pub fleet: Fleet,
    pub steps: Steps,
    pub cfg: ServersConfig,
    secrets: Secret,
}

impl Op {
    /// A plain parameter of the job (validated when it was submitted).
    pub fn param(&self, name: &str) -> &Value {
        &self.task.params[name]
    }

    pub fn param_str(&self, name: &str) -> &str {
        self.task.params[name].as_str().unwrap_or_default()
    }

    /// A secret parameter (sealed while the job waited).
    pub fn secret(&self, name: &str) -> Option<Secret> {
        let v: Value = serde_json::from_str(self.secrets.expose()).ok()?;
        v.get(name).and_then(Value::as_str).map(Secret::new)
    }
}

/// Services whose outcome changes what DR tasks follow.
const TOPOLOGY: [&str; 6] = [
    "switchover",
    "failover",
    "decouple",
    "promote_standby",
    "stop_standby",
    "assignmaster",
];

type OpFn = fn(Op) -> BoxFuture<'static, Result<Done, Failure>>;

static OPS: &[(&str, OpFn)] = &[
    ("start_standby", |op| Box::pin(start_standby::run(op))),
    ("stop_standby", |op| Box::pin(stop_standby::run(op))),
    ("switchover", |op| Box::pin(switchover::run(op))),
    ("failover", |op| Box::pin(failover::run(op))),
    ("decouple", |op| Box::pin(decouple::run(op))),
    ("promote_standby", |op| Box::pin(promote_standby::run(op))),
    ("set_readonly", |op| Box::pin(set_readonly::run(op))),
    ("assignmaster", |op| Box::pin(assignmaster::run(op))),
    ("add_user", |op| Box::pin(accounts::add_user(op))),
    ("del_user", |op| Box::pin(accounts::del_user(op))),
    ("create_cluster", |op| Box::pin(create_cluster::run(op))),
    ("delete_cluster", |op| Box::pin(create_cluster::delete(op))),
    ("dr_precheck", |op| Box::pin(dr_task::run_precheck(op))),
    ("dr_start", |op| Box::pin(dr_task::run_start(op))),
    ("dr_stop", |op| Box::pin(dr_task::run_stop(op))),
    ("dr_retry", |op| Box::pin(dr_task::run_retry(op))),
    ("dr_compare", |op| Box::pin(compare::run(op))),
];

pub struct ServersExecutor {
    fleet: Fleet,
    cfg: ServersConfig,
    inner: Arc<dyn Executor>,
    /// Services an operator gave a program for: those run it, servers or not.
    commands: BTreeSet<String>,
    locks: locks::ClusterLocks,
}

impl ServersExecutor {
    pub fn new(
        store: &Store,
        allow: AllowList,
        cfg: ServersConfig,
        commands: BTreeSet<String>,
        inner: Arc<dyn Executor>,
    ) -> ServersExecutor {
        ServersExecutor {
            fleet: Fleet {
                store: store.clone(),
                allow: Arc::new(allow),
            },
            cfg,
            inner,
            commands,
            locks: locks::ClusterLocks::default(),
        }
    }

    /// Whether this job runs here rather than in the inner executor.
    fn runs_here(&self, job: &Claimed) -> bool {
        let Ok((service, task)) = job_kind(job) else {
            return false;
        };
        !self.commands.contains(service.name())
            && matches!(self.fleet.cluster(&task.cluster), Ok(Some(c)) if c.on_servers())
    }

    async fn run(&self, job: &Claimed) -> Result<Done, Failure> {
        let (service, task) = job_kind(job)?;
        let store = &self.fleet.store;
        let secrets = match &job.secrets {
            None => Secret::new("{}"),
            Some(sealed) => jobs::open_secrets(&store.master, &job.owner, &job.lane, sealed)
                .map_err(|_| {
                    Failure::new(
                        5000,
                        "InternalError, the job's secrets could not be opened with this gateway's master key",
                        false,
                    )
                })?,
        };
        // Every cluster of the DR tree this one belongs to: operations on
        // one change the others' servers.
        let family = self.family(&task.cluster)?;
        let _held = self.locks.lock_all(&family).await;
        let interrupted = store.read(|c| c.has_steps(job.seq)).map_err(internal)?;
        let op = Op {
            steps: Steps::new(
                store.clone(),
                job.seq,
                &job.job_id,
                service.name(),
                &task.cluster,
            ),
            job: job.clone(),
            task: task.clone(),
            fleet: self.fleet.clone(),
            cfg: self.cfg.clone(),
            secrets,
        };
        if interrupted && !service.idempotent() {
            return recover::run(op).await;
        }
        let allowed = store
            .read(|c| Ok(services::still_allowed(service, c, &task.cluster)))
            .map_err(internal)?;
        if let Err(why) = allowed {
            return Err(Failure::new(1400, why, false));
        }
        let job_id = job.job_id.clone();
        match OPS.iter().find(|(name, _)| *name == service.name()) {
            Some((_, f)) if TOPOLOGY.contains(&service.name()) => {
                let mut done = f(op).await?;
                done.effect = task_sync::after(service.name(), &job_id, done.effect);
                Ok(done)
            }
            Some((_, f)) => f(op).await,
            None => Err(refused(format!(
                "{} cannot be done over SQL on cluster [{}], which runs on its servers; \
                 configure a program for it in [executor.commands.{}]",
                service.name(),
                task.cluster,
                service.name()
            ))),
        }
    }

    /// The clusters of the DR tree `id` is in, root first.
    fn family(&self, id: &str) -> Result<Vec<String>, Failure> {
        let mut root = id.to_string();
        let mut seen = vec![root.clone()];
        while let Some(up) = self.fleet.cluster(&root)?.and_then(|c| c.standby_of) {
            if seen.contains(&up) || seen.len() > 64 {
                break;
            }
            seen.push(up.clone());
            root = up;
        }
        let mut all = vec![root];
        let mut i = 0;
        while i < all.len() && all.len() < 256 {
            for s in self.fleet.standbys_of(&all[i].clone())? {
                if !all.contains(&s) {
                    all.push(s);
                }
            }
            i += 1;
        }
        if !all.iter().any(|c| c == id) {
            all.push(id.to_string());
        }
        Ok(all)
    }
}

impl Executor for ServersExecutor {
    fn execute<'a>(&'a self, job: &'a Claimed) -> BoxFuture<'a, Result<Done, Failure>> {
        Box::pin(async move {
            if self.runs_here(job) {
                self.run(job).await
            } else {
                self.inner.execute(job).await
            }
        })
    }

    // Work on servers is never abandoned half-way on shutdown.
    fn cancel_safe(&self, job: &Claimed) -> bool {
        !self.runs_here(job) && self.inner.cancel_safe(job)
    }
}
