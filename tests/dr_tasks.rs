//! Seed 002 on real MariaDB servers: a DR task created, pre-checked
//! (planted failures), started, watched (progress, lag, logs), compared
//! (a planted difference found by key, then repaired), stopped, deleted.

mod common;

use std::time::{Duration, Instant};

use common::mariadb::*;
use common::*;
use mysql_async::prelude::Queryable;
use qcgate::client::Client;
use serde_json::{Value, json};

async fn call(c: &mut Client, action: &str, params: &[(&str, &str)]) -> Value {
    let mut p = params.to_vec();
    p.push(("zone", ZONE));
    c.call(action, &p).await.expect("reply")
}

async fn wait_ok(c: &mut Client, job: &Value) -> Value {
    let (j, _) = wait_job(c, job.as_str().expect("job id"), Duration::from_secs(60)).await;
    j
}

async fn precheck(c: &mut Client, task: &str) -> Value {
    let r = call(c, "PrecheckDRTasks", &[("dr_tasks.1", task)]).await;
    assert_eq!(r["ret_code"], 0, "{r}");
    let j = wait_ok(c, &r["job_ids"][task]).await;
    assert_eq!(j["status"], "successful", "{j}");
    let r = call(c, "DescribeDRTaskPrechecks", &[("dr_task", task)]).await;
    assert_eq!(r["ret_code"], 0, "{r}");
    r
}

fn item<'a>(pc: &'a Value, name: &str) -> &'a Value {
    pc["precheck_result_set"]
        .as_array()
        .and_then(|a| a.iter().find(|i| i["item"] == name))
        .unwrap_or_else(|| panic!("no item {name} in {pc}"))
}

async fn progress(c: &mut Client, task: &str) -> Value {
    let r = call(c, "DescribeDRTaskProgress", &[("dr_tasks.1", task)]).await;
    assert_eq!(r["ret_code"], 0, "{r}");
    r["progress_set"][0].clone()
}

/// Polls the sampled progress until `pred` holds.
async fn progress_until(
    c: &mut Client,
    task: &str,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let p = progress(c, task).await;
        if pred(&p) {
            return p;
        }
        assert!(Instant::now() < deadline, "{what}: {p}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn compare(c: &mut Client, task: &str) -> Value {
    let r = call(
        c,
        "CreateDRTaskCompare",
        &[
            ("dr_task", task),
            ("compare_type.1", "objects"),
            ("compare_type.2", "lines"),
            ("compare_type.3", "contents"),
        ],
    )
    .await;
    assert_eq!(r["ret_code"], 0, "{r}");
    let j = wait_ok(c, &r["job_id"]).await;
    assert_eq!(j["status"], "successful", "{j}");
    let id = r["compare_id"].as_str().expect("compare id").to_string();
    let r = call(
        c,
        "DescribeDRTaskCompareResults",
        &[("dr_task", task), ("compare_id", &id)],
    )
    .await;
    assert_eq!(r["ret_code"], 0, "{r}");
    r
}

/// A gateway where `src` and `standby` are registered and each bound to a
/// cluster of owner A.
async fn source_and_standby(
    src: &Mariadb,
    src_id: &str,
    standby: &Mariadb,
    standby_id: &str,
) -> Harness {
    let h = Harness::start(0).await;
    for m in [src, standby] {
        ok(register(&h, m, ZONE));
    }
    ok(bind(&h, src_id, ZONE, &h.owner_a, &[src]));
    ok(bind(&h, standby_id, ZONE, &h.owner_a, &[standby]));
    h
}

fn table<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["table_set"]
        .as_array()
        .and_then(|a| a.iter().find(|t| t["table_name"] == name))
        .unwrap_or_else(|| panic!("no table {name} in {r}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_002_dr_task_on_real_servers() {
    let (a1, b1) = tokio::join!(Mariadb::start(81), Mariadb::start(82));
    a1.make_primary_with_data(3000).await;
    a1.exec("CREATE TABLE app.nopk (v INT) ENGINE=InnoDB; INSERT INTO app.nopk VALUES (1), (2)")
        .await;
    let h = source_and_standby(&a1, "cl-srce0004", &b1, "cl-stby0004").await;
    h.add_cluster("cl-model004", ZONE, &h.owner_a);
    let mut c = h.client_a();

    // Every field is validated, each error naming it.
    let base = [
        ("standby_cluster", "cl-stby0004"),
        ("source_cluster", "cl-srce0004"),
    ];
    for (field, value, code) in [
        ("name", "1bad", 1100),
        ("name", "abc", 1100),
        ("description", "semi;colon is fine but < is not", 1100),
        ("direction", "sideways", 1100),
        ("sync_way", "later", 1100),
        ("objects", r#"[{"table_name":["t"]}]"#, 1100),
        ("objects", r#"[{"db_name":"app","table_name":[]}]"#, 1100),
        (
            "objects",
            r#"[{"db_name":"app","table_name":["a,b"]}]"#,
            1100,
        ),
        (
            "objects",
            r#"[{"db_name":"app"},{"db_name":"app","table_name":"t"}]"#,
            1100,
        ),
        ("objects", "not json", 1100),
        ("flow_control", r#"{"max_mbps":10000}"#, 1100),
        (
            "flow_control",
            r#"{"max_mbps":10,"periods":[{"start":"01:00","end":"03:00"},{"start":"02:00","end":"04:00"}]}"#,
            1100,
        ),
        (
            "flow_control",
            r#"{"max_mbps":10,"periods":[{"start":"01:00","end":"02:00"},{"start":"03:00","end":"04:00"},{"start":"05:00","end":"06:00"},{"start":"07:00","end":"08:00"}]}"#,
            1100,
        ),
        ("migrate_definer", "2", 1100),
    ] {
        let mut p: Vec<(&str, &str)> = base.to_vec();
        if field != "name" {
            p.push(("name", "drill-task"));
        }
        p.push((field, value));
        let r = call(&mut c, "CreateDRTask", &p).await;
        assert_eq!(r["ret_code"], code, "{field}={value}: {r}");
        assert!(
            r["message"].as_str().unwrap_or_default().contains(field),
            "{field}: {r}"
        );
    }
    let r = call(
        &mut c,
        "CreateDRTask",
        &[
            ("name", "drill-task"),
            ("standby_cluster", "cl-model004"),
            ("source_cluster", "cl-srce0004"),
        ],
    )
    .await;
    assert_eq!(r["ret_code"], 1400, "a simulated cluster: {r}");
    let r = call(
        &mut c,
        "CreateDRTask",
        &[
            ("name", "drill-task"),
            ("standby_cluster", "cl-nothere1"),
            ("source_cluster", "cl-srce0004"),
        ],
    )
    .await;
    assert_eq!(r["ret_code"], 2100, "{r}");
    let far = json!({"host": "192.168.0.232", "port": 3306, "user": REPL_USER, "password": REPL_PASSWORD}).to_string();
    let r = call(
        &mut c,
        "CreateDRTask",
        &[
            ("name", "drill-task"),
            ("standby_cluster", "cl-stby0004"),
            ("source", &far),
        ],
    )
    .await;
    assert_eq!(r["ret_code"], 1400, "outside the allow-list: {r}");

    // Created, in configuration; another owner sees nothing of it.
    let r = call(
        &mut c,
        "CreateDRTask",
        &[
            ("name", "drill-task"),
            ("description", "seed 002"),
            ("standby_cluster", "cl-stby0004"),
            ("source_cluster", "cl-srce0004"),
            (
                "flow_control",
                r#"{"max_mbps":500,"periods":[{"start":"22:00","end":"02:00"}]}"#,
            ),
        ],
    )
    .await;
    assert_eq!(r["ret_code"], 0, "{r}");
    let task = r["dr_task_id"].as_str().expect("id").to_string();
    assert!(task.starts_with("drt-") && task.len() == 12, "{task}");
    let r = call(&mut c, "DescribeDRTasks", &[("dr_tasks.1", &task)]).await;
    assert_eq!(r["dr_task_set"][0]["status"], "configuration", "{r}");
    let mut other = h.client_b();
    let r = call(&mut other, "DescribeDRTaskLogs", &[("dr_task", &task)]).await;
    assert_eq!(r["ret_code"], 2100, "{r}");
    let r = call(&mut other, "DescribeDRTasks", &[]).await;
    assert_eq!(r["total_count"], 0, "{r}");

    // Not started without a passing pre-check.
    let r = call(&mut c, "StartDRTasks", &[("dr_tasks.1", &task)]).await;
    assert_eq!(r["ret_code"], 1400, "{r}");
    // Planted: a standby that is not empty, and a source writing statements.
    b1.exec("SET GLOBAL read_only=OFF; CREATE DATABASE leftover")
        .await;
    a1.exec("SET GLOBAL binlog_format=STATEMENT").await;
    let pc = precheck(&mut c, &task).await;
    assert_eq!(pc["result"], false, "{pc}");
    assert_eq!(item(&pc, "dstDbIsEmpty")["result"], "FAILED", "{pc}");
    assert!(
        item(&pc, "dstDbIsEmpty")["failed_reason"]
            .as_str()
            .unwrap_or_default()
            .contains("leftover")
    );
    assert_eq!(
        item(&pc, "srcBinlogFormatCheck")["result"],
        "FAILED",
        "{pc}"
    );
    assert_eq!(item(&pc, "srcDbConnection")["result"], "PASSED", "{pc}");
    let r = call(&mut c, "StartDRTasks", &[("dr_tasks.1", &task)]).await;
    assert_eq!(r["ret_code"], 1400, "{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap_or_default()
            .contains("did not pass"),
        "{r}"
    );
    b1.exec("DROP DATABASE leftover; SET GLOBAL read_only=ON")
        .await;
    a1.exec("SET GLOBAL binlog_format=ROW").await;

    // Passing now, with an alarm that must be confirmed.
    let pc = precheck(&mut c, &task).await;
    assert_eq!(pc["result"], true, "{pc}");
    assert_eq!(
        item(&pc, "tablesWithoutPrimaryKey")["result"],
        "ALARM",
        "{pc}"
    );
    let r = call(&mut c, "StartDRTasks", &[("dr_tasks.1", &task)]).await;
    assert_eq!(r["ret_code"], 1400, "alarms unconfirmed: {r}");
    let r = call(
        &mut c,
        "StartDRTasks",
        &[("dr_tasks.1", &task), ("confirm_alarms", "1")],
    )
    .await;
    assert_eq!(r["ret_code"], 0, "{r}");
    let j = wait_ok(&mut c, &r["job_ids"][task.as_str()]).await;
    assert_eq!(j["status"], "successful", "{j}");
    let r = call(&mut c, "DescribeDRTasks", &[("dr_tasks.1", &task)]).await;
    assert_eq!(r["dr_task_set"][0]["status"], "syncing", "{r}");
    assert_eq!(b1.count("app.t").await, 3000);
    assert_eq!(b1.source_port().await, Some(a1.port));
    let p = progress_until(&mut c, &task, "in sync", |p| p["sync_status"] == "NORMAL").await;
    assert_eq!(p["lag_trx"], 0, "{p}");
    assert!(
        p["rpo"]["delay_ms"].as_f64().is_some(),
        "a heartbeat delay: {p}"
    );
    // Prometheus sees it too, without the cluster's name by default.
    let text = raw_exchange(
        &h,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
    )
    .await;
    assert!(
        text.contains("qcgate_standby_in_sync{standby=\"standby-1\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("qcgate_standby_lag_transactions{standby=\"standby-1\"} 0"),
        "{text}"
    );
    assert!(!text.contains("cl-stby0004"), "{text}");

    // Lag while the standby's applier is held, zero after.
    let mut hold = b1.root().await;
    hold.query_drop("LOCK TABLES app.t WRITE")
        .await
        .expect("lock");
    for n in 0..20 {
        a1.exec(&format!(
            "INSERT INTO app.t VALUES ({}, 'lag')",
            100_000 + n
        ))
        .await;
    }
    let p = progress_until(&mut c, &task, "lagging", |p| {
        p["sync_status"] == "LAGGING" && p["rto"]["lag_trx"].as_u64().unwrap_or(0) > 0
    })
    .await;
    assert!(p["lag_trx"].as_u64().unwrap_or(0) > 0, "{p}");
    // The applier is held: RTO in time is at least the wait, and says so.
    let p = progress_until(&mut c, &task, "rto capped", |p| {
        p["rto"]["delay_capped"] == true
    })
    .await;
    assert!(p["rto"]["delay_ms"].as_f64().unwrap_or(0.0) >= 500.0, "{p}");
    hold.query_drop("UNLOCK TABLES").await.expect("unlock");
    let p = progress_until(&mut c, &task, "caught up", |p| {
        p["sync_status"] == "NORMAL" && p["lag_trx"] == 0 && p["rto"]["delay_capped"] == false
    })
    .await;
    assert!(p["rto"]["delay_ms"].as_f64().unwrap_or(1e9) < 500.0, "{p}");
    // A replication error is an error in the log; its end too.
    b1.exec("STOP SLAVE SQL_THREAD").await;
    progress_until(&mut c, &task, "broken", |p| p["sync_status"] == "BROKEN").await;
    let r = call(&mut c, "DescribeDRTasks", &[("dr_tasks.1", &task)]).await;
    assert_eq!(r["dr_task_set"][0]["status"], "sync_failed", "{r}");
    // Retried from sync_failed (only from there).
    let r = call(&mut c, "RetryDRTasks", &[("dr_tasks.1", &task)]).await;
    assert_eq!(r["ret_code"], 0, "{r}");
    let j = wait_ok(&mut c, &r["job_ids"][task.as_str()]).await;
    assert_eq!(j["status"], "successful", "{j}");
    progress_until(&mut c, &task, "recovered", |p| p["sync_status"] == "NORMAL").await;
    let r = call(&mut c, "RetryDRTasks", &[("dr_tasks.1", &task)]).await;
    assert_eq!(r["ret_code"], 1400, "not failed: {r}");
    let r = call(
        &mut c,
        "DescribeDRTaskLogs",
        &[("dr_task", &task), ("limit", "100")],
    )
    .await;
    let codes: Vec<&str> = r["log_set"]
        .as_array()
        .expect("logs")
        .iter()
        .filter_map(|l| l["code"].as_str())
        .collect();
    for code in [
        "created",
        "precheck",
        "copy_source",
        "lag_alarm",
        "lag_cleared",
        "replication_broken",
        "restart_replication",
        "status_syncing",
    ] {
        assert!(codes.contains(&code), "{code} in {codes:?}");
    }
    let r = call(
        &mut c,
        "DescribeDRTaskLogs",
        &[("dr_task", &task), ("level.1", "error")],
    )
    .await;
    assert!(
        r["log_set"]
            .as_array()
            .expect("logs")
            .iter()
            .all(|l| l["level"] == "error"),
        "{r}"
    );
    assert!(r["total_count"].as_u64().unwrap_or(0) >= 1, "{r}");

    // Compare: a row changed on the standby alone is found by its key.
    b1.exec("SET SESSION sql_log_bin=0; UPDATE app.t SET v = 'tampered' WHERE id = 777")
        .await;
    let r = compare(&mut c, &task).await;
    assert_eq!(r["summary"]["contents"], "INCONSISTENT", "{r}");
    assert_eq!(r["summary"]["lines"], "CONSISTENT", "{r}");
    assert_eq!(r["summary"]["objects"], "CONSISTENT", "{r}");
    assert_eq!(table(&r, "t")["content_result"], "INCONSISTENT", "{r}");
    assert_eq!(
        table(&r, "nopk")["content_result"],
        "CAN_NOT_COMPARE",
        "{r}"
    );
    assert_eq!(r["diff_count"], 1, "{r}");
    assert_eq!(r["diff_set"][0]["key_values"]["id"], "777", "{r}");
    assert!(
        r["diff_set"][0]["source_select_sql"]
            .as_str()
            .unwrap_or_default()
            .contains("777"),
        "{r}"
    );
    // The same, for a person on the command line.
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_qcgate"))
            .args(["drtasks"])
            .args(args)
            .args(h.store_args())
            .output()
            .expect("qcgate runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(cli(&["list"]).contains(&task));
    let shown = cli(&["show", &task]);
    assert!(
        shown.contains("syncing") && shown.contains("[####"),
        "{shown}"
    );
    let compared = cli(&["compare", &task]);
    assert!(
        compared.contains("INCONSISTENT") && compared.contains("777"),
        "{compared}"
    );
    assert!(cli(&["logs", &task]).contains("lag_alarm"));
    b1.exec("SET SESSION sql_log_bin=0; UPDATE app.t SET v = 'row 777' WHERE id = 777")
        .await;
    let r = compare(&mut c, &task).await;
    assert_eq!(r["summary"]["contents"], "PARTIALLY_CONSISTENT", "{r}");
    assert_eq!(table(&r, "t")["content_result"], "CONSISTENT", "{r}");
    assert_eq!(r["diff_count"], 0, "{r}");
    // The comparison wrote nothing to the source.
    let r = call(&mut c, "DescribeDRTaskCompares", &[("dr_task", &task)]).await;
    assert_eq!(r["total_count"], 2, "{r}");

    // Stop, then delete.
    let r = call(&mut c, "DeleteDRTasks", &[("dr_tasks.1", &task)]).await;
    assert_eq!(r["ret_code"], 1400, "a running task is not deleted: {r}");
    let r = call(&mut c, "StopDRTasks", &[("dr_tasks.1", &task)]).await;
    assert_eq!(r["ret_code"], 0, "{r}");
    let j = wait_ok(&mut c, &r["job_ids"][task.as_str()]).await;
    assert_eq!(j["status"], "successful", "{j}");
    assert_eq!(b1.source_port().await, None);
    assert!(!b1.read_only().await);
    let r = call(&mut c, "DeleteDRTasks", &[("dr_tasks.1", &task)]).await;
    assert_eq!(r["ret_code"], 0, "{r}");
    let r = call(&mut c, "DescribeDRTasks", &[]).await;
    assert_eq!(r["total_count"], 0, "{r}");

    // Pre-check failures of a task from an external source: an account
    // without privileges, and (increment) a source whose binlogs were
    // purged past the standby's position.
    a1.exec(
        "CREATE USER 'weak'@'%' IDENTIFIED BY 'Weak#Pass1'; GRANT SELECT ON app.* TO 'weak'@'%'",
    )
    .await;
    let weak =
        json!({"host": "127.0.0.1", "port": a1.port, "user": "weak", "password": "Weak#Pass1"})
            .to_string();
    let r = call(
        &mut c,
        "CreateDRTask",
        &[
            ("name", "weak-task"),
            ("standby_cluster", "cl-stby0004"),
            ("source", &weak),
            ("sync_way", "increment"),
        ],
    )
    .await;
    assert_eq!(r["ret_code"], 0, "{r}");
    let weak_task = r["dr_task_id"].as_str().expect("id").to_string();
    a1.exec("INSERT INTO app.t VALUES (200000, 'after the stop'); FLUSH BINARY LOGS")
        .await;
    a1.exec("INSERT INTO app.t VALUES (200001, 'in the new binlog')")
        .await;
    let last = a1.text("SHOW MASTER STATUS").await;
    a1.exec(&format!("PURGE BINARY LOGS TO '{last}'")).await;
    let pc = precheck(&mut c, &weak_task).await;
    assert_eq!(pc["result"], false, "{pc}");
    assert_eq!(item(&pc, "srcDbPrivileges")["result"], "FAILED", "{pc}");
    // The replication account can read the history: it was purged.
    let able =
        json!({"host": "127.0.0.1", "port": a1.port, "user": REPL_USER, "password": REPL_PASSWORD})
            .to_string();
    let r = call(
        &mut c,
        "CreateDRTask",
        &[
            ("name", "purged-task"),
            ("standby_cluster", "cl-stby0004"),
            ("source", &able),
            ("sync_way", "increment"),
        ],
    )
    .await;
    assert_eq!(r["ret_code"], 0, "{r}");
    let pc = precheck(&mut c, r["dr_task_id"].as_str().expect("id")).await;
    assert_eq!(pc["result"], false, "{pc}");
    assert_eq!(item(&pc, "srcDbPrivileges")["result"], "PASSED", "{pc}");
    let history = item(&pc, "gtidHistoryCheck");
    assert_eq!(history["result"], "FAILED", "{pc}");
    assert!(
        history["failed_reason"]
            .as_str()
            .unwrap_or_default()
            .contains("purged"),
        "{pc}"
    );
    h.stop().await;
}

/// The initial copy under flow control: fed at 1 MB/s (its progress shows
/// while it runs), and without the objects' definers when asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow_control_and_definers_shape_the_initial_copy() {
    let (a1, c1) = tokio::join!(Mariadb::start(91), Mariadb::start(92));
    a1.make_primary_with_data(100).await;
    a1.exec(
        "CREATE TABLE app.big (id INT PRIMARY KEY, pad CHAR(200) NOT NULL); \
         INSERT INTO app.big SELECT seq, REPEAT('p', 200) FROM app.seq_1_to_20000; \
         CREATE DEFINER=`root`@`localhost` VIEW app.v AS SELECT id FROM app.t",
    )
    .await;
    let h = source_and_standby(&a1, "cl-srce0005", &c1, "cl-stby0005").await;
    let mut c = h.client_a();
    let r = call(
        &mut c,
        "CreateDRTask",
        &[
            ("name", "shaped-copy"),
            ("standby_cluster", "cl-stby0005"),
            ("source_cluster", "cl-srce0005"),
            (
                "flow_control",
                r#"{"max_mbps":1,"periods":[{"start":"00:00","end":"23:59"}]}"#,
            ),
            ("migrate_definer", "0"),
        ],
    )
    .await;
    assert_eq!(r["ret_code"], 0, "{r}");
    let task = r["dr_task_id"].as_str().expect("id").to_string();
    let pc = precheck(&mut c, &task).await;
    assert_eq!(pc["result"], true, "{pc}");
    let r = call(
        &mut c,
        "StartDRTasks",
        &[("dr_tasks.1", &task), ("confirm_alarms", "1")],
    )
    .await;
    assert_eq!(r["ret_code"], 0, "{r}");
    let started = Instant::now();
    let p = progress_until(&mut c, &task, "copying", |p| {
        p["init"]["percent"]
            .as_u64()
            .is_some_and(|x| x > 0 && x < 100)
    })
    .await;
    assert!(
        p["init"]["bytes_total"].as_u64().unwrap_or(0) > 4_000_000,
        "{p}"
    );
    assert_eq!(p["init"]["max_mbps"], 1, "{p}");
    // app.t and app.big (the view is not a table).
    assert_eq!(p["init"]["tables_total"], 2, "{p}");
    assert!(p["init"]["tables_done"].as_u64().unwrap_or(9) <= 2, "{p}");
    let j = wait_ok(&mut c, &r["job_ids"][task.as_str()]).await;
    assert_eq!(j["status"], "successful", "{j}");
    assert!(
        started.elapsed() > Duration::from_secs(3),
        "1 MB/s held the copy back"
    );
    assert_eq!(c1.count("app.big").await, 20000);
    let definer = c1
        .text("SELECT DEFINER FROM information_schema.VIEWS WHERE TABLE_NAME = 'v'")
        .await;
    assert!(
        !definer.is_empty() && definer != "root@localhost",
        "{definer}"
    );
    h.stop().await;
}

/// `objects` selects databases and tables: the copy takes only them, the
/// standby's applier skips the rest (replication keeps running), and the
/// comparison looks at them only. Objects the source lacks fail the pre-check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_select_what_is_copied_replicated_and_compared() {
    let (a1, b1) = tokio::join!(Mariadb::start(93), Mariadb::start(94));
    a1.make_primary_with_data(50).await;
    a1.exec(
        "CREATE DATABASE shop; CREATE DATABASE other; \
         CREATE TABLE shop.orders (id INT PRIMARY KEY, v INT) ENGINE=InnoDB; \
         CREATE TABLE shop.carts (id INT PRIMARY KEY, v INT) ENGINE=InnoDB; \
         CREATE TABLE other.x (id INT PRIMARY KEY, v INT) ENGINE=InnoDB; \
         INSERT INTO shop.orders VALUES (1, 1), (2, 2); INSERT INTO shop.carts VALUES (1, 1); \
         INSERT INTO other.x VALUES (1, 1)",
    )
    .await;
    let h = source_and_standby(&a1, "cl-srce0006", &b1, "cl-stby0006").await;
    let mut c = h.client_a();
    let create = |name: &'static str, objects: &'static str| {
        [
            ("name", name),
            ("standby_cluster", "cl-stby0006"),
            ("source_cluster", "cl-srce0006"),
            ("objects", objects),
        ]
    };

    // A table the source does not have fails the pre-check, named.
    let r = call(
        &mut c,
        "CreateDRTask",
        &create(
            "wrong-objects",
            r#"[{"db_name":"shop","table_name":["orders","nope"]}]"#,
        ),
    )
    .await;
    assert_eq!(r["ret_code"], 0, "{r}");
    let wrong = r["dr_task_id"].as_str().expect("id").to_string();
    let pc = precheck(&mut c, &wrong).await;
    assert_eq!(pc["result"], false, "{pc}");
    let i = item(&pc, "srcObjectsExist");
    assert_eq!(i["result"], "FAILED", "{pc}");
    assert!(
        i["failed_reason"]
            .as_str()
            .unwrap_or_default()
            .contains("shop.nope"),
        "{i}"
    );
    let r = call(&mut c, "DeleteDRTasks", &[("dr_tasks.1", &wrong)]).await;
    assert_eq!(r["ret_code"], 0, "{r}");

    // Told from the source's side (`direction=active`: the named standby
    // cluster is the source), and started on a schedule.
    let r = call(
        &mut c,
        "CreateDRTask",
        &[
            ("name", "some-objects"),
            ("direction", "active"),
            ("standby_cluster", "cl-srce0006"),
            ("source_cluster", "cl-stby0006"),
            (
                "objects",
                r#"[{"db_name":"app"},{"db_name":"shop","table_name":"orders"}]"#,
            ),
        ],
    )
    .await;
    assert_eq!(r["ret_code"], 0, "{r}");
    let task = r["dr_task_id"].as_str().expect("id").to_string();
    let pc = precheck(&mut c, &task).await;
    assert_eq!(pc["result"], true, "{pc}");
    assert_eq!(item(&pc, "srcObjectsExist")["result"], "PASSED", "{pc}");
    let r = call(&mut c, "DescribeDRTasks", &[("dr_tasks.1", &task)]).await;
    let t = &r["dr_task_set"][0];
    assert_eq!(t["standby_cluster"], "cl-stby0006", "{r}");
    assert_eq!(t["source_cluster"], "cl-srce0006", "{r}");
    let at = qcgate::clock::format_ts(qcgate::clock::now_unix() + 2);
    let r = call(
        &mut c,
        "StartDRTasks",
        &[
            ("dr_tasks.1", &task),
            ("confirm_alarms", "1"),
            ("start_time", &at),
        ],
    )
    .await;
    assert_eq!(r["ret_code"], 0, "{r}");
    let d = call(&mut c, "DescribeDRTasks", &[("dr_tasks.1", &task)]).await;
    assert_eq!(d["dr_task_set"][0]["status"], "pending_start", "{d}");
    assert_eq!(b1.source_port().await, None, "not before its time");
    let j = wait_ok(&mut c, &r["job_ids"][task.as_str()]).await;
    assert_eq!(j["status"], "successful", "{j}");
    let d = call(&mut c, "DescribeDRTasks", &[("dr_tasks.1", &task)]).await;
    assert_eq!(d["dr_task_set"][0]["status"], "syncing", "{d}");

    // The copy: the selection only.
    let tables = "SELECT GROUP_CONCAT(CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) ORDER BY 1) \
                  FROM information_schema.TABLES WHERE TABLE_SCHEMA IN ('app', 'shop', 'other')";
    assert_eq!(b1.text(tables).await, "app.t,shop.orders");
    assert_eq!(b1.count("shop.orders").await, 2);
    // Replication: writes everywhere on the source, only the selection
    // arrives, and the applier keeps running.
    a1.exec(
        "INSERT INTO app.t VALUES (9001, 'new'); INSERT INTO shop.orders VALUES (3, 3); \
         INSERT INTO shop.carts VALUES (2, 2); INSERT INTO other.x VALUES (2, 2); \
         CREATE TABLE shop.later (id INT PRIMARY KEY) ENGINE=InnoDB; CREATE DATABASE newdb",
    )
    .await;
    let g = a1.gtid().await;
    assert!(b1.wait_for(&g).await, "the standby's position reaches {g}");
    assert_eq!(b1.slave_field("Slave_SQL_Running").await, "Yes");
    assert_eq!(b1.slave_field("Last_SQL_Errno").await, "0");
    assert_eq!(b1.count("shop.orders").await, 3);
    assert_eq!(
        b1.text("SELECT COUNT(*) FROM app.t WHERE id = 9001").await,
        "1"
    );
    assert_eq!(b1.text(tables).await, "app.t,shop.orders");
    assert_eq!(
        b1.text("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN ('other', 'newdb')")
            .await,
        "0"
    );
    progress_until(&mut c, &task, "in sync", |p| {
        p["sync_status"] == "NORMAL" && p["lag_trx"] == 0
    })
    .await;

    // The comparison: the selected tables, all consistent.
    let r = compare(&mut c, &task).await;
    assert_eq!(r["summary"]["objects"], "CONSISTENT", "{r}");
    let names: Vec<String> = r["table_set"]
        .as_array()
        .expect("tables")
        .iter()
        .map(|t| {
            format!(
                "{}.{}",
                t["db_name"].as_str().unwrap_or(""),
                t["table_name"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(names, ["app.t", "shop.orders"], "{r}");
    assert_eq!(table(&r, "orders")["content_result"], "CONSISTENT", "{r}");
    let filter = "app.%,shop.orders,qcgate\\_meta.%";
    assert_eq!(b1.text("SELECT @@replicate_wild_do_table").await, filter);
    // A restart clears the variable: the sampler sets it again, and what
    // was written meanwhile outside the selection is skipped.
    let mut b1 = b1;
    b1.restart().await;
    a1.exec("INSERT INTO other.x VALUES (3, 3); INSERT INTO shop.orders VALUES (4, 4)")
        .await;
    let g = a1.gtid().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while b1.text("SELECT @@replicate_wild_do_table").await != filter {
        assert!(Instant::now() < deadline, "the filter was not set again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(b1.wait_for(&g).await, "the standby reaches {g}");
    assert_eq!(b1.count("shop.orders").await, 4);
    assert_eq!(
        b1.text("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'other'")
            .await,
        "0"
    );
    let r = call(
        &mut c,
        "DescribeDRTaskLogs",
        &[("dr_task", &task), ("limit", "100")],
    )
    .await;
    assert!(r.to_string().contains("filter_restored"), "{r}");
    // Stopped, the standby keeps no filter for whatever replicates next.
    let r = call(&mut c, "StopDRTasks", &[("dr_tasks.1", &task)]).await;
    assert_eq!(r["ret_code"], 0, "{r}");
    let j = wait_ok(&mut c, &r["job_ids"][task.as_str()]).await;
    assert_eq!(j["status"], "successful", "{j}");
    assert_eq!(b1.text("SELECT @@replicate_wild_do_table").await, "");
    assert!(!b1.read_only().await, "the standby took writes");
    h.stop().await;
}
