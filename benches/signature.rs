//! Signature verification alone: `cargo bench --bench signature`.

use qcgate::auth::{self, KeyRecord, SignedRequest, TimeWindow};
use qcgate::client::{self, Credentials};
use qcgate::params::Params;
use qcgate::secret::Secret;

fn main() {
    divan::main();
}

/// A RunClusterCustomService request as the Python SDK sends it: its
/// parameters, its signature and the query string itself.
fn request() -> (Params, String, String) {
    let creds = Credentials {
        access_key_id: "QYACCESSKEYIDEXAMPLE".into(),
        secret_access_key: Secret::new("SECRETACCESSKEY"),
    };
    let query = client::sign(
        &creds,
        "GET",
        "/iaas/",
        vec![
            ("action".into(), "RunClusterCustomService".into()),
            ("cluster".into(), "cl-ouhutv70".into()),
            ("role".into(), "maininstance".into()),
            ("service".into(), "start_standby".into()),
            (
                "service_params".into(),
                r#"{"sync_way":"full","zone":"sh1a","host":"192.168.0.232","cluster_id":"cl-9np7ig3g","user":"migrate_user","password":"Passwd@123","port":3306}"#.into(),
            ),
            ("zone".into(), "sh1a".into()),
            ("req_id".into(), "0123456789abcdef0123456789abcdef".into()),
        ],
    );
    let mut params = Params::parse(&[query.as_bytes()]).unwrap_or_default();
    let sig = params.take("signature").unwrap_or_default();
    (params, sig, query)
}

/// HMAC-SHA256 + constant-time compare + time window, for a GET whose query
/// string is canonical already (the SDKs' and the CLI's): it is checked and
/// signed as it stands. The key comes from memory, as from the gateway's
/// key cache.
#[divan::bench(sample_count = 3000, sample_size = 20)]
fn verify_signature(bencher: divan::Bencher) {
    verify(bencher, true);
}

/// The same request when its parameters must be canonicalised again
/// (sorted and re-encoded), as for a form body or an unsorted query.
#[divan::bench(sample_count = 3000, sample_size = 20)]
fn verify_signature_recanonicalised(bencher: divan::Bencher) {
    verify(bencher, false);
}

fn verify(bencher: divan::Bencher, raw: bool) {
    let (params, sig, query) = request();
    assert!(
        qcgate::auth::signature::canonical_in_raw(&query).is_some(),
        "the SDK's query string is canonical"
    );
    let now = qcgate::clock::now_unix();
    let key = std::sync::Arc::new(KeyRecord::new(
        &Secret::new("SECRETACCESSKEY"),
        "usr-BENCH001".into(),
    ));
    bencher.bench(|| {
        let req = SignedRequest {
            verb: "GET",
            path: "/iaas/",
            params: &params,
            signature: &sig,
            raw_query: raw.then_some(query.as_str()),
        };
        let caller =
            auth::authenticate(&req, &TimeWindow::default(), now, |_| Ok(Some(key.clone())));
        assert!(caller.is_ok());
        caller
    });
}

/// Decoding the query string into parameters, for comparison.
#[divan::bench(sample_count = 3000, sample_size = 20)]
fn parse_query(bencher: divan::Bencher) {
    let creds = Credentials {
        access_key_id: "QYACCESSKEYIDEXAMPLE".into(),
        secret_access_key: Secret::new("S"),
    };
    let query = client::sign(
        &creds,
        "GET",
        "/iaas/",
        vec![
            ("action".into(), "DescribeJobs".into()),
            ("jobs.1".into(), "j-abcdefghijk".into()),
        ],
    );
    bencher.bench(|| Params::parse(&[divan::black_box(query.as_bytes())]));
}

/// The store side of a DescribeJobs by id, on a real file with 100k jobs.
mod store_reads {
    use qcgate::sealing::MasterKey;
    use qcgate::store::sqlite::ReadPool;
    use qcgate::store::{self, jobs, keys};

    static MASTER: std::sync::LazyLock<MasterKey> = std::sync::LazyLock::new(|| {
        MasterKey::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
            .unwrap_or_else(|_| std::process::exit(1))
    });

    fn fixture() -> (tempfile::TempDir, ReadPool, String, String) {
        let dir = tempfile::tempdir().unwrap_or_else(|_| std::process::exit(1));
        let path = store::db_path(dir.path());
        let mut conn = store::open_rw(&path).unwrap_or_else(|_| std::process::exit(1));
        let (key, id) = store::with_tx(&mut conn, |c| {
            let key = keys::create(c, &MASTER, "usr-BENCH001")?;
            let job = jobs::NewJob {
                owner: "usr-BENCH001".into(),
                zone: "sh1a".into(),
                action: "RunClusterCustomService".into(),
                lane: "cl-bench001".into(),
                resource_ids: vec!["cl-bench001".into()],
                directive: "x".repeat(450),
                task: "y".repeat(250),
                secrets: None,
            };
            let mut last = String::new();
            for _ in 0..100_000 {
                last = jobs::insert(c, &job)?;
            }
            Ok((key.access_key_id, last))
        })
        .unwrap_or_else(|_| std::process::exit(1));
        (
            dir,
            ReadPool::new(
                path,
                4,
                qcgate::store::job_ids::JobIds::load_or_create(&conn).expect("ids"),
                None,
            ),
            key,
            id,
        )
    }

    #[divan::bench]
    fn key_lookup(bencher: divan::Bencher) {
        let (_dir, pool, key, _) = fixture();
        bencher.bench(|| {
            pool.with(|c| keys::lookup(c, &MASTER, &key))
                .map(|k| k.is_some())
        });
    }

    /// The SQL path: a job no longer among the recent ones kept in memory.
    #[divan::bench]
    fn job_by_id(bencher: divan::Bencher) {
        let (dir, pool, _, id) = fixture();
        let conn =
            store::open_rw(&store::db_path(dir.path())).unwrap_or_else(|_| std::process::exit(1));
        let ids = qcgate::store::job_ids::JobIds::load_or_create(&conn).expect("ids");
        let none = qcgate::store::views::JobViews::new(ids, 0);
        let filter = jobs::JobFilter {
            owner: "usr-BENCH001".into(),
            zone: Some("sh1a".into()),
            ids: vec![id],
            limit: 20,
            ..Default::default()
        };
        bencher.bench(|| jobs::describe(&pool, &none, &filter).is_ok());
    }
}
