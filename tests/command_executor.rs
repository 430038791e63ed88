//! The command executor: real programs (shell scripts) run for the services
//! the config names; the job arrives as JSON on stdin with its secrets, the
//! environment and arguments carry none, targets outside the allow-list are
//! refused before anything runs, and output is kept with secrets removed.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use qcgate::worker::command::CommandConfig;
use serde_json::{Value, json};

/// Writes an executable `/bin/sh` script; `@DIR@` becomes `dir`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    let text = format!(
        "#!/bin/sh\n{}\n",
        body.replace("@DIR@", &dir.display().to_string())
    );
    std::fs::write(&path, text).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

fn command(program: PathBuf, timeout_secs: Option<u64>) -> CommandConfig {
    CommandConfig {
        program,
        args: vec!["--from-qcgate".into()],
        timeout_secs,
    }
}

async fn harness(commands: Vec<(&str, CommandConfig)>) -> Harness {
    let dir = tempfile::tempdir().expect("tmp");
    Harness::start_with(dir, move |cfg| {
        cfg.model_delay_ms = 0;
        for (name, c) in commands {
            cfg.executor.commands.insert(name.to_string(), c);
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_program_gets_the_job_on_stdin_and_its_output_is_kept_without_secrets() {
    let work = tempfile::tempdir().expect("tmp");
    let run = script(
        work.path(),
        "start_standby.sh",
        "cat > @DIR@/stdin.json\nenv > @DIR@/env.txt\necho \"$@\" > @DIR@/args.txt\necho 'replication configured, 100%'\ncat @DIR@/stdin.json\necho 'a warning' >&2",
    );
    let h = harness(vec![("start_standby", command(run, None))]).await;
    h.add_cluster("cl-cmd00001", ZONE, &h.owner_a);
    h.add_cluster("cl-cmd00002", ZONE, &h.owner_a);
    let mut c = h.client_a();

    // A target outside the allow-list (the seed's 192.168.0.232): refused, nothing run.
    let r = start_standby(&mut c, "cl-cmd00001", "cl-cmd00002").await;
    let (j, _) = wait_job(
        &mut c,
        r["job_id"].as_str().expect("job"),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(j["status"], "failed", "{j}");
    assert!(
        j["error_message"]
            .as_str()
            .unwrap_or_default()
            .contains("host [192.168.0.232] is not in the executor's allow_hosts"),
        "{j}"
    );
    assert!(
        !work.path().join("stdin.json").exists(),
        "the program must not have run"
    );
    assert_eq!(h.cluster("cl-cmd00001").standby_of, None);

    // A loopback source runs the program.
    let sp = standby_params("cl-cmd00002").replace("192.168.0.232", "127.0.0.1");
    let r = rccs(&mut c, "cl-cmd00001", "start_standby", "", &sp).await;
    assert_eq!(r["ret_code"], 0, "{r}");
    let job_id = r["job_id"].as_str().expect("job").to_string();
    let (j, _) = wait_job(&mut c, &job_id, Duration::from_secs(10)).await;
    assert_eq!(j["status"], "successful", "{j}");

    let stdin: Value = serde_json::from_str(
        &std::fs::read_to_string(work.path().join("stdin.json")).expect("stdin"),
    )
    .expect("json");
    assert_eq!(stdin["job_id"], job_id.as_str());
    assert_eq!(stdin["service"], "start_standby");
    assert_eq!(stdin["cluster_id"], "cl-cmd00001");
    assert_eq!(
        stdin["service_params"]["passwd"], "Passwd@123",
        "the decrypted secret reaches the program"
    );
    assert_eq!(stdin["service_params"]["host"], "127.0.0.1");
    let env = std::fs::read_to_string(work.path().join("env.txt")).expect("env");
    let args = std::fs::read_to_string(work.path().join("args.txt")).expect("args");
    assert!(env.contains(&format!("QCGATE_JOB_ID={job_id}")), "{env}");
    for leak in ["Passwd@123", "QCGATE_MASTER_KEY", "HOME="] {
        assert!(
            !env.contains(leak) && !args.contains(leak),
            "{leak} in env/args: {env} {args}"
        );
    }
    assert_eq!(args.trim(), "--from-qcgate");

    let output = j["output"].as_str().expect("output kept");
    assert!(
        output.contains("replication configured, 100%") && output.contains("a warning"),
        "{output}"
    );
    assert!(
        output.contains("******") && !output.contains("Passwd@123"),
        "{output}"
    );
    assert_eq!(
        h.cluster("cl-cmd00001").standby_of.as_deref(),
        Some("cl-cmd00002"),
        "the model records the effect"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_creation_keeps_its_nodes_addressable_for_describe_and_delete() {
    let work = tempfile::tempdir().expect("tmp");
    let run = script(
        work.path(),
        "create.sh",
        "cat > /dev/null\nfor i in 1 2 3 4 5 6; do echo \"step $i\" >&2; done\necho 'primary build failed: disk full' >&2\nexit 3",
    );
    let h = harness(vec![("create_cluster", command(run, None))]).await;
    let mut c = h.client_a();
    let r = c
        .call(
            "CreateCluster",
            &[("conf", &json!({"name": "x"}).to_string()), ("zone", ZONE)],
        )
        .await
        .expect("r");
    assert_eq!(r["ret_code"], 0, "{r}");
    let id = r["cluster_id"].as_str().expect("id").to_string();
    let standby = r["standby_node_ids"][0]
        .as_str()
        .expect("standby id")
        .to_string();
    let (j, _) = wait_job(
        &mut c,
        r["job_id"].as_str().expect("job"),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(j["status"], "failed", "{j}");
    let err = j["error_message"].as_str().unwrap_or_default();
    assert!(
        err.contains("exited with status 3") && err.contains("primary build failed: disk full"),
        "{err}"
    );
    assert!(
        err.contains("step 3") && !err.contains("step 2"),
        "the last five lines: {err}"
    );
    assert_eq!(describe_cluster(&mut c, &id).await["status"], "failed");

    // The standby node, by the id answered, with no cluster named.
    let r = c
        .call("DescribeClusterNodes", &[("nodes.1", standby.as_str())])
        .await
        .expect("r");
    assert_eq!(r["total_count"], 1, "{r}");
    assert_eq!(
        (
            r["node_set"][0]["cluster_id"].as_str(),
            r["node_set"][0]["status"].as_str()
        ),
        (Some(id.as_str()), Some("failed"))
    );
    let r = c
        .call("DeleteClusters", &[("clusters.1", id.as_str())])
        .await
        .expect("r");
    assert_eq!(r["ret_code"], 0, "{r}");
    let (j, _) = wait_job(
        &mut c,
        r["job_ids"][id.as_str()].as_str().expect("job"),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(j["status"], "successful", "{j}");
    let r = c
        .call("DescribeClusterNodes", &[("nodes.1", standby.as_str())])
        .await
        .expect("r");
    assert_eq!(r["node_set"][0]["status"], "deleted", "{r}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_kill_the_program_and_exit_75_is_retried() {
    let work = tempfile::tempdir().expect("tmp");
    let slow = script(work.path(), "slow.sh", "exec sleep 30");
    let flaky = script(
        work.path(),
        "flaky.sh",
        "cat > /dev/null\nif [ -e @DIR@/tried ]; then echo done; exit 0; fi\ntouch @DIR@/tried\necho 'cluster busy' >&2\nexit 75",
    );
    let h = harness(vec![
        ("add_user", command(slow, Some(1))),
        ("restart_node", command(flaky, None)),
    ])
    .await;
    h.add_cluster("cl-cmd00003", ZONE, &h.owner_a);
    let mut c = h.client_a();

    let sp =
        json!({"database": "*", "passwd": "Acc0unt@Pass", "host": "%", "user": "slow"}).to_string();
    let r = rccs(&mut c, "cl-cmd00003", "add_user", "", &sp).await;
    let (j, _) = wait_job(
        &mut c,
        r["job_id"].as_str().expect("job"),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(j["status"], "failed", "{j}");
    let err = j["error_message"].as_str().unwrap_or_default();
    assert!(
        err.contains("JobTimeout") && err.contains("not safe to repeat"),
        "{err}"
    );

    let node = node_ids(&mut c, "cl-cmd00003", "maininstance").await;
    let r = rccs(
        &mut c,
        "cl-cmd00003",
        "restart_node",
        "",
        &json!({"node_id": node[0]}).to_string(),
    )
    .await;
    let (j, seen) = wait_job(
        &mut c,
        r["job_id"].as_str().expect("job"),
        Duration::from_secs(15),
    )
    .await;
    assert_eq!(j["status"], "successful", "{j} {seen:?}");
    assert!(work.path().join("tried").exists());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_program_never_runs_what_the_cluster_now_refuses() {
    let work = tempfile::tempdir().expect("tmp");
    let restart = script(
        work.path(),
        "restart.sh",
        "cat > /dev/null\ntouch @DIR@/restarted",
    );
    let dir = tempfile::tempdir().expect("tmp");
    let h = Harness::start_with(dir, move |cfg| {
        cfg.model_delay_ms = 300;
        cfg.executor
            .commands
            .insert("restart_node".into(), command(restart, None));
    })
    .await;
    h.add_cluster("cl-cmd00004", ZONE, &h.owner_a);
    let mut c = h.client_a();
    let node = node_ids(&mut c, "cl-cmd00004", "maininstance").await;
    // Accepted while the cluster is no standby; it is one when the restart runs.
    let standby = start_standby(&mut c, "cl-cmd00004", "cl-9np7ig3g").await;
    let r = rccs(
        &mut c,
        "cl-cmd00004",
        "restart_node",
        "",
        &json!({"node_id": node[0]}).to_string(),
    )
    .await;
    assert_eq!(r["ret_code"], 0, "{r}");
    let (j, _) = wait_job(
        &mut c,
        standby["job_id"].as_str().expect("job"),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(j["status"], "successful", "{j}");
    let (j, _) = wait_job(
        &mut c,
        r["job_id"].as_str().expect("job"),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        (j["status"].as_str(), j["error_codes"].as_str()),
        (Some("failed"), Some("1400")),
        "{j}"
    );
    assert!(
        !work.path().join("restarted").exists(),
        "the program must not have run"
    );
    h.stop().await;
}

#[tokio::test]
async fn a_command_for_an_unknown_service_or_a_missing_program_stops_start_up() {
    for (name, program) in [
        ("no_such_service", "/bin/sh"),
        ("restart_node", "/nonexistent/program"),
    ] {
        let dir = tempfile::tempdir().expect("tmp");
        let mut cfg = qcgate::config::Config {
            listen: "127.0.0.1:0".parse().expect("addr"),
            data_dir: dir.path().to_path_buf(),
            ..Default::default()
        };
        cfg.executor
            .commands
            .insert(name.into(), command(program.into(), None));
        let err = qcgate::app::start(&cfg).await.err().expect("refused");
        assert!(err.to_string().contains(name), "{err}");
    }
}

/// A gateway killed with `kill -9` takes the program it runs with it, and
/// the next start stops what the program had started (its process group)
/// and says so in the job: an orphan would go on changing servers with
/// nobody to record what it did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_program_does_not_outlive_a_killed_gateway() {
    let work = tempfile::tempdir().expect("tmp");
    let run = script(
        work.path(),
        "start_standby.sh",
        "echo $$ > @DIR@/pid\nsleep 60 &\necho $! > @DIR@/child.tmp && mv @DIR@/child.tmp @DIR@/child\nwait",
    );
    let config = work.path().join("qcgate.toml");
    std::fs::write(
        &config,
        format!(
            "[executor.commands.start_standby]\nprogram = \"{}\"\n",
            run.display()
        ),
    )
    .expect("config");
    let data = work.path().join("data");
    let mut served = common::served::serve(&data, &config);
    let owner = common::served::first_owner(&data);
    let add = std::process::Command::new(common::served::BIN)
        .args([
            "clusters",
            "add",
            "--id",
            "cl-orphan01",
            "--zone",
            ZONE,
            "--owner",
            &owner,
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .expect("clusters add");
    assert!(add.status.success());
    let creds = served.key.clone().expect("key");
    let mut c = qcgate::client::Client::new(&served.endpoint, creds.clone()).expect("client");
    let sp = json!({"sync_way": "full", "zone": ZONE, "host": "127.0.0.1", "cluster_id": "cl-source01",
                    "user": "repl", "password": "Passwd@123", "port": 3306});
    let r = rccs(&mut c, "cl-orphan01", "start_standby", "", &sp.to_string()).await;
    assert_eq!(r["ret_code"], 0, "{r}");
    let job_id = r["job_id"].as_str().expect("id").to_string();
    let child_file = work.path().join("child");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !child_file.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the program never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let read = |f: &str| {
        std::fs::read_to_string(work.path().join(f))
            .expect("pid")
            .trim()
            .to_string()
    };
    let (pid, child) = (read("pid"), read("child"));
    let alive = |pid: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
    };
    served.child.kill().expect("kill -9");
    served.child.wait().expect("reaped");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while alive(&pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "program {pid} outlived the gateway"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // What it started is found and stopped at the next start.
    let served = common::served::serve(&data, &config);
    let mut c = qcgate::client::Client::new(&served.endpoint, creds).expect("client");
    let (j, _) = wait_job(&mut c, &job_id, Duration::from_secs(20)).await;
    assert_eq!(j["status"], "failed", "{j}");
    let msg = j["error_message"].as_str().unwrap_or_default();
    assert!(msg.contains("were still running and were stopped"), "{msg}");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while alive(&child) {
        assert!(
            std::time::Instant::now() < deadline,
            "{child}, started by the program, still runs"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut gw = served.child;
    let _ = gw.kill();
    let _ = gw.wait();
}
