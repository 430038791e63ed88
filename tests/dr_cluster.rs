//! Seed 000 and a cluster's own services on real MariaDB servers:
//! CreateCluster with semi-sync on free servers, accounts, assignmaster,
//! set_readonly, promote_standby, and what SQL cannot do.

mod common;

use std::time::Duration;

use common::mariadb::*;
use common::*;
use mysql_async::prelude::Queryable;
use qcgate::client::Client;
use serde_json::{Value, json};

async fn create(c: &mut Client, conf: Value) -> Value {
    c.call(
        "CreateCluster",
        &[("zone", ZONE), ("conf", &conf.to_string())],
    )
    .await
    .expect("reply")
}

/// The server behind a node, by the port DescribeClusterNodes shows.
fn by_port<'a>(all: &'a [&'a Mariadb], port: &Value) -> &'a Mariadb {
    all.iter()
        .find(|m| port.as_u64() == Some(u64::from(m.port)))
        .unwrap_or_else(|| panic!("no server on {port}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_cluster_and_its_services_on_real_servers() {
    let (s1, s2, s3) = tokio::join!(Mariadb::start(71), Mariadb::start(72), Mariadb::start(73));
    let h = Harness::start(0).await;
    let d = h.dir.path();
    for m in [&s1, &s2, &s3] {
        ok(register(d, m, ZONE));
    }
    let all = [&s1, &s2, &s3];
    let mut c = h.client_a();

    // sync has no honest MariaDB equivalent; too few free servers is 2500.
    let r = create(
        &mut c,
        json!({"name": "x", "ha": {"enable": true, "replication_mode": "sync"}}),
    )
    .await;
    assert_eq!(r["ret_code"], 1400, "{r}");
    let r = create(&mut c, json!({"name": "x", "node_count": 3})).await;
    assert_eq!(r["ret_code"], 0, "three are free: {r}");
    let (j, _) = wait_job(
        &mut c,
        r["job_id"].as_str().expect("id"),
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(j["status"], "successful", "{j}");
    let big = r["cluster_id"].as_str().expect("id").to_string();
    let r = create(&mut c, json!({"name": "y"})).await;
    assert_eq!(r["ret_code"], 2500, "{r}");
    let r = c
        .call(
            "DeleteClusters",
            &[("clusters.1", big.as_str()), ("zone", ZONE)],
        )
        .await
        .expect("reply");
    let (j, _) = wait_job(
        &mut c,
        r["job_ids"][big.as_str()].as_str().expect("id"),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(j["status"], "successful", "{j}");
    // The servers are free again; reset them for the next cluster.
    for m in &all {
        m.exec("STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only=ON; DROP DATABASE IF EXISTS qcgate_meta; RESET MASTER").await;
    }

    // Seed 000: an HA pair with semi-sync.
    let r = create(
        &mut c,
        json!({"name": "drill-a", "ha": {"enable": true, "replication_mode": "semisync"}}),
    )
    .await;
    assert_eq!(r["ret_code"], 0, "{r}");
    let id = r["cluster_id"].as_str().expect("id").to_string();
    let (j, _) = wait_job(
        &mut c,
        r["job_id"].as_str().expect("id"),
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(j["status"], "successful", "{j}");
    let nodes = common::nodes(&mut c, &id).await;
    assert_eq!(nodes.len(), 2, "{nodes:?}");
    let p = by_port(&all, &nodes[0]["port"]);
    let s = by_port(&all, &nodes[1]["port"]);
    assert_eq!(nodes[0]["is_primary"], true);
    assert!(!p.read_only().await && s.read_only().await);
    assert_eq!(s.source_port().await, Some(p.port));
    let status = {
        let mut conn = p.root().await;
        let row: Option<mysql_async::Row> = conn
            .query_first("SHOW STATUS LIKE 'Rpl_semi_sync_master_status'")
            .await
            .expect("status");
        row.map(|r| cell(&r, 1)).unwrap_or_default()
    };
    assert_eq!(status, "ON", "semi-sync is on");
    p.exec("CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY)")
        .await;
    p.exec("INSERT INTO app.t VALUES (1)").await;
    assert!(s.wait_for(&p.gtid().await).await);
    assert_eq!(s.count("app.t").await, 1);

    // Accounts are real, replicate, and never hold READ_ONLY ADMIN.
    let sp = json!({"database": "*", "passwd": "Us3r#Passw0rd", "ssl": "NO", "host": "%",
                    "user": "dba_one", "priv": "SuperuserAccount"});
    let j = run_job(&mut c, &id, "add_user", &sp.to_string()).await;
    assert_eq!(j["status"], "successful", "{j}");
    assert!(!j.to_string().contains("Us3r#Passw0rd"), "{j}");
    assert!(s.wait_for(&p.gtid().await).await);
    let mut u = s
        .connect_as("dba_one", "Us3r#Passw0rd")
        .await
        .expect("the account works on the standby");
    u.query_drop("SELECT 1").await.expect("query");
    let grants = p.text("SHOW GRANTS FOR 'dba_one'@'%'").await;
    assert!(!grants.contains("READ_ONLY ADMIN"), "{grants}");
    let mut w = p
        .connect_as("dba_one", "Us3r#Passw0rd")
        .await
        .expect("on the primary");
    w.query_drop("INSERT INTO app.t VALUES (2)")
        .await
        .expect("writes");
    let j = run_job(
        &mut c,
        &id,
        "del_user",
        &json!({"host": "%", "user": "dba_one"}).to_string(),
    )
    .await;
    assert_eq!(j["status"], "successful", "{j}");
    assert!(p.connect_as("dba_one", "Us3r#Passw0rd").await.is_err());

    // set_readonly, then assignmaster between the cluster's own nodes.
    let j = run_job(&mut c, &id, "set_readonly", r#"{"readonly":"YES"}"#).await;
    assert_eq!(j["status"], "successful", "{j}");
    assert!(p.read_only().await);
    let j = run_job(&mut c, &id, "set_readonly", r#"{"readonly":"NO"}"#).await;
    assert_eq!(j["status"], "successful", "{j}");
    assert!(!p.read_only().await);
    let other = nodes[1]["node_id"].as_str().expect("id");
    let j = run_job(
        &mut c,
        &id,
        "assignmaster",
        &json!({"node_id": other}).to_string(),
    )
    .await;
    assert_eq!(j["status"], "successful", "{j}");
    assert!(!s.read_only().await && p.read_only().await);
    assert_eq!(p.source_port().await, Some(s.port));
    assert_eq!(s.source_port().await, None);
    let after = common::nodes(&mut c, &id).await;
    assert_eq!(after[0]["node_id"], other, "{after:?}");
    assert_eq!(p.checksum("app.t").await, s.checksum("app.t").await);

    // What SQL cannot do is said, not simulated.
    let j = run_job(
        &mut c,
        &id,
        "restart_node",
        &json!({"node_id": other}).to_string(),
    )
    .await;
    assert_eq!(j["status"], "failed", "{j}");
    assert!(
        j["error_message"]
            .as_str()
            .unwrap_or_default()
            .contains("cannot be done over SQL"),
        "{j}"
    );

    // promote_standby, the MySQL Plus way: the source read-only first.
    // The server the cluster did not take.
    let s3 = *all
        .iter()
        .find(|m| m.port != p.port && m.port != s.port)
        .expect("a free server");
    ok(bind(d, "cl-dddd0003", ZONE, &h.owner_a, &[s3]));
    s.exec(&format!(
        "CREATE USER '{REPL_USER}'@'%' IDENTIFIED BY '{REPL_PASSWORD}'; GRANT REPLICATION SLAVE, BINLOG MONITOR, SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES, RELOAD ON *.* TO '{REPL_USER}'@'%'"
    ))
    .await;
    let sp = json!({"sync_way": "full", "zone": ZONE, "host": "127.0.0.1", "cluster_id": id,
                    "user": REPL_USER, "password": REPL_PASSWORD, "port": s.port});
    let j = run_job(&mut c, "cl-dddd0003", "start_standby", &sp.to_string()).await;
    assert_eq!(j["status"], "successful", "{j}");
    let j = run_job(&mut c, "cl-dddd0003", "promote_standby", "").await;
    assert_eq!(j["status"], "failed", "{j}");
    assert!(
        j["error_message"]
            .as_str()
            .unwrap_or_default()
            .contains("run set_readonly"),
        "{j}"
    );
    let j = run_job(&mut c, &id, "set_readonly", r#"{"readonly":"YES"}"#).await;
    assert_eq!(j["status"], "successful", "{j}");
    let j = run_job(&mut c, "cl-dddd0003", "promote_standby", "").await;
    assert_eq!(j["status"], "successful", "{j}");
    assert!(!s3.read_only().await);
    assert_eq!(s3.source_port().await, None);
    assert_eq!(s3.checksum("app.t").await, s.checksum("app.t").await);
    h.stop().await;
}
