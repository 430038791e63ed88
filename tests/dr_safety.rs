//! What must never go wrong on real servers: each pre-check refusal leaves
//! the servers untouched, a catch-up timeout undoes the fence, and a
//! gateway killed with `kill -9` mid-switchover leaves one writable
//! primary and a failed job that was not run again; killed mid-copy, it
//! leaves a read-only standby, no tool running, no copy on disk, and a
//! task that says the copy failed.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::mariadb::*;
use common::*;
use mysql_async::prelude::Queryable;
use qcgate::client::Client;
use serde_json::{Value, json};

fn refused_with(j: &Value, words: &str) {
    assert_eq!(j["status"], "failed", "{j}");
    assert_eq!(j["error_codes"], "1400", "{j}");
    let msg = j["error_message"].as_str().unwrap_or_default();
    assert!(msg.contains(words), "expected [{words}] in: {msg}");
    assert!(
        !msg.contains(ADMIN_PASSWORD) && !msg.contains(REPL_PASSWORD),
        "{msg}"
    );
}

/// A primary cluster A (a1) and its standby B (b1), registered in `dir`.
async fn pair(dir: &Path, owner: &str, c: &mut Client, a1: &Mariadb, b1: &Mariadb) {
    a1.make_primary_with_data(300).await;
    for m in [a1, b1] {
        ok(register(dir, m, ZONE));
    }
    ok(bind(dir, "cl-aaaa0002", ZONE, owner, &[a1]));
    ok(bind(dir, "cl-bbbb0002", ZONE, owner, &[b1]));
    let j = run_job(
        c,
        "cl-bbbb0002",
        "start_standby",
        &standby_sp(a1, "cl-aaaa0002", "full"),
    )
    .await;
    assert_eq!(j["status"], "successful", "{j}");
}

/// Holds the standby's applier: a session on it locks the table the
/// switchover's journal row goes to, so that row cannot be applied.
async fn hold_journal(a1: &Mariadb, b1: &Mariadb) -> mysql_async::Conn {
    a1.exec("CREATE DATABASE IF NOT EXISTS qcgate_meta").await;
    a1.exec("CREATE TABLE IF NOT EXISTS qcgate_meta.dr_journal (id BIGINT AUTO_INCREMENT PRIMARY KEY, op VARCHAR(32) NOT NULL, job_id VARCHAR(32) NOT NULL, detail VARCHAR(512) NOT NULL, at DATETIME(6) NOT NULL) ENGINE=InnoDB").await;
    let g = a1.gtid().await;
    assert!(b1.wait_for(&g).await, "{g}");
    assert_eq!(b1.count("qcgate_meta.dr_journal").await, 0);
    let mut lock = b1.root().await;
    lock.query_drop("LOCK TABLES qcgate_meta.dr_journal WRITE")
        .await
        .expect("lock");
    lock
}

const HAS_HB: &str = "SELECT COUNT(*) FROM information_schema.TABLES \
                      WHERE TABLE_SCHEMA = 'qcgate_meta' AND TABLE_NAME = 'heartbeat'";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prechecks_refuse_and_a_catch_up_timeout_undoes_the_fence() {
    let (a1, b1, e1) = tokio::join!(Mariadb::start(51), Mariadb::start(52), Mariadb::start(53));
    let dir = tempfile::tempdir().expect("tmp");
    let h = Harness::start_with(dir, |c| {
        c.model_delay_ms = 0;
        c.servers.catch_up_timeout_ms = 700;
        c.servers.long_trx_secs = 1;
    })
    .await;
    let mut c = h.client_a();
    let d = h.dir.path();

    // start_standby: a source outside the allow-list is never dialled.
    ok(register(d, &e1, ZONE));
    ok(bind(d, "cl-eeee0002", ZONE, &h.owner_a, &[&e1]));
    let far = json!({"sync_way": "full", "zone": ZONE, "host": "192.168.0.232", "cluster_id": "cl-9np7ig3g",
                     "user": REPL_USER, "password": REPL_PASSWORD, "port": 3306});
    refused_with(
        &run_job(&mut c, "cl-eeee0002", "start_standby", &far.to_string()).await,
        "allow_hosts",
    );
    // A wrong password is a refusal that names the account, never the password.
    let bad = json!({"sync_way": "full", "zone": ZONE, "host": "127.0.0.1", "cluster_id": "cl-aaaa0002",
                     "user": REPL_USER, "password": "Wr0ng#pass", "port": a1.port});
    a1.exec("SET GLOBAL read_only=OFF").await;
    refused_with(
        &run_job(&mut c, "cl-eeee0002", "start_standby", &bad.to_string()).await,
        "cannot connect",
    );

    pair(d, &h.owner_a, &mut c, &a1, &b1).await;
    // increment on a server with no history would silently skip it.
    refused_with(
        &run_job(
            &mut c,
            "cl-eeee0002",
            "start_standby",
            &standby_sp(&a1, "cl-aaaa0002", "increment"),
        )
        .await,
        "no GTID position",
    );
    // full onto a server holding data.
    e1.exec("SET GLOBAL read_only=OFF; CREATE DATABASE keepme")
        .await;
    refused_with(
        &run_job(
            &mut c,
            "cl-eeee0002",
            "start_standby",
            &standby_sp(&a1, "cl-aaaa0002", "full"),
        )
        .await,
        "holds databases keepme",
    );
    assert_eq!(e1.source_port().await, None, "nothing changed");

    // switchover: replication stopped.
    b1.exec("STOP SLAVE").await;
    refused_with(
        &run_job(&mut c, "cl-bbbb0002", "switchover", "").await,
        "is stopped",
    );
    b1.exec("START SLAVE").await;
    // switchover: an errant transaction on the standby.
    // (In a domain of its own: in domain 0 the next heartbeat from the source
    // would stop the applier, strict mode refusing the out-of-order seq.)
    b1.exec("SET GLOBAL read_only=OFF; SET SESSION gtid_domain_id=9; CREATE DATABASE errant; SET GLOBAL read_only=ON")
        .await;
    refused_with(
        &run_job(&mut c, "cl-bbbb0002", "switchover", "").await,
        "never had",
    );
    assert!(
        !a1.read_only().await && b1.read_only().await,
        "nothing fenced"
    );
    // (The errant database is dropped without binlogging; the GTID stays,
    // so the standby is re-copied to clear it.)
    // The sampler of the task start_standby made heartbeats on the source.
    let mut waited = 0;
    while a1.text(HAS_HB).await != "1" && waited < 100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    assert_eq!(a1.text(HAS_HB).await, "1", "the source heartbeats");
    let j = run_job(&mut c, "cl-bbbb0002", "stop_standby", "").await;
    assert_eq!(j["status"], "successful", "{j}");
    b1.exec("SET SESSION sql_log_bin=0; DROP DATABASE errant; DROP DATABASE app; DROP DATABASE IF EXISTS qcgate_meta; RESET MASTER").await;
    let j = run_job(
        &mut c,
        "cl-bbbb0002",
        "start_standby",
        &standby_sp(&a1, "cl-aaaa0002", "full"),
    )
    .await;
    assert_eq!(j["status"], "successful", "{j}");
    // The source's heartbeat table came with the copy, so the heartbeats
    // that follow replicate instead of stopping the standby's applier.
    assert_eq!(b1.text(HAS_HB).await, "1", "copied to the standby");
    // switchover: a write transaction left open on the primary.
    let mut long = a1.root().await;
    long.query_drop("START TRANSACTION; INSERT INTO app.t VALUES (777777, 'open')")
        .await
        .expect("open trx");
    tokio::time::sleep(Duration::from_millis(2200)).await;
    refused_with(
        &run_job(&mut c, "cl-bbbb0002", "switchover", "").await,
        "write transactions open",
    );
    long.query_drop("ROLLBACK").await.expect("rollback");
    long.disconnect().await.expect("closed");
    // INNODB_TRX is a cache refreshed at most every 100 ms.
    tokio::time::sleep(Duration::from_millis(250)).await;

    // Catch-up timeout: the standby's applier is held by a lock on the
    // journal table, so the fenced primary's last transaction cannot be
    // applied in time. The fence must come off.
    let mut lock = hold_journal(&a1, &b1).await;
    let j = run_job(&mut c, "cl-bbbb0002", "switchover", "").await;
    refused_with(&j, "catch-up timeout");
    assert!(
        j["error_message"]
            .as_str()
            .unwrap_or_default()
            .contains("fence was undone"),
        "{j}"
    );
    assert!(!a1.read_only().await, "the old primary is writable again");
    let mut app = a1
        .connect_as(REPL_USER, REPL_PASSWORD)
        .await
        .expect("session");
    app.query_drop("SELECT 1").await.expect("answers");
    a1.exec("INSERT INTO app.t VALUES (888888, 'after the undo')")
        .await;
    assert_eq!(
        b1.source_port().await,
        Some(a1.port),
        "the standby still follows"
    );
    assert!(b1.read_only().await);
    lock.query_drop("UNLOCK TABLES").await.expect("unlock");
    assert!(
        b1.wait_for(&a1.gtid().await).await,
        "the standby catches up"
    );
    let r = c
        .call("DescribeClusterStandbys", &[("cluster", "cl-bbbb0002")])
        .await
        .expect("reply");
    assert_eq!(r["role"], "STANDBY", "{r}");
    // And now it goes through.
    let j = run_job(&mut c, "cl-bbbb0002", "switchover", "").await;
    assert_eq!(j["status"], "successful", "{j}");
    assert!(!b1.read_only().await && a1.read_only().await);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_gateway_mid_switchover_leaves_one_writable_primary() {
    let (a1, b1) = tokio::join!(Mariadb::start(61), Mariadb::start(62));
    let dir = tempfile::tempdir().expect("tmp");
    let config = dir.path().join("qcgate.toml");
    std::fs::write(&config, "[servers]\ncatch_up_timeout_ms = 60000\n").expect("config");
    let data = dir.path().join("data");
    let served = served::serve(&data, &config);
    let mut gw = served.child;
    let creds = served.key.expect("a first key");
    let mut c = Client::new(&served.endpoint, creds.clone()).expect("client");
    let owner = served::first_owner(&data);
    pair(&data, &owner, &mut c, &a1, &b1).await;

    // Hold the standby's applier, start a switchover, and kill the gateway
    // once the fence is recorded and it waits for the catch-up.
    let mut lock = hold_journal(&a1, &b1).await;
    let r = rccs(&mut c, "cl-bbbb0002", "switchover", "", "").await;
    assert_eq!(r["ret_code"], 0, "{r}");
    let job_id = r["job_id"].as_str().expect("id").to_string();
    let db = qcgate::store::db_path(&data);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let conn = rusqlite::Connection::open(&db).expect("db");
        let n: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM job_steps WHERE step = 'catch_up' AND outcome = 'begin'
                 AND job_seq = (SELECT max(seq) FROM jobs)",
                [],
                |r| r.get(0),
            )
            .expect("steps");
        if n > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the switchover never reached catch_up"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    gw.kill().expect("kill -9");
    gw.wait().expect("reaped");
    // Fenced, not promoted: never two writable primaries.
    assert!(a1.read_only().await && b1.read_only().await);
    lock.query_drop("UNLOCK TABLES").await.expect("unlock");

    // The restarted gateway inspects, undoes the fence, and fails the job.
    let served = served::serve(&data, &config);
    let mut gw = served.child;
    let mut c = Client::new(&served.endpoint, creds).expect("client");
    let (j, _) = wait_job(&mut c, &job_id, Duration::from_secs(30)).await;
    assert_eq!(j["status"], "failed", "{j}");
    let msg = j["error_message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("JobInterrupted") && msg.contains("not run again"),
        "{msg}"
    );
    assert!(msg.contains("fence on") && msg.contains("undone"), "{msg}");
    assert!(!a1.read_only().await, "the old primary takes writes again");
    assert!(b1.read_only().await, "the standby was not promoted");
    assert_eq!(b1.source_port().await, Some(a1.port));
    let r = c
        .call("DescribeClusterStandbys", &[("cluster", "cl-bbbb0002")])
        .await
        .expect("reply");
    assert_eq!(r["role"], "STANDBY", "{r}");
    let _ = gw.kill();
    let _ = gw.wait();
}

/// A gateway killed with `kill -9` while a DR task's initial copy runs:
/// the copy's tools die with it, the standby stays read-only and does not
/// replicate, and the restarted gateway fails the start without running it
/// again; the task says the copy failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_gateway_mid_copy_is_not_run_again() {
    let (a1, c1) = tokio::join!(Mariadb::start(63), Mariadb::start(64));
    a1.make_primary_with_data(100).await;
    a1.exec(
        "CREATE TABLE app.big (id INT PRIMARY KEY, pad CHAR(200) NOT NULL); \
         INSERT INTO app.big SELECT seq, REPEAT('p', 200) FROM app.seq_1_to_20000",
    )
    .await;
    let dir = tempfile::tempdir().expect("tmp");
    let config = dir.path().join("qcgate.toml");
    std::fs::write(&config, "").expect("config");
    let data = dir.path().join("data");
    let served = served::serve(&data, &config);
    let mut gw = served.child;
    let creds = served.key.expect("a first key");
    let mut c = Client::new(&served.endpoint, creds.clone()).expect("client");
    let owner = served::first_owner(&data);
    for m in [&a1, &c1] {
        ok(register(&data, m, ZONE));
    }
    ok(bind(&data, "cl-srce0063", ZONE, &owner, &[&a1]));
    ok(bind(&data, "cl-stby0063", ZONE, &owner, &[&c1]));
    let r = call(
        &mut c,
        "CreateDRTask",
        &[
            ("name", "crash-copy"),
            ("standby_cluster", "cl-stby0063"),
            ("source_cluster", "cl-srce0063"),
            ("flow_control", r#"{"max_mbps":1}"#),
        ],
    )
    .await;
    assert_eq!(r["ret_code"], 0, "{r}");
    let task = r["dr_task_id"].as_str().expect("id").to_string();
    let r = call(&mut c, "PrecheckDRTasks", &[("dr_tasks.1", &task)]).await;
    let (j, _) = wait_job(
        &mut c,
        r["job_ids"][task.as_str()].as_str().expect("job"),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(j["status"], "successful", "{j}");
    let r = call(
        &mut c,
        "StartDRTasks",
        &[("dr_tasks.1", &task), ("confirm_alarms", "1")],
    )
    .await;
    assert_eq!(r["ret_code"], 0, "{r}");
    let job_id = r["job_ids"][task.as_str()]
        .as_str()
        .expect("job")
        .to_string();
    // Killed once the copy is being fed to the standby.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let p = call(&mut c, "DescribeDRTaskProgress", &[("dr_tasks.1", &task)]).await;
        let pct = p["progress_set"][0]["init"]["percent"]
            .as_u64()
            .unwrap_or(0);
        if pct > 0 && pct < 100 {
            break;
        }
        assert!(Instant::now() < deadline, "the copy never showed: {p}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    gw.kill().expect("kill -9");
    gw.wait().expect("reaped");
    // The restore died with the gateway: the standby stops growing.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rows = c1.text("SELECT IFNULL((SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'app' AND TABLE_NAME = 'big'), 0)").await;
    let clients = "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'qcadmin' AND COMMAND <> 'Sleep'";
    assert_eq!(
        c1.text(clients).await,
        "0",
        "no copy still writes (rows {rows})"
    );
    assert!(c1.read_only().await, "the standby stays read-only");
    assert!(!a1.read_only().await, "the source takes writes");
    assert_eq!(c1.source_port().await, None, "nothing replicates yet");
    // The copy was written in the data dir's scratch, not the system's
    // temporary directory, and the next start removes it.
    let scratch = data.join("scratch");
    let left = |d: &Path| std::fs::read_dir(d).map(|r| r.count()).unwrap_or(0);
    assert!(left(&scratch) > 0, "the killed copy's files are in scratch");

    let served = served::serve(&data, &config);
    assert_eq!(left(&scratch), 0, "scratch emptied at start");
    let mut gw = served.child;
    let mut c = Client::new(&served.endpoint, creds).expect("client");
    let (j, _) = wait_job(&mut c, &job_id, Duration::from_secs(30)).await;
    assert_eq!(j["status"], "failed", "{j}");
    let msg = j["error_message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("JobInterrupted") && msg.contains("not run again"),
        "{msg}"
    );
    assert_eq!(c1.source_port().await, None, "not started again");
    assert!(c1.read_only().await);
    let r = call(&mut c, "DescribeDRTasks", &[("dr_tasks.1", &task)]).await;
    let status = r["dr_task_set"][0]["status"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(status, "init_failed", "{r}");
    let _ = gw.kill();
    let _ = gw.wait();
}

async fn call(c: &mut Client, action: &str, params: &[(&str, &str)]) -> Value {
    let mut p = params.to_vec();
    p.push(("zone", ZONE));
    c.call(action, &p).await.expect("reply")
}
