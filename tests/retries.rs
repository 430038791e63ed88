//! Retries with backoff for idempotent services, the attempt limit, and the
//! job timeout, driven by an executor that fails on purpose.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use qcgate::BoxFuture;
use qcgate::store::jobs::Claimed;
use qcgate::worker::executor::{Done, Executor, Failure};
use qcgate::worker::model::ModelExecutor;

/// The model executor, but the first `fail_first` attempts of every job fail
/// transiently, and each attempt first sleeps `hang`.
struct Flaky {
    fail_first: i64,
    hang: Duration,
    model: ModelExecutor,
}

impl Executor for Flaky {
    fn execute<'a>(&'a self, job: &'a Claimed) -> BoxFuture<'a, Result<Done, Failure>> {
        Box::pin(async move {
            tokio::time::sleep(self.hang).await;
            if job.attempts <= self.fail_first {
                return Err(Failure::new(
                    5000,
                    format!(
                        "Unreachable, attempt {} could not reach the cluster",
                        job.attempts
                    ),
                    true,
                ));
            }
            self.model.execute(job).await
        })
    }
}

async fn harness(fail_first: i64, hang: Duration, job_timeout_secs: u64) -> Harness {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = qcgate::config::Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.path().to_path_buf(),
        job_timeout_secs,
        ..Default::default()
    };
    let flaky = Flaky {
        fail_first,
        hang,
        model: ModelExecutor {
            delay: Duration::ZERO,
        },
    };
    let gw = qcgate::app::start_with_executor(&cfg, Arc::new(flaky))
        .await
        .expect("starts");
    Harness::adopt(dir, gw)
}

fn attempts(h: &Harness, job_id: &str) -> i64 {
    let conn = rusqlite::Connection::open(h.db()).expect("db");
    conn.query_row("SELECT attempts FROM jobs WHERE id = ?1", [job_id], |r| {
        r.get(0)
    })
    .expect("row")
}

/// A standby cluster, as `start_standby` would have left it.
fn standby(h: &Harness, id: &str) {
    h.add_cluster(id, ZONE, &h.owner_a.clone());
    let conn = rusqlite::Connection::open(h.db()).expect("db");
    qcgate::store::clusters::set_standby(&conn, id, "cl-9np7ig3g", "full").expect("standby");
}

async fn stop_standby(c: &mut qcgate::client::Client, cluster: &str) -> String {
    let r = c
        .call(
            "RunClusterCustomService",
            &[
                ("cluster", cluster),
                ("service", "stop_standby"),
                ("zone", ZONE),
            ],
        )
        .await
        .expect("reply");
    assert_eq!(r["ret_code"], 0, "{r}");
    r["job_id"].as_str().expect("id").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_job_is_retried_with_backoff_until_it_succeeds() {
    let h = harness(2, Duration::ZERO, 60).await;
    standby(&h, "cl-retry001");
    let mut c = h.client_a();
    let started = Instant::now();
    let job_id = stop_standby(&mut c, "cl-retry001").await;
    let (j, seen) = wait_job(&mut c, &job_id, Duration::from_secs(20)).await;
    assert_eq!(j["status"], "successful", "{j}");
    assert_eq!(j["error_codes"], "", "a success clears the last failure");
    assert_eq!(attempts(&h, &job_id), 3);
    // backoff 1 s then 2 s
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(
        seen.iter()
            .all(|s| ["pending", "working", "successful"].contains(&s.as_str()))
    );
    assert!(h.cluster("cl-retry001").standby_of.is_none());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_stop_at_the_services_attempt_limit() {
    let h = harness(100, Duration::ZERO, 60).await;
    standby(&h, "cl-retry002");
    let mut c = h.client_a();
    let job_id = stop_standby(&mut c, "cl-retry002").await;
    let (j, _) = wait_job(&mut c, &job_id, Duration::from_secs(20)).await;
    assert_eq!(j["status"], "failed", "{j}");
    assert!(
        j["error_message"]
            .as_str()
            .unwrap_or("")
            .contains("gave up after 3 attempts"),
        "{j}"
    );
    assert_eq!(attempts(&h, &job_id), 3);
    assert!(
        h.cluster("cl-retry002").standby_of.is_some(),
        "no effect recorded"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_is_not_idempotent_is_never_retried() {
    let h = harness(1, Duration::ZERO, 60).await;
    h.add_cluster("cl-retry003", ZONE, &h.owner_a.clone());
    let mut c = h.client_a();
    let r = start_standby(&mut c, "cl-retry003", "cl-9np7ig3g").await;
    let job_id = r["job_id"].as_str().expect("id").to_string();
    let (j, _) = wait_job(&mut c, &job_id, Duration::from_secs(10)).await;
    assert_eq!(j["status"], "failed");
    assert!(
        j["error_message"]
            .as_str()
            .unwrap_or("")
            .contains("not safe to repeat"),
        "{j}"
    );
    assert_eq!(attempts(&h, &job_id), 1);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_that_runs_past_the_job_timeout_fails() {
    let h = harness(0, Duration::from_secs(30), 1).await;
    h.add_cluster("cl-retry004", ZONE, &h.owner_a.clone());
    let mut c = h.client_a();
    let r = start_standby(&mut c, "cl-retry004", "cl-9np7ig3g").await;
    let job_id = r["job_id"].as_str().expect("id").to_string();
    let (j, _) = wait_job(&mut c, &job_id, Duration::from_secs(10)).await;
    assert_eq!(j["status"], "failed");
    assert!(
        j["error_message"]
            .as_str()
            .unwrap_or("")
            .contains("JobTimeout"),
        "{j}"
    );
    h.stop().await;
}
