//! Secrets at rest: nothing secret is readable in the data dir, and a job's
//! sealed secrets are gone once it ends.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

const PASSWORD: &str = "Sup3r-Secret_Passw0rd!";

/// Every file under `dir` (database, WAL, shared memory, key file), as bytes.
fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let bytes = std::fs::read(entry.path()).unwrap_or_default();
        if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
            hits.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    hits
}

async fn submit(h: &Harness, cluster: &str) -> String {
    let mut c = h.client_a();
    let sp = format!(
        r#"{{"sync_way":"full","zone":"sh1a","host":"127.0.0.1","cluster_id":"cl-9np7ig3g","user":"repl","passwd":"{PASSWORD}","port":3306}}"#
    );
    let r = c
        .call(
            "RunClusterCustomService",
            &[
                ("cluster", cluster),
                ("service", "start_standby"),
                ("service_params", &sp),
                ("zone", ZONE),
            ],
        )
        .await
        .expect("reply");
    assert_eq!(r["ret_code"], 0, "{r}");
    r["job_id"].as_str().expect("job").to_string()
}

fn sealed_secrets(h: &Harness, job_id: &str) -> Option<String> {
    let conn = rusqlite::Connection::open(h.db()).expect("db");
    conn.query_row("SELECT secrets FROM jobs WHERE id = ?1", [job_id], |r| {
        r.get(0)
    })
    .expect("row")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_password_or_secret_key_is_readable_in_the_data_dir() {
    let h = Harness::start(60_000).await;
    h.add_cluster("cl-secret01", ZONE, &h.owner_a.clone());
    let job_id = submit(&h, "cl-secret01").await;

    // The job is queued or running: its password is stored, but sealed.
    let sealed =
        sealed_secrets(&h, &job_id).expect("sealed secrets are kept while the job is open");
    assert!(sealed.starts_with("v1.") && !sealed.contains(PASSWORD));
    for secret in [
        PASSWORD,
        h.a.secret_access_key.expose(),
        h.b.secret_access_key.expose(),
    ] {
        let hits = files_containing(h.dir.path(), secret);
        assert!(hits.is_empty(), "a secret is readable in {hits:?}");
    }
    // The key file is the only thing that opens them, and it is not the database.
    assert!(h.dir.path().join("master.key").exists());

    // Not in any reply either.
    let mut c = h.client_a();
    let r = c
        .call("DescribeJobs", &[("jobs.1", job_id.as_str())])
        .await
        .expect("reply");
    assert!(!r.to_string().contains(PASSWORD));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_secrets_are_cleared_when_the_job_ends() {
    let h = Harness::start(50).await;
    h.add_cluster("cl-secret02", ZONE, &h.owner_a.clone());
    let job_id = submit(&h, "cl-secret02").await;
    let mut c = h.client_a();
    let (j, _) = wait_job(&mut c, &job_id, Duration::from_secs(10)).await;
    assert_eq!(j["status"], "successful");
    assert_eq!(sealed_secrets(&h, &job_id), None);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_dir_opened_with_another_master_key_authenticates_nobody() {
    let mut h = Harness::start(50).await;
    let dir = h.dir.path().to_path_buf();
    let a = h.a.clone();
    assert_eq!(
        h.client_a().call("DescribeJobs", &[]).await.expect("r")["ret_code"],
        0
    );
    if let Some(gw) = h.gw.take() {
        gw.shutdown().await;
    }
    std::fs::write(
        dir.join("master.key"),
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    )
    .expect("swap key");
    let cfg = qcgate::config::Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.clone(),
        ..Default::default()
    };
    let gw = qcgate::app::start(&cfg).await.expect("starts");
    let mut c =
        qcgate::client::Client::new(&format!("http://{}/iaas/", gw.addr), a).expect("client");
    let r = c.call("DescribeJobs", &[]).await.expect("reply");
    // The sealed secret cannot be opened: an error envelope, never a crash or a leak.
    assert_eq!(r["ret_code"], 5000, "{r}");
    assert_golden("master_key_mismatch", &r);
    gw.shutdown().await;
    drop(h);
}
