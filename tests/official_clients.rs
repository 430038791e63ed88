//! The official QingCloud Python SDK and CLI (`pip install qingcloud-sdk
//! qingcloud-cli`; `.ci/run` installs them) against a real gateway.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_python_sdk_and_cli_work_unmodified() {
    let h = Harness::start(200).await;
    h.add_cluster("cl-pysdk001", ZONE, &h.owner_a.clone());
    let addr = h
        .endpoint
        .trim_start_matches("http://")
        .trim_end_matches("/iaas/")
        .to_string();
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/official_python.py"
    );
    let out = tokio::process::Command::new("python3")
        .args([
            script,
            host,
            port,
            &h.a.access_key_id,
            h.a.secret_access_key.expose(),
            "cl-pysdk001",
            ZONE,
            &h.dir.path().display().to_string(),
        ])
        .output()
        .await
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("OK"),
        "the official Python clients failed (install them with `pip install qingcloud-sdk qingcloud-cli`):\n{stdout}\n{stderr}"
    );
    h.stop().await;
}
