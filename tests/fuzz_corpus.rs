//! Replays the fuzz corpus (`fuzz/corpus/`, seeds plus every input a fuzz run
//! found worth keeping) through the fuzz targets' code, so a crash found once
//! stays fixed. The coverage-guided run itself is in `.ci/run`.

use std::path::PathBuf;

fn replay(target: &str, run: fn(&[u8])) -> usize {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus dir").flatten() {
        let data = std::fs::read(entry.path()).expect("read");
        run(&data);
        n += 1;
    }
    n
}

#[test]
fn request_corpus_replays_without_panic() {
    assert!(replay("request", qcgate::fuzzing::request) >= 1);
}

#[test]
fn service_params_corpus_replays_without_panic() {
    assert!(replay("service_params", qcgate::fuzzing::service_params) >= 2);
}
