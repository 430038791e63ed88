//! CreateCluster, DeleteClusters and RestartClusterService over HTTP: valid
//! calls and their effect through the describe actions, invalid parameters,
//! refusals, and tenancy.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

async fn create(c: &mut qcgate::client::Client, conf: &Value) -> Value {
    c.call(
        "CreateCluster",
        &[("conf", &conf.to_string()), ("zone", ZONE)],
    )
    .await
    .expect("reply")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_cluster_builds_an_ha_pair_and_names_its_nodes() {
    let h = Harness::start(300).await;
    let mut c = h.client_a();
    let conf = json!({
        "name": "drill-a",
        "node_count": 2,
        "ha": {"enable": true, "replication_mode": "semisync"},
        "volume_size": 200,
        "readinstance_count": 1
    });
    let r = create(&mut c, &conf).await;
    assert_eq!(r["ret_code"], 0, "{r}");
    assert_eq!(r["action"], "CreateClusterResponse");
    let id = r["cluster_id"].as_str().expect("cluster_id").to_string();
    assert!(id.starts_with("cl-"));
    let all: Vec<&str> = r["node_ids"]
        .as_array()
        .expect("node_ids")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(all.len(), 3, "{r}");
    assert_eq!(r["primary_node_id"], all[0]);
    assert_eq!(r["standby_node_ids"], json!([all[1]]));

    // While the job runs the cluster is being created.
    let cl = describe_cluster(&mut c, &id).await;
    assert_eq!(
        (cl["status"].as_str(), cl["transition_status"].as_str()),
        (Some("pending"), Some("creating")),
        "{cl}"
    );
    assert_eq!(cl["name"], "drill-a");
    let (j, _) = wait_job(
        &mut c,
        r["job_id"].as_str().expect("job"),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(j["status"], "successful", "{j}");
    assert_eq!(j["job_action"], "CreateCluster");
    let cl = describe_cluster(&mut c, &id).await;
    assert_eq!(
        (cl["status"].as_str(), cl["transition_status"].as_str()),
        (Some("active"), Some("")),
        "{cl}"
    );
    let ns = nodes(&mut c, &id).await;
    let roles: Vec<(&str, bool, &str)> = ns
        .iter()
        .map(|n| {
            (
                n["role"].as_str().unwrap_or(""),
                n["is_primary"] == true,
                n["status"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        roles,
        vec![
            ("maininstance", true, "active"),
            ("maininstance", false, "active"),
            ("readinstance", false, "active")
        ]
    );

    // The new cluster takes services like a registered one.
    run_ok(
        &mut c,
        &id,
        "restart_node",
        "readinstance",
        &json!({"node_id": all[2]}).to_string(),
    )
    .await;
    // Another owner sees nothing of it.
    let mut b = h.client_b();
    let r = b
        .call("DescribeClusters", &[("clusters.1", &id)])
        .await
        .expect("r");
    assert_eq!(r["total_count"], 0, "{r}");

    // Without HA: one node, and no replication mode.
    let r = create(&mut c, &json!({"ha": {"enable": false}})).await;
    assert_eq!(r["ret_code"], 0, "{r}");
    assert_eq!(r["node_ids"].as_array().map(Vec::len), Some(1));
    assert_eq!(r["standby_node_ids"], json!([]));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_cluster_validates_conf() {
    let h = Harness::start(0).await;
    let mut c = h.client_a();
    let r = c.call("CreateCluster", &[("zone", ZONE)]).await.expect("r");
    assert_golden("conf_missing", &r);
    let r = c
        .call("CreateCluster", &[("zone", ZONE), ("conf", "{\"name\":")])
        .await
        .expect("r");
    assert_eq!(r["ret_code"], 1100, "{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap_or_default()
            .contains("[conf] is not valid JSON"),
        "{r}"
    );
    let r = c.call("CreateCluster", &[("conf", "{}")]).await.expect("r");
    assert_eq!(r["ret_code"], 1100, "zone is required: {r}");
    for (conf, field, golden) in [
        (
            json!({"ha": {"enable": true, "replication_mode": "eventual"}}),
            "conf.ha.replication_mode",
            Some("replication_mode_invalid"),
        ),
        (
            json!({"ha": {"enable": false, "replication_mode": "sync"}}),
            "conf.ha.replication_mode",
            None,
        ),
        (json!({"ha": {"enable": "yes"}}), "conf.ha.enable", None),
        (
            json!({"ha": {"enable": true, "replicationMode": "sync"}}),
            "conf.ha.replicationMode",
            None,
        ),
        (json!({"node_count": 4}), "conf.node_count", None),
        (
            json!({"node_count": 2, "ha": {"enable": false}}),
            "conf.node_count",
            None,
        ),
        (json!({"volume_size": 5}), "conf.volume_size", None),
        (
            json!({"flavor": "big"}),
            "conf.flavor",
            Some("conf_unknown_field"),
        ),
        (json!({"ha": true}), "conf.ha", None),
    ] {
        let r = create(&mut c, &conf).await;
        assert_eq!(r["ret_code"], 1100, "{conf}: {r}");
        assert!(
            r["message"]
                .as_str()
                .unwrap_or_default()
                .contains(&format!("[{field}]")),
            "{conf}: {r}"
        );
        if let Some(g) = golden {
            assert_golden(g, &r);
        }
    }
    let r = c.call("DescribeClusters", &[]).await.expect("r");
    assert_eq!(r["total_count"], 0, "nothing was created: {r}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_clusters_to_the_recycle_bin_or_for_good() {
    let h = Harness::start(0).await;
    for id in ["cl-del00001", "cl-del00002", "cl-del00003", "cl-del00004"] {
        h.add_cluster(id, ZONE, &h.owner_a);
    }
    let mut c = h.client_a();
    let r = c
        .call(
            "DeleteClusters",
            &[
                ("clusters.1", "cl-del00001"),
                ("clusters.2", "cl-del00002"),
                ("direct_cease", "0"),
            ],
        )
        .await
        .expect("r");
    assert_eq!(r["ret_code"], 0, "{r}");
    for id in ["cl-del00001", "cl-del00002"] {
        let job = r["job_ids"][id].as_str().expect("job per cluster");
        let (j, _) = wait_job(&mut c, job, Duration::from_secs(10)).await;
        assert_eq!(j["status"], "successful", "{j}");
        assert_eq!(describe_cluster(&mut c, id).await["status"], "deleted");
        assert!(
            nodes(&mut c, id)
                .await
                .iter()
                .all(|n| n["status"] == "deleted")
        );
    }
    let r = c
        .call("DeleteClusters", &[("clusters.1", "cl-del00001")])
        .await
        .expect("r");
    assert_golden("already_deleted", &r);
    let r = rccs(&mut c, "cl-del00001", "stop_zabbix", "", "").await;
    assert_golden("cluster_deleted", &r);

    let r = c
        .call(
            "DeleteClusters",
            &[("clusters.1", "cl-del00003"), ("direct_cease", "1")],
        )
        .await
        .expect("r");
    wait_job(
        &mut c,
        r["job_ids"]["cl-del00003"].as_str().expect("job"),
        Duration::from_secs(10),
    )
    .await;
    let r = c.call("DescribeClusters", &[]).await.expect("r");
    let listed: Vec<&str> = r["cluster_set"]
        .as_array()
        .expect("set")
        .iter()
        .filter_map(|x| x["cluster_id"].as_str())
        .collect();
    assert!(
        !listed.contains(&"cl-del00003"),
        "ceased clusters are not listed by default: {listed:?}"
    );
    assert_eq!(
        describe_cluster(&mut c, "cl-del00003").await["status"],
        "ceased"
    );

    let r = c
        .call(
            "DeleteClusters",
            &[("clusters.1", "cl-del00004"), ("direct_cease", "2")],
        )
        .await
        .expect("r");
    assert_eq!(r["ret_code"], 1100, "{r}");
    let r = c.call("DeleteClusters", &[]).await.expect("r");
    assert_eq!(r["ret_code"], 1100, "{r}");
    let mut b = h.client_b();
    let r = b
        .call("DeleteClusters", &[("clusters.1", "cl-del00004")])
        .await
        .expect("r");
    assert_eq!(r["ret_code"], 2100, "{r}");

    // A DR primary keeps its standby until that is decoupled.
    let j = start_standby(&mut c, "cl-del00004", "cl-del00005").await;
    assert_eq!(j["ret_code"], 0, "{j}");
    wait_job(
        &mut c,
        j["job_id"].as_str().expect("job"),
        Duration::from_secs(10),
    )
    .await;
    h.add_cluster("cl-del00005", ZONE, &h.owner_a);
    let r = c
        .call("DeleteClusters", &[("clusters.1", "cl-del00004")])
        .await
        .expect("r");
    assert_golden("delete_dr_standby", &r);
    let r = c
        .call("DeleteClusters", &[("clusters.1", "cl-del00005")])
        .await
        .expect("r");
    assert_golden("delete_dr_primary", &r);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_cluster_service_restarts_every_node_or_one_role() {
    let h = Harness::start(0).await;
    h.add_cluster("cl-rst00001", ZONE, &h.owner_a);
    let mut c = h.client_a();
    let r = c
        .call(
            "RestartClusterService",
            &[("cluster", "cl-rst00001"), ("role", "readinstance")],
        )
        .await
        .expect("r");
    assert_eq!(r["ret_code"], 1400, "no read node: {r}");
    let r = c
        .call(
            "RestartClusterService",
            &[("cluster", "cl-rst00001"), ("role", "leader")],
        )
        .await
        .expect("r");
    assert_golden("restart_role_invalid", &r);
    let r = c
        .call(
            "RestartClusterService",
            &[("cluster", "cl-rst00001"), ("role", "maininstance")],
        )
        .await
        .expect("r");
    assert_eq!(r["ret_code"], 0, "{r}");
    assert_eq!(
        (r["cluster_id"].as_str(), r["role"].as_str()),
        (Some("cl-rst00001"), Some("maininstance"))
    );
    let (j, _) = wait_job(
        &mut c,
        r["job_id"].as_str().expect("job"),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(j["status"], "successful", "{j}");
    assert!(
        nodes(&mut c, "cl-rst00001")
            .await
            .iter()
            .all(|n| n["restart_time"] != "")
    );
    let r = c
        .call("RestartClusterService", &[("cluster", "cl-nothere1")])
        .await
        .expect("r");
    assert_eq!(r["ret_code"], 2100, "{r}");
    // A stopped cluster has nothing to restart.
    let r = c
        .call("StopClusters", &[("clusters.1", "cl-rst00001")])
        .await
        .expect("r");
    wait_job(
        &mut c,
        r["job_ids"]["cl-rst00001"].as_str().expect("job"),
        Duration::from_secs(10),
    )
    .await;
    let r = c
        .call("RestartClusterService", &[("cluster", "cl-rst00001")])
        .await
        .expect("r");
    assert_golden("restart_stopped_cluster", &r);
    h.stop().await;
}
