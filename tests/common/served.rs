//! `qcgate serve` as a separate process, for tests that kill it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use qcgate::client::Credentials;
use qcgate::secret::Secret;

pub const BIN: &str = env!("CARGO_BIN_EXE_qcgate");

pub struct Served {
    pub child: Child,
    pub endpoint: String,
    /// The first key, when this start created it.
    pub key: Option<Credentials>,
}

/// Starts `serve` on `data` with `config`, and reads what it prints.
pub fn serve(data: &Path, config: &Path) -> Served {
    serve_with(data, config, &[])
}

pub fn serve_with(data: &Path, config: &Path, extra: &[&str]) -> Served {
    let delay: &[&str] = if extra.contains(&"--model-delay") {
        &[]
    } else {
        &["--model-delay", "0"]
    };
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(delay)
        .arg("--data-dir")
        .arg(data)
        .arg("--config")
        .arg(config)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("line").expect("utf8");
    let endpoint = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("endpoint")
        .to_string();
    let mut key = None;
    let mut id = None;
    for l in lines.by_ref() {
        let l = l.expect("utf8");
        if let Some(v) = l.trim().strip_prefix("access_key_id:") {
            id = Some(v.trim().to_string());
        }
        if let Some(v) = l.trim().strip_prefix("secret_access_key:") {
            key = id.take().map(|i| Credentials {
                access_key_id: i,
                secret_access_key: Secret::new(v.trim()),
            });
            break;
        }
        if l.contains("Using the access keys already") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Served {
        child,
        endpoint,
        key,
    }
}

/// The owner of the first key in `data` (`qcgate keys list`).
pub fn first_owner(data: &Path) -> String {
    let out = Command::new(BIN)
        .args(["keys", "list", "--data-dir"])
        .arg(data)
        .output()
        .expect("keys list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().nth(1))
        .expect("an owner")
        .to_string()
}
