//! The `qcgate` binary as users run it: serve, the local commands beside it,
//! `qcgate call`, SIGTERM, and SIGKILL under write load.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use qcgate::client::{Client, Credentials};
use qcgate::secret::Secret;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_qcgate");

struct Served {
    child: Child,
    endpoint: String,
    /// The first key, if this start created one: (id, secret, owner).
    key: Option<(String, String, String)>,
}

fn serve(dir: &Path, model_delay_ms: u64) -> Served {
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--model-delay",
            &model_delay_ms.to_string(),
        ])
        .arg("--data-dir")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().expect("a line").expect("utf8");
    let endpoint = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("listening line names the endpoint")
        .to_string();
    let mut key = None;
    let second = lines.next().expect("a second line").expect("utf8");
    if second.is_empty() {
        let mut field = |name: &str| -> String {
            for l in lines.by_ref() {
                let l = l.expect("utf8");
                if let Some(v) = l.trim().strip_prefix(name) {
                    return v.trim().to_string();
                }
            }
            panic!("serve did not print {name}");
        };
        let id = field("access_key_id:");
        let secret = field("secret_access_key:");
        let owner = field("owner:");
        key = Some((id, secret, owner));
    }
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Served {
        child,
        endpoint,
        key,
    }
}

fn qcgate(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let out = Command::new(BIN)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("qcgate runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn sigterm(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(ok.success());
}

/// SIGTERM, then a clean exit within `within`.
fn stop(child: &mut Child, within: Duration) {
    sigterm(child);
    assert!(
        wait_exit(child, within).success(),
        "serve did not exit cleanly on SIGTERM"
    );
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not exit within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn serve_prints_a_first_key_once_and_local_commands_work_beside_it() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().to_str().expect("path");
    let mut s = serve(tmp.path(), 100);
    let (ak, sk, owner) = s.key.clone().expect("first start prints a key");
    assert_eq!(ak.len(), 20);

    // keys create --json: exactly one JSON object
    let (ok, out) = qcgate(
        &[
            "keys",
            "create",
            "--data-dir",
            dir,
            "--owner",
            "usr-TESTER01",
            "--json",
        ],
        &[],
    );
    assert!(ok);
    let k: Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert_eq!(k["owner"], "usr-TESTER01");
    let second_secret = k["secret_access_key"].as_str().expect("secret").to_string();
    assert_eq!(k.as_object().map(|o| o.len()), Some(3));

    let (ok, out) = qcgate(&["keys", "list", "--data-dir", dir], &[]);
    assert!(ok && out.contains(&ak) && out.contains("usr-TESTER01"));
    assert!(
        !out.contains(&sk) && !out.contains(&second_secret),
        "keys list never prints secrets"
    );

    let (ok, _) = qcgate(
        &[
            "clusters",
            "add",
            "--id",
            "cl-cli00001",
            "--zone",
            "sh1a",
            "--owner",
            &owner,
            "--data-dir",
            dir,
        ],
        &[],
    );
    assert!(ok);
    let (ok, out) = qcgate(&["clusters", "list", "--data-dir", dir], &[]);
    assert!(ok && out.contains("cl-cli00001"));
    let (ok, _) = qcgate(
        &[
            "clusters",
            "add",
            "--id",
            "bad",
            "--zone",
            "sh1a",
            "--owner",
            &owner,
            "--data-dir",
            dir,
        ],
        &[],
    );
    assert!(!ok, "a malformed cluster id is refused");
    let add_with = |flags: &[&str]| {
        let mut args = vec!["clusters", "add", "--id", "cl-cli00002", "--zone", "sh1a"];
        args.extend(["--owner", owner.as_str(), "--data-dir", dir]);
        args.extend(flags);
        qcgate(&args, &[])
    };
    let (ok, out) = add_with(&["--main-nodes", "1"]);
    assert!(!ok, "one maininstance node needs --no-ha: {out}");
    let (ok, out) = add_with(&["--read-nodes", "2", "--analysis-nodes", "1"]);
    assert!(ok, "{out}");

    // qcgate call, credentials from the environment, JSON encoded for the user
    let env = [
        ("QCGATE_ACCESS_KEY_ID", ak.as_str()),
        ("QCGATE_SECRET_ACCESS_KEY", sk.as_str()),
    ];
    let (ok, out) = qcgate(
        &[
            "call",
            "DescribeClusterNodes",
            "--endpoint",
            &s.endpoint,
            "cluster=cl-cli00002",
        ],
        &env,
    );
    assert!(ok, "{out}");
    let r: Value = serde_json::from_str(&out).expect("JSON");
    let roles: Vec<&str> = r["node_set"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter_map(|n| n["role"].as_str())
        .collect();
    assert_eq!(
        roles,
        [
            "maininstance",
            "maininstance",
            "readinstance",
            "readinstance",
            "analysis"
        ]
    );
    let sp = r#"service_params={"sync_way":"full","zone":"sh1a","host":"192.168.0.232","cluster_id":"cl-9np7ig3g","user":"migrate_user","password":"Passwd@123","port":3306}"#;
    let (ok, out) = qcgate(
        &[
            "call",
            "RunClusterCustomService",
            "--endpoint",
            &s.endpoint,
            "--zone",
            "sh1a",
            "cluster=cl-cli00001",
            "role=maininstance",
            "service=start_standby",
            sp,
        ],
        &env,
    );
    assert!(ok, "{out}");
    let r: Value = serde_json::from_str(&out).expect("JSON");
    let job_id = r["job_id"].as_str().expect("job").to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (ok, out) = qcgate(
            &[
                "call",
                "DescribeJobs",
                "--endpoint",
                &s.endpoint,
                "--post",
                &format!("jobs.1={job_id}"),
            ],
            &env,
        );
        assert!(ok, "{out}");
        let r: Value = serde_json::from_str(&out).expect("JSON");
        if r["job_set"][0]["status"] == "successful" {
            break;
        }
        assert!(Instant::now() < deadline, "{r}");
        std::thread::sleep(Duration::from_millis(50));
    }

    // a reader that stops reading (`qcgate call … | grep -q`) is no crash
    let mut cut = Command::new(BIN)
        .args(["call", "DescribeJobs", "--endpoint", &s.endpoint])
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("qcgate runs");
    drop(cut.stdout.take());
    let cut = cut.wait_with_output().expect("qcgate exits");
    let stderr = String::from_utf8_lossy(&cut.stderr);
    assert!(cut.status.success(), "{:?}: {stderr}", cut.status);
    assert!(!stderr.contains("panicked"), "{stderr}");

    // revoke, then the key is refused; `call` exits non-zero on an error envelope
    let (ok, _) = qcgate(&["keys", "revoke", &ak, "--data-dir", dir], &[]);
    assert!(ok);
    let (ok, out) = qcgate(&["call", "DescribeJobs", "--endpoint", &s.endpoint], &env);
    assert!(!ok);
    assert!(out.contains("1200"), "{out}");

    // a second serve on the same data dir is refused
    let (ok, _) = qcgate(
        &["serve", "--listen", "127.0.0.1:0", "--data-dir", dir],
        &[],
    );
    assert!(!ok);

    stop(&mut s.child, Duration::from_secs(15));

    // a restart creates no new key
    let mut again = serve(tmp.path(), 100);
    assert!(again.key.is_none(), "the first key is printed only once");
    stop(&mut again.child, Duration::from_secs(15));
}

#[test]
fn sigkill_under_write_load_loses_no_acknowledged_job() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().to_str().expect("path").to_string();
    let mut s = serve(tmp.path(), 300);
    let (ak, sk, owner) = s.key.clone().expect("key");
    let clusters: Vec<String> = (0..16).map(|i| format!("cl-crash{i:03}")).collect();
    for c in &clusters {
        assert!(
            qcgate(
                &[
                    "clusters",
                    "add",
                    "--id",
                    c,
                    "--zone",
                    "sh1a",
                    "--owner",
                    &owner,
                    "--data-dir",
                    &dir
                ],
                &[]
            )
            .0
        );
    }
    let creds = Credentials {
        access_key_id: ak.clone(),
        secret_access_key: Secret::new(sk.clone()),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("rt");

    // Writers submit as fast as they can; the gateway is killed mid-stream.
    let acked: Vec<String> = rt.block_on(async {
        let mut tasks = Vec::new();
        for (i, cluster) in clusters.iter().enumerate() {
            let mut client = Client::new(&s.endpoint, creds.clone()).expect("client");
            let cluster = cluster.clone();
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                let sp = format!(
                    r#"{{"sync_way":"full","zone":"sh1a","host":"127.0.0.1","cluster_id":"cl-src{i:05}","user":"u","passwd":"p","port":3306}}"#
                );
                for _ in 0..10_000 {
                    let r = client
                        .call(
                            "RunClusterCustomService",
                            &[("cluster", &cluster), ("service", "start_standby"), ("service_params", &sp), ("zone", "sh1a")],
                        )
                        .await;
                    match r {
                        Ok(v) if v["ret_code"] == 0 => mine.push(v["job_id"].as_str().expect("id").to_string()),
                        // refused, nothing stored: already a standby, or the owner's queue is full
                        Ok(v) if v["ret_code"] == 1400 || v["ret_code"] == 2500 => {}
                        Ok(v) => panic!("unexpected reply {v}"),
                        Err(_) => break, // the gateway is gone
                    }
                }
                mine
            }));
        }
        tokio::time::sleep(Duration::from_millis(800)).await;
        s.child.kill().expect("SIGKILL");
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("task"));
        }
        all
    });
    let _ = s.child.wait();
    assert!(
        acked.len() >= 16,
        "the load produced acknowledged jobs: {}",
        acked.len()
    );

    // Restart: every acknowledged job is there and reaches a terminal status.
    let mut again = serve(tmp.path(), 1);
    let mut tally = std::collections::BTreeMap::<String, usize>::new();
    rt.block_on(async {
        let mut client = Client::new(&again.endpoint, creds.clone()).expect("client");
        let deadline = Instant::now() + Duration::from_secs(60);
        for chunk in acked.chunks(50) {
            loop {
                let params: Vec<(String, String)> = chunk
                    .iter()
                    .enumerate()
                    .map(|(i, id)| (format!("jobs.{}", i + 1), id.clone()))
                    .collect();
                let mut p: Vec<(&str, &str)> = params
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                p.push(("limit", "100"));
                let r = client.call("DescribeJobs", &p).await.expect("reply");
                assert_eq!(
                    r["ret_code"], 0,
                    "an acknowledged job is missing after the crash: {r}"
                );
                assert_eq!(r["total_count"].as_u64(), Some(chunk.len() as u64));
                let open = r["job_set"]
                    .as_array()
                    .expect("set")
                    .iter()
                    .filter(|j| j["status"] == "pending" || j["status"] == "working")
                    .count();
                if open == 0 {
                    for j in r["job_set"].as_array().expect("set") {
                        let kind = format!(
                            "{} {}",
                            j["status"],
                            j["error_message"]
                                .as_str()
                                .unwrap_or("")
                                .split(',')
                                .next()
                                .unwrap_or("")
                        );
                        *tally.entry(kind).or_default() += 1;
                        if j["status"] == "failed" {
                            let m = j["error_message"].as_str().unwrap_or("");
                            assert!(
                                m.contains("JobInterrupted") || m.contains("already a standby"),
                                "{j}"
                            );
                        }
                    }
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "jobs did not finish after restart"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    eprintln!(
        "acknowledged before SIGKILL: {}; after restart: {tally:?}",
        acked.len()
    );
    stop(&mut again.child, Duration::from_secs(15));
}

#[test]
fn sigterm_leaves_no_job_half_recorded() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().to_str().expect("path").to_string();
    let mut s = serve(tmp.path(), 30_000);
    let (ak, sk, owner) = s.key.clone().expect("key");
    let creds = Credentials {
        access_key_id: ak,
        secret_access_key: Secret::new(sk),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    for i in 0..12 {
        let cluster = format!("cl-term{i:04}");
        assert!(
            qcgate(
                &[
                    "clusters",
                    "add",
                    "--id",
                    &cluster,
                    "--zone",
                    "sh1a",
                    "--owner",
                    &owner,
                    "--data-dir",
                    &dir
                ],
                &[]
            )
            .0
        );
        let r = rt.block_on(async {
            let mut c = Client::new(&s.endpoint, creds.clone()).expect("client");
            let sp = r#"{"sync_way":"full","zone":"sh1a","host":"127.0.0.1","cluster_id":"cl-9np7ig3g","user":"u","passwd":"p","port":3306}"#;
            c.call("RunClusterCustomService", &[("cluster", &cluster), ("service", "start_standby"), ("service_params", sp), ("zone", "sh1a")])
                .await
                .expect("reply")
        });
        assert_eq!(r["ret_code"], 0, "{r}");
    }
    std::thread::sleep(Duration::from_millis(300)); // 8 workers are now mid-job

    sigterm(&s.child);
    assert!(
        wait_exit(&mut s.child, Duration::from_secs(10)).success(),
        "graceful exit, promptly"
    );

    let conn = rusqlite::Connection::open(qcgate::store::db_path(tmp.path())).expect("db");
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).expect("count") };
    assert_eq!(
        count("SELECT COUNT(*) FROM jobs WHERE status = 'working'"),
        0,
        "no job left working"
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM jobs WHERE lease_owner IS NOT NULL"),
        0,
        "no lease left held"
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM lanes WHERE busy = 1"),
        0,
        "no lane left busy"
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM jobs WHERE status = 'pending'"),
        12,
        "unfinished model jobs went back to pending"
    );
    assert_eq!(
        count("SELECT COALESCE(SUM(open), 0) FROM owner_open"),
        12,
        "the queue count is consistent"
    );
    drop(conn);

    // After a restart they all run, none reported as interrupted.
    let mut again = serve(tmp.path(), 1);
    rt.block_on(async {
        let mut c = Client::new(&again.endpoint, creds.clone()).expect("client");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let r = c
                .call(
                    "DescribeJobs",
                    &[("status", "successful"), ("limit", "100")],
                )
                .await
                .expect("reply");
            if r["total_count"] == 12 {
                break;
            }
            assert!(Instant::now() < deadline, "{r}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    stop(&mut again.child, Duration::from_secs(15));
}

#[test]
fn bench_measures_a_running_gateway_and_loads_only_loopback() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().to_str().expect("path").to_string();
    let mut s = serve(tmp.path(), 3_600_000);
    let (ak, sk, owner) = s.key.clone().expect("key");
    let added = qcgate(
        &[
            "clusters",
            "add",
            "--id",
            "cl-bench001",
            "--zone",
            "sh1a",
            "--owner",
            &owner,
            "--data-dir",
            &dir,
        ],
        &[],
    );
    assert!(added.0);
    let env = [
        ("QCGATE_ACCESS_KEY_ID", ak.as_str()),
        ("QCGATE_SECRET_ACCESS_KEY", sk.as_str()),
    ];

    let refused = Command::new(BIN)
        .args([
            "bench",
            "--endpoint",
            "http://192.168.0.232:80/iaas/",
            "--cluster",
            "cl-bench001",
        ])
        .envs(env)
        .output()
        .expect("bench runs");
    assert!(!refused.status.success());
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(why.contains("not a loopback address"), "{why}");

    let pid = s.child.id().to_string();
    let (ok, out) = qcgate(
        &[
            "bench",
            "--endpoint",
            &s.endpoint,
            "--cluster",
            "cl-bench001",
            "--pid",
            &pid,
            "--seconds",
            "1",
            "--connections",
            "4",
            "--only",
            "write,read",
            "--json",
        ],
        &env,
    );
    assert!(ok, "bench failed: {out}");
    let report: Value = serde_json::from_str(&out).expect("json summary");
    let phases = report["phases"].as_array().expect("phases");
    let names: Vec<&str> = phases.iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(
        names,
        ["run_cluster_custom_service_normal", "describe_jobs_by_id"]
    );
    for p in phases {
        assert!(p["ok"].as_u64().unwrap_or(0) > 0, "{p}");
        assert!(
            p["server_cpu_us_per_request"].as_f64().unwrap_or(0.0) > 0.0,
            "{p}"
        );
        // The load generator's share and the machine's unused share, the
        // rest of what a ratio is made of.
        assert!(
            p["load_cpu_us_per_request"].as_f64().unwrap_or(0.0) > 0.0,
            "{p}"
        );
        let idle = p["machine_idle_percent"].as_f64().expect("idle share");
        assert!((0.0..=100.0).contains(&idle), "{p}");
    }
    // The write phase's CPU, by thread: the request path and the writer.
    let by_thread = &phases[0]["server_cpu_us_per_request_by_thread"];
    for name in ["tokio-rt-worker", "qcgate-writer"] {
        assert!(
            by_thread[name].as_f64().unwrap_or(0.0) > 0.0,
            "{name}: {by_thread}"
        );
    }
    // Writes past the owner's default queue quota (1000) are refused and
    // counted as failed; reads of the stored jobs never fail.
    assert_eq!(phases[1]["failed"], 0, "{}", phases[1]);
    assert!(
        report["ceiling"]["requests_per_sec"]
            .as_f64()
            .unwrap_or(0.0)
            > 0.0
    );
    let rss = report["gateway_rss_mib"].as_f64().unwrap_or(0.0);
    assert!(rss > 0.0);
    assert!(report["gateway_peak_rss_mib"].as_f64().unwrap_or(0.0) >= rss);
    stop(&mut s.child, Duration::from_secs(15));
}

#[test]
fn bench_rounds_sign_every_write_anew_and_report_the_lower_middle_round() {
    let (ok, out) = qcgate(
        &[
            "bench",
            "--only",
            "write",
            "--rounds",
            "2",
            "--seconds",
            "1",
            "--connections",
            "4",
            "--json",
        ],
        &[],
    );
    assert!(ok, "bench failed: {out}");
    let report: Value = serde_json::from_str(&out).expect("json summary");
    let write = &report["phases"][0];
    let rounds = write["rounds"].as_array().expect("rounds");
    assert_eq!(rounds.len(), 2, "{write}");
    let ok_per_round: Vec<u64> = rounds.iter().filter_map(|r| r["ok"].as_u64()).collect();
    assert!(ok_per_round.iter().all(|&n| n > 0), "{write}");
    assert!(rounds.iter().all(|r| r["failed"] == 0), "{write}");
    // A request signed the same way twice would answer with the first
    // job and store none: every acknowledged write of both rounds is a job.
    assert_eq!(
        report["jobs_stored"].as_u64(),
        Some(ok_per_round.iter().sum::<u64>()),
        "{report}"
    );
    let ratios: Vec<f64> = rounds
        .iter()
        .filter_map(|r| r["ratio_to_ceiling"].as_f64())
        .collect();
    let lower = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    assert_eq!(write["ratio_to_ceiling"].as_f64(), Some(lower), "{write}");
}

/// A start that fails (the port is taken) creates no key: the next start
/// prints the first key and its secret.
#[test]
fn a_failed_start_leaves_no_key_unshown() {
    let dir = tempfile::tempdir().expect("tmp");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let out = Command::new(BIN)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .expect("serve runs");
    assert!(!out.status.success(), "the port was taken");
    let (ok, listed) = qcgate(
        &[
            "keys",
            "list",
            "--data-dir",
            &dir.path().display().to_string(),
        ],
        &[],
    );
    assert!(ok);
    assert_eq!(
        listed.lines().count(),
        1,
        "no key yet, only the header: {listed}"
    );
    drop(taken);
    let mut s = serve(dir.path(), 0);
    assert!(
        s.key.is_some(),
        "the first key is shown on the first start that works"
    );
    stop(&mut s.child, Duration::from_secs(30));
}

/// `clusters add` warns when no key has the owner; `clusters remove`
/// refuses a cluster with a job pending and forgets one without.
#[test]
fn clusters_add_warns_of_an_unknown_owner_and_remove_forgets() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut s = serve(dir.path(), 60_000);
    let (id, secret, owner) = s.key.clone().expect("first key");
    let d = dir.path().display().to_string();
    let add = |cluster: &str, owner: &str| {
        Command::new(BIN)
            .args([
                "clusters",
                "add",
                "--id",
                cluster,
                "--zone",
                "sh1a",
                "--owner",
                owner,
                "--data-dir",
                &d,
            ])
            .output()
            .expect("clusters add")
    };
    let out = add("cl-nobody01", "usr-XXXXXXXX");
    assert!(out.status.success());
    let warned = String::from_utf8_lossy(&out.stderr);
    assert!(
        warned.contains("no access key has owner usr-XXXXXXXX"),
        "{warned}"
    );
    let out = add("cl-mine0001", &owner);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).is_empty(),
        "no warning for a known owner"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("rt");
    let creds = Credentials {
        access_key_id: id,
        secret_access_key: Secret::new(secret),
    };
    rt.block_on(async {
        let mut c = Client::new(&s.endpoint, creds).expect("client");
        let r = c
            .call(
                "RestartClusterService",
                &[("cluster", "cl-mine0001"), ("zone", "sh1a")],
            )
            .await
            .expect("reply");
        assert_eq!(r["ret_code"], 0, "{r}");
        let (ok, _) = qcgate(
            &["clusters", "remove", "cl-mine0001", "--data-dir", &d],
            &[],
        );
        assert!(!ok, "a job of it is pending");
        let (ok, out) = qcgate(
            &["clusters", "remove", "cl-nobody01", "--data-dir", &d],
            &[],
        );
        assert!(ok && out.contains("removed cl-nobody01"), "{out}");
        let (_, listed) = qcgate(&["clusters", "list", "--data-dir", &d], &[]);
        assert!(
            !listed.contains("cl-nobody01") && listed.contains("cl-mine0001"),
            "{listed}"
        );
    });
    stop(&mut s.child, Duration::from_secs(90));
}

/// `call --wait` polls the job it started until it ends; a failed job is a
/// non-zero exit with its error.
#[test]
fn call_wait_follows_jobs_to_their_end() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut s = serve(dir.path(), 500);
    let (id, secret, owner) = s.key.clone().expect("first key");
    let d = dir.path().display().to_string();
    let (ok, _) = qcgate(
        &[
            "clusters",
            "add",
            "--id",
            "cl-wait0001",
            "--zone",
            "sh1a",
            "--owner",
            &owner,
            "--data-dir",
            &d,
        ],
        &[],
    );
    assert!(ok);
    let env = [
        ("QCGATE_ACCESS_KEY_ID", id.as_str()),
        ("QCGATE_SECRET_ACCESS_KEY", secret.as_str()),
    ];
    let call = |args: &[&str]| {
        let mut a = vec!["call", "--endpoint", &s.endpoint, "--zone", "sh1a"];
        a.extend_from_slice(args);
        Command::new(BIN).args(&a).envs(env).output().expect("call")
    };
    // Two stops queued back to back: the first ends successful, the
    // second finds the cluster stopped and fails.
    let first = Command::new(BIN)
        .args([
            "call",
            "--endpoint",
            &s.endpoint,
            "--zone",
            "sh1a",
            "StopClusters",
            "clusters.1=cl-wait0001",
        ])
        .envs(env)
        .output()
        .expect("call");
    assert!(first.status.success());
    let out = call(&["StopClusters", "clusters.1=cl-wait0001", "--wait"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("failed") && err.contains("already stopped"),
        "{err}"
    );
    let out = call(&["StartClusters", "clusters.1=cl-wait0001", "--wait"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("successful"), "{err}");
    stop(&mut s.child, Duration::from_secs(30));
}

/// `--log-format json`: one object per line; each change's request (req_id,
/// action, ret_code, latency, key id, owner, job_id) and each job's start
/// and end; never a secret, never a colour code.
#[test]
fn json_logs_name_requests_and_jobs_and_no_secret() {
    let dir = tempfile::tempdir().expect("tmp");
    let log = dir.path().join("serve.log");
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--model-delay",
            "0",
            "--log-format",
            "json",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("serve starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("line").expect("utf8");
    let endpoint = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("endpoint")
        .to_string();
    let mut field = |name: &str| -> String {
        for l in lines.by_ref() {
            if let Some(v) = l.expect("utf8").trim().strip_prefix(name) {
                return v.trim().to_string();
            }
        }
        panic!("no {name}");
    };
    let (id, secret, owner) = (
        field("access_key_id:"),
        field("secret_access_key:"),
        field("owner:"),
    );
    std::thread::spawn(move || for _ in lines {});
    let d = dir.path().display().to_string();
    let (ok, _) = qcgate(
        &[
            "clusters",
            "add",
            "--id",
            "cl-logs0001",
            "--zone",
            "sh1a",
            "--owner",
            &owner,
            "--data-dir",
            &d,
        ],
        &[],
    );
    assert!(ok);
    let env = [
        ("QCGATE_ACCESS_KEY_ID", id.as_str()),
        ("QCGATE_SECRET_ACCESS_KEY", secret.as_str()),
    ];
    let out = Command::new(BIN)
        .args([
            "call",
            "--endpoint",
            &endpoint,
            "--zone",
            "sh1a",
            "RestartClusterService",
            "cluster=cl-logs0001",
            "--wait",
        ])
        .envs(env)
        .output()
        .expect("call");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reply: Value = serde_json::from_slice(&out.stdout).expect("reply");
    let job = reply["job_id"].as_str().expect("job").to_string();
    let bad = Command::new(BIN)
        .args([
            "call",
            "--endpoint",
            &endpoint,
            "--zone",
            "sh1a",
            "DescribeJobs",
        ])
        .envs([
            ("QCGATE_ACCESS_KEY_ID", id.as_str()),
            ("QCGATE_SECRET_ACCESS_KEY", "wrong-secret"),
        ])
        .output()
        .expect("call");
    assert!(!bad.status.success());
    sigterm(&child);
    wait_exit(&mut child, Duration::from_secs(30));
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(
        !text.contains(&secret) && !text.contains('\u{1b}'),
        "{text}"
    );
    let objects: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let request = objects
        .iter()
        .find(|o| o["action"] == "RestartClusterService")
        .unwrap_or_else(|| panic!("no request line in {text}"));
    assert_eq!(request["ret_code"], 0, "{request}");
    assert_eq!(request["owner"], owner.as_str(), "{request}");
    assert_eq!(request["access_key_id"], id.as_str(), "{request}");
    assert_eq!(request["job_id"], job.as_str(), "{request}");
    assert!(
        request["req_id"].as_str().is_some_and(|r| !r.is_empty()),
        "{request}"
    );
    assert!(request["latency_ms"].as_f64().is_some(), "{request}");
    for msg in ["job started", "job ended"] {
        assert!(
            objects
                .iter()
                .any(|o| o["message"] == msg && o["job_id"] == job.as_str()),
            "{msg} in {text}"
        );
    }
    assert!(
        objects
            .iter()
            .any(|o| o["message"] == "authentication failed" && o["ret_code"] == 1200),
        "{text}"
    );
}

/// `call`'s errors say what to do: the credentials' variables, the endpoint.
#[test]
fn call_errors_name_the_endpoint_and_the_credentials_variables() {
    let out = Command::new(BIN)
        .args(["call", "DescribeJobs"])
        .env_remove("QCGATE_ACCESS_KEY_ID")
        .env_remove("QCGATE_SECRET_ACCESS_KEY")
        .output()
        .expect("call");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("QCGATE_ACCESS_KEY_ID") && err.contains("QCGATE_SECRET_ACCESS_KEY"),
        "{err}"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let endpoint = format!("http://127.0.0.1:{port}/iaas/");
    let out = Command::new(BIN)
        .args(["call", "DescribeJobs", "--endpoint", &endpoint])
        .env("QCGATE_ACCESS_KEY_ID", "x")
        .env("QCGATE_SECRET_ACCESS_KEY", "y")
        .output()
        .expect("call");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(&endpoint), "{err}");
}
