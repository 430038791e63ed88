//! Seed 003 on real MariaDB servers: A (two nodes) with standbys B and X,
//! C chained under B. A switchover while an application writes, then a
//! failover after `kill -9` of the primary's mariadbd, then decouple; every
//! assertion reads the servers.

mod common;

use std::time::{Duration, Instant};

use common::mariadb::*;
use common::*;
use serde_json::Value;

/// The live DR task whose standby is `cluster` (start_standby made it).
async fn task_of(h: &Harness, cluster: &str) -> Value {
    let r = h
        .client_a()
        .call("DescribeDRTasks", &[("limit", "100")])
        .await
        .expect("reply");
    r["dr_task_set"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|t| {
                    t["standby_cluster"] == cluster
                        && t["status"] != "completed"
                        && t["status"] != "failed_over"
                })
                .cloned()
        })
        .unwrap_or_else(|| panic!("no task for {cluster}: {r}"))
}

async fn standbys(h: &Harness, cluster: &str) -> Value {
    let r = h
        .client_a()
        .call("DescribeClusterStandbys", &[("cluster", cluster)])
        .await
        .expect("reply");
    assert_eq!(r["ret_code"], 0, "{r}");
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switchover_failover_decouple_on_real_servers() {
    let (a1, a2, b1) = tokio::join!(Mariadb::start(11), Mariadb::start(12), Mariadb::start(21));
    let (c1, x1) = tokio::join!(Mariadb::start(31), Mariadb::start(41));
    a1.make_primary_with_data(1000).await;
    a2.follow(&a1).await;
    let h = Harness::start(0).await;
    for m in [&a1, &a2, &b1, &c1, &x1] {
        ok(register(&h, m, ZONE));
    }
    ok(bind(&h, "cl-aaaa0001", ZONE, &h.owner_a, &[&a1, &a2]));
    ok(bind(&h, "cl-bbbb0001", ZONE, &h.owner_a, &[&b1]));
    ok(bind(&h, "cl-cccc0001", ZONE, &h.owner_a, &[&c1]));
    ok(bind(&h, "cl-xxxx0001", ZONE, &h.owner_a, &[&x1]));
    for (cl, src, src_cl) in [
        ("cl-bbbb0001", &a1, "cl-aaaa0001"),
        ("cl-xxxx0001", &a1, "cl-aaaa0001"),
        ("cl-cccc0001", &b1, "cl-bbbb0001"),
    ] {
        let j = run_job(
            &mut h.client_a(),
            cl,
            "start_standby",
            &standby_sp(src, src_cl, "full"),
        )
        .await;
        assert_eq!(j["status"], "successful", "{cl}: {j}");
    }
    assert_eq!(c1.source_port().await, Some(b1.port));
    // The application's account, made after the copy so it replicates.
    a1.exec(&format!(
        "CREATE USER 'app2'@'%' IDENTIFIED BY '{APP_PASSWORD}'; GRANT INSERT, SELECT ON app.* TO 'app2'@'%'"
    ))
    .await;

    // A refusal first: failover while the primary answers.
    let j = run_job(&mut h.client_a(), "cl-bbbb0001", "failover", "").await;
    assert_eq!(j["status"], "failed", "{j}");
    assert_eq!(j["error_codes"], "1400", "{j}");
    assert!(
        j["error_message"]
            .as_str()
            .unwrap_or_default()
            .contains("use switchover"),
        "{j}"
    );

    // Switchover with an application writing.
    let writer = qcgate::lab::Writer::start([a1.port, b1.port], "app2", APP_PASSWORD);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = Instant::now();
    let j = run_job(&mut h.client_a(), "cl-bbbb0001", "switchover", "").await;
    let took = t.elapsed();
    assert_eq!(j["status"], "successful", "{j}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let acked: Vec<u64> = writer
        .finish()
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let ev = evidence(&j);
    eprintln!("switchover in {took:?}: {ev}");
    assert_eq!(ev["fence_gtid"], ev["standby_gtid"], "RPO 0 evidence: {ev}");
    assert!(
        acked.len() > 50,
        "the writer wrote only {} rows",
        acked.len()
    );

    // Roles swapped on the servers; the tree keeps its shape.
    assert!(!b1.read_only().await, "the new primary takes writes");
    assert!(a1.read_only().await, "the old primary is fenced");
    assert_eq!(b1.source_port().await, None);
    assert_eq!(a1.source_port().await, Some(b1.port));
    assert_eq!(
        x1.source_port().await,
        Some(b1.port),
        "the sibling follows the new primary"
    );
    assert_eq!(
        c1.source_port().await,
        Some(a1.port),
        "B's standby follows the new standby"
    );
    assert_eq!(a2.source_port().await, Some(a1.port), "A's HA node stays");
    let g = b1.gtid().await;
    for m in [&a1, &a2, &c1, &x1] {
        if !m.wait_for(&g).await {
            panic!(
                "{} does not reach {g}: at {}, IO {} SQL {}, errors [{}] [{}]",
                m.port,
                m.gtid().await,
                m.slave_field("Slave_IO_Running").await,
                m.slave_field("Slave_SQL_Running").await,
                m.slave_field("Last_IO_Error").await,
                m.slave_field("Last_SQL_Error").await
            );
        }
    }
    // Every acknowledged write is on the new primary; all members agree.
    let ids = b1
        .text("SELECT GROUP_CONCAT(id ORDER BY id) FROM app.t WHERE id > 1000000000")
        .await;
    let present: std::collections::HashSet<u64> =
        ids.split(',').filter_map(|s| s.parse().ok()).collect();
    let lost: Vec<&u64> = acked.iter().filter(|id| !present.contains(id)).collect();
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    let sum = b1.checksum("app.t").await;
    for m in [&a1, &a2, &c1, &x1] {
        assert_eq!(m.checksum("app.t").await, sum, "checksum on {}", m.port);
    }
    let r = standbys(&h, "cl-bbbb0001").await;
    assert_eq!(r["role"], "PRIMARY", "{r}");
    // The tasks start_standby made follow: B's now runs from B to A, and
    // C's task names its new source.
    let t = task_of(&h, "cl-aaaa0001").await;
    assert_eq!(t["source_cluster"], "cl-bbbb0001", "{t}");
    assert_eq!(t["status"], "syncing", "{t}");
    assert_eq!(
        task_of(&h, "cl-cccc0001").await["source_cluster"],
        "cl-aaaa0001"
    );
    assert_eq!(
        task_of(&h, "cl-xxxx0001").await["source_cluster"],
        "cl-bbbb0001"
    );
    let r = standbys(&h, "cl-aaaa0001").await;
    assert_eq!(
        (r["role"].as_str(), r["primary"].as_str()),
        (Some("STANDBY"), Some("cl-bbbb0001")),
        "{r}"
    );
    // Live, from GTID positions.
    assert_eq!(r["sync_status"], "NORMAL", "{r}");
    assert_eq!(r["replication"]["lag_trx"], 0, "{r}");
    assert_eq!(r["replication"]["source"], b1.endpoint(), "{r}");
    // A standby whose applier stopped is not NORMAL, whatever
    // Seconds_Behind_Master says.
    a1.exec("STOP SLAVE SQL_THREAD").await;
    b1.exec("INSERT INTO app.t VALUES (8000001, 'unapplied')")
        .await;
    let r = standbys(&h, "cl-aaaa0001").await;
    assert_eq!(r["sync_status"], "BROKEN", "{r}");
    a1.exec("START SLAVE SQL_THREAD").await;
    assert!(a1.wait_for(&b1.gtid().await).await);

    // X gets ahead of A, one more transaction reaches neither, then the
    // primary dies.
    a1.exec("STOP SLAVE IO_THREAD").await;
    b1.exec("INSERT INTO app.t VALUES (9000001, 'only x saw it')")
        .await;
    assert!(x1.wait_for(&b1.gtid().await).await);
    x1.exec("STOP SLAVE IO_THREAD").await;
    b1.exec("INSERT INTO app.t VALUES (9000009, 'nobody saw it')")
        .await;
    // What B holds when it dies (DR-task heartbeats included): the ground
    // truth of what a failover loses.
    let b1_last: u64 = b1
        .gtid()
        .await
        .rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("b1's position");
    let mut b1 = b1;
    b1.kill9();
    let mut c = h.client_a();
    let n = nodes(&mut c, "cl-bbbb0001").await;
    assert_eq!(n[0]["status"], "unreachable", "{n:?}");
    let n = nodes(&mut c, "cl-aaaa0001").await;
    assert_eq!(n[0]["status"], "active", "{n:?}");
    assert_eq!(n[0]["server_state"]["read_only"], true, "{n:?}");
    let j = run_job(&mut h.client_a(), "cl-aaaa0001", "failover", "").await;
    assert_eq!(j["status"], "failed", "{j}");
    let msg = j["error_message"].as_str().unwrap_or_default();
    assert!(msg.contains("[cl-xxxx0001] is ahead"), "{msg}");
    assert!(a1.read_only().await, "nothing was promoted");

    // Asked to, A first takes from X what it lacks, then is promoted; X
    // stays with the old primary.
    let j = run_job(
        &mut h.client_a(),
        "cl-aaaa0001",
        "failover",
        r#"{"catch_up":1}"#,
    )
    .await;
    assert_eq!(j["status"], "successful", "{j}");
    assert!(!a1.read_only().await);
    assert_eq!(a1.source_port().await, None);
    assert_eq!(a1.count("app.t WHERE id = 9000001").await, 1);
    assert_eq!(a1.count("app.t WHERE id = 9000009").await, 0);
    assert_eq!(
        x1.source_port().await,
        Some(b1.port),
        "X stays with the old primary"
    );
    let r = standbys(&h, "cl-aaaa0001").await;
    assert_eq!(r["role"], "PRIMARY", "{r}");
    assert_eq!(c1.source_port().await, Some(a1.port), "C keeps following A");

    // The old primary returns (read-only, as configured) and is not
    // re-attached; what it holds beyond the promoted position is lost.
    b1.restart().await;
    assert!(b1.read_only().await);
    assert_eq!(b1.source_port().await, None);
    let r = standbys(&h, "cl-bbbb0001").await;
    assert_eq!(r["invalidated"]["by"], "cl-aaaa0001", "{r}");
    let promoted: u64 = r["invalidated"]["promoted_gtid"]
        .as_str()
        .and_then(|g| g.rsplit('-').next())
        .and_then(|n| n.parse().ok())
        .expect("promoted position");
    assert!(b1_last > promoted, "9000009 reached neither standby");
    assert_eq!(
        r["invalidated"]["returned"]["lost_trx"],
        b1_last - promoted,
        "{r}"
    );
    assert_eq!(r["invalidated"]["returned"]["writable"], false, "{r}");

    // Decouple: X leaves the old primary and takes writes.
    let j = run_job(&mut h.client_a(), "cl-xxxx0001", "decouple", "").await;
    assert_eq!(j["status"], "successful", "{j}");
    assert!(!x1.read_only().await);
    assert_eq!(x1.source_port().await, None);
    a1.exec("INSERT INTO app.t VALUES (9000002, 'a is the primary')")
        .await;
    assert!(c1.wait_for(&a1.gtid().await).await);
    h.stop().await;
}
