//! DescribeClusters: tenancy, filters, paging, and transition_status while a
//! job runs on the cluster.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn ids(r: &Value) -> Vec<String> {
    r["cluster_set"]
        .as_array()
        .expect("cluster_set")
        .iter()
        .map(|c| c["cluster_id"].as_str().expect("id").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_clusters_lists_only_the_callers_with_filters_and_transitions() {
    let h = Harness::start(60_000).await;
    let (a, b) = (h.owner_a.clone(), h.owner_b.clone());
    for id in ["cl-desc0001", "cl-desc0002", "cl-desc0003"] {
        h.add_cluster(id, ZONE, &a);
    }
    h.add_cluster("cl-descb001", ZONE, &b);
    let mut c = h.client_a();

    let r = c.call("DescribeClusters", &[]).await.expect("r");
    assert_eq!(r["ret_code"], 0, "{r}");
    assert_eq!(r["total_count"], 3);
    assert!(
        !ids(&r).contains(&"cl-descb001".to_string()),
        "no foreign cluster listed"
    );
    let r = c
        .call("DescribeClusters", &[("clusters.1", "cl-descb001")])
        .await
        .expect("r");
    assert_eq!(r["total_count"], 0, "a foreign id is simply not there: {r}");
    let r = c
        .call("DescribeClusters", &[("search_word", "0002")])
        .await
        .expect("r");
    assert_eq!(ids(&r), vec!["cl-desc0002"]);
    let r = c
        .call("DescribeClusters", &[("limit", "2"), ("offset", "2")])
        .await
        .expect("r");
    assert_eq!((ids(&r).len(), r["total_count"].as_u64()), (1, Some(3)));
    let r = c
        .call("DescribeClusters", &[("status.1", "stopped")])
        .await
        .expect("r");
    assert_eq!(r["total_count"], 0);
    let r = c
        .call("DescribeClusters", &[("status.1", "melting")])
        .await
        .expect("r");
    assert_eq!(r["ret_code"], 1100, "{r}");

    // A running job shows as a transition on its cluster only.
    let job = start_standby(&mut c, "cl-desc0001", "cl-9np7ig3g").await;
    assert_eq!(job["ret_code"], 0, "{job}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = c
            .call(
                "DescribeClusters",
                &[("clusters.1", "cl-desc0001"), ("clusters.2", "cl-desc0002")],
            )
            .await
            .expect("r");
        let set = r["cluster_set"].as_array().expect("set").clone();
        let t = |id: &str| {
            set.iter()
                .find(|x| x["cluster_id"] == id)
                .map(|x| x["transition_status"].clone())
        };
        if t("cl-desc0001") == Some(Value::from("updating")) {
            assert_eq!(t("cl-desc0002"), Some(Value::from("")));
            break;
        }
        assert!(Instant::now() < deadline, "no transition shown: {r}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The DR relationship is shown too.
    h.local()
        .change(|m| m.set_standby("cl-desc0003", "cl-desc0002", "increment"))
        .expect("standby");
    let r = c
        .call("DescribeClusters", &[("clusters.1", "cl-desc0003")])
        .await
        .expect("r");
    let dr = &r["cluster_set"][0]["dr"];
    assert_eq!(
        (dr["role"].as_str(), dr["primary"].as_str()),
        (Some("STANDBY"), Some("cl-desc0002"))
    );
    assert_eq!(dr["sync_way"], "increment");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_and_start_clusters_answer_a_job_ids_map() {
    let h = Harness::start(20).await;
    let (a, b) = (h.owner_a.clone(), h.owner_b.clone());
    h.add_cluster("cl-power001", ZONE, &a);
    h.add_cluster("cl-power002", ZONE, &a);
    h.add_cluster("cl-powerb01", ZONE, &b);
    let mut c = h.client_a();
    let status = |h: &Harness, id: &str| h.cluster(id).status;

    let signed = qcgate::client::sign(
        &h.a,
        "GET",
        "/iaas/",
        vec![
            ("action".into(), "StopClusters".into()),
            ("clusters.1".into(), "cl-power001".into()),
            ("clusters.2".into(), "cl-power002".into()),
            ("zone".into(), ZONE.into()),
        ],
    );
    let (_, body) = c
        .send(hyper::Method::GET, &format!("/iaas/?{signed}"), None)
        .await
        .expect("send");
    let r: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(r["ret_code"], 0, "{r}");
    assert_eq!(r["action"], "StopClustersResponse");
    let map = r["job_ids"].as_object().expect("job_ids").clone();
    assert_eq!(map.len(), 2);
    for (id, job) in &map {
        let (j, _) = wait_job(&mut c, job.as_str().expect("job"), Duration::from_secs(10)).await;
        assert_eq!(j["status"], "successful");
        assert_eq!(j["job_action"], "StopClusters");
        assert_eq!(status(&h, id), "stopped");
    }
    // The same signed request again: the same jobs, nothing new.
    let (_, body) = c
        .send(hyper::Method::GET, &format!("/iaas/?{signed}"), None)
        .await
        .expect("send");
    let again: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(again["job_ids"], r["job_ids"], "{again}");

    let r = c
        .call("StopClusters", &[("clusters.1", "cl-power001")])
        .await
        .expect("r");
    assert_eq!(r["ret_code"], 1400, "{r}");
    assert_golden("already_stopped", &r);
    let r = c
        .call(
            "StartClusters",
            &[("clusters.1", "cl-power001"), ("clusters.2", "cl-powerb01")],
        )
        .await
        .expect("r");
    assert_eq!(
        r["ret_code"], 2100,
        "a foreign cluster is not found, and nothing starts: {r}"
    );
    assert_eq!(status(&h, "cl-power001"), "stopped");
    let r = c.call("StartClusters", &[]).await.expect("r");
    assert_eq!(r["ret_code"], 1100, "{r}");

    let r = c
        .call("StartClusters", &[("clusters.1", "cl-power001")])
        .await
        .expect("r");
    let job = r["job_ids"]["cl-power001"]
        .as_str()
        .expect("job")
        .to_string();
    assert_eq!(
        wait_job(&mut c, &job, Duration::from_secs(10)).await.0["status"],
        "successful"
    );
    assert_eq!(status(&h, "cl-power001"), "active");
    // Cluster jobs are not custom services.
    let r = c
        .call(
            "RunClusterCustomService",
            &[
                ("cluster", "cl-power001"),
                ("service", "stop_cluster"),
                ("zone", ZONE),
            ],
        )
        .await
        .expect("r");
    assert_eq!(r["ret_code"], 1100, "{r}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_cluster_jobs_lists_one_clusters_jobs() {
    let h = Harness::start(20).await;
    let (a, b) = (h.owner_a.clone(), h.owner_b.clone());
    h.add_cluster("cl-cjobs001", ZONE, &a);
    h.add_cluster("cl-cjobs002", ZONE, &a);
    h.add_cluster("cl-cjobsb01", ZONE, &b);
    let mut c = h.client_a();
    let first = start_standby(&mut c, "cl-cjobs001", "cl-9np7ig3g").await;
    start_standby(&mut c, "cl-cjobs002", "cl-9np7ig3g").await;
    let stop = c
        .call("StopClusters", &[("clusters.1", "cl-cjobs001")])
        .await
        .expect("r");
    assert_eq!(stop["ret_code"], 0, "{stop}");

    let r = c
        .call("DescribeClusterJobs", &[("cluster", "cl-cjobs001")])
        .await
        .expect("r");
    assert_eq!(r["ret_code"], 0, "{r}");
    assert_eq!(r["action"], "DescribeClusterJobsResponse");
    assert_eq!(r["total_count"], 2, "{r}");
    let set = r["job_set"].as_array().expect("set");
    assert_eq!(set[0]["job_action"], "StopClusters", "newest first");
    assert_eq!(set[1]["job_id"], first["job_id"]);
    let r = c
        .call(
            "DescribeClusterJobs",
            &[("app", "cl-cjobs002"), ("status.1", "failed")],
        )
        .await
        .expect("r");
    assert_eq!(r["total_count"], 0);

    let r = c
        .call("DescribeClusterJobs", &[("cluster", "cl-cjobsb01")])
        .await
        .expect("r");
    assert_eq!(r["ret_code"], 2100, "{r}");
    let r = c.call("DescribeClusterJobs", &[]).await.expect("r");
    assert_eq!(r["ret_code"], 1100, "{r}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_cluster_is_an_ha_pair_of_nodes() {
    let h = Harness::start(20).await;
    let (a, b) = (h.owner_a.clone(), h.owner_b.clone());
    h.add_cluster("cl-nodes001", ZONE, &a);
    h.add_cluster("cl-nodesb01", ZONE, &b);
    let mut c = h.client_a();
    let r = c
        .call("DescribeClusterNodes", &[("cluster", "cl-nodes001")])
        .await
        .expect("r");
    assert_eq!(r["ret_code"], 0, "{r}");
    assert_eq!(r["total_count"], 2);
    let set = r["node_set"].as_array().expect("set").clone();
    assert_eq!(set[0]["is_primary"], true);
    assert_eq!(set[1]["is_primary"], false);
    for n in &set {
        assert_eq!(n["role"], "maininstance");
        let id = n["node_id"].as_str().expect("id");
        assert!(id.starts_with("cln-") && id.len() == 12, "{id}");
    }
    let one = set[1]["node_id"].as_str().expect("id");
    let r = c
        .call(
            "DescribeClusterNodes",
            &[("cluster", "cl-nodes001"), ("nodes.1", one)],
        )
        .await
        .expect("r");
    assert_eq!(r["total_count"], 1);
    let r = c
        .call(
            "DescribeClusterNodes",
            &[("cluster", "cl-nodes001"), ("role", "analysis")],
        )
        .await
        .expect("r");
    assert_eq!(r["total_count"], 0);
    let r = c
        .call(
            "DescribeClusterNodes",
            &[("cluster", "cl-nodes001"), ("role", "boss")],
        )
        .await
        .expect("r");
    assert_eq!(r["ret_code"], 1100);
    let r = c
        .call("DescribeClusterNodes", &[("cluster", "cl-nodesb01")])
        .await
        .expect("r");
    assert_eq!(
        r["ret_code"], 2100,
        "another owner's nodes are not found: {r}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switch_services_record_settings_and_respect_a_running_standby() {
    let h = Harness::start(20).await;
    let a = h.owner_a.clone();
    h.add_cluster("cl-switch01", ZONE, &a);
    h.add_cluster("cl-switch02", ZONE, &a);
    let mut c = h.client_a();
    let run = |cluster: &'static str, service: &'static str, sp: &'static str| {
        [
            ("cluster", cluster),
            ("service", service),
            ("service_params", sp),
            ("zone", ZONE),
        ]
    };

    // The docs' example sends "ON"; YES/NO is the documented form.
    let r = c
        .call(
            "RunClusterCustomService",
            &run("cl-switch01", "set_readonly", r#"{"readonly":"ON"}"#),
        )
        .await
        .expect("r");
    assert_eq!(r["ret_code"], 0, "{r}");
    wait_job(
        &mut c,
        r["job_id"].as_str().expect("id"),
        Duration::from_secs(10),
    )
    .await;
    let r = c
        .call(
            "RunClusterCustomService",
            &run("cl-switch01", "configuring_SSL", r#"{"configssl":"yes"}"#),
        )
        .await
        .expect("r");
    assert_eq!(r["ret_code"], 0, "{r}");
    wait_job(
        &mut c,
        r["job_id"].as_str().expect("id"),
        Duration::from_secs(10),
    )
    .await;
    let r = c
        .call("DescribeClusters", &[("clusters.1", "cl-switch01")])
        .await
        .expect("r");
    assert_eq!(
        r["cluster_set"][0]["settings"],
        serde_json::json!({"readonly": true, "ssl": true}),
        "{r}"
    );

    for (sp, golden) in [
        (r#"{"readonly":"maybe"}"#, "readonly_invalid"),
        ("{}", "readonly_missing"),
    ] {
        let r = c
            .call(
                "RunClusterCustomService",
                &run("cl-switch01", "set_readonly", sp),
            )
            .await
            .expect("r");
        assert_eq!(r["ret_code"], 1100, "{r}");
        assert_golden(golden, &r);
    }

    // A running standby refuses what restarts its database, but not read-only.
    h.local()
        .change(|m| m.set_standby("cl-switch02", "cl-switch01", "full"))
        .expect("standby");
    let r = c
        .call(
            "RunClusterCustomService",
            &run("cl-switch02", "configuring_SSL", r#"{"configssl":"YES"}"#),
        )
        .await
        .expect("r");
    assert_eq!(r["ret_code"], 1400, "{r}");
    assert_golden("ssl_on_running_standby", &r);
    let r = c
        .call(
            "RunClusterCustomService",
            &run("cl-switch02", "set_readonly", r#"{"readonly":"NO"}"#),
        )
        .await
        .expect("r");
    assert_eq!(r["ret_code"], 0, "{r}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_changed_by_another_process_is_read_again_once_announced() {
    let h = Harness::start(20).await;
    let a = h.owner_a.clone();
    h.add_cluster("cl-annc0001", ZONE, &a);
    let mut c = h.client_a();
    // The gateway reads the cluster (active) and keeps it.
    let r = c
        .call("StartClusters", &[("clusters.1", "cl-annc0001")])
        .await
        .expect("r");
    assert_eq!(r["ret_code"], 1400, "already active: {r}");

    // Another process stops it behind the gateway's back, then announces.
    let mut local = h.local();
    local
        .change(|m| m.set_cluster_status("cl-annc0001", "stopped"))
        .expect("status");
    local.announce_clusters().expect("announce");

    let r = c
        .call("StartClusters", &[("clusters.1", "cl-annc0001")])
        .await
        .expect("r");
    assert_eq!(r["ret_code"], 0, "the stopped cluster starts: {r}");
    h.stop().await;
}
