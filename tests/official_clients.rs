//! The official QingCloud Python SDK and CLI, unmodified, against a real
//! gateway. They are installed from PyPI into `target/pyclients` on first use.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const SDK: &str = "qingcloud-sdk==1.2.16";
const CLI: &str = "qingcloud-cli==1.3.12";

/// A virtualenv holding the pinned official clients; returns its bin dir.
fn python_clients() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pyclients");
    let bin = venv.join("bin");
    let ready = |bin: &Path| {
        Command::new(bin.join("python"))
            .args(["-c", "import qingcloud.iaas.connection"])
            .status()
            .is_ok_and(|s| s.success())
            && bin.join("qingcloud").exists()
    };
    if !ready(&bin) {
        let made = Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(&venv)
            .status();
        assert!(
            made.is_ok_and(|s| s.success()),
            "python3 -m venv failed (install python3-venv)"
        );
        let installed = Command::new(bin.join("python"))
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                SDK,
                CLI,
            ])
            .status();
        assert!(
            installed.is_ok_and(|s| s.success()),
            "pip install {SDK} {CLI} failed"
        );
    }
    assert!(
        ready(&bin),
        "the official clients are not importable from {}",
        venv.display()
    );
    bin
}

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
    let bin = python_clients();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = tokio::process::Command::new(bin.join("python"))
        .env("PATH", path)
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
        "the official Python clients failed:\n{stdout}\n{stderr}"
    );
    h.stop().await;
}
