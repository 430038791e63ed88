//! Sealing a job's secrets (run once per job that carries a password):
//! `cargo bench --bench sealing`.

use qcgate::sealing::MasterKey;

fn main() {
    divan::main();
}

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// The secret fields of a `start_standby`, as the job stores them.
#[divan::bench(sample_count = 2000, sample_size = 20)]
fn seal_start_standby_password(bencher: divan::Bencher) {
    let key = MasterKey::from_base64(KEY).unwrap_or_else(|e| panic!("{e}"));
    bencher.bench(|| {
        key.seal(
            br#"{"password":"Passwd@123"}"#,
            "job_secrets:usr-BENCH001:cl-ouhutv70",
        )
    });
}

#[divan::bench(sample_count = 2000, sample_size = 20)]
fn open_start_standby_password(bencher: divan::Bencher) {
    let key = MasterKey::from_base64(KEY).unwrap_or_else(|e| panic!("{e}"));
    let aad = "job_secrets:usr-BENCH001:cl-ouhutv70";
    let sealed = key.seal(br#"{"password":"Passwd@123"}"#, aad);
    bencher.bench(|| key.open(&sealed, aad).is_ok());
}
