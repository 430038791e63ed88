//! Several gateways on one PostgreSQL database (`serve --store postgres://…`):
//! real `serve` processes, a real PostgreSQL started by the test, real
//! signed requests; what is asserted is read from the database too.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::pg::Postgres;
use common::served::{BIN, Served};
use hyper::Method;
use qcgate::client::{Client, Credentials};
use qcgate::secret::Secret;
use serde_json::Value;

const ZONE: &str = "sh1a";

struct Shared {
    pg: Postgres,
    url: String,
    tmp: tempfile::TempDir,
}

impl Shared {
    fn new(config: &str) -> Shared {
        let pg = Postgres::start();
        let url = pg.database();
        let tmp = tempfile::tempdir().expect("tmp");
        let key: Vec<u8> = (0..32).map(|_| rand::random::<u8>()).collect();
        std::fs::write(tmp.path().join("master.key"), base64(&key)).expect("key file");
        std::fs::write(tmp.path().join("qcgate.toml"), config).expect("config");
        Shared { pg, url, tmp }
    }

    fn key_file(&self) -> std::path::PathBuf {
        self.tmp.path().join("master.key")
    }

    /// A gateway with its own data dir (scratch only) on the shared store.
    fn gateway(&self, name: &str, extra: &[&str]) -> Served {
        let data = self.tmp.path().join(name);
        std::fs::create_dir_all(&data).expect("data dir");
        let key = self.key_file();
        let mut args = vec![
            "--store",
            &self.url,
            "--master-key-file",
            key.to_str().expect("utf8"),
        ];
        args.extend_from_slice(extra);
        common::served::serve_with(&data, &self.tmp.path().join("qcgate.toml"), &args)
    }

    /// A local command on the shared store.
    fn qcgate(&self, args: &[&str]) -> String {
        let out = Command::new(BIN)
            .args(args)
            .args(["--store", &self.url, "--master-key-file"])
            .arg(self.key_file())
            .output()
            .expect("qcgate runs");
        assert!(
            out.status.success(),
            "qcgate {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn owner(&self) -> String {
        self.qcgate(&["keys", "list"])
            .lines()
            .nth(1)
            .and_then(|l| l.split_whitespace().nth(1))
            .expect("an owner")
            .to_string()
    }

    fn add_clusters(&self, owner: &str, n: usize) -> Vec<String> {
        (0..n)
            .map(|i| {
                let id = format!("cl-sh{i:06}");
                self.qcgate(&[
                    "clusters", "add", "--id", &id, "--zone", ZONE, "--owner", owner,
                ]);
                id
            })
            .collect()
    }

    fn sql(&self, sql: &str) -> String {
        let db = self.url.rsplit('/').next().expect("db");
        self.pg.value(db, sql)
    }
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn client(s: &Served, creds: &Credentials) -> Client {
    Client::new(&s.endpoint, creds.clone()).expect("client")
}

async fn readonly_job(c: &mut Client, cluster: &str) -> Result<String, String> {
    let r = c
        .call(
            "RunClusterCustomService",
            &[
                ("cluster", cluster),
                ("service", "set_readonly"),
                ("service_params", r#"{"readonly":"YES"}"#),
                ("zone", ZONE),
            ],
        )
        .await
        .map_err(|e| e.to_string())?;
    match r["job_id"].as_str() {
        Some(id) if r["ret_code"] == 0 => Ok(id.to_string()),
        _ => Err(r.to_string()),
    }
}

async fn job_status(c: &mut Client, id: &str) -> Value {
    let r = c
        .call("DescribeJobs", &[("jobs.1", id), ("zone", ZONE)])
        .await
        .expect("describe");
    r["job_set"][0].clone()
}

async fn wait_ended(c: &mut Client, id: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let j = job_status(c, id).await;
        if j["status"] == "successful" || j["status"] == "failed" {
            return j;
        }
        assert!(Instant::now() < deadline, "{id} did not end: {j}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn kill_9(s: &mut Served) {
    let _ = s.child.kill();
    let _ = s.child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_share_jobs_replays_and_key_revocations() {
    let shared = Shared::new("lease_secs = 3\n");
    let mut a = shared.gateway("a", &[]);
    let mut b = shared.gateway("b", &[]);
    let creds = a.key.clone().expect("the first gateway made the first key");
    assert!(
        b.key.is_none(),
        "the second gateway made no second first key"
    );
    let owner = shared.owner();
    let cluster = shared.add_clusters(&owner, 1).remove(0);

    // Stored through one, run by either, seen through the other.
    let (mut ca, mut cb) = (client(&a, &creds), client(&b, &creds));
    let id = readonly_job(&mut ca, &cluster).await.expect("job");
    let j = wait_ended(&mut cb, &id, Duration::from_secs(20)).await;
    assert_eq!(j["status"], "successful", "{j}");
    let c = cb
        .call(
            "DescribeClusters",
            &[("clusters.1", &cluster), ("zone", ZONE)],
        )
        .await
        .expect("clusters");
    assert_eq!(c["cluster_set"][0]["settings"]["readonly"], true, "{c}");

    // The same signed request sent to both gateways stores one job.
    let query = qcgate::client::sign(
        &creds,
        "GET",
        "/iaas/",
        vec![
            ("action".into(), "RunClusterCustomService".into()),
            ("cluster".into(), cluster.clone()),
            ("service".into(), "set_readonly".into()),
            ("service_params".into(), r#"{"readonly":"NO"}"#.into()),
            ("zone".into(), ZONE.into()),
        ],
    );
    let path = format!("/iaas/?{query}");
    let (_, first) = ca.send(Method::GET, &path, None).await.expect("a");
    let (_, again) = cb.send(Method::GET, &path, None).await.expect("b");
    let (first, again): (Value, Value) = (
        serde_json::from_slice(&first).expect("json"),
        serde_json::from_slice(&again).expect("json"),
    );
    assert_eq!(first["ret_code"], 0, "{first}");
    assert_eq!(first["job_id"], again["job_id"], "{first} {again}");
    assert_eq!(shared.sql("SELECT count(*) FROM jobs"), "2");
    assert_eq!(shared.sql("SELECT count(*) FROM replays"), "2");

    // A key revoked through one command is refused by both gateways.
    let made = shared.qcgate(&["keys", "create", "--owner", &owner, "--json"]);
    let made: Value = serde_json::from_str(&made).expect("json");
    let second = Credentials {
        access_key_id: made["access_key_id"].as_str().expect("id").into(),
        secret_access_key: Secret::new(made["secret_access_key"].as_str().expect("secret")),
    };
    let (mut sa, mut sb) = (client(&a, &second), client(&b, &second));
    for c in [&mut sa, &mut sb] {
        let r = c.call("DescribeJobs", &[("zone", ZONE)]).await.expect("r");
        assert_eq!(
            r["ret_code"], 0,
            "the new key works (and is now cached): {r}"
        );
    }
    shared.qcgate(&["keys", "revoke", &second.access_key_id]);
    let revoked = Instant::now();
    for (name, c) in [("a", &mut sa), ("b", &mut sb)] {
        loop {
            let r = c.call("DescribeJobs", &[("zone", ZONE)]).await.expect("r");
            if r["ret_code"] == 1200 {
                break;
            }
            assert!(
                revoked.elapsed() < Duration::from_secs(2),
                "gateway {name} still takes a revoked key: {r}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    kill_9(&mut a);
    kill_9(&mut b);
}

/// Copies of one signed request sent at once, four to each gateway: one
/// job, named by every answer. Copies that reach a gateway together are
/// stored in one batch; copies on both gateways race on the replay key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_of_a_signed_request_sent_at_once_store_one_job() {
    let shared = Shared::new("");
    let mut a = shared.gateway("a", &[]);
    let mut b = shared.gateway("b", &[]);
    let creds = a.key.clone().expect("key");
    let owner = shared.owner();
    let clusters = shared.add_clusters(&owner, 4);
    let requests = 40;
    for r in 0..requests {
        let query = qcgate::client::sign(
            &creds,
            "GET",
            "/iaas/",
            vec![
                ("action".into(), "RunClusterCustomService".into()),
                ("cluster".into(), clusters[r % clusters.len()].clone()),
                ("service".into(), "set_readonly".into()),
                ("service_params".into(), r#"{"readonly":"YES"}"#.into()),
                ("zone".into(), ZONE.into()),
                ("req_id".into(), r.to_string()),
            ],
        );
        let path = format!("/iaas/?{query}");
        let copies: Vec<_> = (0..8)
            .map(|k| {
                let endpoint = if k % 2 == 0 { &a.endpoint } else { &b.endpoint }.clone();
                let (path, creds) = (path.clone(), creds.clone());
                tokio::spawn(async move {
                    let mut c = Client::new(&endpoint, creds).expect("client");
                    let (_, body) = c.send(Method::GET, &path, None).await.expect("send");
                    serde_json::from_slice::<Value>(&body).expect("json")
                })
            })
            .collect();
        let mut ids = HashSet::new();
        for copy in copies {
            let answer = copy.await.expect("task");
            assert_eq!(answer["ret_code"], 0, "{answer}");
            ids.insert(answer["job_id"].as_str().expect("job_id").to_string());
        }
        assert_eq!(ids.len(), 1, "request {r}: eight copies named {ids:?}");
    }
    assert_eq!(
        shared.sql("SELECT count(*) FROM jobs"),
        requests.to_string()
    );
    assert_eq!(
        shared.sql("SELECT count(*) FROM replays"),
        requests.to_string()
    );
    kill_9(&mut a);
    kill_9(&mut b);
}

/// A batch beside a signed request whose replay key another gateway has
/// stored but not committed; that gateway then ends its transaction with
/// `end`. The batch holds the same request and one alongside: both
/// answers, once the batch is done.
async fn batch_beside_an_uncommitted_key(
    end: &str,
) -> (
    Shared,
    qcgate::store::postgres::Pg,
    Vec<qcgate::store::queue::Enqueued>,
    Vec<qcgate::store::queue::Enqueued>,
) {
    use qcgate::store::queue::{NewJob, Once, Queue};
    let shared = Shared::new("");
    let key = qcgate::sealing::MasterKey::load_given(Some(&shared.key_file())).expect("key");
    let store =
        qcgate::store::postgres::Pg::open(&shared.url, std::sync::Arc::new(key)).expect("store");
    let (other, conn) = tokio_postgres::connect(&shared.url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    let expires = qcgate::clock::now_unix() + 900;
    other
        .batch_execute(&format!(
            "BEGIN; INSERT INTO replays (digest, job_seq, expires) VALUES ('raced', 4242, {expires})"
        ))
        .await
        .expect("the other gateway's key");
    let job = |digest: &str| {
        let job = NewJob {
            owner: "usr-race".into(),
            zone: ZONE.into(),
            action: "RunClusterCustomService".into(),
            lane: "cl-race".into(),
            resource_ids: vec!["cl-race".into()],
            directive: "{}".into(),
            task: "{}".into(),
            secrets: None,
        };
        let once = Once {
            digest: digest.into(),
            expires,
        };
        (job, once)
    };
    let (s, j) = (store.clone(), job("raced"));
    let raced = tokio::spawn(async move { s.submit(vec![j], 100, None).await });
    let (s, j) = (store.clone(), job("alongside"));
    let alongside = tokio::spawn(async move { s.submit(vec![j], 100, None).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !raced.is_finished(),
        "the batch waits on the uncommitted key"
    );
    other
        .batch_execute(end)
        .await
        .expect("the other gateway's end");
    let raced = raced.await.expect("task").expect("submitted");
    let alongside = alongside.await.expect("task").expect("submitted");
    assert!(
        matches!(alongside.as_slice(), [Enqueued::New(_)]),
        "{alongside:?}"
    );
    (shared, store, raced, alongside)
}

use qcgate::store::queue::Enqueued;

/// The same signed request stored at once by another gateway: the batch
/// waits on its key, then answers with that gateway's job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_raced_on_a_replay_key_answers_with_the_winner() {
    let (shared, store, raced, _) = batch_beside_an_uncommitted_key("COMMIT").await;
    match raced.as_slice() {
        [Enqueued::Replayed(id)] => assert_eq!(store.job_seq(id), Some(4242), "{id}"),
        other => panic!("the raced request answered {other:?}"),
    }
    assert_eq!(
        shared.sql("SELECT count(*) FROM jobs"),
        "1",
        "only the request alongside stored a job"
    );
    assert_eq!(shared.sql("SELECT count(*) FROM replays"), "2");
}

/// The other gateway's transaction rolls back: its key is gone, and the
/// batch stores the request itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_key_rolled_back_elsewhere_is_stored_by_the_batch() {
    let (shared, store, raced, _) = batch_beside_an_uncommitted_key("ROLLBACK").await;
    let [Enqueued::New(id)] = raced.as_slice() else {
        panic!("the raced request answered {raced:?}")
    };
    let seq = store.job_seq(id).expect("an id in form");
    assert_eq!(shared.sql("SELECT count(*) FROM jobs"), "2");
    assert_eq!(
        shared.sql("SELECT job_seq FROM replays WHERE digest = 'raced'"),
        seq.to_string()
    );
}

/// Requests that arrive together are stored in one batch, and the quota
/// holds inside it: of twenty at once, the owner's five open jobs are
/// stored and the rest refused whole (2500).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quota_holds_inside_a_batch() {
    let shared = Shared::new("max_open_jobs_per_owner = 5\n");
    let mut a = shared.gateway("a", &["--model-delay", "3600000"]);
    let creds = a.key.clone().expect("key");
    let owner = shared.owner();
    let clusters = shared.add_clusters(&owner, 20);
    let answers: Vec<_> = clusters
        .iter()
        .map(|cluster| {
            let (endpoint, creds, cluster) = (a.endpoint.clone(), creds.clone(), cluster.clone());
            tokio::spawn(async move {
                let mut c = Client::new(&endpoint, creds).expect("client");
                readonly_job(&mut c, &cluster).await
            })
        })
        .collect();
    let (mut stored, mut refused) = (0, 0);
    for a in answers {
        match a.await.expect("task") {
            Ok(_) => stored += 1,
            Err(e) => {
                assert!(e.contains("2500"), "{e}");
                refused += 1;
            }
        }
    }
    assert_eq!((stored, refused), (5, 15));
    assert_eq!(shared.sql("SELECT count(*) FROM jobs"), "5");
    assert_eq!(shared.sql("SELECT sum(open) FROM owner_open"), "5");
    // A refused request keeps no replay key: sent again later, it is stored.
    assert_eq!(shared.sql("SELECT count(*) FROM replays"), "5");
    kill_9(&mut a);
}

/// Submits `n` jobs over `clusters` through the gateways in turn, from
/// `parallel` clients; returns the acknowledged ids (and how many failed
/// to be acknowledged).
async fn submit(
    endpoints: &[String],
    creds: &Credentials,
    clusters: &[String],
    n: usize,
    parallel: usize,
) -> (Vec<String>, usize) {
    let mut tasks = Vec::new();
    for t in 0..parallel {
        let endpoint = endpoints[t % endpoints.len()].clone();
        let (creds, clusters) = (creds.clone(), clusters.to_vec());
        tasks.push(tokio::spawn(async move {
            let mut c = Client::new(&endpoint, creds).expect("client");
            let (mut ids, mut refused) = (Vec::new(), 0);
            for i in (t..n).step_by(parallel) {
                match readonly_job(&mut c, &clusters[i % clusters.len()]).await {
                    Ok(id) => ids.push(id),
                    Err(_) => refused += 1,
                }
            }
            (ids, refused)
        }));
    }
    let (mut all, mut refused) = (Vec::new(), 0);
    for t in tasks {
        let (ids, r) = t.await.expect("task");
        all.extend(ids);
        refused += r;
    }
    (all, refused)
}

fn wait_sql(shared: &Shared, sql: &str, want: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let got = shared.sql(sql);
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "{sql}: {got}, want {want}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_jobs_through_two_gateways_each_run_once_in_lane_order() {
    let shared = Shared::new("max_open_jobs_per_owner = 20000\n");
    let mut a = shared.gateway("a", &[]);
    let mut b = shared.gateway("b", &[]);
    let creds = a.key.clone().expect("key");
    let owner = shared.owner();
    let clusters = shared.add_clusters(&owner, 20);
    let endpoints = [a.endpoint.clone(), b.endpoint.clone()];
    let (ids, refused) = submit(&endpoints, &creds, &clusters, 10_000, 16).await;
    assert_eq!(refused, 0, "every submission was acknowledged");
    assert_eq!(ids.len(), 10_000);
    wait_sql(
        &shared,
        "SELECT count(*) FROM jobs WHERE status = 'successful'",
        "10000",
        Duration::from_secs(240),
    );
    // Each job was claimed exactly once, by one gateway's worker or the other's.
    assert_eq!(
        shared.sql("SELECT count(*) FROM jobs WHERE attempts <> 1"),
        "0"
    );
    assert_eq!(shared.sql("SELECT count(*) FROM jobs"), "10000");
    let acked: HashSet<String> = ids.into_iter().collect();
    assert_eq!(acked.len(), 10_000, "ids are distinct");
    // Every acknowledged id names one of the 10,000 jobs stored, so the
    // jobs stored are the jobs acknowledged.
    let mut c = client(&a, &creds);
    let acked: Vec<String> = acked.into_iter().collect();
    for chunk in acked.chunks(100) {
        let mut params = vec![
            ("zone".to_string(), ZONE.to_string()),
            ("limit".into(), "100".into()),
        ];
        for (i, id) in chunk.iter().enumerate() {
            params.push((format!("jobs.{}", i + 1), id.clone()));
        }
        let params: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let r = c.call("DescribeJobs", &params).await.expect("describe");
        assert_eq!(r["ret_code"], 0, "{r}");
        assert_eq!(r["total_count"], chunk.len(), "{r}");
        let shown = r["job_set"].as_array().expect("job_set");
        assert!(shown.iter().all(|j| j["status"] == "successful"), "{r}");
    }
    // A lane started its jobs in submission order, whichever gateway ran them.
    assert_eq!(
        shared.sql(
            "SELECT count(*) FROM (SELECT started_ms < lag(started_ms) OVER (PARTITION BY lane ORDER BY seq) AS early
             FROM jobs) x WHERE early"
        ),
        "0",
        "a lane's job started before one submitted earlier"
    );
    kill_9(&mut a);
    kill_9(&mut b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_one_gateway_under_load_leaves_every_acknowledged_job_to_the_other() {
    let shared = Shared::new("lease_secs = 3\nmax_open_jobs_per_owner = 5000\n");
    let mut a = shared.gateway("a", &["--model-delay", "200"]);
    let mut b = shared.gateway("b", &["--model-delay", "200"]);
    let creds = a.key.clone().expect("key");
    let owner = shared.owner();
    let clusters = shared.add_clusters(&owner, 16);
    let endpoints = [a.endpoint.clone(), b.endpoint.clone()];
    let load = {
        let (creds, clusters) = (creds.clone(), clusters.clone());
        tokio::spawn(async move { submit(&endpoints, &creds, &clusters, 400, 8).await })
    };
    // Once gateway a holds running jobs, it dies.
    let deadline = Instant::now() + Duration::from_secs(30);
    while shared.sql("SELECT count(*) FROM jobs WHERE status = 'working'") == "0" {
        assert!(Instant::now() < deadline, "no job started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    kill_9(&mut a);
    let (acked, _lost_with_a) = load.await.expect("load");
    assert!(
        acked.len() > 200,
        "gateway b kept acknowledging: {}",
        acked.len()
    );
    let mut cb = client(&b, &creds);
    let mut ended = 0;
    for id in &acked {
        let j = wait_ended(&mut cb, id, Duration::from_secs(120)).await;
        assert_eq!(j["status"], "successful", "{j}");
        ended += 1;
    }
    assert_eq!(ended, acked.len());
    // Jobs gateway a held were rescued by b once their leases ran out.
    let rescued: i64 = shared
        .sql("SELECT count(*) FROM jobs WHERE attempts > 1")
        .parse()
        .expect("count");
    assert!(rescued >= 1, "no job was taken over from the dead gateway");
    assert_eq!(
        shared.sql("SELECT count(*) FROM jobs WHERE status IN ('pending', 'working')"),
        "0"
    );
    kill_9(&mut b);
}

#[test]
fn a_shared_store_needs_the_master_key_given() {
    let shared = Shared::new("");
    let data = shared.tmp.path().join("nokey");
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--store", &shared.url])
        .arg("--data-dir")
        .arg(&data)
        .env_remove("QCGATE_MASTER_KEY")
        .output()
        .expect("serve runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("master key"), "{err}");
    assert!(
        !Path::new(&data).join("master.key").exists(),
        "no key was made"
    );
}

#[test]
fn gateways_starting_together_on_an_empty_store_make_one_first_key() {
    let shared = Shared::new("");
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| shared.gateway("a", &[]));
        let b = s.spawn(|| shared.gateway("b", &[]));
        (a.join().expect("a"), b.join().expect("b"))
    });
    let printed = [&a, &b].iter().filter(|g| g.key.is_some()).count();
    assert_eq!(printed, 1, "one gateway printed the first key");
    assert_eq!(shared.sql("SELECT count(*) FROM access_keys"), "1");
    for mut g in [a, b] {
        kill_9(&mut g);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gateway_samples_dr_tasks_at_a_time_and_another_takes_over() {
    use qcgate::store::Store;
    use qcgate::store::postgres::Pg;
    let shared = Shared::new("");
    let open = || {
        let key = qcgate::sealing::MasterKey::load_given(Some(&shared.key_file())).expect("key");
        Store::from(Pg::open(&shared.url, std::sync::Arc::new(key)).expect("store"))
    };
    let (a, b) = (open(), open());
    assert!(a.leads_sampling().await, "the first to ask leads");
    assert!(!b.leads_sampling().await, "one at a time");
    assert!(a.leads_sampling().await, "and keeps it");
    // The leader's gateway dies: its connection closes and the lock is free.
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !b.leads_sampling().await {
        assert!(Instant::now() < deadline, "nobody took over sampling");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
