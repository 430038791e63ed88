//! Replays, the per-owner queue quota and pruning, over real HTTP.

mod common;

use std::time::{Duration, Instant};

use common::*;
use hyper::Method;
use qcgate::client;
use serde_json::Value;

fn rccs(cluster: &str, req_id: &str) -> Vec<(String, String)> {
    vec![
        ("action".into(), "RunClusterCustomService".into()),
        ("cluster".into(), cluster.into()),
        ("service".into(), "start_standby".into()),
        ("service_params".into(), standby_params("cl-9np7ig3g")),
        ("zone".into(), ZONE.into()),
        ("req_id".into(), req_id.into()),
    ]
}

async fn send(c: &mut qcgate::client::Client, query: &str) -> Value {
    let (_, body) = c
        .send(Method::GET, &format!("/iaas/?{query}"), None)
        .await
        .expect("send");
    serde_json::from_slice(&body).expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_signed_request_twice_creates_one_job() {
    let h = Harness::start(100).await;
    h.add_cluster("cl-replay01", ZONE, &h.owner_a.clone());
    let mut c = h.client_a();

    let signed = client::sign(&h.a, "GET", "/iaas/", rccs("cl-replay01", "r1"));
    let first = send(&mut c, &signed).await;
    assert_eq!(first["ret_code"], 0, "{first}");
    let again = send(&mut c, &signed).await;
    assert_eq!(again, first, "a replay answers with the original job");

    // Still the same job after it ran (the request is still valid).
    let job_id = first["job_id"].as_str().expect("id").to_string();
    let (j, _) = wait_job(&mut c, &job_id, Duration::from_secs(10)).await;
    assert_eq!(j["status"], "successful");
    assert_eq!(send(&mut c, &signed).await["job_id"], first["job_id"]);

    let r = c
        .call("DescribeJobs", &[("job_action", "RunClusterCustomService")])
        .await
        .expect("r");
    assert_eq!(r["total_count"], 1, "one job for three receptions: {r}");

    // An honest retry is re-signed (new req_id / time_stamp): a new request.
    let resigned = client::sign(&h.a, "GET", "/iaas/", rccs("cl-replay01", "r2"));
    let r = send(&mut c, &resigned).await;
    assert_eq!(r["ret_code"], 1400, "a new request, refused by state: {r}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_after_a_restart_answers_with_the_original_job() {
    // Jobs stay pending, so the replay passes validation and reaches the writer.
    let mut h = Harness::start(3_600_000).await;
    h.add_cluster("cl-replay02", ZONE, &h.owner_a.clone());
    let signed = client::sign(&h.a, "GET", "/iaas/", rccs("cl-replay02", "r1"));
    let first = send(&mut h.client_a(), &signed).await;
    assert_eq!(first["ret_code"], 0, "{first}");

    h.restart(3_600_000).await;
    let mut c = h.client_a();
    assert_eq!(
        send(&mut c, &signed).await,
        first,
        "the replay index is rebuilt"
    );
    let r = c
        .call("DescribeJobs", &[("job_action", "RunClusterCustomService")])
        .await
        .expect("r");
    assert_eq!(r["total_count"], 1, "{r}");

    // Once the job has run, the replay is refused by validation and answered
    // from the index as readers see it.
    h.restart(1).await;
    let mut c = h.client_a();
    let job_id = first["job_id"].as_str().expect("id").to_string();
    let (j, _) = wait_job(&mut c, &job_id, Duration::from_secs(10)).await;
    assert_eq!(j["status"], "successful");
    assert_eq!(send(&mut c, &signed).await, first);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_create_cluster_creates_one_cluster_and_answers_the_same_ids() {
    let h = Harness::start(100).await;
    let mut c = h.client_a();
    let params = vec![
        ("action".to_string(), "CreateCluster".to_string()),
        ("conf".to_string(), r#"{"name":"once"}"#.to_string()),
        ("zone".to_string(), ZONE.to_string()),
    ];
    let signed = client::sign(&h.a, "GET", "/iaas/", params);
    let first = send(&mut c, &signed).await;
    assert_eq!(first["ret_code"], 0, "{first}");
    let again = send(&mut c, &signed).await;
    assert_eq!(again, first, "same cluster, job and node ids");
    let r = c.call("DescribeClusters", &[]).await.expect("r");
    assert_eq!(r["total_count"], 1, "one cluster for two receptions: {r}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_over_its_queue_quota_gets_2500_and_others_are_unaffected() {
    let h = Harness::start_with(tempfile::tempdir().expect("tmp"), |c| {
        c.model_delay_ms = 60_000;
        c.max_open_jobs_per_owner = 3;
    })
    .await;
    let (a, b) = (h.owner_a.clone(), h.owner_b.clone());
    for i in 0..4 {
        h.add_cluster(&format!("cl-quota{i:03}"), ZONE, &a);
    }
    h.add_cluster("cl-quotab01", ZONE, &b);
    let mut ca = h.client_a();
    for i in 0..3 {
        let r = start_standby(&mut ca, &format!("cl-quota{i:03}"), "cl-9np7ig3g").await;
        assert_eq!(r["ret_code"], 0, "{r}");
    }
    let r = start_standby(&mut ca, "cl-quota003", "cl-9np7ig3g").await;
    assert_eq!(r["ret_code"], 2500, "{r}");
    assert_golden("queue_quota_exceeded", &r);
    let r = ca.call("DescribeJobs", &[]).await.expect("r");
    assert_eq!(r["total_count"], 3, "the refused request stored nothing");

    let mut cb = h.client_b();
    let r = start_standby(&mut cb, "cl-quotab01", "cl-9np7ig3g").await;
    assert_eq!(r["ret_code"], 0, "another owner's queue is its own: {r}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quota_takes_a_request_whole_and_a_replay_at_the_quota_gets_its_job() {
    let h = Harness::start_with(tempfile::tempdir().expect("tmp"), |c| {
        c.model_delay_ms = 60_000;
        c.max_open_jobs_per_owner = 3;
    })
    .await;
    let a = h.owner_a.clone();
    for i in 0..4 {
        h.add_cluster(&format!("cl-whole{i:03}"), ZONE, &a);
    }
    let mut c = h.client_a();
    let signed = client::sign(&h.a, "GET", "/iaas/", rccs("cl-whole000", "w1"));
    let first = send(&mut c, &signed).await;
    assert_eq!(first["ret_code"], 0, "{first}");

    // One open job + three would pass the quota of 3: none is stored.
    let three = [
        ("clusters.1", "cl-whole001"),
        ("clusters.2", "cl-whole002"),
        ("clusters.3", "cl-whole003"),
    ];
    let r = c.call("StopClusters", &three).await.expect("r");
    assert_eq!(r["ret_code"], 2500, "{r}");
    let r = c.call("DescribeJobs", &[]).await.expect("r");
    assert_eq!(r["total_count"], 1, "all or nothing: {r}");

    // Two fit exactly.
    let r = c.call("StopClusters", &three[..2]).await.expect("r");
    assert_eq!(r["ret_code"], 0, "{r}");

    // The owner is at the quota, yet the first request received again is
    // answered with its job: a replay takes no room.
    let again = send(&mut c, &signed).await;
    assert_eq!(again, first, "{again}");
    let r = c.call("DescribeJobs", &[]).await.expect("r");
    assert_eq!(r["total_count"], 3, "{r}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_jobs_are_pruned_after_retention_and_open_ones_never() {
    let h = Harness::start_with(tempfile::tempdir().expect("tmp"), |c| {
        c.model_delay_ms = 10;
        c.job_retention_secs = 1;
        c.prune_interval_secs = 1;
    })
    .await;
    h.add_cluster("cl-prune001", ZONE, &h.owner_a.clone());
    let mut c = h.client_a();
    let signed = client::sign(&h.a, "GET", "/iaas/", rccs("cl-prune001", "p1"));
    let r = send(&mut c, &signed).await;
    let job_id = r["job_id"].as_str().expect("id").to_string();
    let (j, _) = wait_job(&mut c, &job_id, Duration::from_secs(10)).await;
    assert_eq!(j["status"], "successful");

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = c
            .call("DescribeJobs", &[("jobs.1", job_id.as_str())])
            .await
            .expect("r");
        if r["ret_code"] == 2100 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the finished job was never pruned: {r}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The request is still valid: sent again, it still names its job.
    assert_eq!(send(&mut c, &signed).await, r, "a replay after pruning");
    h.stop().await;

    // Open jobs are never pruned, however old.
    let h = Harness::start_with(tempfile::tempdir().expect("tmp"), |c| {
        c.model_delay_ms = 60_000;
        c.job_retention_secs = 0;
        c.prune_interval_secs = 1;
    })
    .await;
    h.add_cluster("cl-prune002", ZONE, &h.owner_a.clone());
    let mut c = h.client_a();
    let r = start_standby(&mut c, "cl-prune002", "cl-9np7ig3g").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let r = c
        .call(
            "DescribeJobs",
            &[("jobs.1", r["job_id"].as_str().expect("id"))],
        )
        .await
        .expect("r");
    assert_eq!(r["ret_code"], 0, "{r}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failed_signatures_lock_the_key_id_for_a_while() {
    let h = Harness::start_with(tempfile::tempdir().expect("tmp"), |c| {
        c.auth_failure_limit = 5;
        c.auth_failure_window_secs = 2;
    })
    .await;
    let ak = h.a.access_key_id.clone();
    let mut guesser = h.client_with(&ak, "a-wrong-guess");
    for _ in 0..5 {
        assert_eq!(
            guesser.call("DescribeJobs", &[]).await.expect("r")["ret_code"],
            1200
        );
    }
    let r = guesser.call("DescribeJobs", &[]).await.expect("r");
    assert_eq!(r["ret_code"], 2500, "{r}");
    // Locked even for the right secret, while the window lasts…
    let mut owner = h.client_a();
    let r = owner.call("DescribeJobs", &[]).await.expect("r");
    assert_eq!(r["ret_code"], 2500, "{r}");
    let normalised = serde_json::json!({
        "message": r["message"].as_str().unwrap_or("").replace(&ak, "AK").split("retry in").next().unwrap_or(""),
        "ret_code": r["ret_code"],
    });
    assert_golden("auth_throttled", &normalised);
    // …another key is not affected…
    assert_eq!(
        h.client_b().call("DescribeJobs", &[]).await.expect("r")["ret_code"],
        0
    );
    // …and the lock ends with the window.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(
        owner.call("DescribeJobs", &[]).await.expect("r")["ret_code"],
        0
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_senders_are_cut_off_and_connections_are_bounded() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let h = Harness::start_with(tempfile::tempdir().expect("tmp"), |c| {
        c.header_timeout_secs = 1;
        c.max_connections = 3;
    })
    .await;
    let addr = h
        .endpoint
        .trim_start_matches("http://")
        .trim_end_matches("/iaas/")
        .to_string();

    // Slowloris: a request head that never ends is closed after the header timeout.
    let mut slow = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    slow.write_all(b"GET /iaas/?action=DescribeJobs HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    let started = Instant::now();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the slow connection was not closed");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // Three idle connections fill the gateway; a fourth waits for a slot,
    // and is served once the idle ones time out.
    let mut idle = Vec::new();
    for _ in 0..3 {
        let s = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        idle.push(s);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        h.client_a().call("DescribeJobs", &[]),
    )
    .await
    .expect("served within the timeout")
    .expect("reply");
    assert_eq!(r["ret_code"], 0);
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "a slot was free: {:?}",
        started.elapsed()
    );
    drop(idle);
    h.stop().await;
}

/// A job stored and claimed with a lease that already ran out, as a dead
/// gateway leaves it in a shared store.
async fn plant_shared(store: &qcgate::store::Store, job: qcgate::store::jobs::NewJob) -> String {
    use qcgate::store::queue::{Enqueued, Queue};
    let once = qcgate::store::jobs::Once {
        digest: qcgate::ids::request_id(),
        expires: qcgate::clock::now_unix() + 600,
    };
    let stored = store
        .submit(vec![(job, once)], 100, None)
        .await
        .expect("submit");
    let Some(Enqueued::New(id)) = stored.into_iter().next() else {
        panic!("not stored");
    };
    let claimed = store.claim("dead-worker", -10).await.expect("claim");
    assert_eq!(claimed.map(|c| c.job_id), Some(id.clone()));
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_leases_are_rescued_while_running_by_the_services_rule() {
    use qcgate::services::Task;
    use qcgate::store::{self, jobs};
    let mut h = Harness::start_with(tempfile::tempdir().expect("tmp"), |c| {
        c.model_delay_ms = 10;
        c.lease_secs = 3;
    })
    .await;
    let owner = h.owner_a.clone();
    h.add_cluster("cl-lease001", ZONE, &owner);
    h.add_cluster("cl-lease002", ZONE, &owner);
    h.local()
        .change(|m| m.set_standby("cl-lease002", "cl-9np7ig3g", "full"))
        .expect("standby");

    // A worker of a process that died: claimed, lease already expired.
    let job = |cluster: &str, service: &str| {
        let task = Task {
            service: service.into(),
            cluster: cluster.into(),
            role: "maininstance".into(),
            params: serde_json::json!({"cluster_id": "cl-9np7ig3g", "sync_way": "full"}),
        };
        jobs::NewJob {
            owner: owner.clone(),
            zone: ZONE.into(),
            action: "RunClusterCustomService".into(),
            lane: cluster.into(),
            resource_ids: vec![cluster.into()],
            directive: "{}".into(),
            task: serde_json::to_string(&task).expect("task"),
            secrets: None,
        }
    };
    let (not_idempotent, idempotent) = match h.shared_store() {
        // Through the queue, as a gateway that died holds them; this one is
        // stopped meanwhile so that its workers do not claim them first.
        Some(shared) => {
            if let Some(gw) = h.gw.take() {
                gw.shutdown().await;
            }
            let planted = (
                plant_shared(&shared, job("cl-lease001", "start_standby")).await,
                plant_shared(&shared, job("cl-lease002", "stop_standby")).await,
            );
            h.restart(10).await;
            planted
        }
        None => {
            let mut conn = store::open_rw(&h.db()).expect("db");
            let mut plant = |job: jobs::NewJob| -> String {
                store::with_tx(&mut conn, |c| {
                    let id = jobs::insert(c, &job)?;
                    let claimed = jobs::claim(c, "dead-worker", -10)?.expect("claimed");
                    assert_eq!(claimed.job_id, id);
                    Ok(id)
                })
                .expect("plant")
            };
            (
                plant(job("cl-lease001", "start_standby")),
                plant(job("cl-lease002", "stop_standby")),
            )
        }
    };

    let mut c = h.client_a();
    let (j, _) = wait_job(&mut c, &not_idempotent, Duration::from_secs(15)).await;
    assert_eq!(j["status"], "failed", "{j}");
    assert!(
        j["error_message"]
            .as_str()
            .unwrap_or("")
            .contains("JobInterrupted"),
        "{j}"
    );
    assert!(
        h.cluster("cl-lease001").standby_of.is_none(),
        "not run again"
    );

    let (j, _) = wait_job(&mut c, &idempotent, Duration::from_secs(15)).await;
    assert_eq!(
        j["status"], "successful",
        "an idempotent job is run again: {j}"
    );
    assert!(h.cluster("cl-lease002").standby_of.is_none());
    h.stop().await;
}
