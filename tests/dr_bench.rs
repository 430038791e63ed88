//! `qcgate bench dr` runs on a fresh machine: it starts its own MariaDB
//! servers, drills, and reports figures with no acknowledged write lost.

use std::process::Command;

#[test]
fn bench_dr_drills_and_reports_no_lost_writes() {
    let out = Command::new(env!("CARGO_BIN_EXE_qcgate"))
        .args(["bench", "dr", "--drills", "2", "--rows", "1000", "--json"])
        .env("RUST_LOG", "warn")
        .output()
        .expect("qcgate runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_str(&text).expect("one JSON report");
    assert_eq!(r["drills"], 2, "{r}");
    assert_eq!(r["lost_writes"], 0, "{r}");
    assert_eq!(r["zero_lost"], true, "{r}");
    assert!(r["acknowledged_writes"].as_u64().unwrap_or(0) > 0, "{r}");
    let windows = r["window_ms"].as_array().expect("windows");
    assert_eq!(windows.len(), 2);
    assert!(
        windows.iter().all(|w| w.as_f64().unwrap_or(0.0) > 0.0),
        "{r}"
    );
    assert!(r["failover_ms"].as_f64().unwrap_or(0.0) > 0.0, "{r}");
}

#[test]
fn bench_compare_finds_the_planted_difference() {
    let out = Command::new(env!("CARGO_BIN_EXE_qcgate"))
        .args(["bench", "compare", "--rows", "20000", "--json"])
        .env("RUST_LOG", "warn")
        .output()
        .expect("qcgate runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_str(&text).expect("one JSON report");
    assert_eq!(r["found_planted_key"], true, "{r}");
    assert_eq!(r["diff_rows"], 1, "{r}");
    assert!(r["compare_s"].as_f64().unwrap_or(0.0) > 0.0, "{r}");
}
