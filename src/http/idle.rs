//! The slowloris guard: a connection must send each request head within the
//! header timeout of connecting or of its previous reply, or it is closed.
//!
//! hyper's own `header_read_timeout` does this with a timer armed, boxed and
//! dropped for every request; replacing it saved ~2.0k of a DescribeJobs'
//! 75k instructions and ~4.5k of a write's (docs/performance.md). Here each
//! connection counts its requests, and one sweeper for the whole server looks
//! at every count a few times per timeout and aborts the tasks of quiet
//! connections: a request costs two atomic increments, a connection one lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::task::AbortHandle;

/// How many times per timeout the counts are looked at; a quiet connection
/// closes between one timeout and one tick more after its last activity.
const TICKS_PER_TIMEOUT: u32 = 4;
const MIN_TICK: Duration = Duration::from_millis(50);

/// Requests a connection has begun and finished.
#[derive(Default)]
pub struct Activity {
    begun: AtomicU64,
    finished: AtomicU64,
}

/// A request in service; its drop (even when the service future is dropped)
/// marks the request finished.
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.finished.fetch_add(1, Ordering::Release);
    }
}

impl Activity {
    pub fn new() -> Arc<Activity> {
        Arc::default()
    }

    /// Marks a request head received.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.begun.fetch_add(1, Ordering::Release);
        InFlight(self.clone())
    }

    /// The requests begun, when none is in service.
    fn quiet_count(&self) -> Option<u64> {
        let finished = self.finished.load(Ordering::Acquire);
        let begun = self.begun.load(Ordering::Acquire);
        (begun == finished).then_some(begun)
    }
}

struct Watched {
    activity: Arc<Activity>,
    task: AbortHandle,
    /// The count at the last look, and how many looks in a row found it
    /// unchanged with nothing in service.
    last: u64,
    quiet: u32,
}

/// Closes connections that stay quiet for the timeout.
pub struct IdleSweeper {
    watched: Mutex<Vec<Watched>>,
    /// Quiet looks in a row that close a connection.
    looks: u32,
}

impl IdleSweeper {
    /// Starts the sweeper on the current runtime; it stops once the returned
    /// handle is dropped.
    pub fn spawn(timeout: Duration) -> Arc<IdleSweeper> {
        let tick = (timeout / TICKS_PER_TIMEOUT).max(MIN_TICK);
        let looks = u32::try_from(timeout.as_nanos().div_ceil(tick.as_nanos()))
            .unwrap_or(u32::MAX)
            .max(1);
        let sweeper = Arc::new(IdleSweeper {
            watched: Mutex::new(Vec::new()),
            looks,
        });
        let weak: Weak<IdleSweeper> = Arc::downgrade(&sweeper);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + tick, tick);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                match weak.upgrade() {
                    Some(s) => s.sweep(),
                    None => return,
                }
            }
        });
        sweeper
    }

    /// Watches the connection served by `task`.
    pub fn watch(&self, activity: Arc<Activity>, task: AbortHandle) {
        let mut watched = self.watched.lock().unwrap_or_else(|e| e.into_inner());
        watched.push(Watched {
            activity,
            task,
            last: 0,
            quiet: 0,
        });
    }

    /// One look: forgets ended connections, aborts those quiet long enough.
    fn sweep(&self) {
        let mut watched = self.watched.lock().unwrap_or_else(|e| e.into_inner());
        watched.retain_mut(|w| {
            if w.task.is_finished() {
                return false;
            }
            match w.activity.quiet_count() {
                Some(n) if n == w.last => w.quiet += 1,
                Some(n) => (w.last, w.quiet) = (n, 0),
                None => w.quiet = 0,
            }
            if w.quiet >= self.looks {
                w.task.abort();
                return false;
            }
            true
        });
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.watched.lock().map(|w| w.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    /// A connection task that never ends by itself.
    fn connection(sweeper: &IdleSweeper) -> (Arc<Activity>, tokio::task::JoinHandle<()>) {
        let activity = Activity::new();
        let task = tokio::spawn(std::future::pending::<()>());
        sweeper.watch(activity.clone(), task.abort_handle());
        (activity, task)
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_with_no_request_closes_after_the_timeout() {
        let sweeper = IdleSweeper::spawn(Duration::from_secs(10));
        let (_, task) = connection(&sweeper);
        let started = Instant::now();
        assert!(task.await.expect_err("aborted").is_cancelled());
        let waited = started.elapsed();
        assert!(waited >= Duration::from_secs(10), "{waited:?}");
        assert!(waited <= Duration::from_millis(12_500), "{waited:?}");
        assert_eq!(sweeper.len(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn requests_keep_it_open_and_the_timeout_counts_from_the_last() {
        let sweeper = IdleSweeper::spawn(Duration::from_secs(1));
        let (activity, task) = connection(&sweeper);
        let started = Instant::now();
        // A request every 600 ms for 3 s: never quiet for a whole second.
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(600)).await;
            drop(activity.begin());
            assert!(!task.is_finished());
        }
        assert!(task.await.expect_err("aborted").is_cancelled());
        let waited = started.elapsed();
        assert!(waited >= Duration::from_secs(4), "{waited:?}");
        assert!(waited <= Duration::from_millis(4_300), "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_service_is_never_cut_off() {
        let sweeper = IdleSweeper::spawn(Duration::from_secs(1));
        let (activity, task) = connection(&sweeper);
        let busy = activity.begin();
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert!(!task.is_finished());
        drop(busy);
        let done = Instant::now();
        assert!(task.await.expect_err("aborted").is_cancelled());
        assert!(done.elapsed() <= Duration::from_millis(1_300));
    }

    #[tokio::test(start_paused = true)]
    async fn ended_connections_are_forgotten() {
        let sweeper = IdleSweeper::spawn(Duration::from_secs(10));
        let activity = Activity::new();
        let task = tokio::spawn(async {});
        sweeper.watch(activity, task.abort_handle());
        task.await.expect("ran");
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(sweeper.len(), 0);
    }
}
