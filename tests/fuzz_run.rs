//! The coverage-guided fuzz targets in `fuzz/` (cargo-fuzz, libFuzzer with
//! AddressSanitizer), each run for a bounded time. cargo-fuzz is installed
//! into `target/tools` on first use; it passes nightly-only flags, which
//! RUSTC_BOOTSTRAP lets this project's stable toolchain accept.

use std::path::Path;
use std::process::Command;

const SECONDS_PER_TARGET: u32 = 20;

#[test]
fn fuzz_targets_run_clean_for_a_bounded_time() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tools = root.join("target/tools");
    if !tools.join("bin/cargo-fuzz").exists() {
        let installed = Command::new("cargo")
            .args(["install", "cargo-fuzz", "--locked", "--root"])
            .arg(&tools)
            .status();
        assert!(
            installed.is_ok_and(|s| s.success()),
            "cargo install cargo-fuzz failed"
        );
    }
    let path = format!(
        "{}:{}",
        tools.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for target in ["request", "service_params"] {
        // New inputs go to a scratch dir (libFuzzer writes to the first corpus
        // dir); the checked-in corpus is only read, so the tree stays clean.
        let scratch = tempfile::tempdir().expect("scratch corpus");
        let seeds = root.join("fuzz/corpus").join(target);
        let out = Command::new("cargo")
            .args(["fuzz", "run", target])
            .arg(scratch.path())
            .arg(&seeds)
            .args(["--", &format!("-max_total_time={SECONDS_PER_TARGET}")])
            .current_dir(root.join("fuzz"))
            .env("PATH", &path)
            .env("RUSTC_BOOTSTRAP", "1")
            .output()
            .expect("cargo fuzz runs");
        let log = String::from_utf8_lossy(&out.stderr);
        let tail: String = log
            .lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        assert!(out.status.success(), "fuzz target {target} failed:\n{tail}");
        assert!(
            log.contains("Done "),
            "fuzz target {target} did not run:\n{tail}"
        );
    }
}
