//! One connection per gateway that `LISTEN`s: a job stored by any gateway
//! wakes a worker here, and a model change drops this gateway's caches.
//! Lost notifications cost latency, not correctness: workers also poll, and
//! caches keep entries a second at most.

use std::time::Duration;

use tokio_postgres::{AsyncMessage, NoTls};

use super::{JOBS_CHANNEL, MODEL_CHANNEL, Pg};

pub fn spawn(pg: Pg, config: tokio_postgres::Config) {
    let weak = std::sync::Arc::downgrade(&pg.inner);
    let handle = pg.inner.rt.handle().clone();
    drop(pg);
    handle.spawn(async move {
        loop {
            match listen_once(&weak, &config).await {
                Ok(()) => return,
                Err(e) => tracing::warn!(error = %e, "listening for other gateways; again in 1 s"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

/// Ok once the store is gone.
async fn listen_once(
    weak: &std::sync::Weak<super::Inner>,
    config: &tokio_postgres::Config,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut conn) = config.connect(NoTls).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        while let Some(m) = std::future::poll_fn(|cx| conn.poll_message(cx)).await {
            match m {
                Ok(AsyncMessage::Notification(n)) => {
                    if tx.send(n.channel().to_string()).is_err() {
                        return Ok(());
                    }
                }
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    });
    client
        .batch_execute(&format!("LISTEN {JOBS_CHANNEL}; LISTEN {MODEL_CHANNEL}"))
        .await?;
    // Whatever was missed while not listening.
    if let Some(inner) = weak.upgrade() {
        inner.job_ready.notify_one();
        inner.clusters.clear();
        inner.keys.clear();
    }
    while let Some(channel) = rx.recv().await {
        let Some(inner) = weak.upgrade() else {
            return Ok(());
        };
        match channel.as_str() {
            JOBS_CHANNEL => inner.job_ready.notify_one(),
            _ => {
                inner.clusters.clear();
                inner.keys.clear();
            }
        }
    }
    match driver.await {
        Ok(r) => r,
        Err(_) => Ok(()),
    }
}

/// Tells the other gateways, outside the transactions that cause it: a
/// `NOTIFY` takes a database-wide lock from its commit until the end, which
/// would put every submission's commit (and its flush) in one line. Calls
/// made while one is sent are folded into the next.
#[derive(Default)]
pub struct Teller {
    pending: std::sync::atomic::AtomicU8,
    wake: tokio::sync::Notify,
}

pub const TELL_JOBS: u8 = 1;
pub const TELL_MODEL: u8 = 2;

impl Teller {
    pub fn tell(&self, what: u8) {
        if what != 0 {
            self.pending
                .fetch_or(what, std::sync::atomic::Ordering::AcqRel);
            self.wake.notify_one();
        }
    }
}

pub fn spawn_teller(pg: &Pg) {
    let weak = std::sync::Arc::downgrade(&pg.inner);
    pg.inner.rt.handle().spawn(async move {
        loop {
            let Some(inner) = weak.upgrade() else { return };
            let teller = inner.teller.clone();
            drop(inner);
            teller.wake.notified().await;
            let what = teller.pending.swap(0, std::sync::atomic::Ordering::AcqRel);
            let Some(inner) = weak.upgrade() else { return };
            let mut sql = String::new();
            if what & TELL_JOBS != 0 {
                sql.push_str(&format!("NOTIFY {JOBS_CHANNEL};"));
            }
            if what & TELL_MODEL != 0 {
                sql.push_str(&format!("NOTIFY {MODEL_CHANNEL};"));
            }
            let sent = match inner.pool.get().await {
                Ok(c) => c.batch_execute(&sql).await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            drop(inner);
            if let Err(e) = sent {
                tracing::warn!(error = %e, "telling the other gateways; they poll meanwhile");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
}
