//! Seed 003's story over HTTP: build A → B → C (and X under A), switch over B,
//! fail over, decouple C, checking the tree and the refusals at each step.

mod common;

use std::time::Duration;

use common::*;
use qcgate::client::Client;
use serde_json::Value;

async fn run(c: &mut Client, cluster: &str, service: &str) -> Value {
    c.call(
        "RunClusterCustomService",
        &[("cluster", cluster), ("service", service), ("zone", ZONE)],
    )
    .await
    .expect("reply")
}

/// Runs a service and waits for its job to succeed.
async fn run_ok(c: &mut Client, cluster: &str, service: &str) {
    let r = run(c, cluster, service).await;
    assert_eq!(r["ret_code"], 0, "{service} on {cluster}: {r}");
    let (j, _) = wait_job(
        c,
        r["job_id"].as_str().expect("id"),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(j["status"], "successful", "{service} on {cluster}: {j}");
}

async fn standby_of(c: &mut Client, cluster: &str, source: &str) {
    let r = start_standby(c, cluster, source).await;
    assert_eq!(r["ret_code"], 0, "{r}");
    let (j, _) = wait_job(
        c,
        r["job_id"].as_str().expect("id"),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(j["status"], "successful", "{j}");
}

async fn standbys(c: &mut Client, cluster: &str) -> Value {
    let r = c
        .call("DescribeClusterStandbys", &[("cluster", cluster)])
        .await
        .expect("reply");
    assert_eq!(r["ret_code"], 0, "{r}");
    r
}

/// The tree as nested (id, [children]) for compact comparison.
fn shape(n: &Value) -> String {
    let kids: Vec<String> = n["standbys"]
        .as_array()
        .map(|a| a.iter().map(shape).collect())
        .unwrap_or_default();
    let id = n["cluster_id"]
        .as_str()
        .unwrap_or("?")
        .trim_start_matches("cl-");
    if kids.is_empty() {
        id.to_string()
    } else {
        format!("{id}[{}]", kids.join(","))
    }
}

async fn expect_refusal(c: &mut Client, cluster: &str, service: &str, golden: &str) {
    let r = run(c, cluster, service).await;
    assert_eq!(r["ret_code"], 1400, "{service} on {cluster}: {r}");
    assert_golden(golden, &r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_003_switchover_failover_decouple() {
    let h = Harness::start(20).await;
    let owner = h.owner_a.clone();
    for id in ["cl-clustera", "cl-clusterb", "cl-clusterc", "cl-clusterx"] {
        h.add_cluster(id, ZONE, &owner);
    }
    let mut c = h.client_a();
    standby_of(&mut c, "cl-clusterb", "cl-clustera").await;
    standby_of(&mut c, "cl-clusterc", "cl-clusterb").await;
    standby_of(&mut c, "cl-clusterx", "cl-clustera").await;

    let r = standbys(&mut c, "cl-clusterb").await;
    assert_eq!(r["role"], "STANDBY");
    assert_eq!(r["primary"], "cl-clustera");
    assert_eq!(r["sync_status"], "NORMAL");
    assert!(r["sync_timestamp"].is_string());
    assert_eq!(r["standbys"], serde_json::json!(["cl-clusterc"]));
    assert_eq!(
        shape(&r["topology"]),
        "clustera[clusterb[clusterc],clusterx]"
    );

    // Refusals name the unmet prerequisite.
    expect_refusal(
        &mut c,
        "cl-clustera",
        "switchover",
        "switchover_not_a_standby",
    )
    .await;
    expect_refusal(
        &mut c,
        "cl-clusterc",
        "switchover",
        "switchover_primary_is_standby",
    )
    .await;
    expect_refusal(&mut c, "cl-clusterb", "failover", "failover_primary_online").await;

    // Switchover on B: A and B swap; X follows B, C follows A.
    run_ok(&mut c, "cl-clusterb", "switchover").await;
    let r = standbys(&mut c, "cl-clusterb").await;
    assert_eq!(r["role"], "PRIMARY");
    assert_eq!(r["primary"], Value::Null);
    assert_eq!(
        shape(&r["topology"]),
        "clusterb[clustera[clusterc],clusterx]"
    );

    // The primary B becomes unavailable.
    let r = c
        .call(
            "StopClusters",
            &[("clusters.1", "cl-clusterb"), ("zone", ZONE)],
        )
        .await
        .expect("reply");
    assert_eq!(r["ret_code"], 0, "{r}");
    let job = r["job_ids"]["cl-clusterb"]
        .as_str()
        .expect("job_ids map")
        .to_string();
    assert_eq!(
        wait_job(&mut c, &job, Duration::from_secs(10)).await.0["status"],
        "successful"
    );
    expect_refusal(
        &mut c,
        "cl-clustera",
        "switchover",
        "switchover_primary_offline",
    )
    .await;
    run_ok(&mut c, "cl-clustera", "failover").await;
    let r = standbys(&mut c, "cl-clustera").await;
    assert_eq!(r["role"], "PRIMARY");
    assert_eq!(shape(&r["topology"]), "clustera[clusterc]");
    // X could not follow the new primary: still a standby of the lost B.
    let r = standbys(&mut c, "cl-clusterx").await;
    assert_eq!(r["primary"], "cl-clusterb");

    // Decouple C: an independent primary.
    run_ok(&mut c, "cl-clusterc", "decouple").await;
    assert_eq!(
        shape(&standbys(&mut c, "cl-clustera").await["topology"]),
        "clustera"
    );
    assert_eq!(standbys(&mut c, "cl-clusterc").await["role"], "PRIMARY");
    expect_refusal(&mut c, "cl-clusterc", "decouple", "decouple_not_a_standby").await;

    // The tree for a person.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_qcgate"))
        .args(["clusters", "topology", "cl-clusterb"])
        .args(h.store_args())
        .output()
        .expect("qcgate runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert_eq!(
        text,
        "cl-clusterb (PRIMARY, stopped, INVALIDATED by a failover, simulated)\n└── cl-clusterx (STANDBY, sync NORMAL, active, simulated)\n"
    );

    // Another owner sees none of it.
    let mut b = h.client_b();
    let r = b
        .call("DescribeClusterStandbys", &[("cluster", "cl-clustera")])
        .await
        .expect("reply");
    assert_eq!(r["ret_code"], 2100, "{r}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_standby_needs_normal_sync_and_makes_the_standby_a_primary() {
    let h = Harness::start(20).await;
    let owner = h.owner_a.clone();
    h.add_cluster("cl-promo001", ZONE, &owner);
    let mut c = h.client_a();
    expect_refusal(
        &mut c,
        "cl-promo001",
        "promote_standby",
        "promote_not_a_standby",
    )
    .await;
    // A standby of a source outside the gateway (a self-built MySQL, say).
    standby_of(&mut c, "cl-promo001", "cl-external").await;
    expect_refusal(
        &mut c,
        "cl-promo001",
        "switchover",
        "switchover_primary_unknown",
    )
    .await;
    run_ok(&mut c, "cl-promo001", "promote_standby").await;
    let r = standbys(&mut c, "cl-promo001").await;
    assert_eq!(r["role"], "PRIMARY");
    assert_eq!(r["primary"], Value::Null);
    h.stop().await;
}
