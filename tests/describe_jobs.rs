//! DescribeJobs: paging, filters, ordering and tenancy over real HTTP.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn ids(r: &Value) -> Vec<String> {
    r["job_set"]
        .as_array()
        .expect("job_set")
        .iter()
        .map(|j| j["job_id"].as_str().expect("id").to_string())
        .collect()
}

/// Registers `n` clusters for owner A and starts a standby on each; returns job ids in submission order.
async fn submit(h: &Harness, n: usize) -> Vec<String> {
    let mut c = h.client_a();
    let mut out = Vec::new();
    for i in 0..n {
        let id = format!("cl-page{i:04}");
        h.add_cluster(&id, ZONE, &h.owner_a.clone());
        let r = start_standby(&mut c, &id, "cl-source01").await;
        assert_eq!(r["ret_code"], 0, "{r}");
        out.push(r["job_id"].as_str().expect("id").to_string());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_is_newest_first_and_total_counts_before_paging() {
    let h = Harness::start(0).await;
    let submitted = submit(&h, 25).await;
    let mut c = h.client_a();
    let newest_first: Vec<String> = submitted.iter().rev().cloned().collect();

    let page = |offset: &'static str, limit: &'static str| {
        [("zone", ZONE), ("offset", offset), ("limit", limit)]
    };
    let r = c.call("DescribeJobs", &page("0", "10")).await.expect("r");
    assert_eq!(r["total_count"], 25, "{r}");
    assert_eq!(ids(&r), newest_first[0..10]);
    let r = c.call("DescribeJobs", &page("10", "10")).await.expect("r");
    assert_eq!(ids(&r), newest_first[10..20]);
    let r = c.call("DescribeJobs", &page("20", "10")).await.expect("r");
    assert_eq!(ids(&r), newest_first[20..25]);
    assert_eq!(r["total_count"], 25);
    let r = c.call("DescribeJobs", &page("30", "10")).await.expect("r");
    assert_eq!(ids(&r).len(), 0);
    assert_eq!(r["total_count"], 25);

    // default limit 20, and at most 100 whatever `limit` says
    let r = c.call("DescribeJobs", &[("zone", ZONE)]).await.expect("r");
    assert_eq!(ids(&r).len(), 20);
    let r = c
        .call("DescribeJobs", &[("zone", ZONE), ("limit", "1000")])
        .await
        .expect("r");
    assert_eq!(ids(&r).len(), 25);

    // jobs.n picks exactly those, newest first
    let r = c
        .call(
            "DescribeJobs",
            &[
                ("jobs.1", submitted[3].as_str()),
                ("jobs.2", submitted[7].as_str()),
            ],
        )
        .await
        .expect("r");
    assert_eq!(ids(&r), vec![submitted[7].clone(), submitted[3].clone()]);
    assert_eq!(r["total_count"], 2);

    // job_action filter
    let r = c
        .call("DescribeJobs", &[("job_action", "RunClusterCustomService")])
        .await
        .expect("r");
    assert_eq!(r["total_count"], 25);
    let r = c
        .call("DescribeJobs", &[("job_action", "CreateCluster")])
        .await
        .expect("r");
    assert_eq!(r["total_count"], 0);

    // zone filter: nothing in another zone
    let r = c
        .call("DescribeJobs", &[("zone", "pek3a")])
        .await
        .expect("r");
    assert_eq!(r["total_count"], 0);

    for (k, v) in [("offset", "-1"), ("limit", "x"), ("verbose", "2")] {
        let r = c.call("DescribeJobs", &[(k, v)]).await.expect("r");
        assert_eq!(r["ret_code"], 1100, "{k}={v}: {r}");
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_filters_in_list_and_scalar_form() {
    // A long model delay keeps jobs visible as pending and working.
    let h = Harness::start(60_000).await;
    let submitted = submit(&h, 12).await;
    let mut c = h.client_a();
    let count = |r: &Value| r["total_count"].as_u64().expect("count");

    // 8 workers: 8 jobs working, 4 pending, once the workers have claimed.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = c
            .call("DescribeJobs", &[("status.1", "working")])
            .await
            .expect("r");
        if count(&r) == 8 {
            break;
        }
        assert!(Instant::now() < deadline, "workers did not claim: {r}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = c
        .call("DescribeJobs", &[("status", "pending")])
        .await
        .expect("r");
    assert_eq!(count(&r), 4, "{r}");
    assert!(
        r["job_set"]
            .as_array()
            .expect("set")
            .iter()
            .all(|j| j["status"] == "pending")
    );
    // the oldest jobs were claimed first
    let pending: HashSet<String> = ids(&r).into_iter().collect();
    let expected: HashSet<String> = submitted[8..].iter().cloned().collect();
    assert_eq!(pending, expected);

    let r = c
        .call(
            "DescribeJobs",
            &[("status.1", "pending"), ("status.2", "working")],
        )
        .await
        .expect("r");
    assert_eq!(count(&r), 12);
    let r = c
        .call("DescribeJobs", &[("status.1", "successful")])
        .await
        .expect("r");
    assert_eq!(count(&r), 0);

    let r = c
        .call("DescribeJobs", &[("status.1", "done")])
        .await
        .expect("r");
    assert_eq!(r["ret_code"], 1100, "{r}");
    assert_golden("status_invalid", &r);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_owners_jobs_are_invisible_and_look_missing() {
    let h = Harness::start(0).await;
    let submitted = submit(&h, 2).await;
    let mut b = h.client_b();

    let r = b.call("DescribeJobs", &[("zone", ZONE)]).await.expect("r");
    assert_eq!(r["total_count"], 0, "{r}");
    assert_eq!(ids(&r).len(), 0);

    let foreign = b
        .call("DescribeJobs", &[("jobs.1", submitted[0].as_str())])
        .await
        .expect("r");
    assert_eq!(foreign["ret_code"], 2100, "{foreign}");
    let unknown = b
        .call("DescribeJobs", &[("jobs.1", "j-doesnotexist")])
        .await
        .expect("r");
    assert_eq!(unknown["ret_code"], 2100);
    assert_golden("job_not_found", &unknown);
    assert_eq!(
        foreign.to_string().replace(&submitted[0], "ID"),
        unknown.to_string().replace("j-doesnotexist", "ID"),
        "a foreign job looks exactly like a missing one"
    );
    // one unknown id among known ones still fails the whole request
    let mut a = h.client_a();
    let r = a
        .call(
            "DescribeJobs",
            &[
                ("jobs.1", submitted[0].as_str()),
                ("jobs.2", "j-doesnotexist"),
            ],
        )
        .await
        .expect("r");
    assert_eq!(r["ret_code"], 2100);
    // a job in another zone is not found when asked for in this one
    let r = a
        .call(
            "DescribeJobs",
            &[("jobs.1", submitted[0].as_str()), ("zone", "pek3a")],
        )
        .await
        .expect("r");
    assert_eq!(r["ret_code"], 2100);
    // malformed ids answer as unknown ones
    let r = a
        .call("DescribeJobs", &[("jobs.1", "not-a-job")])
        .await
        .expect("r");
    assert_eq!(r["ret_code"], 2100);

    // B cannot run services on A's cluster either
    let r = start_standby(&mut b, "cl-page0000", "cl-source01").await;
    assert_eq!(r["ret_code"], 2100, "{r}");
    h.stop().await;
}

/// `job_views_mib = 0` keeps no job in memory: every poll reads SQLite, and
/// answers what a gateway holding the job in its views answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_job_views_polls_read_sqlite_and_answer_the_same() {
    let mut entries = Vec::new();
    let default = qcgate::config::Config::default().job_views_mib;
    for mib in [0, default] {
        let dir = tempfile::tempdir().expect("tempdir");
        let h = Harness::start_with(dir, |c| {
            c.model_delay_ms = 0;
            c.job_views_mib = mib;
        })
        .await;
        let submitted = submit(&h, 3).await;
        let mut c = h.client_a();
        for id in &submitted {
            let (entry, _) = wait_job(&mut c, id, Duration::from_secs(20)).await;
            assert_eq!(entry["status"], "successful", "{entry}");
        }
        let r = c
            .call("DescribeJobs", &[("zone", ZONE), ("jobs.1", &submitted[1])])
            .await
            .expect("r");
        assert_eq!(ids(&r), [submitted[1].clone()], "{r}");
        let mut entry = r["job_set"][0].clone();
        assert!(!entry.to_string().contains("Passwd@123"), "{entry}");
        // What differs between two gateways: the id, the times, the owner.
        for volatile in ["job_id", "create_time", "status_time", "owner"] {
            entry[volatile] = Value::Null;
        }
        let directive: Value =
            serde_json::from_str(entry["directive"].as_str().expect("directive")).expect("json");
        entry["directive"] = directive;
        entry["directive"]["access_key_id"] = Value::Null;
        entry["directive"]["time_stamp"] = Value::Null;
        entry["directive"]["req_id"] = Value::Null;
        entries.push(entry);
        if mib == 0 {
            // Nothing in memory to answer from: a change made to the row
            // behind the gateway's back shows in the next poll.
            h.edit_job(&submitted[1], "error_message = 'edited'");
            let shown = job(&mut c, &submitted[1]).await;
            assert_eq!(shown["error_message"], "edited", "{shown}");
        }
        h.stop().await;
    }
    assert_eq!(entries[0], entries[1]);
}

/// `jobs.1=` (an unset shell variable) is an error naming the parameter,
/// never every job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_job_id_is_an_error_not_every_job() {
    let h = Harness::start(0).await;
    h.add_cluster("cl-empty001", ZONE, &h.owner_a);
    let mut c = h.client_a();
    let r = start_standby(&mut c, "cl-empty001", "cl-9np7ig3g").await;
    assert_eq!(r["ret_code"], 0, "{r}");
    for (k, v) in [("jobs.1", ""), ("jobs", ""), ("clusters.1", "")] {
        let action = if k.starts_with("jobs") {
            "DescribeJobs"
        } else {
            "DescribeClusters"
        };
        let r = c
            .call(action, &[(k, v), ("zone", ZONE)])
            .await
            .expect("reply");
        assert_eq!(r["ret_code"], 1100, "{k}: {r}");
        assert!(
            r["message"].as_str().unwrap_or_default().contains(k),
            "{k}: {r}"
        );
    }
    h.stop().await;
}
