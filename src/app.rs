//! The gateway as a value: `start` binds, spawns the workers and returns a
//! handle that tests and `serve` both use; `shutdown` stops it gracefully.

use std::fs::File;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

use crate::auth::{FailureThrottle, TimeWindow};
use crate::config::Config;
use crate::http::{Activity, IdleSweeper};
use crate::sealing::MasterKey;
use crate::state::AppState;
use crate::store::keys::{self, NewKey};
use crate::store::{self, Store, StoreError};
use crate::worker::allow::AllowList;
use crate::worker::command::CommandExecutor;
use crate::worker::executor::Executor;
use crate::worker::model::ModelExecutor;
use crate::worker::servers::ServersExecutor;
use crate::worker::{self, WorkerConfig, WorkerPool};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("another qcgate serve is already using {0}")]
    Locked(String),
    #[error("invalid config: {0}")]
    Config(String),
}

pub struct Gateway {
    pub addr: SocketAddr,
    /// The access key created on an empty data dir, to be shown once.
    pub first_key: Option<NewKey>,
    /// What the gateway stores in (for what it prints at start).
    pub store: Store,
    stop: watch::Sender<bool>,
    server: JoinHandle<()>,
}

/// Starts the gateway with the executors its config names: the model
/// executor (the embedded default), and programs for the services
/// `[executor.commands]` lists.
pub async fn start(cfg: &Config) -> Result<Gateway, StartError> {
    let model = ModelExecutor {
        delay: Duration::from_millis(cfg.model_delay_ms),
    };
    start_with(cfg, |store| {
        let commands =
            CommandExecutor::new(&cfg.executor, store, model).map_err(StartError::Config)?;
        let allow = AllowList::parse(&cfg.executor.allow_hosts).map_err(StartError::Config)?;
        let mut servers = cfg.servers.clone();
        servers.scratch_dir = Some(scratch_dir(&cfg.data_dir));
        let exec = ServersExecutor::new(
            store,
            allow,
            servers,
            cfg.executor.commands.keys().cloned().collect(),
            Arc::new(commands),
        );
        Ok(Arc::new(exec) as Arc<dyn Executor>)
    })
    .await
}

/// Starts the gateway with another executor.
pub async fn start_with_executor(
    cfg: &Config,
    executor: Arc<dyn Executor>,
) -> Result<Gateway, StartError> {
    start_with(cfg, |_| Ok(executor)).await
}

/// `make` builds the executor once the store (and the master key that opens
/// job secrets) is open.
async fn start_with(
    cfg: &Config,
    make: impl FnOnce(&Store) -> Result<Arc<dyn Executor>, StartError>,
) -> Result<Gateway, StartError> {
    crate::metrics::init(crate::actions::names());
    std::fs::create_dir_all(&cfg.data_dir).map_err(StoreError::from)?;
    let lock = lock_data_dir(cfg)?;
    // Holding the lock, this is the only gateway on the data dir: what a
    // copy left in scratch belongs to one that died (data, option files).
    let scratch = scratch_dir(&cfg.data_dir);
    let _ = std::fs::remove_dir_all(&scratch);
    private_dir(&scratch).map_err(StoreError::from)?;

    let (store, writer_thread, needs_key) = match cfg.store.as_deref() {
        None => open_sqlite(cfg)?,
        Some(url) => open_postgres(cfg, url).await?,
    };
    let executor = make(&store)?;
    let listener = TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: cfg.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(StoreError::from)?;
    let first_key = if needs_key {
        store.create_first_key(&crate::ids::owner_id()).await?
    } else {
        None
    };

    let pool = WorkerPool::spawn(
        store.clone(),
        executor,
        WorkerConfig {
            workers: cfg.workers.max(1),
            lease_secs: cfg.lease_secs.max(3),
            poll: Duration::from_secs(1),
            instance: crate::ids::instance_id(),
            retention_secs: cfg.job_retention_secs,
            prune_every: Duration::from_secs(cfg.prune_interval_secs.max(1)),
            job_timeout: Duration::from_secs(cfg.job_timeout_secs.max(1)),
        },
    );
    let allow = AllowList::parse(&cfg.executor.allow_hosts).map_err(StartError::Config)?;
    let fleet = crate::worker::servers::fleet::Fleet {
        store: store.clone(),
        allow: Arc::new(allow),
    };
    let banner_store = store.clone();
    let state = Arc::new(AppState {
        fleet,
        metrics: cfg.metrics.clone(),
        throttle: FailureThrottle::new(
            cfg.auth_failure_limit,
            Duration::from_secs(cfg.auth_failure_window_secs),
        ),
        max_open_jobs_per_owner: cfg.max_open_jobs_per_owner,
        store,
        window: TimeWindow {
            skew_secs: cfg.time_skew_secs,
            max_expires_secs: cfg.max_expires_secs,
        },
        body_timeout: Duration::from_secs(cfg.body_timeout_secs),
    });
    let (stop, stop_rx) = watch::channel(false);
    let sampler = tokio::spawn(crate::worker::servers::sampler::run(
        state.fleet.clone(),
        stop_rx.clone(),
    ));
    let server = tokio::spawn(serve(
        listener,
        state,
        Background { pool, sampler },
        writer_thread,
        lock,
        cfg.clone(),
        stop_rx,
    ));
    Ok(Gateway {
        addr,
        first_key,
        store: banner_store,
        stop,
        server,
    })
}

impl Gateway {
    /// Stops accepting, finishes in-flight requests, lets running jobs reach
    /// their safe point, and closes the store.
    pub async fn shutdown(self) {
        // The store's writer ends once its last handle is dropped.
        let Gateway {
            stop,
            server,
            store,
            ..
        } = self;
        drop(store);
        let _ = stop.send(true);
        let _ = server.await;
    }
}

/// What runs beside the request path: the workers and the DR-task sampler.
struct Background {
    pool: WorkerPool,
    sampler: JoinHandle<()>,
}

/// The SQLite file in the data dir: this gateway is its only user.
fn open_sqlite(
    cfg: &Config,
) -> Result<(Store, Option<std::thread::JoinHandle<()>>, bool), StartError> {
    let master = Arc::new(MasterKey::load_or_create(&cfg.data_dir).map_err(StoreError::from)?);
    // Bootstrap on a direct connection before the writer owns the file.
    let mut conn = store::open_rw(&store::db_path(&cfg.data_dir))?;
    // The first key is created only once the gateway has started: a start
    // that fails (port in use, a bad config) must not leave a key whose
    // secret was never shown.
    let needs_key = store::with_tx(&mut conn, |c| {
        keys::seal_legacy(c, &master)?;
        Ok(keys::count(c)? == 0)
    })?;
    // Only one serve runs per data dir, so every working job is an orphan now.
    let decide: store::queue::Rescuer = Box::new(worker::rescue_decision);
    let rescued = store::with_tx(&mut conn, |c| store::sqlite::rescue(c, i64::MAX, &decide))?;
    if rescued > 0 {
        tracing::warn!(rescued, "recovered jobs interrupted by the last shutdown");
    }
    drop(conn);
    // A request accepted now stays valid at most this long (its time_stamp
    // may run `skew` ahead, then `skew` or `max_expires` more), plus a margin.
    let replay_window = 2 * cfg.time_skew_secs.max(0) + cfg.max_expires_secs.max(0) + 60;
    let views_bytes =
        usize::try_from(cfg.job_views_mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
    let (sqlite, writer_thread) = store::Sqlite::open(
        &cfg.data_dir,
        cfg.durability,
        master,
        replay_window,
        views_bytes,
    )?;
    Ok((Store::from(sqlite), Some(writer_thread), needs_key))
}

/// A PostgreSQL database other gateways may share: the master key must be
/// given (the same on every gateway), and only jobs whose lease ran out
/// are rescued, since the others may be running on another gateway now.
async fn open_postgres(
    cfg: &Config,
    url: &str,
) -> Result<(Store, Option<std::thread::JoinHandle<()>>, bool), StartError> {
    if !store::postgres::is_url(url) {
        return Err(StartError::Config(format!(
            "store must be a postgres://USER@HOST:PORT/DB URL (or left out for SQLite in the data dir), got {:?}",
            crate::redact::url(url)
        )));
    }
    let master = Arc::new(
        MasterKey::load_given(cfg.master_key_file.as_deref())
            .map_err(|e| StartError::Config(e.to_string()))?,
    );
    let pg = store::postgres::Pg::open(url, master)?;
    let needs_key = store::postgres::keys::count(&pg)? == 0;
    let store = Store::from(pg);
    let decide: store::queue::Rescuer = Box::new(worker::rescue_decision);
    let rescued = store::queue::Queue::rescue(&store, crate::clock::now_unix(), decide).await?;
    if rescued > 0 {
        tracing::warn!(rescued, "recovered jobs whose gateway stopped holding them");
    }
    Ok((store, None, needs_key))
}

/// Copies and the tools' option files, while they run.
fn scratch_dir(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join("scratch")
}

/// A directory only this user may enter.
fn private_dir(path: &std::path::Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.recursive(true).create(path)
}

fn lock_data_dir(cfg: &Config) -> Result<File, StartError> {
    let path = cfg.data_dir.join("serve.lock");
    let file = File::create(&path).map_err(StoreError::from)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(_) => Err(StartError::Locked(cfg.data_dir.display().to_string())),
    }
}

async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    background: Background,
    writer_thread: Option<std::thread::JoinHandle<()>>,
    lock: File,
    cfg: Config,
    mut stop: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(cfg.max_connections.max(1)));
    let mut http = http1::Builder::new();
    // The header timeout is `IdleSweeper`'s, not hyper's per-request timer.
    http.timer(TokioTimer::new())
        .header_read_timeout(None)
        .max_buf_size(crate::http::MAX_INPUT + 64 * 1024)
        .keep_alive(true);
    let idle = IdleSweeper::spawn(Duration::from_secs(cfg.header_timeout_secs));
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = stop.changed() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let activity = Activity::new();
        let watched = activity.clone();
        let conn = http.serve_connection(
            crate::http::JsonRejections::new(TokioIo::new(stream)),
            service_fn(move |req| {
                let (state, in_flight) = (state.clone(), activity.begin());
                async move {
                    let resp = crate::http::handle(state, req, peer).await;
                    drop(in_flight);
                    Ok::<_, std::convert::Infallible>(resp)
                }
            }),
        );
        let conn = graceful.watch(conn);
        let task = tokio::spawn(async move {
            let _ = conn.await;
            drop(permit);
        });
        // Aborting the task drops the connection, which closes it.
        idle.watch(watched, task.abort_handle());
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(30), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("in-flight requests did not finish within 30 s");
    }
    drop(idle);
    background.pool.shutdown().await;
    let _ = background.sampler.await;
    // The writer stops once every handle to it is gone and its queue is drained.
    drop(state);
    if let Some(writer_thread) = writer_thread {
        let joined = tokio::task::spawn_blocking(move || writer_thread.join());
        if tokio::time::timeout(Duration::from_secs(10), joined)
            .await
            .is_err()
        {
            tracing::warn!("the store writer did not stop within 10 s");
        }
    }
    drop(lock);
    tracing::info!("stopped");
}
