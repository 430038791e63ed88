//! The MySQL Plus custom services beyond the DR ones: node services, accounts,
//! migration, log server and Zabbix. For each: a valid call and its effect
//! seen through the describe actions, invalid fields (1100 naming the field),
//! and the refusals the cluster's state calls for (1400).

mod common;

use common::*;
use qcgate::store::clusters::Layout;
use serde_json::{Value, json};

const A: &str = "cl-svc00001";
const OTHER: &str = "cl-svc00002";

fn full_layout() -> Layout {
    Layout {
        main: 2,
        read: 1,
        analysis: 1,
        proxy: 1,
    }
}

fn sp(v: Value) -> String {
    v.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_services_restart_rebuild_and_assign_the_master() {
    let h = Harness::start(0).await;
    h.add_cluster_with(A, &h.owner_a, full_layout());
    h.add_cluster(OTHER, ZONE, &h.owner_a);
    let mut c = h.client_a();
    assert_eq!(nodes(&mut c, A).await.len(), 5, "every node listed");
    let main = node_ids(&mut c, A, "maininstance").await;
    let read = node_ids(&mut c, A, "readinstance").await;
    let proxy = node_ids(&mut c, A, "proxy").await;
    let foreign = node_ids(&mut c, OTHER, "maininstance").await;
    assert_eq!((main.len(), read.len(), proxy.len()), (2, 1, 1));

    // restart_node: any of its roles, on a node of that role.
    run_ok(
        &mut c,
        A,
        "restart_node",
        "",
        &sp(json!({"node_id": main[1]})),
    )
    .await;
    run_ok(
        &mut c,
        A,
        "restart_node",
        "proxy",
        &sp(json!({"node_id": proxy[0]})),
    )
    .await;
    let ns = nodes(&mut c, A).await;
    let restarted: Vec<&str> = ns
        .iter()
        .filter(|n| n["restart_time"] != "")
        .map(|n| n["node_id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(restarted.len(), 2, "{ns:?}");
    assert!(restarted.contains(&main[1].as_str()) && restarted.contains(&proxy[0].as_str()));

    let r = rccs(
        &mut c,
        A,
        "restart_node",
        "readinstance",
        &sp(json!({"node_id": main[0]})),
    )
    .await;
    assert_golden("node_wrong_role", &r);
    let r = rccs(
        &mut c,
        A,
        "restart_node",
        "",
        &sp(json!({"node_id": foreign[0]})),
    )
    .await;
    assert_golden("node_not_in_cluster", &r);
    let r = rccs(
        &mut c,
        A,
        "restart_node",
        "",
        &sp(json!({"node_id": "cl-notanode"})),
    )
    .await;
    assert_eq!(r["ret_code"], 1100, "{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap_or_default()
            .contains("[service_params.node_id]")
    );
    let r = rccs(&mut c, A, "restart_node", "", "").await;
    assert_eq!(r["ret_code"], 1100, "{r}");
    let r = rccs(
        &mut c,
        A,
        "restart_node",
        "analysis",
        &sp(json!({"node_id": main[0]})),
    )
    .await;
    assert_eq!(
        r["ret_code"], 1100,
        "analysis is not a role of restart_node: {r}"
    );

    // rebuildme: read-only instances only.
    let r = rccs(
        &mut c,
        A,
        "rebuildme",
        "maininstance",
        &sp(json!({"node_id": main[0]})),
    )
    .await;
    assert_eq!(r["ret_code"], 1100, "{r}");
    run_ok(&mut c, A, "rebuildme", "", &sp(json!({"node_id": read[0]}))).await;
    let ns = nodes(&mut c, A).await;
    let rebuilt: Vec<&Value> = ns.iter().filter(|n| n["rebuild_time"] != "").collect();
    assert_eq!(rebuilt.len(), 1);
    assert_eq!(rebuilt[0]["node_id"], read[0].as_str());
    let r = rccs(
        &mut c,
        OTHER,
        "rebuildme",
        "",
        &sp(json!({"node_id": foreign[0]})),
    )
    .await;
    assert_golden("no_readinstance_node", &r);

    // assignmaster: the other maininstance node becomes the primary.
    let r = rccs(
        &mut c,
        A,
        "assignmaster",
        "",
        &sp(json!({"node_id": main[0]})),
    )
    .await;
    assert_golden("already_primary", &r);
    run_ok(
        &mut c,
        A,
        "assignmaster",
        "",
        &sp(json!({"node_id": main[1]})),
    )
    .await;
    let ns = nodes(&mut c, A).await;
    let primary: Vec<&Value> = ns.iter().filter(|n| n["is_primary"] == true).collect();
    assert_eq!(primary.len(), 1);
    assert_eq!(primary[0]["node_id"], main[1].as_str());
    let r = rccs(
        &mut c,
        A,
        "assignmaster",
        "",
        &sp(json!({"node_id": read[0]})),
    )
    .await;
    assert_eq!(r["ret_code"], 1100, "a read node cannot be the master: {r}");

    // Another owner sees none of it.
    let mut b = h.client_b();
    let r = b
        .call("DescribeClusterNodes", &[("nodes.1", main[0].as_str())])
        .await
        .expect("r");
    assert_eq!(r["total_count"], 0, "{r}");
    let r = rccs(
        &mut b,
        A,
        "restart_node",
        "",
        &sp(json!({"node_id": main[0]})),
    )
    .await;
    assert_eq!(r["ret_code"], 2100, "{r}");
    h.stop().await;
}

const PASSWORD: &str = "Acc0unt@Pass";

fn user(user: &str, host: &str) -> String {
    sp(
        json!({"database": "app", "passwd": PASSWORD, "ssl": "NO", "host": host, "user": user, "priv": "StandardAccount"}),
    )
}

fn accounts(cluster: &Value) -> Vec<(String, String, String)> {
    cluster["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .map(|a| {
            let f = |k: &str| a[k].as_str().unwrap_or_default().to_string();
            (f("engine"), f("user"), f("host"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_are_added_refused_and_deleted() {
    let h = Harness::start(0).await;
    h.add_cluster_with(A, &h.owner_a, full_layout());
    h.add_cluster(OTHER, ZONE, &h.owner_a);
    let mut c = h.client_a();

    run_ok(
        &mut c,
        A,
        "add_user",
        "maininstance",
        &user("app_rw", "10.0.0.1;10.1.0.0/16"),
    )
    .await;
    let cl = describe_cluster(&mut c, A).await;
    assert_eq!(
        accounts(&cl),
        vec![
            ("mysql".into(), "app_rw".into(), "10.0.0.1".into()),
            ("mysql".into(), "app_rw".into(), "10.1.0.0/16".into())
        ]
    );
    let r = rccs(&mut c, A, "add_user", "", &user("app_rw", "10.0.0.1")).await;
    assert_golden("account_exists", &r);
    run_ok(&mut c, A, "add_user", "", &user("app_rw", "%")).await;

    // Field by field.
    for (field, value, golden) in [
        ("passwd", json!("weakpass"), Some("password_policy")),
        ("passwd", json!("Sh0rt@"), None),
        ("user", json!("root"), Some("user_reserved")),
        ("user", json!("a"), None),
        ("user", json!("bad-name"), None),
        ("host", json!("10.0.0.300"), Some("account_host_invalid")),
        ("host", json!(""), None),
        ("database", json!("a b"), None),
        ("priv", json!("Admin"), None),
        ("ssl", json!("MAYBE"), None),
    ] {
        let mut v: Value = serde_json::from_str(&user("app_ro", "%")).expect("json");
        v[field] = value.clone();
        let r = rccs(&mut c, A, "add_user", "", &v.to_string()).await;
        assert_eq!(r["ret_code"], 1100, "{field}={value}: {r}");
        let msg = r["message"].as_str().unwrap_or_default();
        assert!(msg.contains(&format!("[service_params.{field}]")), "{msg}");
        assert!(
            !msg.contains(PASSWORD) && !msg.contains("weakpass"),
            "{msg}"
        );
        if let Some(g) = golden {
            assert_golden(g, &r);
        }
    }
    let mut v: Value = serde_json::from_str(&user("app_ssl", "%")).expect("json");
    v["ssl"] = json!("YES");
    let r = rccs(&mut c, A, "add_user", "", &v.to_string()).await;
    assert_golden("account_ssl_without_ssl", &r);
    run_ok(&mut c, A, "configuring_SSL", "", r#"{"configssl":"YES"}"#).await;
    run_ok(&mut c, A, "add_user", "", &v.to_string()).await;

    // del_user: only what exists; reserved names never.
    let del = |u: &str, h: &str| sp(json!({"host": h, "user": u}));
    let r = rccs(&mut c, A, "del_user", "", &del("nobody", "%")).await;
    assert_golden("account_missing", &r);
    let r = rccs(&mut c, A, "del_user", "", &del("qc_admin", "%")).await;
    assert_eq!(r["ret_code"], 1100, "{r}");
    run_ok(&mut c, A, "del_user", "", &del("app_rw", "10.0.0.1;%")).await;
    let left: Vec<_> = accounts(&describe_cluster(&mut c, A).await)
        .into_iter()
        .map(|(_, u, h)| format!("{u}@{h}"))
        .collect();
    assert_eq!(left, vec!["app_rw@10.1.0.0/16", "app_ssl@%"]);

    // ClickHouse accounts live on analysis nodes.
    let ck = sp(json!({"passwd": PASSWORD, "host": "::/0", "user": "ck_reader"}));
    let r = rccs(&mut c, OTHER, "add_ck_user", "", &ck).await;
    assert_golden("no_analysis_node", &r);
    let r = rccs(&mut c, A, "add_ck_user", "maininstance", &ck).await;
    assert_eq!(r["ret_code"], 1100, "add_ck_user runs on analysis: {r}");
    run_ok(&mut c, A, "add_ck_user", "analysis", &ck).await;
    let r = rccs(&mut c, A, "add_ck_user", "", &ck).await;
    assert_eq!(r["ret_code"], 1400, "{r}");
    let r = rccs(
        &mut c,
        A,
        "add_ck_user",
        "",
        &sp(json!({"passwd": PASSWORD, "host": "::/0", "user": "default"})),
    )
    .await;
    assert_eq!(r["ret_code"], 1100, "{r}");
    assert!(accounts(&describe_cluster(&mut c, A).await).contains(&(
        "clickhouse".into(),
        "ck_reader".into(),
        "::/0".into()
    )));
    run_ok(
        &mut c,
        A,
        "del_ck_user",
        "",
        &sp(json!({"user": "ck_reader"})),
    )
    .await;
    let r = rccs(
        &mut c,
        A,
        "del_ck_user",
        "",
        &sp(json!({"user": "ck_reader"})),
    )
    .await;
    assert_eq!(r["ret_code"], 1400, "{r}");

    // The password is nowhere in what the gateway shows.
    let jobs = c
        .call("DescribeJobs", &[("limit", "100")])
        .await
        .expect("r")
        .to_string();
    let clusters = c
        .call("DescribeClusters", &[])
        .await
        .expect("r")
        .to_string();
    for shown in [jobs, clusters] {
        assert!(!shown.contains(PASSWORD), "password shown: {shown}");
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_log_server_and_zabbix_start_once_and_stop() {
    let h = Harness::start(0).await;
    h.add_cluster_with(A, &h.owner_a, full_layout());
    let mut c = h.client_a();

    let dump = sp(
        json!({"passwd": "remote-pw", "host": "192.168.0.10", "xtrabackup": "NO", "user": "dumper", "port": 3306}),
    );
    run_ok(&mut c, A, "migrate_data", "", &dump).await;
    let settings = describe_cluster(&mut c, A).await["settings"].clone();
    assert_eq!(settings["migration"]["host"], "192.168.0.10", "{settings}");
    assert!(!settings.to_string().contains("remote-pw"));
    let r = rccs(&mut c, A, "migrate_data", "", &dump).await;
    assert_golden("migration_running", &r);
    run_ok(&mut c, A, "stop_migrate", "", "").await;
    let r = rccs(&mut c, A, "stop_migrate", "", "").await;
    assert_golden("migration_not_running", &r);
    let r = rccs(&mut c, A, "migrate_data", "", &sp(json!({"passwd": "pw", "xtrabackup": "YES", "cluster_id": "cl-remote01", "user": "u", "host": "10.0.0.1"}))).await;
    assert_golden("migrate_field_of_other_mode", &r);
    let r = rccs(
        &mut c,
        A,
        "migrate_data",
        "",
        &sp(
            json!({"passwd": "pw", "xtrabackup": "NO", "user": "u", "host": "10.0.0.1", "port": 0}),
        ),
    )
    .await;
    assert_eq!(r["ret_code"], 1100, "{r}");
    run_ok(
        &mut c,
        A,
        "migrate_data",
        "",
        &sp(json!({"passwd": "pw", "xtrabackup": "YES", "cluster_id": "cl-remote01", "user": "u"})),
    )
    .await;
    assert_eq!(
        describe_cluster(&mut c, A).await["settings"]["migration"]["cluster_id"],
        "cl-remote01"
    );

    let logs =
        |l: &str, u: &str| sp(json!({"mysql_log": l, "http_password": PASSWORD, "http_user": u}));
    let r = rccs(
        &mut c,
        A,
        "start_log_server",
        "",
        &logs("mysql-error,mysql-general", "logs"),
    )
    .await;
    assert_golden("log_server_unknown_log", &r);
    let r = rccs(
        &mut c,
        A,
        "start_log_server",
        "",
        &logs("mysql-error", "http"),
    )
    .await;
    assert_eq!(r["ret_code"], 1100, "{r}");
    run_ok(
        &mut c,
        A,
        "start_log_server",
        "",
        &logs("mysql-slow, mysql-error", "logs"),
    )
    .await;
    let settings = describe_cluster(&mut c, A).await["settings"].clone();
    assert_eq!(
        settings["log_server"],
        json!({"mysql_log": "mysql-slow,mysql-error", "http_user": "logs"})
    );
    let r = rccs(
        &mut c,
        A,
        "start_log_server",
        "",
        &logs("mysql-error", "logs"),
    )
    .await;
    assert_eq!(r["ret_code"], 1400, "{r}");
    let r = rccs(
        &mut c,
        A,
        "stop_log_server",
        "",
        r#"{"clean_log":"PERHAPS"}"#,
    )
    .await;
    assert_eq!(r["ret_code"], 1100, "{r}");
    run_ok(&mut c, A, "stop_log_server", "", r#"{"clean_log":"YES"}"#).await;
    assert!(
        describe_cluster(&mut c, A).await["settings"]
            .get("log_server")
            .is_none()
    );

    let r = rccs(
        &mut c,
        A,
        "start_zabbix",
        "",
        r#"{"zabbix_agent_port":80,"zabbix_server_ip":"10.0.0.5"}"#,
    )
    .await;
    assert_golden("zabbix_port_range", &r);
    let r = rccs(
        &mut c,
        A,
        "start_zabbix",
        "",
        r#"{"zabbix_server_ip":"zabbix.example"}"#,
    )
    .await;
    assert_eq!(r["ret_code"], 1100, "{r}");
    run_ok(
        &mut c,
        A,
        "start_zabbix",
        "",
        r#"{"zabbix_server_ip":"10.0.0.5"}"#,
    )
    .await;
    assert_eq!(
        describe_cluster(&mut c, A).await["settings"]["zabbix"],
        json!({"zabbix_agent_port": 10050, "zabbix_server_ip": "10.0.0.5"})
    );
    run_ok(&mut c, A, "stop_zabbix", "", "").await;
    let r = rccs(&mut c, A, "stop_zabbix", "", "").await;
    assert_eq!(r["ret_code"], 1400, "{r}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_standby_refuses_restarts_and_ha_changes() {
    let h = Harness::start(0).await;
    h.add_cluster_with(A, &h.owner_a, full_layout());
    h.add_cluster(OTHER, ZONE, &h.owner_a);
    let mut c = h.client_a();
    let main = node_ids(&mut c, A, "maininstance").await;
    let read = node_ids(&mut c, A, "readinstance").await;
    let j = start_standby(&mut c, A, OTHER).await;
    wait_job(
        &mut c,
        j["job_id"].as_str().expect("id"),
        std::time::Duration::from_secs(10),
    )
    .await;

    let r = rccs(
        &mut c,
        A,
        "restart_node",
        "",
        &sp(json!({"node_id": main[0]})),
    )
    .await;
    assert_golden("restart_on_running_standby", &r);
    for (service, params) in [
        ("assignmaster", sp(json!({"node_id": main[1]}))),
        ("rebuildme", sp(json!({"node_id": read[0]}))),
        ("configuring_SSL", r#"{"configssl":"YES"}"#.to_string()),
        (
            "migrate_data",
            sp(
                json!({"passwd": "pw", "xtrabackup": "YES", "cluster_id": "cl-remote01", "user": "u"}),
            ),
        ),
    ] {
        let r = rccs(&mut c, A, service, "", &params).await;
        assert_eq!(r["ret_code"], 1400, "{service}: {r}");
        assert!(
            r["message"]
                .as_str()
                .unwrap_or_default()
                .contains("stop_standby or promote_standby"),
            "{r}"
        );
    }
    let r = c
        .call("RestartClusterService", &[("cluster", A)])
        .await
        .expect("r");
    assert_eq!(r["ret_code"], 1400, "{r}");
    // Accounts and switches that restart nothing stay allowed.
    run_ok(&mut c, A, "add_user", "", &user("reporter", "%")).await;
    run_ok(&mut c, A, "set_readonly", "", r#"{"readonly":"YES"}"#).await;
    // Once DR sync stops, restarts are allowed again.
    run_ok(&mut c, A, "stop_standby", "", "").await;
    run_ok(
        &mut c,
        A,
        "restart_node",
        "",
        &sp(json!({"node_id": main[0]})),
    )
    .await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_queued_behind_start_standby_is_refused_when_it_runs() {
    let h = Harness::start(200).await;
    h.add_cluster(A, ZONE, &h.owner_a);
    h.add_cluster(OTHER, ZONE, &h.owner_a);
    let mut c = h.client_a();
    let main = node_ids(&mut c, A, "maininstance").await;
    // Both pass validation: the cluster is no standby yet when they arrive.
    let standby = start_standby(&mut c, A, OTHER).await;
    let restart = rccs(
        &mut c,
        A,
        "restart_node",
        "",
        &sp(json!({"node_id": main[0]})),
    )
    .await;
    assert_eq!(restart["ret_code"], 0, "{restart}");
    let timeout = std::time::Duration::from_secs(10);
    let (j, _) = wait_job(&mut c, standby["job_id"].as_str().expect("job"), timeout).await;
    assert_eq!(j["status"], "successful", "{j}");
    let (j, _) = wait_job(&mut c, restart["job_id"].as_str().expect("job"), timeout).await;
    assert_eq!(j["status"], "failed", "{j}");
    assert_eq!(j["error_codes"], "1400");
    assert!(
        j["error_message"]
            .as_str()
            .unwrap_or_default()
            .contains("DR standby"),
        "{j}"
    );
    assert!(
        nodes(&mut c, A)
            .await
            .iter()
            .all(|n| n["restart_time"] == "")
    );
    h.stop().await;
}
