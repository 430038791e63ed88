//! Seed 001 on real MariaDB servers: register servers, bind clusters to
//! them, and start a DR standby with `sync_way` full and increment,
//! checking the servers themselves.

mod common;

use common::mariadb::*;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_then_increment_on_real_servers() {
    let (a1, b1, b2) = tokio::join!(Mariadb::start(1), Mariadb::start(2), Mariadb::start(3));
    a1.make_primary_with_data(2000).await;
    let h = Harness::start(0).await;
    for m in [&a1, &b1, &b2] {
        let out = ok(register(&h, m, ZONE));
        assert!(out.contains("registered"), "{out}");
        assert!(!out.contains(ADMIN_PASSWORD), "{out}");
    }
    ok(bind(&h, "cl-srca0001", ZONE, &h.owner_a, &[&a1]));
    ok(bind(&h, "cl-stby0001", ZONE, &h.owner_a, &[&b1, &b2]));

    // The nodes show where they run.
    let mut c = h.client_a();
    let nodes = nodes(&mut c, "cl-stby0001").await;
    assert_eq!(nodes.len(), 2, "{nodes:?}");
    assert_eq!(nodes[0]["port"], b1.port, "{nodes:?}");
    assert_eq!(nodes[0]["private_ip"], "127.0.0.1");
    let cl = describe_cluster(&mut c, "cl-stby0001").await;
    assert_eq!(cl["executor"], "servers", "{cl}");

    let j = run_job(
        &mut h.client_a(),
        "cl-stby0001",
        "start_standby",
        &standby_sp(&a1, "cl-srca0001", "full"),
    )
    .await;
    assert_eq!(j["status"], "successful", "{j}");
    let output = j["output"].as_str().unwrap_or_default();
    assert!(
        !output.contains(REPL_PASSWORD) && !output.contains(ADMIN_PASSWORD),
        "{output}"
    );

    // The servers: a copy, read-only, replicating by GTID, chained for the HA node.
    assert_eq!(b1.count("app.t").await, 2000);
    assert!(b1.read_only().await && b2.read_only().await);
    assert_eq!(b1.source_port().await, Some(a1.port));
    assert_eq!(b2.source_port().await, Some(b1.port));
    a1.exec("INSERT INTO app.t VALUES (5001, 'after')").await;
    let g = a1.gtid().await;
    assert!(b1.wait_for(&g).await && b2.wait_for(&g).await, "{g}");
    assert_eq!(b2.count("app.t").await, 2001);
    assert_eq!(b1.checksum("app.t").await, a1.checksum("app.t").await);
    assert_eq!(b2.checksum("app.t").await, a1.checksum("app.t").await);

    let r = c
        .call("DescribeClusterStandbys", &[("cluster", "cl-stby0001")])
        .await
        .expect("reply");
    assert_eq!(r["role"], "STANDBY", "{r}");
    assert_eq!(r["primary"], "cl-srca0001", "{r}");
    assert_eq!(r["sync_status"], "NORMAL", "{r}");

    // stop_standby: an independent, writable primary; the HA node stays.
    let j = run_job(&mut h.client_a(), "cl-stby0001", "stop_standby", "").await;
    assert_eq!(j["status"], "successful", "{j}");
    assert!(!b1.read_only().await);
    assert_eq!(b1.source_port().await, None);
    assert_eq!(b2.source_port().await, Some(b1.port));

    // increment: it still holds the source's history, so only new
    // transactions come over.
    a1.exec("INSERT INTO app.t VALUES (5002, 'while stopped')")
        .await;
    let j = run_job(
        &mut h.client_a(),
        "cl-stby0001",
        "start_standby",
        &standby_sp(&a1, "cl-srca0001", "increment"),
    )
    .await;
    assert_eq!(j["status"], "successful", "{j}");
    let g = a1.gtid().await;
    assert!(b1.wait_for(&g).await);
    assert_eq!(b1.count("app.t").await, 2002);
    assert!(b1.read_only().await);

    // At rest, the admin and replication passwords are sealed: neither is
    // anywhere in the database files, nor in any job as DescribeJobs shows it.
    let r = c
        .call("DescribeJobs", &[("verbose", "1")])
        .await
        .expect("reply");
    for secret in [ADMIN_PASSWORD, REPL_PASSWORD] {
        assert!(!r.to_string().contains(secret), "{r}");
    }
    let mut h = h;
    if let Some(gw) = h.gw.take() {
        gw.shutdown().await;
    }
    for entry in std::fs::read_dir(h.dir.path()).expect("data dir") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            let bytes = std::fs::read(&path).expect("read");
            for secret in [ADMIN_PASSWORD, REPL_PASSWORD] {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "{secret} in {}",
                    path.display()
                );
            }
        }
    }
}
